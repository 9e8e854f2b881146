"""The SDK methods beyond the common ones: the legacy ``completions`` API and anthropic ``beta.messages``
(``create``, streamed ``create``, ``parse``; ``stream`` is in test_stream_helpers.py), sync and async.
Each call: one LLM span, tagged, with the checks and token usage.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.frameworks import one_call
from tests.instrumentation.support import Telemetry, selection

GPT = "sim-gpt-small"
CLAUDE = "sim-claude-small"
ANSWER = "Your parcel ships today."
BETAS: Any = ["files-api-2025-04-14"]


class Answer(BaseModel):
    answer: str


def model(request: ModelRequest) -> Reply:
    """:data:`ANSWER`, as JSON when the request asks for JSON."""
    if request.wants_json or request.json_schema is not None:
        return Reply.json({"answer": ANSWER}, chunk_chars=4)
    return Reply(text=ANSWER, chunk_chars=4)


@pytest.fixture(autouse=True)
def answer(behaviour: Behaviour) -> None:
    behaviour.set_default(model)


# -- legacy completions ---------------------------------------------------------------------------


def completion_kwargs(stream: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": GPT, "prompt": "Where is my parcel?", "max_tokens": 50}
    if stream:
        kwargs.update(stream=True, stream_options={"include_usage": True})
    return kwargs


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_completions(stream: bool, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        result = client.completions.create(**completion_kwargs(stream))
        text = "".join(c.choices[0].text for c in result if c.choices) if stream else result.choices[0].text
    assert text == ANSWER
    a = one_call(telemetry)
    assert a["gen_ai.operation.name"] == "text_completion"
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_completions_async(stream: bool, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    async def main() -> str:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        with selection():
            result = await client.completions.create(**completion_kwargs(stream))
            if stream:
                return "".join([c.choices[0].text async for c in result if c.choices])
            return str(result.choices[0].text)

    assert asyncio.run(main()) == ANSWER
    one_call(telemetry)


def test_completions_stream_closed_early(instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        stream = client.completions.create(**completion_kwargs(True))
        next(iter(stream))
        stream.close()
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


# -- anthropic beta.messages ----------------------------------------------------------------------


def beta_kwargs() -> dict[str, Any]:
    return {
        "model": CLAUDE,
        "max_tokens": 100,
        "system": "Be brief.",
        "betas": BETAS,
        "messages": [{"role": "user", "content": "Where is my parcel?"}],
    }


@pytest.mark.parametrize("path", ["create", "stream", "parse"])
def test_beta_messages(path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    client = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)
    with selection():
        if path == "create":
            text = client.beta.messages.create(**beta_kwargs()).content[0].text  # type: ignore[union-attr]
        elif path == "stream":
            events = list(client.beta.messages.create(**beta_kwargs(), stream=True))
            text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
        else:
            parsed = client.beta.messages.parse(**beta_kwargs(), output_format=Answer)
            assert parsed.parsed_output == Answer(answer=ANSWER)
            text = ANSWER
    assert text == ANSWER
    a = one_call(telemetry)
    assert a["gen_ai.provider.name"] == "anthropic"
    if path == "parse":
        assert a["prompt_canary.check.json_valid"] is True


@pytest.mark.parametrize("path", ["create", "stream", "parse"])
def test_beta_messages_async(path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    async def main() -> None:
        client = anthropic.AsyncAnthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)
        with selection():
            if path == "create":
                await client.beta.messages.create(**beta_kwargs())
            elif path == "stream":
                [e async for e in await client.beta.messages.create(**beta_kwargs(), stream=True)]
            else:
                parsed = await client.beta.messages.parse(**beta_kwargs(), output_format=Answer)
                assert parsed.parsed_output == Answer(answer=ANSWER)

    asyncio.run(main())
    one_call(telemetry)


def test_messages_parse(instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    client = anthropic.Anthropic(base_url=llm.anthropic_base_url, api_key="test", max_retries=0)
    with selection():
        kwargs = {k: v for k, v in beta_kwargs().items() if k != "betas"}
        parsed = client.messages.parse(**kwargs, output_format=Answer)
    assert parsed.parsed_output == Answer(answer=ANSWER)
    assert one_call(telemetry)["prompt_canary.check.json_valid"] is True
