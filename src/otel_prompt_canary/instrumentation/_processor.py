"""A span processor that puts the prompt's attributes on GenAI spans other instrumentations start.

When another GenAI instrumentation (``opentelemetry-instrumentation-genai-openai``...) or the client
SDK itself (the ``anthropic`` SDK's ``anthropic.messages.create`` spans) makes the LLM call span, this
project makes none. The processor sees such a span start (a span of another scope that carries
``gen_ai.operation.name``), adds the prompt name, version, cohort and rollout of the call in flight, or
of the router Selection active in the context, and lets the call's patch know the span, so that check
results are written on it before it ends. Other spans (HTTP client spans...) are left alone, so that a
call counts once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_prompt_canary import names
from otel_prompt_canary.instrumentation._call import CALL_KEY, CallState

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
            if scope is not None and scope.name == self._scope:
                return
            attributes = span.attributes
            if not attributes or names.OPERATION_NAME not in attributes:
                return
            ctx = parent_context if parent_context is not None else otel_context.get_current()
            call = ctx.get(CALL_KEY)
            if isinstance(call, CallState):
                if call.span is None and call.peer_span is None:
                    call.peer_span = span
                tags = call.tags
            else:
                runtime = self._runtime
                if not runtime.enabled:
                    return
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
