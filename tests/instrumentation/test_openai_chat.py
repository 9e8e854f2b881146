"""OpenAI Chat Completions with the real SDK against the simulated LLM: sync, async, streams, errors."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from otel_prompt_canary.demo.behaviour import Behaviour, Reply, ToolCall
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, attrs, selection

MODEL = "sim-gpt-small"
MESSAGES = [
    {"role": "system", "content": "You answer support questions."},
    {"role": "user", "content": "Where is my parcel?"},
]


def client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def async_client(llm: SimulatedLLM) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def test_sync_create_under_a_selection(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="Your parcel is on its way."))
    with selection():
        result = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.2)

    assert type(result) is ChatCompletion
    assert result.choices[0].message.content == "Your parcel is on its way."
    span = telemetry.one_llm_span()
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    a = attrs(span)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.prompt.version"] == "2"
    assert a["prompt_canary.cohort"] == "canary"
    assert a["prompt_canary.rollout.id"] == "ro_test"
    assert a["gen_ai.response.id"] == result.id
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens  # type: ignore[union-attr]
    assert a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens  # type: ignore[union-attr]
    assert a["prompt_canary.check.refusal"] is True
    assert a["prompt_canary.check.truncation"] is True
    assert a["prompt_canary.check.max_output_tokens"] is True
    assert "prompt_canary.check.json_valid" not in a  # only when the request asks for JSON
    assert "prompt_canary.score.output_tokens" not in a  # off by default: gen_ai.usage carries it
    assert span.events == ()  # per-check span events are opt-in (test_span_events.py)

    cohort = {
        "gen_ai.prompt.name": "support-reply",
        "gen_ai.prompt.version": "2",
        "prompt_canary.cohort": "canary",
    }
    assert telemetry.total("prompt_canary.responses", **_kw(cohort)) == 1
    assert telemetry.total("prompt_canary.checks", **_kw(cohort), prompt_canary__check="refusal") == 1
    assert telemetry.total("prompt_canary.token.usage", **_kw(cohort), gen_ai__token__type="input") == 1
    assert telemetry.total("prompt_canary.duration", **_kw(cohort)) == 1
    assert telemetry.total("prompt_canary.token.usage", **_kw(cohort), gen_ai__token__type="output") == 1
    assert telemetry.total("prompt_canary.score", **_kw(cohort)) == 0  # no score by default
    [(check_attrs, _)] = [
        p for p in telemetry.points("prompt_canary.checks") if p[0]["prompt_canary.check"] == "refusal"
    ]
    assert check_attrs["prompt_canary.check.outcome"] == "pass"


def _kw(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k.replace(".", "__"): v for k, v in attributes.items()}


def test_no_selection_no_prompt_attributes(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    a = attrs(telemetry.one_llm_span())
    assert "gen_ai.prompt.name" not in a and "prompt_canary.cohort" not in a
    assert a["prompt_canary.check.refusal"] is True
    [(point_attrs, point)] = telemetry.points("prompt_canary.responses")
    assert point_attrs == {} and point.value == 1


def test_async_create(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    async def main() -> Any:
        with selection(cohort="stable", version=1):
            return await async_client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)

    result = asyncio.run(main())
    a = attrs(telemetry.one_llm_span())
    assert a["prompt_canary.cohort"] == "stable" and a["gen_ai.prompt.version"] == "1"
    assert a["gen_ai.response.id"] == result.id


def test_json_requested_runs_json_valid(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="not json"))
    client(llm).chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format={"type": "json_object"}
    )
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.output.type"] == "json"
    assert a["prompt_canary.check.json_valid"] is False
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="json_valid") == 1
    [(point_attrs, _)] = [
        p for p in telemetry.points("prompt_canary.checks") if p[0]["prompt_canary.check"] == "json_valid"
    ]
    assert point_attrs["prompt_canary.check.outcome"] == "fail"


class Answer(BaseModel):
    answer: str


def test_parse_structured_output(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    with selection():
        result = client(llm).chat.completions.parse(model=MODEL, messages=MESSAGES, response_format=Answer)
    assert isinstance(result.choices[0].message.parsed, Answer)
    a = attrs(telemetry.one_llm_span())
    assert a["prompt_canary.check.json_valid"] is True
    assert a["gen_ai.prompt.name"] == "support-reply"


def test_tool_calls_and_content_filter(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.when(
        user_contains="weather",
        reply=Reply(tool_calls=(ToolCall(name="get_weather", arguments={"city": "Oslo"}),)),
    )
    behaviour.when(user_contains="forbidden", reply=Reply(text="", finish="content_filter"))
    c = client(llm)
    result = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "weather?"}])
    assert result.choices[0].message.tool_calls
    c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "forbidden"}])
    first, second = sorted(telemetry.llm_spans(), key=lambda s: s.start_time or 0)
    assert attrs(first)["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attrs(second)["gen_ai.response.finish_reasons"] == ("content_filter",)


@pytest.mark.parametrize(
    ("status", "error"), [(400, openai.BadRequestError), (500, openai.InternalServerError)]
)
def test_api_errors_pass_through_unchanged(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry, status: int, error: type
) -> None:
    behaviour.set_default(Reply.failure(status))
    with selection(), pytest.raises(error) as raised:
        client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert type(raised.value) is error
    span = telemetry.one_llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == str(status)
    assert telemetry.total("prompt_canary.responses", error__type=str(status)) == 1
    assert not [k for k in attrs(span) if k.startswith("prompt_canary.check.")]


def test_stream_records_after_completion(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="A streamed answer in several pieces.", chunk_chars=5))
    with selection():
        stream = client(llm).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    assert isinstance(stream, openai.Stream)
    pieces = []
    for chunk in stream:
        assert telemetry.llm_spans() == []  # nothing recorded before the end
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == "A streamed answer in several pieces."
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.request.stream"] is True
    assert a["prompt_canary.cohort"] == "canary"
    assert a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["prompt_canary.check.refusal"] is True
    assert telemetry.total("prompt_canary.responses") == 1


def test_stream_with_tool_call_deltas(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(
        Reply(tool_calls=(ToolCall(name="lookup", arguments={"order": "A-17"}),), chunk_chars=4)
    )
    with client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream:
        chunks = list(stream)
    assert chunks
    span = telemetry.one_llm_span()
    assert attrs(span)["gen_ai.response.finish_reasons"] == ("tool_calls",)


def test_stream_closed_early_ends_span_once(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="x" * 200, chunk_chars=5))
    stream = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()
    del stream
    gc.collect()
    span = telemetry.one_llm_span()
    assert attrs(span)["error.type"] == "stream_closed_early"
    assert not [k for k in attrs(span) if k.startswith("prompt_canary.check.")]
    assert telemetry.total("prompt_canary.responses", error__type="stream_closed_early") == 1


def test_stream_abandoned_is_recorded_when_collected(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="x" * 200, chunk_chars=5))
    stream = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert attrs(telemetry.one_llm_span())["error.type"] == "stream_closed_early"
    assert telemetry.total("prompt_canary.responses") == 1


def test_broken_stream_raises_the_sdk_error(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="y" * 200, chunk_chars=5, drop_connection_after=3))
    stream = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as raised:
        for _ in stream:
            pass
    span = telemetry.one_llm_span()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == type(raised.value).__qualname__
    assert telemetry.total("prompt_canary.responses") == 1


def test_stream_helper(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="helper answer", chunk_chars=3))
    with selection(), client(llm).chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "helper answer"
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["prompt_canary.check.refusal"] is True


def test_async_stream(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="async streamed", chunk_chars=4))

    async def main() -> str:
        c = async_client(llm)
        with selection():
            stream = await c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        text = ""
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
        return text

    assert asyncio.run(main()) == "async streamed"
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert "error.type" not in a
    assert a["prompt_canary.check.refusal"] is True


def test_refusal_fails_the_refusal_check(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="I'm sorry, but I can't help with that."))
    with selection():
        client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert attrs(telemetry.one_llm_span())["prompt_canary.check.refusal"] is False
    fails = [p for p in telemetry.points("prompt_canary.checks") if p[0]["prompt_canary.check"] == "refusal"]
    assert fails[0][0]["prompt_canary.check.outcome"] == "fail"


def test_uninstrument_restores_the_sdk(instrument: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    from openai._base_client import SyncAPIClient
    from openai.resources.chat.completions import AsyncCompletions, Completions

    before = (
        vars(Completions)["create"],
        vars(Completions)["parse"],
        vars(AsyncCompletions)["create"],
        vars(SyncAPIClient)["_process_response"],
    )
    instrumentor = instrument()
    assert vars(Completions)["create"] is not before[0]
    assert instrumentor.patched
    instrumentor.uninstrument()
    after = (
        vars(Completions)["create"],
        vars(Completions)["parse"],
        vars(AsyncCompletions)["create"],
        vars(SyncAPIClient)["_process_response"],
    )
    assert after == before
    client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert telemetry.llm_spans() == []
