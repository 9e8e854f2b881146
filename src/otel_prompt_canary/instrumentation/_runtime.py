"""What happens around every instrumented LLM call: tagging, span ownership, checks and recording.

One :class:`Runtime` is built per :meth:`PromptCanaryInstrumentor.instrument` with everything injected
(tracer, instruments, event logger, checks, catalog); the patches' closures hold it, so the hot path
looks nothing up globally. Every public method of the runtime that the patches call after the SDK
returned is guarded: a bug here is logged, never raised into the application.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry._logs import Logger
from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from otel_prompt_canary.instrumentation import attributes as attr
from otel_prompt_canary.instrumentation._call import CALL_KEY, Api, CallState, RequestView
from otel_prompt_canary.instrumentation._streams import CLOSED_EARLY, proxy_stream
from otel_prompt_canary.instrumentation._tags import SELECTION, Tags, TagsCache, extend
from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.instrumentation.instruments import Instruments
from otel_prompt_canary.instrumentation.observers import Listeners, Observation
from otel_prompt_canary.scoring import (
    BoundedLRU,
    CheckOutcome,
    LLMResponse,
    ScoreOutcome,
    ScoringPlan,
    ScoringResults,
)

__all__ = ["CLOSED_EARLY", "Identifier", "Identity", "Runtime", "is_foreign_genai_span"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

_EMPTY: Final[Mapping[str, AttributeValue]] = {}
_NO_EXEMPLAR: Final = Context()
_UNTAGGED: dict[tuple[str, ...], Mapping[str, AttributeValue]] = {}


def _untagged(*pairs: str) -> Mapping[str, AttributeValue]:
    found = _UNTAGGED.get(pairs)
    if found is None:
        if len(_UNTAGGED) >= 4096:
            _UNTAGGED.clear()
        found = _UNTAGGED[pairs] = extend(_EMPTY, pairs)
    return found


def _attribute_sets(tags: Tags | None) -> Callable[..., Mapping[str, AttributeValue]]:
    return _untagged if tags is None else tags.extended


_NO_RESULTS: Final = ScoringResults()
# Keys of the metadata a response carries to the scoring worker, for its late outcomes.
_IDENTITY: Final = "prompt_canary.identity"
_SPAN: Final = "prompt_canary.span"

#: (prompt name, version, cohort, rollout id) of one call; all None for a call of no known prompt.
Identity = tuple[str | None, str | None, str | None, str | None]

#: Resolves the prompt of a request that runs under no Selection: (tags, replacement kwargs or None).
Identifier = Callable[[Api, Mapping[str, Any]], "tuple[Tags, dict[str, Any] | None] | None"]
#: Tells whether another instrumentation (or the SDK itself) makes a GenAI span for this call.
PeerCheck = Callable[[object], bool]


def _scope_name(span: object) -> str | None:
    scope = getattr(span, "instrumentation_scope", None)
    return getattr(scope, "name", None)


def is_foreign_genai_span(span: object, own_scope: str) -> bool:
    """True for a recording span of another instrumentation that carries ``gen_ai.operation.name``."""
    try:
        if not span.is_recording():  # type: ignore[attr-defined]
            return False
        if _scope_name(span) == own_scope:
            return False
        attributes = getattr(span, "attributes", None)
        return attributes is not None and attr.OPERATION_NAME in attributes
    except Exception:
        return False


class Runtime:
    """The state shared by every patch of one instrumentation."""

    def __init__(
        self,
        *,
        config: InstrumentationConfig,
        tracer: Tracer,
        scope: str,
        instruments: Instruments,
        event_logger: Logger,
        plan_for: Callable[[str | None], ScoringPlan],
        current_selection: Callable[[], Any],
        identify: Identifier | None,
        listeners: Listeners,
        feedback: BoundedLRU[str, Identity] | None,
        tags: TagsCache | None = None,
    ) -> None:
        self.config = config
        self.tracer = tracer
        self.scope = scope
        self.instruments = instruments
        self.event_logger = event_logger
        self.plan_for = plan_for
        self.tags = tags if tags is not None else TagsCache(config.mirrors)
        self.current_selection = current_selection
        self.identify = identify
        self.listeners = listeners
        self.feedback = feedback
        self.enabled = True
        self._span_mode = config.span_mode

    # -- request side ------------------------------------------------------------------------------

    def tags_of_selection(self, selection: Any) -> Tags | None:
        """The tags of a router Selection (None if it is not one)."""
        try:
            return self.tags.get(
                selection.prompt_name, selection.version, selection.cohort, selection.rollout_id, SELECTION
            )
        except Exception:
            logger.debug("could not read the current Selection", exc_info=True)
            return None

    def begin(
        self, api: Api, instance: object, kwargs: dict[str, Any], peer_check: PeerCheck | None = None
    ) -> tuple[CallState, Context, dict[str, Any]] | None:
        """Start recording one call: tags, span and context. None: leave this call alone.

        Returns the call, the context to attach while the SDK runs, and the keyword arguments to call
        it with (replaced only in rewrite mode).
        """
        try:
            request = api.request(kwargs, instance)
            tags: Tags | None = None
            call_kwargs = kwargs
            rewritten = False
            selection = self.current_selection()
            if selection is not None:
                tags = self.tags_of_selection(selection)
            elif self.identify is not None:
                identified = self._identify(api, kwargs)
                if identified is not None:
                    tags, replacement = identified
                    if replacement is not None:
                        call_kwargs = replacement
                        rewritten = True
            call = CallState(api, request, tags, time.perf_counter(), rewritten=rewritten)
            ctx = otel_context.get_current()
            current = get_current_span(ctx)
            peer_outside = is_foreign_genai_span(current, self.scope)
            if self._owns(peer_outside, peer_check, instance):
                call.span = self._start_span(api, request, tags, rewritten, ctx)
                ctx = set_span_in_context(call.span, ctx)
            elif peer_outside:
                call.peer_span = current
                if tags is not None:
                    current.set_attributes(tags.span_attributes)
            return call, otel_context.set_value(CALL_KEY, call, ctx), call_kwargs
        except Exception:
            logger.warning("could not start recording an LLM call; calling it unrecorded", exc_info=True)
            return None

    def _identify(self, api: Api, kwargs: dict[str, Any]) -> tuple[Tags, dict[str, Any] | None] | None:
        assert self.identify is not None
        try:
            return self.identify(api, kwargs)
        except Exception:
            logger.warning("could not identify a prompt; recording the call untagged", exc_info=True)
            return None

    def _owns(self, peer_outside: bool, peer_check: PeerCheck | None, instance: object) -> bool:
        mode = self._span_mode
        if mode == "own":
            return True
        if mode == "attach" or peer_outside:
            return False
        if peer_check is None:
            return True
        try:
            return not peer_check(instance)
        except Exception:
            return True

    def _start_span(
        self, api: Api, request: RequestView, tags: Tags | None, rewritten: bool, ctx: Context
    ) -> Span:
        attributes: dict[str, AttributeValue] = {
            attr.OPERATION_NAME: api.operation,
            attr.PROVIDER_NAME: api.provider,
        }
        attributes.update(request.attributes)
        if tags is not None:
            attributes.update(tags.span_attributes)
        if rewritten:
            attributes[attr.REWRITTEN] = True
        model = request.model
        name = f"{api.operation} {model}" if model else api.operation
        return self.tracer.start_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attributes)

    def adopt_current_span(self, call: CallState) -> None:
        """Inside the SDK: when the current span is another instrumentation's GenAI span, use it."""
        if call.span is not None or call.peer_span is not None:
            return
        current = get_current_span()
        if is_foreign_genai_span(current, self.scope):
            call.peer_span = current
            if call.tags is not None:
                current.set_attributes(call.tags.span_attributes)

    # -- response side -----------------------------------------------------------------------------

    def result(self, call: CallState, result: Any, *, final: bool = True) -> Any:
        """Record a call's result (or proxy its stream); returns what the application gets.

        With ``final`` False (inside the SDK), a result this API does not recognise is left for the
        call wrapper, which sees what the SDK finally returns.
        """
        if call.done or call.streaming:
            return result
        try:
            api = call.api
            if api.is_stream(result):
                call.streaming = True
                return proxy_stream(result, self, call, api.accumulator())
            response = api.response(result, call)
            if response is None and not final:
                return result
            self.finish(call, response)
        except Exception:
            logger.warning("could not record an LLM response", exc_info=True)
            self.end_quietly(call)
        return result

    def fail(self, call: CallState, error: BaseException) -> None:
        """Record a call that raised ``error`` (which the caller re-raises unchanged)."""
        try:
            self.finish(call, None, error=error)
        except Exception:
            logger.warning("could not record a failed LLM call", exc_info=True)
            self.end_quietly(call)

    def finish(
        self,
        call: CallState,
        response: LLMResponse | None,
        *,
        error: BaseException | None = None,
        error_type: str | None = None,
    ) -> None:
        """Record the call once: span attributes and events, metrics, observers; end our span."""
        if call.done:
            return
        call.done = True
        elapsed = time.perf_counter() - call.start
        if error is not None and error_type is None:
            error_type = _error_type(error)
        tags = call.tags
        span = call.target_span()
        recording = span is not None and span.is_recording()
        results = _NO_RESULTS
        plan = None
        try:
            if response is not None and error_type is None:
                plan = self.plan_for(None if tags is None else tags.name)
                results = plan.run(response)
                if recording:
                    assert span is not None
                    self._annotate(span, call, response, results)
                else:
                    self._log_events(span, response.response_id, results)
            self._metrics(tags, response, results, error_type, elapsed)
            if error_type is not None and call.span is not None and recording:
                call.span.set_status(Status(StatusCode.ERROR))
                call.span.set_attribute(attr.ERROR_TYPE, error_type)
        finally:
            if call.span is not None:
                call.span.end()
        response_id = None if response is None else response.response_id
        identity: Identity = (None, None, None, None)
        if tags is not None:
            identity = (tags.name, tags.version, tags.cohort, tags.rollout_id)
            if response_id and self.feedback is not None:
                self.feedback.put(response_id, identity)
        if self.listeners.items:
            self.listeners.notify(
                Observation(
                    prompt_name=identity[0],
                    version=identity[1],
                    cohort=identity[2],
                    rollout_id=identity[3],
                    results=results,
                    response_id=response_id,
                    error_type=error_type,
                    duration_s=elapsed,
                )
            )
        if plan is not None and plan.late and response is not None:
            metadata = {_IDENTITY: identity, _SPAN: span}
            plan.submit_late(dataclasses.replace(response, metadata=metadata))

    def end_quietly(self, call: CallState) -> None:
        call.done = True
        span = call.span
        if span is not None:
            try:
                span.end()
            except Exception:
                logger.debug("could not end a span", exc_info=True)

    def _annotate(self, span: Span, call: CallState, response: LLMResponse, results: ScoringResults) -> None:
        attributes: dict[str, AttributeValue] = {}
        if call.span is not None:  # our own span: the GenAI response attributes are ours to write
            if response.response_id:
                attributes[attr.RESPONSE_ID] = response.response_id
            if response.model:
                attributes[attr.RESPONSE_MODEL] = response.model
            if response.finish_reasons:
                attributes[attr.RESPONSE_FINISH_REASONS] = list(response.finish_reasons)
            if response.input_tokens is not None:
                attributes[attr.USAGE_INPUT_TOKENS] = response.input_tokens
            if response.output_tokens is not None:
                attributes[attr.USAGE_OUTPUT_TOKENS] = response.output_tokens
        attributes.update(results.span_attributes())
        if attributes:
            span.set_attributes(attributes)
        response_id = response.response_id
        for event in _evaluation_events(results, response_id):
            span.add_event(attr.EVALUATION_EVENT, event)

    def _log_events(self, span: Span | None, response_id: str | None, results: ScoringResults) -> None:
        """Evaluation results as log-based events (for a span that ended, or none)."""
        events = _evaluation_events(results, response_id)
        if not events:
            return
        ctx = None if span is None else set_span_in_context(span, Context())
        for event in events:
            self.event_logger.emit(event_name=attr.EVALUATION_EVENT, attributes=event, context=ctx)

    def _metrics(
        self,
        tags: Tags | None,
        response: LLMResponse | None,
        results: ScoringResults,
        error_type: str | None,
        elapsed: float,
    ) -> None:
        instruments = self.instruments
        attributes = _attribute_sets(tags)
        # The call's own data points keep the current context (exemplars link them to the trace);
        # the others are recorded without, which spares the exemplar sampling of each.
        if error_type is not None:
            failed = attributes(attr.ERROR_TYPE, error_type)
            instruments.responses.add(1, failed)
            instruments.duration.record(elapsed, failed)
        else:
            base = attributes()
            instruments.responses.add(1, base)
            instruments.duration.record(elapsed, base)
        if response is not None:
            if response.input_tokens is not None:
                instruments.token_usage.record(
                    response.input_tokens, attributes(attr.TOKEN_TYPE, "input"), _NO_EXEMPLAR
                )
            if response.output_tokens is not None:
                instruments.token_usage.record(
                    response.output_tokens, attributes(attr.TOKEN_TYPE, "output"), _NO_EXEMPLAR
                )
        self._metrics_of_results(attributes, results)

    def _metrics_of_results(
        self, attributes: Callable[..., Mapping[str, AttributeValue]], results: ScoringResults
    ) -> None:
        instruments = self.instruments
        for check in results.checks:
            outcome = check.outcome
            if outcome is not None:
                instruments.checks.add(
                    1, attributes(attr.CHECK, check.name, attr.CHECK_OUTCOME, outcome), _NO_EXEMPLAR
                )
        for score in results.scores:
            if score.value is not None:
                instruments.score.record(
                    score.value, attributes(attr.EVALUATION_NAME, score.name), _NO_EXEMPLAR
                )

    # -- late scores -------------------------------------------------------------------------------

    def late_result(self, response: LLMResponse, outcome: CheckOutcome | ScoreOutcome) -> None:
        """The scoring worker's callback: a judge or moderation outcome after the call ended."""
        metadata = response.metadata or {}
        identity = metadata.get(_IDENTITY)
        if not isinstance(identity, tuple):
            version = response.prompt_version
            identity = (
                response.prompt_name,
                None if version is None else str(version),
                response.cohort,
                None,
            )
        span = metadata.get(_SPAN)
        self.late_outcome(
            identity, outcome, response_id=response.response_id, span=span if isinstance(span, Span) else None
        )

    def late_outcome(
        self,
        identity: Identity,
        outcome: CheckOutcome | ScoreOutcome,
        *,
        response_id: str | None = None,
        span: Span | None = None,
    ) -> None:
        """A check or score that arrived after its call ended: event and metric only; never raises."""
        try:
            prompt, version, cohort, rollout_id = identity
            base: dict[str, AttributeValue] = {}
            if prompt is not None:
                base[attr.PROMPT_NAME] = prompt
            if version is not None:
                base[attr.PROMPT_VERSION] = version
            if cohort is not None:
                base[attr.COHORT] = cohort
            if isinstance(outcome, CheckOutcome):
                results = ScoringResults((outcome,), ())
            else:
                results = ScoringResults((), (outcome,))
            self._metrics_of_results(lambda *pairs: extend(base, pairs), results)
            events = _evaluation_events(results, response_id)
            ctx = None if span is None else set_span_in_context(span, Context())
            for event in events:
                event.update(base)
                self.event_logger.emit(event_name=attr.EVALUATION_EVENT, attributes=event, context=ctx)
            if self.listeners.items:
                self.listeners.notify(
                    Observation(
                        prompt_name=prompt,
                        version=version,
                        cohort=cohort,
                        rollout_id=rollout_id,
                        results=results,
                        response_id=response_id,
                        late=True,
                    )
                )
        except Exception:
            logger.warning("could not record a late score", exc_info=True)


def _error_type(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    return type(error).__qualname__


def _evaluation_events(results: ScoringResults, response_id: str | None) -> list[dict[str, AttributeValue]]:
    events: list[dict[str, AttributeValue]] = []
    for check in results.checks:
        if check.passed is None and check.error is None:
            continue
        event: dict[str, AttributeValue] = {attr.EVALUATION_NAME: check.name}
        if check.passed is None:
            event[attr.ERROR_TYPE] = check.error or "error"
        else:
            event[attr.EVALUATION_SCORE_VALUE] = 1.0 if check.passed else 0.0
            event[attr.EVALUATION_SCORE_LABEL] = "pass" if check.passed else "fail"
        if response_id:
            event[attr.RESPONSE_ID] = response_id
        events.append(event)
    for score in results.scores:
        if score.value is None and score.error is None:
            continue
        event = {attr.EVALUATION_NAME: score.name}
        if score.value is None:
            event[attr.ERROR_TYPE] = score.error or "error"
        else:
            event[attr.EVALUATION_SCORE_VALUE] = score.value
        if response_id:
            event[attr.RESPONSE_ID] = response_id
        events.append(event)
    return events
