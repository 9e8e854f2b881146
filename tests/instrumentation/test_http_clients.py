"""OpenAI-compatible calls an application makes itself over HTTP (``httpx``, ``httpx2``, ``requests``):
chat completions, responses and legacy completions, sync and async, JSON and server-sent events.

A stream read to ``data: [DONE]`` is complete even when the application closes the response right
after (LiteLLM's sync streaming does); a stream closed before, or a body left unread, is
``stream_closed_early``; a body that is not the API's JSON reaches the application untouched and is
counted once as ``response_unreadable``. No span is ever left open.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import httpx2
import pytest
import requests

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.frameworks import one_call
from tests.instrumentation.support import Telemetry, selection
from tests.support.not_an_llm import not_an_llm

GPT = "sim-gpt-small"
ANSWER = "Your parcel ships today."
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is it?"}]
PATHS = {"chat": "/chat/completions", "responses": "/responses", "completions": "/completions"}
LIBRARIES = ["httpx", "httpx2", "requests"]


@pytest.fixture(autouse=True)
def answer(behaviour: Behaviour) -> None:
    behaviour.set_default(Reply(text=ANSWER, chunk_chars=4))


def body(api: str, stream: bool = False) -> dict[str, Any]:
    """The JSON request of ``api`` (asking for the usage of a chat or completions stream)."""
    found: dict[str, Any]
    if api == "chat":
        found = {"model": GPT, "messages": MESSAGES}
    elif api == "responses":
        found = {"model": GPT, "input": "Where is it?", "instructions": "Be brief."}
    else:
        found = {"model": GPT, "prompt": "Where is it?"}
    if stream:
        found["stream"] = True
        if api != "responses":
            found["stream_options"] = {"include_usage": True}
    return found


def text_of_json(api: str, payload: dict[str, Any]) -> str:
    if api == "chat":
        return str(payload["choices"][0]["message"]["content"])
    if api == "responses":
        return "".join(part["text"] for item in payload["output"] for part in item["content"])
    return str(payload["choices"][0]["text"])


def text_of_lines(api: str, lines: list[str]) -> str:
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]
    if api == "chat":
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    if api == "responses":
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    return "".join(e["choices"][0]["text"] for e in events if e["choices"])


def post(library: str, url: str, payload: dict[str, Any]) -> Any:
    """A plain POST with ``library``; returns the decoded JSON answer."""
    if library == "requests":
        return requests.post(url, json=payload, timeout=30).json()
    module = httpx if library == "httpx" else httpx2
    with module.Client() as http:
        return http.post(url, json=payload, timeout=30).json()


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("api", list(PATHS))
def test_json(library: str, api: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    with selection():
        payload = post(library, llm.base_url + PATHS[api], body(api))
    assert text_of_json(api, payload) == ANSWER
    a = one_call(telemetry)
    assert a["gen_ai.response.id"] == payload["id"]
    assert a["gen_ai.operation.name"] == ("text_completion" if api == "completions" else "chat")


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize("api", list(PATHS))
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_async(
    library: str, api: str, stream: bool, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    module = httpx if library == "httpx" else httpx2

    async def main() -> str:
        with selection():
            async with module.AsyncClient(timeout=30) as http:
                if not stream:
                    response = await http.post(llm.base_url + PATHS[api], json=body(api))
                    return text_of_json(api, response.json())
                request = http.stream("POST", llm.base_url + PATHS[api], json=body(api, stream=True))
                async with request as response:
                    return text_of_lines(api, [line async for line in response.aiter_lines()])

    assert asyncio.run(main()) == ANSWER
    one_call(telemetry)


@contextmanager
def streamed(library: str, url: str, payload: dict[str, Any]) -> Iterator[Any]:
    """A streamed POST with ``library`` (the body is read as the block reads it); closed at its exit."""
    if library == "requests":
        response = requests.post(url, json=payload, stream=True, timeout=30)
        try:
            yield response
        finally:
            response.close()
        return
    module = httpx if library == "httpx" else httpx2
    with module.Client(timeout=30) as http, http.stream("POST", url, json=payload) as response:
        yield response


def lines(library: str, response: Any) -> Iterator[str]:
    if library == "requests":
        return (line.decode() for line in response.iter_lines())
    return iter(response.iter_lines())


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("api", list(PATHS))
def test_sse_read_to_the_end(
    library: str, api: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    with selection(), streamed(library, llm.base_url + PATHS[api], body(api, stream=True)) as response:
        text = text_of_lines(api, list(lines(library, response)))
    assert text == ANSWER
    assert "error.type" not in one_call(telemetry)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_done_then_close_is_complete(
    library: str, api: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """Reading up to ``data: [DONE]`` and closing at once (before the body's end) completes the stream."""
    read: list[str] = []
    with selection(), streamed(library, llm.base_url + PATHS[api], body(api, stream=True)) as response:
        for line in lines(library, response):
            read.append(line)
            if line == "data: [DONE]":
                break
    assert text_of_lines(api, read) == ANSWER
    assert "error.type" not in one_call(telemetry)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("api", list(PATHS))
@pytest.mark.parametrize("events", [0, 1])
def test_sse_closed_early(
    library: str, api: str, events: int, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    with selection(), streamed(library, llm.base_url + PATHS[api], body(api, stream=True)) as response:
        data = (line for line in lines(library, response) if line.startswith("data: "))
        for _ in range(events):
            next(data)
    assert response is not None  # closed by the block, not collected
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("library", LIBRARIES)
def test_json_body_left_unread(
    library: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    with selection(), streamed(library, llm.base_url + PATHS["chat"], body("chat")) as response:
        assert response.status_code == 200
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("kind", ["text", "other", "events"])
def test_a_body_that_is_not_the_apis(
    library: str, kind: str, instrumented: Any, telemetry: Telemetry
) -> None:
    """The application gets the body as sent; the call counts once, as ``response_unreadable``."""
    with not_an_llm() as base_url, selection():
        url = f"{base_url}/{kind}/chat/completions"
        payload = body("chat", stream=kind == "events")
        if kind == "events":
            with streamed(library, url, payload) as response:
                got = list(lines(library, response))
            assert [line for line in got if line] == ["data: not json", "data: [DONE]"]
        elif library == "requests":
            got_text = requests.post(url, json=payload, timeout=30).text
        else:
            module = httpx if library == "httpx" else httpx2
            got_text = module.post(url, json=payload, timeout=30).text
    if kind == "text":
        assert got_text == "upstream says hello"
    elif kind == "other":
        assert json.loads(got_text) == {"greeting": "hello"}
    one_call(telemetry, checks=False, tokens=False, error="response_unreadable")


@pytest.mark.parametrize("library", LIBRARIES)
def test_other_requests_are_left_alone(
    library: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """A GET, or a POST that is not a generation, makes no span and counts nothing."""
    if library == "requests":
        requests.get(f"{llm.base_url}/models", timeout=30)
        requests.post(f"{llm.base_url}/moderations", json={"input": "hi"}, timeout=30)
    else:
        module = httpx if library == "httpx" else httpx2
        module.get(f"{llm.base_url}/models", timeout=30)
        module.post(f"{llm.base_url}/moderations", json={"input": "hi"}, timeout=30)
    assert telemetry.finished() == []
    assert telemetry.total("prompt_canary.responses") == 0
