"""A span processor that puts the prompt's attributes on LLM spans other instrumentations start.

When another GenAI instrumentation (``opentelemetry-instrumentation-genai-openai``, OpenLLMetry,
OpenInference...), a framework (pydantic-ai) or the client SDK itself (the ``anthropic`` SDK's
``anthropic.messages.create`` spans) makes the LLM call span, this project makes none. The processor
sees such a span start (:func:`~otel_prompt_canary.instrumentation._peers.is_llm_span_start`), adds the
prompt name, version, cohort, rollout and rewrite flag of the call in flight, or of the router
Selection active in the context (and the call's feedback key), and lets the call's patch know the
span, so that check results are written on it before it ends. A span that starts after its call
was recorded (OpenLLMetry's Responses span) gets the call's check results at once. Other spans
(HTTP client spans...) are left alone, so that a call counts once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import get_current_span

from otel_prompt_canary.instrumentation._call import CALL_KEY, OUTER_SPAN, UNCLAIMED, CallState
from otel_prompt_canary.instrumentation._peers import is_llm_span_start, parent_id, span_id
from otel_prompt_canary.instrumentation._runtime import tag_span

if TYPE_CHECKING:
    from otel_prompt_canary.instrumentation._runtime import Runtime

__all__ = ["PromptSpanProcessor"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


class PromptSpanProcessor(SpanProcessor):
    """Adds the prompt attributes to GenAI spans of other scopes when they start."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._scope = runtime.scope
        self.enabled = True

    def rebind(self, runtime: Runtime) -> None:
        """Serve ``runtime`` from now on (a new ``instrument()`` on the same provider) and enable.

        A tracer provider cannot remove a span processor, so each provider keeps one of these for
        good; re-instrumenting reuses it rather than adding one more to every span's path.
        """
        self._runtime = runtime
        self._scope = runtime.scope
        self.enabled = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.enabled:
            return
        try:
            scope = span.instrumentation_scope
            scope_name = None if scope is None else scope.name
            if scope_name == self._scope or not is_llm_span_start(scope_name, span.name, span.attributes):
                return
            ctx = parent_context if parent_context is not None else otel_context.get_current()
            call = ctx.get(CALL_KEY)
            if not isinstance(call, CallState):
                call = _unclaimed(ctx)
            if call is not None:
                _adopt(span, call)
                return
            runtime = self._runtime
            if not runtime.enabled:
                return
            outer = OUTER_SPAN.get()
            if outer is not None and outer.is_recording() and parent_id(span) == span_id(outer):
                return  # nested in an LLM span seen already: that one stands for the call
            OUTER_SPAN.set(span)
            selection = runtime.current_selection()
            tags = None if selection is None else runtime.tags_of_selection(selection)
            if tags is not None:
                span.set_attributes(tags.span_attributes)
        except Exception:
            logger.debug("could not tag a GenAI span", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _unclaimed(ctx: Context) -> CallState | None:
    """The call that went by in this context with no span, when this span is a sibling made for it."""
    call = UNCLAIMED.get()
    if call is None or call.span is not None or call.peer_span is not None:
        return None
    if span_id(get_current_span(ctx)) != span_id(call.parent):
        return None
    UNCLAIMED.set(None)
    return call


def _adopt(span: Span, call: CallState) -> None:
    """Make ``span`` the call's span when it has none yet (one span per call carries its attributes),
    with the call's results when they were recorded before the span started."""
    if call.span is not None or call.peer_span is not None:
        return
    call.peer_span = span
    tag_span(span, call)
    if call.done and call.results is not None:
        span.set_attributes(call.results.span_attributes())
