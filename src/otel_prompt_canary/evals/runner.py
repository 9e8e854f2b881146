"""Running a golden set through a prompt version's model: what ``prompt-canary eval run`` does.

::

    run = run_evaluation(version, dataset, EvalSettings(concurrency=8), actor="ana")
    store.record_run(run)

**Before any call**, everything that can be known is checked, and a problem raises
:class:`~otel_prompt_canary.errors.InvalidInputError` naming the case's line: the cases' variables
against the version's, the messages the API accepts, the model (the version's ``model``, else its
``environment.model_id``), the SDK and its configuration, and a judge endpoint when a case needs
the LLM judge.

**Each case** then runs on a pool of ``concurrency`` threads, in a span ``prompt_canary.eval.case``
(attributes ``prompt_canary.eval.run.id``, ``prompt_canary.eval.case.id``,
``prompt_canary.eval.dataset``, ``gen_ai.prompt.name``, ``gen_ai.prompt.version`` and, at its end,
``prompt_canary.eval.case.status``), child of the run's span ``prompt_canary.eval.run``. The SDK
call runs inside the case span, so the LLM span an instrumentation makes of it is the case's child.
The call is retried ``retries`` times on a failure worth it (no connection, a timeout, 408, 409,
429, 5xx), after ``backoff_seconds`` doubled at each attempt (at most :data:`MAX_BACKOFF_SECONDS`).
The answer goes through the project's checks and the case's expectations
(:mod:`~otel_prompt_canary.evals.expectations`), then, when the case has a reference or a rubric
(or the dataset a rubric), through the LLM judge, given the reference; the judge is retried alike.

A case whose calls keep failing ends in ``error``, and the run is stored ``incomplete``: it never
counts as passing. Interrupting the run (Ctrl-C) lets the calls under way finish, marks the other
cases not run, and returns the incomplete run, so that what was measured is kept.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Final, TypeVar

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Status, StatusCode, TracerProvider

from otel_prompt_canary import names
from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.datasets import Case, Dataset, check_variables
from otel_prompt_canary.evals.expectations import grade
from otel_prompt_canary.evals.providers import (
    ANTHROPIC_ROLES,
    ModelClient,
    Provider,
    case_messages,
    provider_for,
)
from otel_prompt_canary.evals.results import (
    JUDGE_SCORE,
    CaseResult,
    CaseStatus,
    EvalRun,
    RunSource,
    RunStatus,
)
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.registry.models import PromptVersion
from otel_prompt_canary.scoring import (
    DEFAULT_RUBRIC,
    DeclaredOutput,
    LLMJudge,
    LLMResponse,
    ScoringConfig,
    ScoringPlan,
    build_scoring,
)

__all__ = [
    "CASE_SPAN",
    "MAX_BACKOFF_SECONDS",
    "RUN_SPAN",
    "EvalSettings",
    "JudgeEndpoint",
    "run_evaluation",
]

#: The span of one evaluation run, and of each case in it.
RUN_SPAN: Final = "prompt_canary.eval.run"
CASE_SPAN: Final = "prompt_canary.eval.case"
#: The longest pause between two attempts of a call.
MAX_BACKOFF_SECONDS: Final = 8.0
#: How much of each answer a run keeps, in characters.
OUTPUT_EXCERPT: Final = 400
#: What the judge is told of a case's reference answer.
_REFERENCE_NOTE: Final = (
    "\n\nA reference answer to this request follows between <reference> tags. A good response agrees "
    "with it in substance; it need not match its wording.\n<reference>\n{reference}\n</reference>"
)
_FAILURE_WORDS: Final = {
    "json_valid": "the answer is not valid JSON",
    "json_schema": "the answer does not match the version's output schema",
    "refusal": "the model refused",
    "truncation": "the answer was cut at the token limit",
    "max_output_tokens": "the answer is over the token budget",
    "escalation": "the answer escalates",
}

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class JudgeEndpoint:
    """The LLM judge: an OpenAI-compatible endpoint (``/chat/completions``) and its model."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """How a run calls the model: concurrency, retries, timeouts, the endpoint, the judge, the checks.

    ``provider``, ``base_url`` and ``api_key`` default to the version's model and the SDK's
    environment variables (:mod:`~otel_prompt_canary.evals.providers`); ``scoring`` is the project's
    checks as the application configures them (default: the instrumentation's defaults).
    """

    concurrency: int = 8
    retries: int = 2
    backoff_seconds: float = 0.5
    timeout_seconds: float = 60.0
    provider: Provider | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    judge: JudgeEndpoint | None = None
    scoring: ScoringConfig | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 256:
            raise InvalidInputError(f"concurrency {self.concurrency} is out of range: give 1 to 256")
        if not 0 <= self.retries <= 10:
            raise InvalidInputError(f"retries {self.retries} is out of range: give 0 to 10")
        if not 0 <= self.backoff_seconds <= MAX_BACKOFF_SECONDS:
            raise InvalidInputError(
                f"backoff {self.backoff_seconds} s is out of range: 0 to {MAX_BACKOFF_SECONDS:g}"
            )
        if not self.timeout_seconds > 0:
            raise InvalidInputError("the timeout must be longer than 0 seconds")


def _plan(version: PromptVersion, scoring: ScoringConfig | None) -> ScoringPlan:
    """The project's inline checks for ``version``: its contract, none of the late evaluations
    (the judge runs per case here; moderation and custom classifiers are the application's)."""
    config = scoring if scoring is not None else ScoringConfig()
    config = config.model_copy(
        update={"judge": None, "safety": config.safety.model_copy(update={"enabled": False})}
    )
    declared = None
    if version.output is not None:
        declared = DeclaredOutput(format=version.output.format, json_schema=version.output.json_schema)
    return build_scoring(config, declared_output=declared)


def _model_of(version: PromptVersion) -> str:
    model = version.model or version.environment.model_id
    if not model:
        raise InvalidInputError(
            f"{version.ref} names no model: evaluating it needs `model:` (or environment.model_id) in "
            "its spec"
        )
    return model


def _preflight(
    version: PromptVersion, dataset: Dataset, settings: EvalSettings, provider: Provider
) -> list[list[dict[str, str]]]:
    """Every case's messages, once everything that can be checked before a call is."""
    if dataset.prompt != version.name:
        raise InvalidInputError(
            f"dataset {dataset.ref} belongs to prompt {dataset.prompt!r}, not {version.name!r}"
        )
    places = [dataset.where(i) for i in range(len(dataset.cases))]
    check_variables(dataset.cases, version, places)
    if dataset.needs_judge and settings.judge is None:
        needing = next(
            (places[i] for i, c in enumerate(dataset.cases) if c.expect.needs_judge), "the dataset's rubric"
        )
        raise InvalidInputError(
            f"{dataset.ref}: {needing} needs the LLM judge, and no judge is configured: give --judge-model "
            "(and --judge-endpoint, default the OpenAI-compatible endpoint), or "
            "OTEL_PROMPT_CANARY_JUDGE_ENDPOINT and OTEL_PROMPT_CANARY_JUDGE_MODEL"
        )
    messages = []
    for case, place in zip(dataset.cases, places, strict=True):
        rendered = case_messages(version, case)
        if provider == "anthropic":
            bad = next((m["role"] for m in rendered if m["role"] not in ANTHROPIC_ROLES), None)
            if bad is not None:
                raise InvalidInputError(f"{place}: the Anthropic API takes no {bad!r} messages")
        messages.append(rendered)
    return messages


class _Runner:
    """One run: the pool, the clients and the spans."""

    def __init__(
        self,
        version: PromptVersion,
        dataset: Dataset,
        settings: EvalSettings,
        *,
        provider: Provider,
        model: str,
        messages: list[list[dict[str, str]]],
        tracer_provider: TracerProvider | None,
    ) -> None:
        self.version = version
        self.dataset = dataset
        self.settings = settings
        self.messages = messages
        self.run_id = uuid.uuid4().hex[:16]
        self.plan = _plan(version, settings.scoring)
        self.client = ModelClient(
            provider,
            model,
            version.config,
            base_url=settings.base_url,
            api_key=settings.api_key,
            timeout=settings.timeout_seconds,
        )
        judge = settings.judge
        self.http = httpx.Client(timeout=judge.timeout_seconds) if judge is not None else None
        self.tracer = trace.get_tracer(
            "otel_prompt_canary.evals", __version__, tracer_provider=tracer_provider
        )
        self.stop = threading.Event()
        self.jitter = random.Random()

    def close(self) -> None:
        self.client.close()
        self.plan.close(0)
        if self.http is not None:
            self.http.close()

    # -- one case ----------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], _T], counter: list[int]) -> _T:
        """``call()`` until it succeeds or a failure is not worth retrying; counts attempts."""
        pause = self.settings.backoff_seconds
        for attempt in range(self.settings.retries + 1):
            counter[0] += 1
            try:
                return call()
            except Exception as exc:
                last = attempt == self.settings.retries
                if last or self.stop.is_set() or not self.client.retryable(exc):
                    raise
            # Spread the retries of concurrent cases, so that a rate limit is not hit again at once.
            self.stop.wait(min(MAX_BACKOFF_SECONDS, pause) * (0.5 + self.jitter.random() / 2))
            pause *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _judge(self, case: Case, response: LLMResponse, counter: list[int]) -> float | None:
        rubric = case.expect.rubric or self.dataset.judge.rubric
        if rubric is None and case.expect.reference is None:
            return None
        judge = self.settings.judge
        assert judge is not None and self.http is not None  # the preflight refused a run without one
        text = rubric or DEFAULT_RUBRIC
        if case.expect.reference is not None:
            text += _REFERENCE_NOTE.format(reference=case.expect.reference)
        grader = LLMJudge(
            base_url=judge.base_url,
            model=judge.model,
            rubric=text,
            api_key=judge.api_key,
            name=JUDGE_SCORE,
            timeout=judge.timeout_seconds,
            client=self.http,
        )

        def score() -> float:
            # The judge's HTTP call is the evaluation's, not the application's: no LLM span of it.
            with suppress_instrumentation():
                found = grader.score(response)
            return 0.0 if found is None else found

        return self._retrying(score, counter)

    def case(self, index: int, parent: Context) -> CaseResult:
        case = self.dataset.cases[index]
        attributes: dict[str, str] = {
            names.PROMPT_NAME: self.version.name,
            names.PROMPT_VERSION: str(self.version.version),
            names.EVAL_RUN_ID: self.run_id,
            names.EVAL_CASE_ID: case.id,
            names.EVAL_DATASET: self.dataset.ref,
        }
        began = time.perf_counter()
        counter = [0]
        with self.tracer.start_as_current_span(CASE_SPAN, context=parent, attributes=attributes) as span:
            try:
                response = self._retrying(lambda: self.client.call(self.messages[index]), counter)
                outcomes = self.plan.run(response)
                checks, failures = grade(case.expect, response, outcomes)
                failures = [_worded(f) for f in failures]
                scores = {s.name: s.value for s in outcomes.scores if s.value is not None}
                judged = self._judge(case, response, counter)
            except Exception as exc:
                status: CaseStatus = "error"
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                span.set_attribute(names.ERROR_TYPE, type(exc).__qualname__)
                result = CaseResult(
                    case_id=case.id,
                    status=status,
                    failures=(f"{type(exc).__name__}: {str(exc)[:300]}",),
                    attempts=counter[0],
                    duration_ms=(time.perf_counter() - began) * 1000,
                    tags=case.tags,
                )
            else:
                if judged is not None:
                    scores[JUDGE_SCORE] = judged
                    needed = case.expect.min_judge_score
                    needed = self.dataset.judge.pass_score if needed is None else needed
                    if judged < needed:
                        failures.append(f"judge: scored {judged:.2f}, below {needed:.2f}")
                status = "failed" if failures else "passed"
                result = CaseResult(
                    case_id=case.id,
                    status=status,
                    checks=checks,
                    scores=scores,
                    failures=tuple(failures),
                    output=response.output_text[:OUTPUT_EXCERPT],
                    attempts=counter[0],
                    duration_ms=(time.perf_counter() - began) * 1000,
                    response_model=response.model,
                    tags=case.tags,
                )
            span.set_attribute(names.EVAL_CASE_STATUS, status)
        return result

    # -- the run -----------------------------------------------------------------------------

    def run(self, *, actor: str, source: RunSource, on_case: Callable[[CaseResult], None] | None) -> EvalRun:
        started = utc_now()
        results: dict[int, CaseResult] = {}
        interrupted = False
        attributes = {
            names.PROMPT_NAME: self.version.name,
            names.PROMPT_VERSION: str(self.version.version),
            names.EVAL_RUN_ID: self.run_id,
            names.EVAL_DATASET: self.dataset.ref,
        }
        with self.tracer.start_as_current_span(RUN_SPAN, attributes=attributes) as span:
            parent = trace.set_span_in_context(span)
            pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="eval-case")
            pending: dict[Future[CaseResult], int] = {}
            try:
                pending = {pool.submit(self.case, i, parent): i for i in range(len(self.dataset.cases))}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        index = pending.pop(future)
                        results[index] = future.result()
                        if on_case is not None:
                            on_case(results[index])
            except KeyboardInterrupt:
                interrupted = True
                self.stop.set()
                for future in pending:
                    future.cancel()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            for future, index in pending.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    results[index] = future.result()
            cases = tuple(results.get(i) or _not_run(c) for i, c in enumerate(self.dataset.cases))
            errors = [c for c in cases if c.status == "error"]
            note = _note(errors, interrupted, len(results), len(cases))
            status: RunStatus = "incomplete" if errors else "complete"
            if errors:
                span.set_status(Status(StatusCode.ERROR, note[:200]))
        return EvalRun(
            run_id=self.run_id,
            prompt=self.version.name,
            version=self.version.version,
            dataset=self.dataset.name,
            dataset_version=self.dataset.version,
            dataset_hash=self.dataset.content_hash,
            model=self.client.model,
            provider=self.client.provider,
            status=status,
            source=source,
            actor=actor,
            started_at=started,
            finished_at=utc_now(),
            note=note,
            cases=cases,
        )


def _worded(failure: str) -> str:
    name, _, detail = failure.partition(": ")
    return f"{name}: {_FAILURE_WORDS[name]}" if detail == "failed" and name in _FAILURE_WORDS else failure


def _not_run(case: Case) -> CaseResult:
    return CaseResult(
        case_id=case.id, status="error", failures=("not run: the run was interrupted",), tags=case.tags
    )


def _note(errors: list[CaseResult], interrupted: bool, finished: int, total: int) -> str:
    if interrupted:
        return f"interrupted after {finished} of {total} cases"
    if not errors:
        return ""
    first = errors[0]
    return (
        f"{len(errors)} of {total} cases ended in error after their retries (first: case {first.case_id!r}, "
        f"{first.failures[0] if first.failures else 'no detail'})"
    )


def run_evaluation(
    version: PromptVersion,
    dataset: Dataset,
    settings: EvalSettings | None = None,
    *,
    actor: str,
    source: RunSource = "manual",
    tracer_provider: TracerProvider | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> EvalRun:
    """Run every case of ``dataset`` through ``version``'s model; the run (not yet stored).

    ``on_case`` is called in the caller's thread as each case finishes (a progress bar). Raises
    :class:`InvalidInputError` before any call when the run cannot be made (see the module
    docstring); failures of calls end in the run, as errors.
    """
    settings = settings if settings is not None else EvalSettings()
    model = _model_of(version)
    provider = provider_for(model, settings.provider)
    messages = _preflight(version, dataset, settings, provider)
    runner = _Runner(
        version,
        dataset,
        settings,
        provider=provider,
        model=model,
        messages=messages,
        tracer_provider=tracer_provider,
    )
    try:
        return runner.run(actor=actor, source=source, on_case=on_case)
    finally:
        runner.close()
