"""One LLM call in flight: what the patches know about it, carried in the OpenTelemetry context.

The patch of a client method creates a :class:`CallState` and puts it in the context for the duration
of the SDK call. Deeper hooks (the SDK's response processing, the HTTP transport, the span processor)
find it there: that is how the HTTP path knows a client patch already saw the call, and how the span
processor finds the prompt of a span that another instrumentation starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from otel_prompt_canary.instrumentation._tags import Tags
from otel_prompt_canary.scoring import LLMResponse, ScoringResults, ToolCall

__all__ = [
    "CALL_KEY",
    "CLOSED_EARLY",
    "OUTER_SPAN",
    "UNCLAIMED",
    "UNREADABLE",
    "Accumulator",
    "Api",
    "ApiBase",
    "CallState",
    "RequestView",
    "active_call",
]

CALL_KEY: Final = otel_context.create_key("prompt_canary.call")

#: ``error.type`` of a stream (or a streamed body) closed or dropped before its end.
CLOSED_EARLY: Final = "stream_closed_early"
#: ``error.type`` of a response that could not be read as one of its API (a body that is not JSON,
#: an object of an unknown shape): the call's outcome is unknown.
UNREADABLE: Final = "response_unreadable"

#: The last call of this context that went by with no span to carry its attributes (a peer was
#: instrumenting and made no span while the call ran): a peer that starts its span only after the SDK
#: returned (OpenLLMetry's Responses span) claims it, in the span processor.
UNCLAIMED: ContextVar[CallState | None] = ContextVar("prompt_canary_unclaimed", default=None)

#: The last LLM span of another instrumentation or a framework that started in this context outside
#: any call of ours (pydantic-ai's span, a peer's whose wrapper is outside ours, OpenInference's
#: LangChain span, which is never made current): a call that starts under it, or beside it for a span
#: never made current, carries its attributes and results there, so that one span per call does.
OUTER_SPAN: ContextVar[Span | None] = ContextVar("prompt_canary_outer_span", default=None)


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

    def is_raw(self, result: object) -> bool:
        """True when ``result`` is the SDK's raw response (``with_raw_response``...)."""
        ...

    def accumulator(self) -> Accumulator:
        """A fresh accumulator for one stream."""
        ...


class ApiBase:
    """What every :class:`Api` shares: the SDK classes its results are recognised by.

    ``stream_types`` are the SDK's stream classes (``openai.Stream``, ``openai.AsyncStream``),
    ``raw_types`` its raw response classes; both empty on the HTTP path, which sees JSON.
    """

    def __init__(self, stream_types: tuple[type, ...] = (), raw_types: tuple[type, ...] = ()) -> None:
        self.stream_types = stream_types
        self.raw_types = raw_types

    def is_stream(self, result: object) -> bool:
        return isinstance(result, self.stream_types)

    def is_raw(self, result: object) -> bool:
        return isinstance(result, self.raw_types)


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
    #: True once the response was handed to a proxy that records it later (a stream, a raw response).
    deferred: bool = False
    #: The feedback key of the call's Selection (None: no Selection, or no rollout).
    feedback_key: str | None = None
    #: The span current when the call started (the parent of a peer's span made for it).
    parent: object = None
    #: The check and score outcomes, once recorded (for a peer span that starts after them).
    results: ScoringResults | None = None

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
