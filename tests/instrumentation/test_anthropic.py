"""Anthropic Messages with the real SDK: create, stream helpers, raw streams, errors, the SDK's own spans."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_prompt_canary.demo.behaviour import Behaviour, Reply, ToolCall
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, attrs, events, selection

MODEL = "sim-claude-small"
SYSTEM = "You answer support questions."
MESSAGES = [{"role": "user", "content": "Where is my parcel?"}]


def client(llm: SimulatedLLM, telemetry: Telemetry | None = None) -> anthropic.Anthropic:
    """A client; with ``telemetry`` the SDK's own tracing is on (the SDK owns the LLM span)."""
    option: Any = {"tracer_provider": telemetry.tracer_provider} if telemetry else False
    return anthropic.Anthropic(
        base_url=llm.anthropic_base_url, api_key="test", max_retries=0, open_telemetry=option
    )


def async_client(llm: SimulatedLLM, telemetry: Telemetry | None = None) -> anthropic.AsyncAnthropic:
    option: Any = {"tracer_provider": telemetry.tracer_provider} if telemetry else False
    return anthropic.AsyncAnthropic(
        base_url=llm.anthropic_base_url, api_key="test", max_retries=0, open_telemetry=option
    )


def test_create_owns_the_span(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="It ships today."))
    with selection():
        message = client(llm).messages.create(model=MODEL, max_tokens=100, system=SYSTEM, messages=MESSAGES)
    span = telemetry.one_llm_span()
    a = attrs(span)
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.max_tokens"] == 100
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.response.id"] == message.id
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert a["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert a["prompt_canary.check.refusal"] is True


def test_sdk_span_carries_our_attributes(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="It ships today."))
    with selection():
        message = client(llm, telemetry).messages.create(
            model=MODEL, max_tokens=100, system=SYSTEM, messages=MESSAGES
        )
    span = telemetry.one_llm_span()
    assert span.name == "anthropic.messages.create"  # the SDK's span, not a second one of ours
    a = attrs(span)
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["prompt_canary.cohort"] == "canary"
    assert a["prompt_canary.rollout.id"] == "ro_test"
    assert a["prompt_canary.check.refusal"] is True
    assert a["gen_ai.response.id"] == message.id  # the SDK's own attribute, untouched
    assert a["prompt_canary.check.truncation"] is True
    assert not events(span)  # per-check span events are opt-in (test_span_events.py)
    assert telemetry.total("prompt_canary.responses", prompt_canary__cohort="canary") == 1


@pytest.mark.parametrize("sdk_tracing", [False, True])
def test_stream_helper(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry, sdk_tracing: bool
) -> None:
    behaviour.set_default(Reply(text="Streaming from the helper.", chunk_chars=4))
    c = client(llm, telemetry if sdk_tracing else None)
    with (
        selection(),
        c.messages.stream(model=MODEL, max_tokens=100, system=SYSTEM, messages=MESSAGES) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Streaming from the helper." == final.content[0].text  # type: ignore[union-attr]
    span = telemetry.one_llm_span()
    assert span.name == ("anthropic.messages.create" if sdk_tracing else f"chat {MODEL}")
    a = attrs(span)
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["prompt_canary.check.refusal"] is True
    assert "error.type" not in a
    assert telemetry.total("prompt_canary.responses") == 1
    if not sdk_tracing:
        assert a["gen_ai.response.id"] == final.id
        assert a["gen_ai.usage.output_tokens"] == final.usage.output_tokens


def test_raw_stream_with_tool_use(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(
        Reply(tool_calls=(ToolCall(name="track", arguments={"parcel": "P1"}),), chunk_chars=4)
    )
    stream = client(llm).messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    kinds = [event.type for event in stream]
    assert kinds[-1] == "message_stop"
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.response.finish_reasons"] == ("tool_use",)


def test_stream_left_early(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="z" * 300, chunk_chars=5))
    with client(llm).messages.stream(model=MODEL, max_tokens=1000, messages=MESSAGES) as stream:
        next(iter(stream))
    gc.collect()
    span = telemetry.one_llm_span()
    assert attrs(span)["error.type"] == "stream_closed_early"
    assert telemetry.total("prompt_canary.responses") == 1


def test_async_create_and_stream(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="async answer", chunk_chars=3))

    async def main() -> str:
        c = async_client(llm)
        with selection(cohort="stable"):
            await c.messages.create(model=MODEL, max_tokens=50, messages=MESSAGES)
            async with c.messages.stream(model=MODEL, max_tokens=50, messages=MESSAGES) as stream:
                return "".join([t async for t in stream.text_stream])

    assert asyncio.run(main()) == "async answer"
    spans = telemetry.llm_spans()
    assert len(spans) == 2
    for span in spans:
        assert attrs(span)["prompt_canary.cohort"] == "stable"
        assert attrs(span)["prompt_canary.check.refusal"] is True


@pytest.mark.parametrize(
    ("status", "error"), [(400, anthropic.BadRequestError), (529, anthropic.APIStatusError)]
)
def test_errors_pass_through(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry, status: int, error: type
) -> None:
    behaviour.set_default(Reply.failure(status))
    with selection(), pytest.raises(error):
        client(llm).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    span = telemetry.one_llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert telemetry.total("prompt_canary.responses", error__type=str(status)) == 1


def test_refusal_stop_reason(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="", finish="content_filter"))
    client(llm).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.response.finish_reasons"] == ("refusal",)
    assert a["prompt_canary.check.refusal"] is False
