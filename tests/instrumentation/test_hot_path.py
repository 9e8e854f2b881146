"""The per-call caches and shortcuts of the hot path: bounded, shared only where safe, and exact."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType, SimpleNamespace
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation import (
    InstrumentationConfig,
    PromptCanaryInstrumentor,
    _evaluations,
    _tags,
    utils,
)
from otel_prompt_canary.instrumentation._processor import PromptSpanProcessor
from otel_prompt_canary.instrumentation._tags import CACHE_LIMIT, MetricAttributes, Tags, TagsCache
from otel_prompt_canary.scoring import (
    CheckOutcome,
    LLMResponse,
    ScoreOutcome,
    ScoringPlan,
    ScoringResults,
    run_checks,
)
from tests.instrumentation.support import Telemetry, selection

MESSAGES = [
    {"role": "system", "content": "You answer support questions."},
    {"role": "user", "content": "Where is my parcel?"},
]


def test_only_the_duration_carries_an_exemplar(
    instrument: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    instrument(checks="refusal,output_tokens")  # a check and a score: every kind of data point
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        client.chat.completions.create(model="sim-gpt-small", messages=MESSAGES)  # type: ignore[arg-type]
    trace_id = telemetry.one_llm_span().context.trace_id

    points: dict[str, list[Any]] = {}
    data = telemetry.reader.get_metrics_data()  # one collection: collecting resets the exemplars
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    exemplars = [e for point in points["prompt_canary.duration"] for e in point.exemplars]
    assert {e.trace_id for e in exemplars} == {trace_id}
    # The counters are summed in process (observable): they carry no exemplars at all.
    for name in (
        "prompt_canary.responses",
        "prompt_canary.checks",
        "prompt_canary.token.usage",
        "prompt_canary.score",
    ):
        assert points[name], name
        assert all(not point.exemplars for point in points[name]), name


class _CountingProvider(TracerProvider):
    def __init__(self) -> None:
        super().__init__()
        self.added: list[SpanProcessor] = []

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        self.added.append(span_processor)
        super().add_span_processor(span_processor)


def test_instrumenting_again_reuses_the_span_processor_of_the_provider() -> None:
    provider = _CountingProvider()
    instrumentor = PromptCanaryInstrumentor()
    runtimes = []
    try:
        for _ in range(3):
            instrumentor.instrument(config=InstrumentationConfig(), tracer_provider=provider)
            runtimes.append(instrumentor._installation.runtime)
            instrumentor.uninstrument()
    finally:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    ours = [p for p in provider.added if isinstance(p, PromptSpanProcessor)]
    assert len(ours) == 1
    assert not ours[0].enabled
    assert ours[0]._runtime is runtimes[-1]


def test_a_processor_in_use_is_not_taken_over() -> None:
    provider = _CountingProvider()
    first = PromptCanaryInstrumentor()
    first.instrument(config=InstrumentationConfig(), tracer_provider=provider)
    try:
        processor = next(p for p in provider.added if isinstance(p, PromptSpanProcessor))
        assert processor.enabled
        first.uninstrument()
        assert not processor.enabled
        first.instrument(config=InstrumentationConfig(), tracer_provider=provider)
        assert processor.enabled
        assert processor._runtime is first._installation.runtime
    finally:
        if first.is_instrumented_by_opentelemetry:
            first.uninstrument()


def test_metric_attribute_sets_are_built_once_and_bounded() -> None:
    tags = Tags("support-reply", 3, "canary", "ro_1", "selection")
    sets = tags.metrics
    assert sets.base == {
        "gen_ai.prompt.name": "support-reply",
        "gen_ai.prompt.version": "3",
        "prompt_canary.cohort": "canary",
    }
    passed = CheckOutcome("refusal", True)
    assert sets.check(passed) == {
        **sets.base,
        "prompt_canary.check": "refusal",
        "prompt_canary.check.outcome": "pass",
    }
    assert sets.check(CheckOutcome("refusal", False))["prompt_canary.check.outcome"] == "fail"
    assert sets.check(passed) is sets.check(CheckOutcome("refusal", True))
    assert sets.score("output_tokens") == {**sets.base, "gen_ai.evaluation.name": "output_tokens"}
    assert sets.error("500") == {**sets.base, "error.type": "500"}
    assert sets.input_tokens["gen_ai.token.type"] == "input"
    assert sets.output_tokens["gen_ai.token.type"] == "output"
    assert tags.identity == ("support-reply", "3", "canary", "ro_1")

    for index in range(CACHE_LIMIT + 10):
        assert sets.error(f"Error{index}")["error.type"] == f"Error{index}"
    assert len(sets) <= CACHE_LIMIT + 3  # the error sets, plus the check and score sets above
    assert _tags.UNTAGGED.base == {}
    assert _tags.UNTAGGED.check(passed) == {
        "prompt_canary.check": "refusal",
        "prompt_canary.check.outcome": "pass",
    }


def test_the_tags_cache_is_bounded() -> None:
    cache = TagsCache(frozenset())
    first = cache.get("p", 3, "canary", None, "selection")
    assert cache.get("p", 3, "canary", None, "selection") is first
    assert cache.get("p", "3", "canary", None, "selection") is first
    for version in range(CACHE_LIMIT + 10):
        cache.get("p", version, "stable", None, "selection")
    assert len(cache) <= CACHE_LIMIT


def test_evaluation_events_are_fresh_dicts_and_the_cache_is_bounded() -> None:
    results = ScoringResults(
        (
            CheckOutcome("refusal", True),
            CheckOutcome("json_valid", None),
            CheckOutcome("bad", None, "ValueError"),
        ),
        (
            ScoreOutcome("output_tokens", 12.0),
            ScoreOutcome("broken", None, "TypeError"),
            ScoreOutcome("na", None),
        ),
    )
    span_attributes: dict[str, Any] = {}
    events = _evaluations.record_evaluations(results, "resp-1", span_attributes)
    assert span_attributes == results.span_attributes()
    assert events == [
        {
            "gen_ai.evaluation.name": "refusal",
            "gen_ai.evaluation.score.value": 1.0,
            "gen_ai.evaluation.score.label": "pass",
            "gen_ai.response.id": "resp-1",
        },
        {"gen_ai.evaluation.name": "bad", "error.type": "ValueError", "gen_ai.response.id": "resp-1"},
        {
            "gen_ai.evaluation.name": "output_tokens",
            "gen_ai.evaluation.score.value": 12.0,
            "gen_ai.response.id": "resp-1",
        },
        {"gen_ai.evaluation.name": "broken", "error.type": "TypeError", "gen_ai.response.id": "resp-1"},
    ]
    events[0]["extra"] = "changed"  # a caller may extend an event (the late path adds the prompt)
    again = _evaluations.evaluation_events(results, None)
    assert again[0] == {
        "gen_ai.evaluation.name": "refusal",
        "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "pass",
    }

    for index in range(CACHE_LIMIT + 10):
        _evaluations.evaluation_events(ScoringResults((CheckOutcome("c", None, f"E{index}"),), ()), None)
    assert _evaluations.cached_outcomes() <= CACHE_LIMIT


def test_result_attributes_are_shared_per_combination_of_checks_and_bounded() -> None:
    checks = (CheckOutcome("refusal", True), CheckOutcome("json_valid", None), CheckOutcome("bad", None, "E"))
    results = ScoringResults(checks, ())
    found = _evaluations.result_attributes(results)
    assert found == results.span_attributes() == {"prompt_canary.check.refusal": True}
    assert _evaluations.result_attributes(ScoringResults(tuple(checks), ())) is found
    with_score = ScoringResults(checks, (ScoreOutcome("output_tokens", 12.0), ScoreOutcome("na", None)))
    scored = _evaluations.result_attributes(with_score)
    assert scored == with_score.span_attributes()
    assert scored is not found and found == {"prompt_canary.check.refusal": True}  # scores never cached
    assert _evaluations.result_attributes(ScoringResults()) == {}

    for index in range(CACHE_LIMIT + 10):
        _evaluations.result_attributes(ScoringResults((CheckOutcome(f"c{index}", True),), ()))
    assert _evaluations.cached_outcomes() <= CACHE_LIMIT


def test_check_sets_are_kept_per_combination_of_outcomes() -> None:
    sets = Tags("support-reply", 3, "canary", None, "selection").metrics
    outcomes = (CheckOutcome("refusal", True), CheckOutcome("json_valid", None), CheckOutcome("t", False))
    found = sets.checks(outcomes)
    assert found == (sets.check(outcomes[0]), sets.check(outcomes[2]))
    assert sets.checks(tuple(outcomes)) is found
    assert sets.checks(()) == ()


def test_server_attributes_follow_the_clients_url_object() -> None:
    client = openai.OpenAI(base_url="http://127.0.0.1:8123/v1", api_key="test")
    resource = client.chat.completions
    first = utils.server_attributes(resource)
    assert first == {"server.address": "127.0.0.1", "server.port": 8123}
    first["gen_ai.request.model"] = "m"  # the caller extends its own copy
    assert utils.server_attributes(resource) == {"server.address": "127.0.0.1", "server.port": 8123}
    client.base_url = "http://localhost:9000/v1"  # type: ignore[assignment]
    assert utils.server_attributes(resource) == {"server.address": "localhost", "server.port": 9000}
    assert utils.server_attributes(SimpleNamespace()) == {}
    assert len(utils._SERVERS) <= CACHE_LIMIT


class _Headers(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"id": "a"}, "a"),
        (_Headers({"id": "b"}), "b"),
        (MappingProxyType({"id": "c"}), "c"),
        (SimpleNamespace(id="d"), "d"),
        (SimpleNamespace(), None),
        ({}, None),
        (None, None),
    ],
)
def test_field_reads_mappings_and_objects_alike(obj: object, expected: object) -> None:
    assert utils.field(obj, "id") == expected
    assert utils.field(obj, "id") == expected  # the second read goes through the type cache


class _Check:
    def __init__(self, name: str, result: Any) -> None:
        self.name = name
        self._result = result

    def check(self, response: LLMResponse) -> Any:
        if isinstance(self._result, Exception):
            raise self._result
        return self._result


class _Scorer:
    def __init__(self, name: str, result: Any) -> None:
        self.name = name
        self._result = result

    def score(self, response: LLMResponse) -> Any:
        if isinstance(self._result, Exception):
            raise self._result
        return self._result


def test_a_plan_runs_its_checks_exactly_like_run_checks() -> None:
    checks = [
        _Check("passes", True),
        _Check("fails", False),
        _Check("not_applicable", None),
        _Check("raises", ValueError("x")),
        _Check("garbage", "yes"),
    ]
    scorers = [
        _Scorer("value", 3),
        _Scorer("none", None),
        _Scorer("raises", ZeroDivisionError()),
        _Scorer("text", "1.0"),
        _Scorer("infinite", float("inf")),
    ]
    plan = ScoringPlan(checks=checks, scorers=scorers)
    response = LLMResponse(output_text="hello", output_tokens=3)
    assert plan.run(response) == run_checks(response, checks, scorers)


def test_untagged_calls_share_the_untagged_attribute_sets() -> None:
    assert isinstance(_tags.UNTAGGED, MetricAttributes)
    assert _tags.UNTAGGED.score("s") is _tags.UNTAGGED.score("s")
