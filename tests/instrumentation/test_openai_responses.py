"""OpenAI Responses API with the real SDK: create, parse, streams, helper stream, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from otel_prompt_canary.demo.behaviour import Behaviour, Reply, ToolCall
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, attrs, events, selection

MODEL = "sim-gpt-small"
INSTRUCTIONS = "You answer support questions."


def client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def test_create(instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry) -> None:
    behaviour.set_default(Reply(text="Here you go."))
    with selection():
        response = client(llm).responses.create(model=MODEL, instructions=INSTRUCTIONS, input="Hi")
    assert response.output_text == "Here you go."
    span = telemetry.one_llm_span()
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.response.id"] == response.id
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.output_tokens"] == response.usage.output_tokens  # type: ignore[union-attr]
    assert a["prompt_canary.check.refusal"] is True
    assert a["prompt_canary.check.truncation"] is True
    assert not events(span)  # per-check span events are opt-in (test_span_events.py)


def test_incomplete_at_max_output_tokens(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="word " * 200))
    client(llm).responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.request.max_tokens"] == 16
    assert a["gen_ai.response.finish_reasons"] == ("max_output_tokens",)
    assert a["prompt_canary.check.truncation"] is False


def test_function_call(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(tool_calls=(ToolCall(name="lookup", arguments={"id": 3}),)))
    client(llm).responses.create(model=MODEL, input="Hi")
    assert attrs(telemetry.one_llm_span())["gen_ai.response.finish_reasons"] == ("tool_calls",)


class Ticket(BaseModel):
    title: str


def test_parse(instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry) -> None:
    result = client(llm).responses.parse(model=MODEL, input="Hi", text_format=Ticket)
    assert isinstance(result.output_parsed, Ticket)
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.output.type"] == "json"
    assert a["prompt_canary.check.json_valid"] is True


def test_stream_events(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="streamed response text", chunk_chars=4))
    with selection():
        stream = client(llm).responses.create(model=MODEL, input="Hi", stream=True)
    kinds = [event.type for event in stream]
    assert kinds[-1] == "response.completed"
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.output_tokens"] > 0
    assert a["prompt_canary.check.refusal"] is True


def test_stream_helper(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="helper text", chunk_chars=3))
    with (
        selection(),
        client(llm).responses.stream(model=MODEL, input="Hi", instructions=INSTRUCTIONS) as stream,
    ):
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == "helper text" == final.output_text
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.response.id"] == final.id


def test_async_create_and_stream(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="async text", chunk_chars=3))

    async def main() -> None:
        c = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        with selection(cohort="stable"):
            await c.responses.create(model=MODEL, input="Hi")
            stream = await c.responses.create(model=MODEL, input="Hi", stream=True)
            async for _ in stream:
                pass

    asyncio.run(main())
    spans = telemetry.llm_spans()
    assert len(spans) == 2
    assert all(attrs(s)["prompt_canary.cohort"] == "stable" for s in spans)
    assert all(attrs(s)["prompt_canary.check.refusal"] is True for s in spans)


def test_error(instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry) -> None:
    behaviour.set_default(Reply.failure(429))
    with pytest.raises(openai.RateLimitError):
        client(llm).responses.create(model=MODEL, input="Hi")
    span = telemetry.one_llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert telemetry.total("prompt_canary.responses", error__type="429") == 1
