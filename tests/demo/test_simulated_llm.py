"""The simulated LLM against the real ``openai`` and ``anthropic`` SDKs, streaming included."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from otel_prompt_canary.demo import (
    Behaviour,
    Reply,
    SimulatedLLM,
    ToolCall,
    count_tokens,
    demo_behaviour,
    running_simulated_llm,
    start_simulated_llm,
)

WEATHER_TOOL_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
WEATHER_TOOL_RESPONSES: Any = {
    "type": "function",
    "name": "get_weather",
    "strict": True,
    "parameters": WEATHER_TOOL_OPENAI["function"]["parameters"],
}
WEATHER_TOOL_ANTHROPIC: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_CALL = ToolCall(name="get_weather", arguments={"city": "Paris"}, id="call_1")


class Forecast(pydantic.BaseModel):
    city: str
    celsius: float
    tags: list[str]


@pytest.fixture(scope="module")
def llm() -> Iterator[SimulatedLLM]:
    with running_simulated_llm(Behaviour()) as server:
        yield server


@pytest.fixture
def behaviour(llm: SimulatedLLM) -> Iterator[Behaviour]:
    yield llm.behaviour
    llm.behaviour.clear()
    llm.behaviour.api_key = None


@pytest.fixture
def oai(llm: SimulatedLLM) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(llm: SimulatedLLM) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0) as client:
        yield client


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- OpenAI Chat Completions ------------------------------------------------------------------------


def test_chat_completion_json_reports_text_finish_and_usage(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(user_contains="hello", reply=Reply(text="Hello there, how can I help?"))
    completion = oai.chat.completions.create(
        model="sim-gpt-small",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
    )
    choice = completion.choices[0]
    assert choice.message.content == "Hello there, how can I help?"
    assert choice.finish_reason == "stop"
    assert completion.model == "sim-gpt-small"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == count_tokens("Hello there, how can I help?")
    assert completion.usage.prompt_tokens == count_tokens("Be brief.") + count_tokens("hello")
    assert behaviour.requests[-1].system == "Be brief."
    assert behaviour.requests[-1].user == "hello"


def test_chat_stream_raw_iteration_matches_the_json_answer(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(reply=Reply(text="A fairly long answer that needs several chunks to arrive."))
    whole = oai.chat.completions.create(model="m", messages=user("q"))
    stream = oai.chat.completions.create(
        model="m", messages=user("q"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 4
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_usage_option_has_no_usage_chunk(
    behaviour: Behaviour, oai: openai.OpenAI
) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=user("q"), stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


def test_chat_tool_calls_in_json_and_through_the_stream_helper(
    behaviour: Behaviour, oai: openai.OpenAI
) -> None:
    behaviour.when(reply=Reply(tool_calls=(WEATHER_CALL,)))
    completion = oai.chat.completions.create(
        model="m", messages=user("weather?"), tools=[WEATHER_TOOL_OPENAI]
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content is None
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id == "call_1"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert behaviour.requests[-1].tools == ("get_weather",)

    with oai.chat.completions.stream(
        model="m", messages=user("weather?"), tools=[WEATHER_TOOL_OPENAI]
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert streamed.function.parsed_arguments == {"city": "Paris"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_parse_returns_a_model_following_the_requested_schema(
    behaviour: Behaviour, oai: openai.OpenAI
) -> None:
    parsed = oai.chat.completions.parse(model="m", messages=user("forecast"), response_format=Forecast)
    forecast = parsed.choices[0].message.parsed
    assert isinstance(forecast, Forecast)
    assert behaviour.requests[-1].json_schema is not None

    json_mode = oai.chat.completions.create(
        model="m", messages=user("forecast"), response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(json_mode.choices[0].message.content or ""), dict)


def test_chat_token_limit_cuts_the_answer_with_finish_length(
    behaviour: Behaviour, oai: openai.OpenAI
) -> None:
    behaviour.when(reply=Reply(text="word " * 100))
    completion = oai.chat.completions.create(model="m", messages=user("q"), max_completion_tokens=5)
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == ("word " * 100)[:20]
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    with pytest.raises(openai.LengthFinishReasonError):
        oai.chat.completions.parse(model="m", messages=user("q"), response_format=Forecast, max_tokens=5)


def test_chat_content_filter_finish_reason(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(reply=Reply(text="", finish="content_filter"))
    completion = oai.chat.completions.create(model="m", messages=user("q"))
    assert completion.choices[0].finish_reason == "content_filter"
    chunks = list(oai.chat.completions.create(model="m", messages=user("q"), stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    with pytest.raises(openai.ContentFilterFinishReasonError):
        oai.chat.completions.parse(model="m", messages=user("q"), response_format=Forecast)


# --- OpenAI Responses ---------------------------------------------------------------------------------


def test_responses_create_and_stream_helper_agree(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(reply=Reply(text="The answer, streamed in a handful of deltas."))
    response = oai.responses.create(model="m", input="q", instructions="Be exact.")
    assert response.status == "completed"
    assert response.output_text == "The answer, streamed in a handful of deltas."
    assert response.usage is not None
    assert response.usage.output_tokens == count_tokens(response.output_text)
    assert behaviour.requests[-1].system == "Be exact."

    with oai.responses.stream(model="m", input="q", instructions="Be exact.") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") > 1
    assert final.output_text == response.output_text
    assert final.usage == response.usage


def test_responses_raw_stream_events_are_numbered(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="m", input=[{"role": "user", "content": "q"}], stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_function_call_and_text_format(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(user_contains="weather", reply=Reply(tool_calls=(WEATHER_CALL,)))
    with oai.responses.stream(model="m", input="weather?", tools=[WEATHER_TOOL_RESPONSES]) as stream:
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id == "call_1"
    assert call.parsed_arguments == {"city": "Paris"}

    parsed = oai.responses.parse(model="m", input="forecast", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)


def test_responses_incomplete_when_cut_or_filtered(behaviour: Behaviour, oai: openai.OpenAI) -> None:
    behaviour.when(reply=Reply(text="word " * 50))
    response = oai.responses.create(model="m", input="q", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    behaviour.when(reply=Reply(text="", finish="content_filter"))
    events = list(oai.responses.create(model="m", input="q", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "content_filter"  # type: ignore[union-attr]


# --- OpenAI moderations, models, errors --------------------------------------------------------------


def test_moderations_flag_configured_terms(oai: openai.OpenAI) -> None:
    result = oai.moderations.create(input=["I will kill the process", "hello"])
    assert [r.flagged for r in result.results] == [True, False]
    assert result.results[0].categories.violence is True
    assert result.results[0].categories.self_harm is False


def test_models_list_and_retrieve(llm: SimulatedLLM, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    assert [m.id for m in oai.models.list()] == list(llm.behaviour.models)
    assert oai.models.retrieve("sim-gpt-small").id == "sim-gpt-small"
    assert [m.id for m in claude.models.list()] == list(llm.behaviour.models)
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_openai_errors_raise_the_sdk_classes(
    behaviour: Behaviour, oai: openai.OpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    behaviour.when(reply=Reply.failure(status, "forced"))
    with pytest.raises(error) as raised:
        oai.chat.completions.create(model="m", messages=user("q"))
    assert raised.value.status_code == status
    assert raised.value.message.endswith("forced")
    with pytest.raises(error):
        oai.responses.create(model="m", input="q", stream=True)


def test_openai_retries_follow_the_retry_hints(llm: SimulatedLLM, behaviour: Behaviour) -> None:
    behaviour.when(reply=Reply.failure(429, retry_after=0.01), times=1)
    with openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=2) as client:
        assert client.chat.completions.create(model="m", messages=user("q")).choices[0].message.content
        assert len(behaviour.requests) == 2

        behaviour.when(reply=Reply.failure(500, retryable=False))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=user("q"))
        assert len(behaviour.requests) == 3


def test_malformed_requests_and_unknown_paths(llm: SimulatedLLM, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model="m", messages=[])
    assert raised.value.param == "messages"
    response = httpx2.post(f"{llm.base_url}/chat/completions", content=b"{not json")
    assert response.status_code == 400 and "error" in response.json()
    with pytest.raises(openai.NotFoundError):
        oai.post("/no/such/path", cast_to=object)


def test_required_api_key(behaviour: Behaviour, llm: SimulatedLLM) -> None:
    behaviour.api_key = "secret"
    with (
        openai.OpenAI(base_url=llm.base_url, api_key="wrong", max_retries=0) as wrong,
        openai.OpenAI(base_url=llm.base_url, api_key="secret", max_retries=0) as right,
        anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="wrong", max_retries=0) as claude,
    ):
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        with pytest.raises(anthropic.AuthenticationError):
            claude.messages.create(model="m", max_tokens=10, messages=user("q"))
        assert right.models.list().data


# --- Anthropic Messages ---------------------------------------------------------------------------------


def test_messages_create_and_stream_helper_agree(behaviour: Behaviour, claude: anthropic.Anthropic) -> None:
    behaviour.when(reply=Reply(text="Bonjour! A reply in several text deltas."))
    message = claude.messages.create(model="m", max_tokens=200, system="Be polite.", messages=user("hi"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "Bonjour! A reply in several text deltas."
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == count_tokens(message.content[0].text)
    assert message.usage.input_tokens == count_tokens("Be polite.") + count_tokens("hi")
    assert behaviour.requests[-1].system == "Be polite."

    with claude.messages.stream(
        model="m", max_tokens=200, system="Be polite.", messages=user("hi")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.input_tokens == message.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_messages_raw_stream_event_order(claude: anthropic.Anthropic) -> None:
    events = list(claude.messages.create(model="m", max_tokens=200, messages=user("hi"), stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in kinds


def test_messages_tool_use(behaviour: Behaviour, claude: anthropic.Anthropic) -> None:
    behaviour.when(reply=Reply(text="Let me check.", tool_calls=(WEATHER_CALL,)))
    message = claude.messages.create(
        model="m", max_tokens=200, messages=user("weather?"), tools=[WEATHER_TOOL_ANTHROPIC]
    )
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    block = message.content[1]
    assert block.type == "tool_use" and block.input == {"city": "Paris"} and block.id == "call_1"

    raw = list(claude.messages.create(model="m", max_tokens=200, messages=user("weather?"), stream=True))
    deltas = [e.delta.type for e in raw if e.type == "content_block_delta"]
    assert "input_json_delta" in deltas and "text_delta" in deltas
    with claude.messages.stream(model="m", max_tokens=200, messages=user("weather?")) as stream:
        final = stream.get_final_message()
    assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Paris"}


@pytest.mark.parametrize(
    ("reply", "stop_reason"),
    [
        (Reply(text="done"), "end_turn"),
        (Reply(text="word " * 40), "max_tokens"),
        (Reply(tool_calls=(WEATHER_CALL,)), "tool_use"),
        (Reply(text="", finish="content_filter"), "refusal"),
    ],
)
def test_messages_stop_reasons(
    behaviour: Behaviour, claude: anthropic.Anthropic, reply: Reply, stop_reason: str
) -> None:
    behaviour.when(reply=reply)
    assert claude.messages.create(model="m", max_tokens=10, messages=user("q")).stop_reason == stop_reason
    with claude.messages.stream(model="m", max_tokens=10, messages=user("q")) as stream:
        assert stream.get_final_message().stop_reason == stop_reason


def test_messages_parse_follows_the_output_format(claude: anthropic.Anthropic) -> None:
    message = claude.messages.parse(
        model="m", max_tokens=500, messages=user("forecast"), output_format=Forecast
    )
    assert isinstance(message.parsed_output, Forecast)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.OverloadedError),
    ],
)
def test_anthropic_errors_raise_the_sdk_classes(
    behaviour: Behaviour, claude: anthropic.Anthropic, status: int, error: type[anthropic.APIStatusError]
) -> None:
    behaviour.when(reply=Reply.failure(status, "forced"))
    with pytest.raises(error) as raised:
        claude.messages.create(model="m", max_tokens=10, messages=user("q"))
    assert raised.value.status_code == status
    assert raised.value.body["error"]["message"] == "forced"  # type: ignore[index]
    with pytest.raises(error), claude.messages.stream(model="m", max_tokens=10, messages=user("q")):
        pass


# --- Async clients, latency, broken connections ------------------------------------------------------


def test_async_clients(behaviour: Behaviour, llm: SimulatedLLM) -> None:
    behaviour.when(reply=Reply(text="async answer in pieces"))

    async def run() -> list[str]:
        async with (
            openai.AsyncOpenAI(base_url=llm.base_url, api_key="t", max_retries=0) as oai,
            anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key="t", max_retries=0) as claude,
        ):
            completion = await oai.chat.completions.create(model="m", messages=user("q"))
            stream = await oai.chat.completions.create(model="m", messages=user("q"), stream=True)
            streamed = "".join([c.choices[0].delta.content or "" async for c in stream])
            async with oai.responses.stream(model="m", input="q") as events:
                response = await events.get_final_response()
            message = await claude.messages.create(model="m", max_tokens=100, messages=user("q"))
            async with claude.messages.stream(model="m", max_tokens=100, messages=user("q")) as texts:
                streamed_message = "".join([t async for t in texts.text_stream])
            first = message.content[0]
            return [
                completion.choices[0].message.content or "",
                streamed,
                response.output_text,
                first.text if first.type == "text" else "",
                streamed_message,
            ]

    assert asyncio.run(run()) == ["async answer in pieces"] * 5


def test_latency_and_client_timeouts(behaviour: Behaviour, llm: SimulatedLLM, oai: openai.OpenAI) -> None:
    behaviour.when(reply=Reply(text="slow", latency=0.2))
    started = time.perf_counter()
    oai.chat.completions.create(model="m", messages=user("q"))
    assert time.perf_counter() - started >= 0.2
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.05).chat.completions.create(model="m", messages=user("q"))


def test_stream_broken_midway_raises_the_sdk_errors(
    behaviour: Behaviour, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    behaviour.when(reply=Reply(text="x" * 120, drop_connection_after=3))
    received = []
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012 - the error comes mid-iteration
        for chunk in oai.chat.completions.create(model="m", messages=user("q"), stream=True):
            received.append(chunk)
    assert len(received) == 3
    with pytest.raises(openai.APIConnectionError), oai.responses.stream(model="m", input="q") as events:
        events.until_done()
    # anthropic 2.x lets the transport error of a broken stream through unwrapped.
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        claude.messages.stream(model="m", max_tokens=100, messages=user("q")) as stream,
    ):
        stream.until_done()
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=user("q"))
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="m", max_tokens=100, messages=user("q"))


# --- The demo behaviour over the wire ------------------------------------------------------------------

STABLE = "You are a support assistant. Answer as compact JSON with topic, answer and escalate."
CANARY = STABLE + " Be warm and thorough."


def test_demo_model_over_both_sdks() -> None:
    behaviour, model = demo_behaviour(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=1.0)
    with (
        running_simulated_llm(behaviour) as server,
        openai.OpenAI(base_url=server.base_url, api_key="t", max_retries=0) as oai,
        anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="t", max_retries=0) as claude,
    ):

        def chat(system: str, question: str) -> tuple[str, int]:
            messages: Any = [{"role": "system", "content": system}, {"role": "user", "content": question}]
            completion = oai.chat.completions.create(model="m", messages=messages)
            assert completion.usage is not None
            return completion.choices[0].message.content or "", completion.usage.completion_tokens

        stable_text, stable_tokens = chat(STABLE, "Where is my refund?")
        canary_text, canary_tokens = chat(CANARY, "Where is my refund?")
        assert json.loads(stable_text)["topic"] == "refund"
        with pytest.raises(json.JSONDecodeError):
            json.loads(canary_text)
        assert canary_tokens > stable_tokens
        assert json.loads(chat(CANARY, "How do I track my package?")[0])["topic"] == "shipping"

        message = claude.messages.create(
            model="m", max_tokens=500, system=CANARY, messages=user("My bill is wrong")
        )
        first = message.content[0]
        assert first.type == "text"
        with pytest.raises(json.JSONDecodeError):
            json.loads(first.text)

        model.healthy = True
        assert json.loads(chat(CANARY, "Where is my refund?")[0])["topic"] == "refund"


def test_server_binds_loopback_and_stops_without_leaking_threads() -> None:
    before = set(threading.enumerate())
    server = start_simulated_llm()
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    assert server.running
    with openai.OpenAI(base_url=server.base_url, api_key="t", max_retries=0) as client:
        assert client.models.list().data
    server.stop()
    server.stop()  # idempotent
    assert not server.running
    assert set(threading.enumerate()) <= before
