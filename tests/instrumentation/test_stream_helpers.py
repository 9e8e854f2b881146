"""The SDKs' stream helpers (``chat.completions.stream``, ``responses.stream``, ``messages.stream`` and
``beta.messages.stream``), sync and async: read to the end they are checked; left at any point, or
closed, the call ends right there (``stream_closed_early``), while the application still holds the
stream: never at garbage collection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.frameworks import one_call
from tests.instrumentation.support import Telemetry, selection

GPT = "sim-gpt-small"
CLAUDE = "sim-claude-small"
ANSWER = "Your parcel ships today, before noon."
MESSAGES: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is it?"}]
HELPERS = ["chat", "responses", "messages", "beta"]


@pytest.fixture(autouse=True)
def answer(behaviour: Behaviour) -> None:
    behaviour.set_default(Reply(text=ANSWER, chunk_chars=4))


def manager(llm: SimulatedLLM, helper: str, asynchronous: bool = False) -> Any:
    """The helper's stream manager (nothing is sent until it is entered)."""
    if helper in ("chat", "responses"):
        oai = (openai.AsyncOpenAI if asynchronous else openai.OpenAI)(
            base_url=llm.base_url, api_key="test", max_retries=0
        )
        if helper == "chat":
            return oai.chat.completions.stream(
                model=GPT, messages=MESSAGES, stream_options={"include_usage": True}
            )
        return oai.responses.stream(model=GPT, input="Where is it?", instructions="Be brief.")
    claude = (anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic)(
        base_url=llm.anthropic_base_url, api_key="test", max_retries=0
    )
    messages = claude.beta.messages if helper == "beta" else claude.messages
    return messages.stream(model=CLAUDE, max_tokens=100, system="Be brief.", messages=MESSAGES[1:])


def final_text(helper: str, final: Any) -> str:
    if helper == "chat":
        return str(final.choices[0].message.content)
    if helper == "responses":
        return str(final.output_text)
    return "".join(block.text for block in final.content)


def final_of(helper: str, stream: Any) -> Any:
    if helper == "chat":
        return stream.get_final_completion()
    if helper == "responses":
        return stream.get_final_response()
    return stream.get_final_message()


@pytest.mark.parametrize("helper", HELPERS)
def test_read_to_the_end(helper: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    with selection(), manager(llm, helper) as stream:
        assert final_text(helper, final_of(helper, stream)) == ANSWER
    one_call(telemetry)


@pytest.mark.parametrize("helper", HELPERS)
def test_read_to_the_end_async(
    helper: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    async def main() -> str:
        with selection():
            async with manager(llm, helper, asynchronous=True) as stream:
                if helper == "chat":
                    return final_text(helper, await stream.get_final_completion())
                if helper == "responses":
                    return final_text(helper, await stream.get_final_response())
                return final_text(helper, await stream.get_final_message())

    assert asyncio.run(main()) == ANSWER
    one_call(telemetry)


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("events", [0, 1, 3])
def test_left_early(
    helper: str, events: int, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """Left after ``events`` events: the span has ended when the ``with`` block exits."""
    with selection(), manager(llm, helper) as stream:
        iterator = iter(stream)
        for _ in range(events):
            next(iterator)
    assert stream is not None  # the application still holds it: not a garbage collection
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("helper", HELPERS)
def test_left_early_async(helper: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    async def main() -> Any:
        with selection():
            async with manager(llm, helper, asynchronous=True) as stream:
                await stream.__aiter__().__anext__()
            return stream

    assert asyncio.run(main()) is not None
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("helper", HELPERS)
def test_closed_inside_the_block(
    helper: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """``close()`` ends the call at once; leaving the block afterwards records nothing more."""
    with selection(), manager(llm, helper) as stream:
        next(iter(stream))
        stream.close()
        assert telemetry.open_spans() == []
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("helper", HELPERS)
def test_an_exception_in_the_block_passes_through(
    helper: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    def read_one_then_fail() -> None:
        with selection(), manager(llm, helper) as stream:
            next(iter(stream))
            raise LookupError("the application's own")

    with pytest.raises(LookupError, match="the application's own"):
        read_one_then_fail()
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")
