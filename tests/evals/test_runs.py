"""``eval run`` against the local simulated LLM, through the real openai and anthropic SDKs: each
case through the version's model, checks, expectations and the judge; retries; incomplete runs;
refusals before any call; each case a span, parent of the instrumentation's LLM span."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_prompt_canary import names
from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals import (
    Dataset,
    EvalSettings,
    SqlEvalStore,
    compare_runs,
    html_report,
    read_dataset,
    run_evaluation,
)
from otel_prompt_canary.evals.runner import CASE_SPAN, RUN_SPAN
from otel_prompt_canary.instrumentation import InstrumentationConfig, PromptCanaryInstrumentor
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.yaml_documents import load_yaml
from tests.evals.golden import BILLING_CASES, STABLE, dataset_yaml, spec

pytestmark = pytest.mark.parametrize("store_backend", ["sqlite"])  # the store is not what these test


def test_a_candidate_that_breaks_one_class_fails_exactly_those_cases(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings
) -> None:
    stable = run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana")
    candidate = run_evaluation(prompts.get_version("support-bot", 2), golden, settings, actor="ana")

    assert (stable.status, stable.totals.passed, stable.totals.cases) == ("complete", 12, 12)
    assert candidate.status == "complete" and candidate.totals.passed == 8
    failed = {c.case_id: c for c in candidate.cases if c.status == "failed"}
    assert set(failed) == set(BILLING_CASES)
    assert failed["billing-1"].failures == ("json_valid: the answer is not valid JSON",)
    assert failed["billing-1"].checks["json_valid"] is False and failed["billing-1"].checks["must_contain"]
    assert failed["billing-1"].output.startswith("Happy to help with that!")
    for case in candidate.cases:  # the judge graded every case against its reference
        assert case.scores["judge"] == 1.0 and case.attempts == 2  # the model's call and the judge's
        assert case.response_model == "sim-gpt-small"
        assert set(case.checks) >= {"json_valid", "refusal", "truncation", "must_contain", "must_not_contain"}

    comparison = compare_runs(stable, candidate)
    assert comparison.paired_cases == 12
    assert comparison.worse_cases == BILLING_CASES
    passed = comparison.signal("pass")
    assert passed is not None and (passed.worse, passed.better, passed.p_value) == (4, 0, 1 / 16)
    json_valid = comparison.signal("json_valid")
    assert json_valid is not None and json_valid.worse_cases == BILLING_CASES
    judge = comparison.signal("judge")
    assert judge is not None and judge.worse == 0 and judge.p_value == 1.0

    store.record_run(stable)
    store.record_run(candidate)
    newest, older = store.list_runs("support-bot", limit=2)
    assert (newest.run_id, newest.version, newest.passed) == (candidate.run_id, 2, 8)
    assert (older.run_id, older.version, older.passed) == (stable.run_id, 1, 12)
    assert store.get_run("support-bot", stable.run_id) == stable
    report = html_report(candidate, comparison=comparison)
    assert report.count('class="worse"') == 4 and "Happy to help with that!" in report


def test_an_equivalent_candidate_passes_like_the_stable_version(
    prompts: SqlRegistry, golden: Dataset, settings: EvalSettings
) -> None:
    stable = run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana")
    equivalent = run_evaluation(prompts.get_version("support-bot", 3), golden, settings, actor="ana")
    comparison = compare_runs(stable, equivalent)
    assert equivalent.totals.passed == 12
    assert comparison.worse_cases == ()
    assert all(s.worse == 0 and s.p_value == 1.0 for s in comparison.signals)


def test_a_failing_call_is_retried_and_counted(
    prompts: SqlRegistry, golden: Dataset, settings: EvalSettings, behaviour: Behaviour
) -> None:
    behaviour.when(user_contains="password", reply=Reply.failure(503, retry_after=0.01), times=2)
    run = run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana")
    [case] = [c for c in run.cases if c.case_id == "account-1"]
    assert (run.status, case.status, case.attempts) == (
        "complete",
        "passed",
        4,
    )  # 2 failures, 1 call, 1 judge


def test_an_endpoint_failing_mid_run_leaves_an_incomplete_run(
    prompts: SqlRegistry, store: SqlEvalStore, golden: Dataset, settings: EvalSettings, behaviour: Behaviour
) -> None:
    behaviour.when(user_contains="package", reply=Reply.failure(500, "the model is down"))
    run = run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana")
    errors = [c for c in run.cases if c.status == "error"]
    assert run.status == "incomplete"
    assert [c.case_id for c in errors] == ["shipping-1", "shipping-4"]
    assert all(c.attempts == settings.retries + 1 for c in errors)
    assert errors[0].failures[0].startswith("InternalServerError: ")
    assert run.note.startswith("2 of 12 cases ended in error after their retries (first: case 'shipping-1'")
    store.record_run(run)  # stored all the same: what was measured is kept
    assert store.list_runs("support-bot", status="incomplete")[0].run_id == run.run_id


def test_a_call_that_cannot_succeed_is_not_retried(
    prompts: SqlRegistry, golden: Dataset, settings: EvalSettings, behaviour: Behaviour
) -> None:
    behaviour.when(user_contains="password", reply=Reply.failure(400, "bad request"))
    run = run_evaluation(prompts.get_version("support-bot", 1), golden, settings, actor="ana")
    [case] = [c for c in run.cases if c.status == "error"]
    assert (case.case_id, case.attempts) == ("account-1", 1)
    assert case.failures[0].startswith("BadRequestError: ")


def test_bad_cases_are_refused_before_any_model_call(
    prompts: SqlRegistry, golden: Dataset, settings: EvalSettings, behaviour: Behaviour
) -> None:
    renamed = load_yaml(spec(STABLE).replace("{{ question }}", "{{ query }}"))
    v4 = prompts.push(PromptSpec.model_validate(renamed)).version
    with pytest.raises(InvalidInputError) as caught:
        run_evaluation(v4, golden, settings, actor="ana")
    assert "line 5 (case 'billing-1'): unknown variable 'question' (support-bot@4 uses: query)" in str(
        caught.value
    )
    with pytest.raises(InvalidInputError, match="needs the LLM judge, and no judge is configured"):
        run_evaluation(
            prompts.get_version("support-bot", 1), golden, replace(settings, judge=None), actor="ana"
        )
    assert behaviour.requests == []


def test_a_run_without_the_judge_grades_checks_and_expectations(
    prompts: SqlRegistry, store: SqlEvalStore, settings: EvalSettings
) -> None:
    unjudged = store.push_dataset(read_dataset(dataset_yaml(name="plain", judged=False), source="plain.yaml"))
    run = run_evaluation(
        prompts.get_version("support-bot", 2), unjudged.dataset, replace(settings, judge=None), actor="ana"
    )
    assert run.totals.judge_mean is None and run.totals.passed == 8
    assert run.totals.checks["must_contain"].rate == 1.0 and run.totals.checks["json_valid"].passed == 8


def test_the_anthropic_sdk_answers_for_a_claude_model(
    prompts: SqlRegistry, store: SqlEvalStore, settings: EvalSettings, llm: SimulatedLLM
) -> None:
    claude = prompts.push(PromptSpec.model_validate(load_yaml(spec(STABLE, model="claude-sim-1")))).version
    plain = store.push_dataset(read_dataset(dataset_yaml(name="plain", judged=False), source="plain.yaml"))
    run = run_evaluation(
        claude,
        plain.dataset,
        replace(settings, judge=None, base_url=llm.anthropic_base_url),
        actor="ana",
    )
    assert (run.provider, run.status, run.totals.passed) == ("anthropic", "complete", 12)
    assert {c.response_model for c in run.cases} == {"claude-sim-1"}


@pytest.fixture
def traced(behaviour: Behaviour) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = PromptCanaryInstrumentor()
    instrumentor.instrument(config=InstrumentationConfig.from_env({}), tracer_provider=provider)
    yield provider, exporter
    instrumentor.uninstrument()
    provider.shutdown()


def test_each_case_is_a_span_parent_of_the_llm_call_span(
    prompts: SqlRegistry,
    golden: Dataset,
    settings: EvalSettings,
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    run = run_evaluation(
        prompts.get_version("support-bot", 2), golden, settings, actor="ana", tracer_provider=provider
    )
    spans = exporter.get_finished_spans()
    [run_span] = [s for s in spans if s.name == RUN_SPAN]
    cases = {s.attributes[names.EVAL_CASE_ID]: s for s in spans if s.name == CASE_SPAN}  # type: ignore[index]
    assert set(cases) == {c.case_id for c in run.cases}
    for case_id, span in cases.items():
        assert span.parent is not None and span.parent.span_id == run_span.context.span_id
        assert span.attributes is not None
        assert span.attributes[names.EVAL_RUN_ID] == run.run_id
        assert span.attributes[names.EVAL_DATASET] == "support-golden@1"
        assert span.attributes[names.PROMPT_NAME] == "support-bot"
        assert span.attributes[names.PROMPT_VERSION] == "2"
        expected = "failed" if case_id in BILLING_CASES else "passed"
        assert span.attributes[names.EVAL_CASE_STATUS] == expected
        children = [s for s in spans if s.parent is not None and s.parent.span_id == span.context.span_id]
        # The model's call made one LLM span under the case; the judge's call made none.
        assert [s.attributes.get(names.REQUEST_MODEL) for s in children if s.attributes] == ["sim-gpt-small"]


def test_an_interrupted_run_keeps_what_finished_as_incomplete(
    prompts: SqlRegistry, golden: Dataset, settings: EvalSettings
) -> None:
    finished: list[str] = []

    def interrupt_after_three(result: object) -> None:
        finished.append(getattr(result, "case_id", ""))
        if len(finished) == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the thread that waits for the cases

    run = run_evaluation(
        prompts.get_version("support-bot", 1),
        golden,
        replace(settings, concurrency=1),
        actor="ana",
        on_case=interrupt_after_three,
    )
    assert run.status == "incomplete" and run.note.startswith("interrupted after ")
    done = [c for c in run.cases if c.status == "passed"]
    assert len(done) >= 3 and {c.case_id for c in done} >= set(finished)
    not_run = [c for c in run.cases if c.status == "error"]
    assert not_run and all(c.failures == ("not run: the run was interrupted",) for c in not_run)
