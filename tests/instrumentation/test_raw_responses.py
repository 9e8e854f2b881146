"""Raw responses (``with_raw_response``, ``with_streaming_response``) of the real SDKs: checks and token
usage on every path that yields a response, sync and async.

The application may parse the body (``parse()``), read it as bytes (``read()``, ``json()``,
``iter_lines()``), or never read it. A body read to its end is checked; a body left unread, or a
stream left before its end, ends the call at the ``with`` block's exit as ``stream_closed_early``
(never at garbage collection). The application gets exactly what the SDK gives.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.frameworks import one_call
from tests.instrumentation.support import Telemetry, selection

GPT = "sim-gpt-small"
CLAUDE = "sim-claude-small"
ANSWER = "Your parcel ships today."
MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is it?"}]
USAGE: Any = {"include_usage": True}


class Answer(BaseModel):
    answer: str


@pytest.fixture(autouse=True)
def answer(behaviour: Behaviour) -> None:
    behaviour.set_default(Reply(text=ANSWER, chunk_chars=4))


def openai_client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def openai_async(llm: SimulatedLLM) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def claude(llm: SimulatedLLM) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)


def claude_async(llm: SimulatedLLM) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)


def text_of(api: str, parsed: Any) -> str:
    """The answer's text in a parsed result of ``api``."""
    if api == "chat":
        return str(parsed.choices[0].message.content)
    if api == "responses":
        return str(parsed.output_text)
    if api == "completions":
        return str(parsed.choices[0].text)
    return "".join(block.text for block in parsed.content)


def text_of_events(api: str, events: list[Any]) -> str:
    """The answer's text in the events of a parsed stream of ``api``."""
    if api == "chat":
        return "".join(e.choices[0].delta.content or "" for e in events if e.choices)
    if api == "responses":
        return "".join(e.delta for e in events if e.type == "response.output_text.delta")
    if api == "completions":
        return "".join(e.choices[0].text for e in events if e.choices)
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


def text_of_json(api: str, body: dict[str, Any]) -> str:
    """The answer's text in a JSON body read as bytes."""
    if api == "chat":
        return str(body["choices"][0]["message"]["content"])
    if api == "responses":
        return "".join(part["text"] for item in body["output"] for part in item["content"])
    if api == "completions":
        return str(body["choices"][0]["text"])
    return "".join(block["text"] for block in body["content"])


def text_of_sse(api: str, lines: list[str]) -> str:
    """The answer's text in the server-sent event lines of a stream read as bytes."""
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]
    if api == "chat":
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    if api == "responses":
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    if api == "completions":
        return "".join(e["choices"][0]["text"] for e in events if e["choices"])
    return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")


def resource(client: Any, api: str) -> Any:
    """The client's resource of ``api`` (``chat.completions``, ``responses``...)."""
    return {
        "chat": lambda: client.chat.completions,
        "responses": lambda: client.responses,
        "completions": lambda: client.completions,
        "messages": lambda: client.messages,
        "beta": lambda: client.beta.messages,
    }[api]()


def request(api: str, stream: bool = False) -> dict[str, Any]:
    """The keyword arguments of one call of ``api`` (asking for usage in a chat stream)."""
    kwargs: dict[str, Any]
    if api == "chat":
        kwargs = {"model": GPT, "messages": MESSAGES}
        if stream:
            kwargs["stream_options"] = USAGE
    elif api == "responses":
        kwargs = {"model": GPT, "input": "Where is it?", "instructions": "Be brief."}
    elif api == "completions":
        kwargs = {"model": GPT, "prompt": "Where is it?"}
        if stream:
            kwargs["stream_options"] = USAGE
    else:
        kwargs = {"model": CLAUDE, "max_tokens": 100, "system": "Be brief.", "messages": MESSAGES[1:]}
    if stream:
        kwargs["stream"] = True
    return kwargs


OPENAI_APIS = ["chat", "responses", "completions"]
ALL_APIS = [*OPENAI_APIS, "messages", "beta"]


def sync_client(llm: SimulatedLLM, api: str) -> Any:
    return openai_client(llm) if api in OPENAI_APIS else claude(llm)


def async_client(llm: SimulatedLLM, api: str) -> Any:
    return openai_async(llm) if api in OPENAI_APIS else claude_async(llm)


# -- with_raw_response: the SDK read the body -----------------------------------------------------


@pytest.mark.parametrize("api", ALL_APIS)
@pytest.mark.parametrize("reading", ["parse", "never", "http_body"])
def test_raw_response(
    api: str, reading: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """Recorded with its checks whether the application parses it, reads the HTTP body, or neither."""
    with selection():
        raw = resource(sync_client(llm, api), api).with_raw_response.create(**request(api))
        if reading == "parse":
            assert text_of(api, raw.parse()) == ANSWER
            assert text_of(api, raw.parse()) == ANSWER  # a second parse: the same, counted once
        elif reading == "http_body":
            assert raw.http_response.json()["id"]
    one_call(telemetry)


@pytest.mark.parametrize("api", ALL_APIS)
@pytest.mark.parametrize("reading", ["parse", "never"])
def test_raw_response_async(
    api: str, reading: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    async def main() -> None:
        with selection():
            raw = await resource(async_client(llm, api), api).with_raw_response.create(**request(api))
            if reading == "parse":
                # openai's async raw response parses synchronously (its legacy response); anthropic's awaits.
                parsed = raw.parse()
                if asyncio.iscoroutine(parsed):
                    parsed = await parsed
                assert text_of(api, parsed) == ANSWER

    asyncio.run(main())
    one_call(telemetry)


@pytest.mark.parametrize("api", ["chat", "messages"])
def test_raw_stream_parsed(api: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    """``with_raw_response`` of a stream: ``parse()`` gives the SDK's stream, recorded at its end."""
    with selection():
        raw = resource(sync_client(llm, api), api).with_raw_response.create(**request(api, stream=True))
        assert text_of_events(api, list(raw.parse())) == ANSWER
    one_call(telemetry)


def test_parse_failure_is_the_applications(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    """A structured-output parse that fails raises the SDK's error to the application, recorded once."""
    behaviour.set_default(Reply(text="not JSON at all"))
    with selection():
        raw = openai_client(llm).chat.completions.with_raw_response.parse(
            model=GPT, messages=MESSAGES, response_format=Answer
        )
        with pytest.raises(ValueError, match="Invalid JSON"):
            raw.parse()
    assert telemetry.open_spans() == []
    assert telemetry.total("prompt_canary.responses") == 1
    assert telemetry.total("prompt_canary.responses", error__type="ValidationError") == 1


# -- with_streaming_response: the application reads the body --------------------------------------


@pytest.mark.parametrize("api", ALL_APIS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("reading", ["parse", "bytes"])
def test_streaming_response(
    api: str, stream: bool, reading: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    with (
        selection(),
        resource(sync_client(llm, api), api).with_streaming_response.create(**request(api, stream)) as raw,
    ):
        if reading == "parse":
            parsed = raw.parse()
            text = text_of_events(api, list(parsed)) if stream else text_of(api, parsed)
        elif stream:
            text = text_of_sse(api, list(raw.iter_lines()))
        else:
            text = text_of_json(api, raw.json())
    assert text == ANSWER
    one_call(telemetry)


@pytest.mark.parametrize("api", ALL_APIS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("reading", ["parse", "bytes"])
def test_streaming_response_async(
    api: str, stream: bool, reading: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    async def main() -> str:
        with selection():
            create = resource(async_client(llm, api), api).with_streaming_response.create
            async with create(**request(api, stream)) as raw:
                if reading == "parse":
                    parsed = await raw.parse()
                    if stream:
                        return text_of_events(api, [event async for event in parsed])
                    return text_of(api, parsed)
                if stream:
                    return text_of_sse(api, [line async for line in raw.iter_lines()])
                return text_of_json(api, await raw.json())

    assert asyncio.run(main()) == ANSWER
    one_call(telemetry)


@pytest.mark.parametrize("api", ALL_APIS)
@pytest.mark.parametrize(("stream", "left"), [(False, "unread"), (True, "unread"), (True, "after_one_event")])
def test_streaming_response_left_early(
    api: str, stream: bool, left: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """Left before its end: the call ends at the block's exit (the response is still referenced)."""
    create = resource(sync_client(llm, api), api).with_streaming_response.create
    with selection(), create(**request(api, stream)) as raw:
        if left == "after_one_event":
            next(iter(raw.parse()))
    assert raw is not None  # still referenced: nothing was garbage-collected
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")
