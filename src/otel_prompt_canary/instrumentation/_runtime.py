"""What happens around every instrumented LLM call: tagging, span ownership, checks and recording.

One :class:`Runtime` is built per :meth:`PromptCanaryInstrumentor.instrument` with everything injected
(tracer, instruments, event logger, checks, catalog); the patches' closures hold it, so the hot path
looks nothing up globally. Every public method of the runtime that the patches call after the SDK
returned is guarded: a bug here is logged, never raised into the application.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

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

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._call import (
    CALL_KEY,
    CLOSED_EARLY,
    OUTER_SPAN,
    UNCLAIMED,
    UNREADABLE,
    Api,
    CallState,
    RequestView,
)
from otel_prompt_canary.instrumentation._evaluations import (
    evaluation_events,
    record_evaluations,
    result_attributes,
)
from otel_prompt_canary.instrumentation._peers import is_llm_span, parent_id, span_id
from otel_prompt_canary.instrumentation._raw import proxy_raw
from otel_prompt_canary.instrumentation._streams import proxy_stream
from otel_prompt_canary.instrumentation._tags import (
    SELECTION,
    UNTAGGED,
    MetricAttributes,
    Tags,
    TagsCache,
    remember,
)
from otel_prompt_canary.instrumentation.config import InstrumentationConfig
from otel_prompt_canary.instrumentation.instruments import Instruments
from otel_prompt_canary.instrumentation.observers import Listeners, Observation
from otel_prompt_canary.scoring import (
    BoundedLRU,
    CheckOutcome,
    DeclaredOutput,
    LLMResponse,
    ScoreOutcome,
    ScoringPlan,
    ScoringResults,
)

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._reporter import Reporter
    from otel_prompt_canary.instrumentation._tally import Tally

__all__ = ["CLOSED_EARLY", "Identifier", "Identity", "Runtime", "tag_span"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

# The context of the data points recorded without an exemplar: one that holds no span. It must not
# be empty, since the SDK takes an empty (falsy) context for none given and reads the current one.
_NO_EXEMPLAR: Final = Context({otel_context.create_key("prompt_canary.no_exemplar"): True})
_NO_IDENTITY: Final = (None, None, None, None)

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
        plan_for: Callable[[str | None, DeclaredOutput | None], ScoringPlan],
        current_selection: Callable[[], Any],
        identify: Identifier | None,
        listeners: Listeners,
        feedback: BoundedLRU[str, Identity] | None,
        tags: TagsCache | None = None,
        tally: Tally | None = None,
        reporter: Reporter | None = None,
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
        #: In-app reports: what counts each call and late outcome, and what sends the counts (None: off).
        self.tally = tally
        self.reporter = reporter
        # The metric attribute sets of late outcomes, per (prompt, version, cohort): reused like the
        # sets of calls, so that the in-process counters find them by identity.
        self._late_sets: dict[tuple[str | None, str | None, str | None], MetricAttributes] = {}
        self.enabled = True
        self._span_mode = config.span_mode
        self._span_events = config.span_events

    # -- request side ------------------------------------------------------------------------------

    def tags_of_selection(self, selection: Any) -> Tags | None:
        """The tags of a router Selection (None if it is not one), with its version's output contract."""
        try:
            return self.tags.get(
                selection.prompt_name,
                selection.version,
                selection.cohort,
                selection.rollout_id,
                SELECTION,
                selection.prompt_version,
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
            if UNCLAIMED.get() is not None:
                UNCLAIMED.set(None)  # a new call: no late peer span comes for the last one any more
            request = api.request(kwargs, instance)
            tags: Tags | None = None
            call_kwargs = kwargs
            rewritten = False
            selection = self.current_selection()
            feedback_key = None
            if selection is not None:
                tags = self.tags_of_selection(selection)
                feedback_key = _feedback_key(selection)
            elif self.identify is not None:
                identified = self._identify(api, kwargs)
                if identified is not None:
                    tags, replacement = identified
                    if replacement is not None:
                        call_kwargs = replacement
                        rewritten = True
            call = CallState(
                api, request, tags, perf_counter(), rewritten=rewritten, feedback_key=feedback_key
            )
            ctx = otel_context.get_current()
            current = call.parent = get_current_span(ctx)
            peer = self._peer_span(current)
            if self._owns(peer is not None, peer_check, instance):
                span = call.span = self._start_span(api, request, tags, rewritten, feedback_key, ctx)
                ctx = set_span_in_context(span, ctx)
            elif peer is not None:
                call.peer_span = peer
                tag_span(peer, call)
            return call, otel_context.set_value(CALL_KEY, call, ctx), call_kwargs
        except Exception:
            logger.warning("could not start recording an LLM call; calling it unrecorded", exc_info=True)
            return None

    def _peer_span(self, current: Span) -> Span | None:
        """The LLM span another instrumentation or a framework made for this call, if any: the current
        span, or the outer LLM span it is nested in, or one never made current beside it."""
        peer = current if is_llm_span(current, self.scope) else None
        outer = OUTER_SPAN.get()
        if outer is None:
            return peer
        OUTER_SPAN.set(None)  # one call uses it: a span left open by its owner never sticks
        if outer is peer or not outer.is_recording():
            return peer
        if peer is None:
            return outer if parent_id(outer) == span_id(current) else None
        return outer if parent_id(peer) == span_id(outer) else peer

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
        self,
        api: Api,
        request: RequestView,
        tags: Tags | None,
        rewritten: bool,
        feedback_key: str | None,
        ctx: Context,
    ) -> Span:
        operation = api.operation
        attributes: dict[str, AttributeValue] = {
            names.OPERATION_NAME: operation,
            names.PROVIDER_NAME: api.provider,
            **request.attributes,
        }
        if tags is not None:
            attributes.update(tags.span_attributes)
        if rewritten:
            attributes[names.REWRITTEN] = True
        if feedback_key is not None:  # with the others: one more set_attribute costs a lock and a copy
            attributes[names.FEEDBACK_KEY] = feedback_key
        model = request.model
        name = f"{operation} {model}" if model else operation
        return self.tracer.start_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attributes)

    def adopt_current_span(self, call: CallState) -> None:
        """Inside the SDK: when the current span is another instrumentation's GenAI span, use it."""
        if call.span is not None or call.peer_span is not None:
            return
        current = get_current_span()
        if is_llm_span(current, self.scope):
            call.peer_span = current
            tag_span(current, call)

    # -- response side -----------------------------------------------------------------------------

    def result(self, call: CallState, result: Any, *, final: bool = True) -> Any:
        """Record a call's result (or proxy its stream or raw response); returns what the application gets.

        With ``final`` False (inside the SDK), a result this API does not recognise is left for the
        call wrapper, which sees what the SDK finally returns; there, a result of an unknown shape
        is recorded with ``error.type=response_unreadable``.
        """
        if call.done or call.deferred:
            return result
        try:
            api = call.api
            if api.is_stream(result):
                call.deferred = True
                return proxy_stream(result, self, call, api.accumulator())
            if api.is_raw(result):
                call.deferred = True
                return proxy_raw(result, self, call)
            response = api.response(result, call)
            if response is None and not final:
                return result
            self.finish(call, response, error_type=None if response is not None else UNREADABLE)
        except Exception:
            logger.warning("could not record an LLM response", exc_info=True)
            self.end_quietly(call)
        return result

    def fail(self, call: CallState, error: BaseException) -> None:
        """Record a call that raised ``error`` (which the caller re-raises unchanged)."""
        self.finish_quietly(call, None, error=error, what="a failed LLM call")

    def finish_quietly(
        self,
        call: CallState,
        response: LLMResponse | None,
        *,
        error: BaseException | None = None,
        error_type: str | None = None,
        what: str = "an LLM response",
    ) -> None:
        """:meth:`finish`, for the paths the application's call runs through: a failure to record
        ``what`` is logged and the span still ends; nothing is raised."""
        try:
            self.finish(call, response, error=error, error_type=error_type)
        except Exception:
            logger.warning("could not record %s", what, exc_info=True)
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
        elapsed = perf_counter() - call.start
        if error is not None and error_type is None:
            error_type = _error_type(error)
        tags = call.tags
        own = call.span
        span = own if own is not None else call.peer_span
        recording = span is not None and span.is_recording()
        results = _NO_RESULTS
        plan = None
        try:
            if response is not None and error_type is None:
                # The version's declared output picks the plan: its checks run whatever the request says.
                plan = self.plan_for(None, None) if tags is None else self.plan_for(tags.name, tags.output)
                results = call.results = plan.run(response)
                if recording:
                    assert span is not None
                    self._annotate(span, own is not None, response, results)
                else:
                    self._log_events(span, response.response_id, results)
            self._metrics(UNTAGGED if tags is None else tags.metrics, response, results, error_type, elapsed)
            if error_type is not None and own is not None and recording:
                own.set_status(Status(StatusCode.ERROR))
                own.set_attribute(names.ERROR_TYPE, error_type)
        finally:
            if own is not None:
                own.end()
        response_id = None if response is None else response.response_id
        identity: Identity = _NO_IDENTITY
        if tags is not None:
            identity = tags.identity
            if response_id and self.feedback is not None:
                self.feedback.put(response_id, identity)
            tally = self.tally
            if tally is not None:  # calls of no rollout too: their live report feeds drift monitoring
                _count_call(tally, identity, results, response)
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
        if plan is not None and response is not None and plan.late:
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

    def _annotate(self, span: Span, own: bool, response: LLMResponse, results: ScoringResults) -> None:
        """The results (and, on our own span, the GenAI response attributes) on a recording span."""
        attributes: dict[str, AttributeValue] = {}
        response_id = response.response_id
        if own:  # our own span: the GenAI response attributes are ours to write
            if response_id:
                attributes[names.RESPONSE_ID] = response_id
            if response.model:
                attributes[names.RESPONSE_MODEL] = response.model
            if response.finish_reasons:
                attributes[names.RESPONSE_FINISH_REASONS] = response.finish_reasons
            if response.input_tokens is not None:
                attributes[names.USAGE_INPUT_TOKENS] = response.input_tokens
            if response.output_tokens is not None:
                attributes[names.USAGE_OUTPUT_TOKENS] = response.output_tokens
        if not self._span_events:
            # The attributes carry every outcome; the events repeat them, only when asked for.
            attributes.update(result_attributes(results))
            if attributes:
                span.set_attributes(attributes)
            return
        # Span events leave out gen_ai.response.id: the semantic conventions ask for it where the span
        # is not known, and this span carries it (saves validating one attribute per event).
        events = record_evaluations(results, None, attributes)
        if attributes:
            span.set_attributes(attributes)
        add_event = span.add_event
        for event in events:
            add_event(names.EVALUATION_EVENT, event)

    def _log_events(self, span: Span | None, response_id: str | None, results: ScoringResults) -> None:
        """Evaluation results as log-based events (for a span that ended, or none)."""
        events = evaluation_events(results, response_id)
        if not events:
            return
        ctx = None if span is None else set_span_in_context(span, Context())
        for event in events:
            self.event_logger.emit(event_name=names.EVALUATION_EVENT, attributes=event, context=ctx)

    def _metrics(
        self,
        sets: MetricAttributes,
        response: LLMResponse | None,
        results: ScoringResults,
        error_type: str | None,
        elapsed: float,
    ) -> None:
        instruments = self.instruments
        # The call's duration keeps the current context (its exemplar links it to the trace); the
        # token data points are recorded without, which spares the exemplar sampling of each.
        attributes = sets.base if error_type is None else sets.error(error_type)
        instruments.responses.add(1, attributes)
        instruments.duration.record(elapsed, attributes)
        if response is not None:
            if response.input_tokens is not None:
                instruments.token_usage.record(response.input_tokens, sets.input_tokens, _NO_EXEMPLAR)
            if response.output_tokens is not None:
                instruments.token_usage.record(response.output_tokens, sets.output_tokens, _NO_EXEMPLAR)
        if results is not _NO_RESULTS:
            self._metrics_of_results(sets, results)

    def _metrics_of_results(self, sets: MetricAttributes, results: ScoringResults) -> None:
        self.instruments.checks.add_one_each(sets.checks(results.checks))
        score = self.instruments.score
        for outcome in results.scores:
            if outcome.value is not None:
                score.record(outcome.value, sets.score(outcome.name), _NO_EXEMPLAR)

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
                base[names.PROMPT_NAME] = prompt
            if version is not None:
                base[names.PROMPT_VERSION] = version
            if cohort is not None:
                base[names.COHORT] = cohort
            events_base = base
            if rollout_id is not None:
                # On the log record only (not a metric attribute: one series per rollout): the
                # Collector processor keys a late result to its rollout by it, as it keys spans.
                events_base = {**base, names.ROLLOUT_ID: rollout_id}
            if isinstance(outcome, CheckOutcome):
                results = ScoringResults((outcome,), ())
            else:
                results = ScoringResults((), (outcome,))
            sets = self._late_sets.get((prompt, version, cohort))
            if sets is None:
                sets = remember(self._late_sets, (prompt, version, cohort), MetricAttributes(base))
            self._metrics_of_results(sets, results)
            if self.tally is not None:
                self.tally.count_late(identity, outcome)
            events = evaluation_events(results, response_id)
            ctx = None if span is None else set_span_in_context(span, Context())
            for event in events:
                event.update(events_base)
                self.event_logger.emit(event_name=names.EVALUATION_EVENT, attributes=event, context=ctx)
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


def _feedback_key(selection: Any) -> str | None:
    """The selection's feedback key (None without a rollout, or for an object that has none)."""
    try:
        key = selection.feedback_key
    except Exception:
        logger.debug("could not read the feedback key of the current Selection", exc_info=True)
        return None
    return key if isinstance(key, str) else None


def tag_span(span: Span, call: CallState) -> None:
    """The call's prompt attributes, rewrite flag and feedback key on another instrumentation's span."""
    if call.tags is not None:
        span.set_attributes(call.tags.span_attributes)
    if call.rewritten:
        span.set_attribute(names.REWRITTEN, True)
    if call.feedback_key is not None:
        span.set_attribute(names.FEEDBACK_KEY, call.feedback_key)


def _count_call(
    tally: Tally, identity: Identity, results: ScoringResults, response: LLMResponse | None
) -> None:
    # In-app reports count what the span and metrics carry; a failure to count is no failure of the call.
    try:
        if response is None:
            tally.count_call(identity, results, None, None)
        else:
            tally.count_call(identity, results, response.input_tokens, response.output_tokens, response.model)
    except Exception:
        logger.warning("could not count an LLM call for the in-app report", exc_info=True)


def _error_type(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    return type(error).__qualname__
