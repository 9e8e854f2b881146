"""One LLM call in flight: what the patches know about it, carried in the OpenTelemetry context.

The patch of a client method creates a :class:`CallState` and puts it in the context for the duration
of the SDK call. Deeper hooks (the SDK's response processing, the HTTP transport, the span processor)
find it there: that is how the HTTP path knows a client patch already saw the call, and how the span
processor finds the prompt of a span that another instrumentation starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_prompt_canary.instrumentation._tags import Tags
from otel_prompt_canary.scoring import LLMResponse, ToolCall

__all__ = ["CALL_KEY", "Accumulator", "Api", "CallState", "RequestView", "active_call"]

CALL_KEY: Final = otel_context.create_key("prompt_canary.call")


@dataclass(slots=True)
class RequestView:
    """What a patch reads from a request's keyword arguments."""

    model: str | None
    attributes: dict[str, AttributeValue]
    stream: bool = False
    request_messages: Sequence[Mapping[str, Any]] = ()
    instructions: str | None = None
    response_format: str | None = None


class Accumulator(Protocol):
    """Builds the response of a stream from its events."""

    def add(self, item: object) -> bool:
        """Take one event; True when it is the stream's last meaningful event."""
        ...

    def response(self, call: CallState) -> LLMResponse:
        """The response as far as the events went."""
        ...


class Api(Protocol):
    """One API of one client library (OpenAI chat completions, Anthropic messages...)."""

    provider: str
    operation: str

    def request(self, kwargs: Mapping[str, Any], instance: object) -> RequestView:
        """The request's model, span attributes and the fields the checks read."""
        ...

    def system_texts(self, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        """The system prompt or instructions texts, for fingerprinting."""
        ...

    def rewrite(self, kwargs: Mapping[str, Any], old: str, new: str) -> dict[str, Any] | None:
        """``kwargs`` with the system text ``old`` replaced by ``new``; None when not found."""
        ...

    def response(self, result: object, call: CallState) -> LLMResponse | None:
        """The response view of a non-streamed result; None for a result this API does not know."""
        ...

    def is_stream(self, result: object) -> bool:
        """True when ``result`` is the SDK's stream object."""
        ...

    def accumulator(self) -> Accumulator:
        """A fresh accumulator for one stream."""
        ...


@dataclass(slots=True, eq=False)
class CallState:
    """One LLM call from its request to the end of its response (the end of its stream)."""

    api: Api
    request: RequestView
    tags: Tags | None
    start: float
    #: The span this project made for the call, or None when another instrumentation owns it.
    span: Span | None = None
    #: Another instrumentation's (or the SDK's) GenAI span for the call, when known.
    peer_span: Span | None = None
    rewritten: bool = False
    #: True once the call was recorded (response, error or end of stream): recording happens once.
    done: bool = False
    #: True once the response was handed to a stream proxy.
    streaming: bool = False

    def llm_response(
        self,
        *,
        output_text: str = "",
        tool_calls: tuple[ToolCall, ...] = (),
        finish_reasons: tuple[str, ...] = (),
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        model: str | None = None,
        response_id: str | None = None,
        refusal: str | None = None,
    ) -> LLMResponse:
        """The library-neutral response, with this call's request fields and prompt identity."""
        request = self.request
        tags = self.tags
        if tags is None:
            name = version = cohort = None
        else:
            name, version, cohort = tags.name, tags.version, tags.cohort
        return LLMResponse(
            output_text=output_text,
            tool_calls=tool_calls,
            finish_reasons=finish_reasons,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            model=model,
            response_id=response_id,
            refusal=refusal,
            request_messages=request.request_messages,
            instructions=request.instructions,
            response_format=request.response_format,
            prompt_name=name,
            prompt_version=version,
            cohort=cohort,
            provider=self.api.provider,
        )

    def target_span(self) -> Span | None:
        """The span that carries the call's attributes: ours, else the peer's."""
        return self.span if self.span is not None else self.peer_span


def active_call() -> CallState | None:
    """The call the current context runs under, or None."""
    value = otel_context.get_value(CALL_KEY)
    return value if isinstance(value, CallState) else None
