"""OpenAI-compatible calls made directly with httpx and httpx2, and no double counting with the SDKs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import httpx2
import openai
import pytest

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, attrs, selection

MODEL = "sim-gpt-small"
BODY = {
    "model": MODEL,
    "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"}],
}


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_json_chat_completion(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry, library: Any
) -> None:
    behaviour.set_default(Reply(text="Hello to you."))
    with selection(), library.Client() as http:
        response = http.post(f"{llm.base_url}/chat/completions", json=BODY)
    payload = response.json()
    assert payload["choices"][0]["message"]["content"] == "Hello to you."
    span = telemetry.one_llm_span()
    a = attrs(span)
    assert span.name == f"chat {MODEL}"
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.response.id"] == payload["id"]
    assert a["server.address"] == "127.0.0.1"
    assert a["gen_ai.usage.output_tokens"] == payload["usage"]["completion_tokens"]
    assert a["prompt_canary.check.refusal"] is True
    assert telemetry.total("prompt_canary.responses", prompt_canary__cohort="canary") == 1


@pytest.mark.parametrize("library", [httpx, httpx2])
def test_sse_stream_read_by_the_app(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry, library: Any
) -> None:
    behaviour.set_default(Reply(text="Streamed over plain HTTP.", chunk_chars=4))
    text = ""
    with (
        selection(),
        library.Client() as http,
        http.stream("POST", f"{llm.base_url}/chat/completions", json={**BODY, "stream": True}) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choices = json.loads(line[6:])["choices"]
                if choices:
                    text += choices[0]["delta"].get("content") or ""
    assert text == "Streamed over plain HTTP."
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["prompt_canary.check.refusal"] is True
    assert "error.type" not in a


def test_responses_endpoint_async(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="Async over HTTP."))

    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{llm.base_url}/responses", json={"model": MODEL, "input": "Hi"})
            result: dict[str, Any] = response.json()
            return result

    payload = asyncio.run(main())
    a = attrs(telemetry.one_llm_span())
    assert a["gen_ai.response.id"] == payload["id"]
    assert a["gen_ai.response.finish_reasons"] == ("stop",)


def test_error_status(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply.failure(500))
    with httpx.Client() as http:
        response = http.post(f"{llm.base_url}/chat/completions", json=BODY)
    assert response.status_code == 500
    assert attrs(telemetry.one_llm_span())["error.type"] == "500"


def test_other_requests_are_ignored(instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    with httpx.Client() as http:
        http.get(f"{llm.base_url}/models")
    assert telemetry.finished() == []


def test_sdk_calls_count_once(
    instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        client.chat.completions.create(model=MODEL, messages=BODY["messages"])  # type: ignore[arg-type]
        for _ in client.chat.completions.create(model=MODEL, messages=BODY["messages"], stream=True):  # type: ignore[arg-type]
            pass
    assert len(telemetry.llm_spans()) == 2
    assert telemetry.total("prompt_canary.responses") == 2


def test_uninstrument_restores_send(instrument: Any) -> None:
    originals = [vars(m.Client)["send"] for m in (httpx, httpx2)] + [
        vars(m.AsyncClient)["send"] for m in (httpx, httpx2)
    ]
    instrumentor = instrument()
    assert vars(httpx.Client)["send"] is not originals[0]
    instrumentor.uninstrument()
    after = [vars(m.Client)["send"] for m in (httpx, httpx2)] + [
        vars(m.AsyncClient)["send"] for m in (httpx, httpx2)
    ]
    assert after == originals
