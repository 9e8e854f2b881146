"""The real frameworks against the local simulated LLM: every path gives one LLM span per call, tagged
with the right cohort, with the checks and token usage; streams read fully, broken off or abandoned
leave no span open; rewrite mode sends the canary's text. Nothing reaches past loopback.

LangChain (``ChatOpenAI``: ``invoke``, ``ainvoke``, ``batch``, ``with_structured_output``,
``use_responses_api``, ``stream``; ``ChatAnthropic``, with ``betas=`` too; under OpenInference's
LangChain instrumentor), LiteLLM (through the raw-HTTP path), the OpenAI Agents SDK (``Runner.run``,
``Runner.run_streamed``: a streaming raw response), pydantic-ai instrumented (its own ``chat`` span is
the one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from pydantic import BaseModel

from otel_prompt_canary.demo.behaviour import Behaviour, ModelRequest, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from tests.instrumentation.frameworks import CANARY, STABLE, one_call
from tests.instrumentation.support import Telemetry, attrs, selection
from tests.support.network import no_network

GPT = "sim-gpt-small"
CLAUDE = "sim-claude-small"
ANSWER = "Your parcel ships today."


class Answer(BaseModel):
    answer: str


def support_model(request: ModelRequest) -> Reply:
    """The simulated model of these tests: :data:`ANSWER`, as JSON when the request asks for JSON."""
    if request.wants_json or request.json_schema is not None:
        return Reply.json({"answer": ANSWER}, chunk_chars=4)
    return Reply(text=ANSWER, chunk_chars=4)


@pytest.fixture(autouse=True)
def offline(behaviour: Behaviour) -> Iterator[None]:
    behaviour.set_default(support_model)
    with no_network():
        yield


@pytest.fixture
def registry(registry: SqlRegistry) -> SqlRegistry:
    """A prompt whose canary (version 2) takes all the traffic: rewrite mode sends its text."""
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": STABLE}]))  # type: ignore[list-item]
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": CANARY}]))  # type: ignore[list-item]
    registry.start_rollout("support-reply", 2, ramp=(100.0,), actor="test")
    return registry


def unit(key: str = "user-1") -> Any:
    return otel_context.attach(baggage.set_baggage("prompt_canary.unit", key))


# -- LangChain ------------------------------------------------------------------------------------


def chat_openai(llm: SimulatedLLM, **settings: Any) -> Any:
    import langchain_openai

    # stream_usage: ChatOpenAI asks a server other than OpenAI's for a stream's usage only when told.
    return langchain_openai.ChatOpenAI(
        base_url=llm.base_url, api_key="test", model=GPT, max_retries=0, stream_usage=True, **settings
    )


def chat_anthropic(llm: SimulatedLLM, **settings: Any) -> Any:
    import langchain_anthropic

    return langchain_anthropic.ChatAnthropic(
        base_url=llm.anthropic_base_url, api_key="test", model=CLAUDE, max_retries=0, **settings
    )


MESSAGES = [("system", "Be brief."), ("user", "Where is my parcel?")]


@pytest.mark.parametrize(
    "path", ["invoke", "ainvoke", "structured", "responses_api", "stream", "responses_stream"]
)
def test_langchain_openai(path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    model = chat_openai(llm, use_responses_api=path.startswith("responses"))
    with selection():
        if path == "invoke":
            assert model.invoke(MESSAGES).content == ANSWER
        elif path == "ainvoke":
            assert asyncio.run(model.ainvoke(MESSAGES)).content == ANSWER
        elif path == "structured":
            assert isinstance(model.with_structured_output(Answer).invoke(MESSAGES), Answer)
        elif path == "responses_api":
            assert model.invoke(MESSAGES).text == ANSWER
        else:
            assert "".join(chunk.text for chunk in model.stream(MESSAGES)) == ANSWER
    a = one_call(telemetry)
    if path == "structured":
        assert a["prompt_canary.check.json_valid"] is True


def test_langchain_batch(instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    with selection(cohort="stable"):
        results = chat_openai(llm).batch(["one", "two", "three"])  # threads, the context copied
    assert [r.content for r in results] == [ANSWER] * 3
    spans = telemetry.llm_spans()
    assert len(spans) == 3 and telemetry.open_spans() == []
    assert {attrs(s)["prompt_canary.cohort"] for s in spans} == {"stable"}
    assert all(attrs(s)["prompt_canary.check.refusal"] for s in spans)
    assert telemetry.total("prompt_canary.token.usage", gen_ai__token__type="output") == 3


def test_langchain_stream_broken_off(instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    with selection():
        chunks = chat_openai(llm).stream(MESSAGES)
        next(chunks)
        chunks.close()  # the application stops reading: LangChain closes the SDK stream
    one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "betas"])
def test_langchain_anthropic(path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    model = chat_anthropic(llm, betas=["files-api-2025-04-14"] if path == "betas" else None)
    with selection():
        if path == "ainvoke":
            assert asyncio.run(model.ainvoke(MESSAGES)).content == ANSWER
        elif path == "stream":
            assert "".join(chunk.text for chunk in model.stream(MESSAGES)) == ANSWER
        else:
            assert model.invoke(MESSAGES).content == ANSWER
    one_call(telemetry)


@pytest.mark.parametrize("path", ["openai", "anthropic", "stream"])
def test_langchain_under_openinference(
    path: str, instrument: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    """OpenInference's LangChain span is the LLM span (it is never made current: found by its run)."""
    from openinference.instrumentation.langchain import LangChainInstrumentor

    peer = LangChainInstrumentor()
    peer.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        instrument()
        model = chat_anthropic(llm) if path == "anthropic" else chat_openai(llm)
        with selection():
            if path == "stream":
                assert "".join(chunk.text for chunk in model.stream(MESSAGES)) == ANSWER
            else:
                assert model.invoke(MESSAGES).content == ANSWER
    finally:
        peer.uninstrument()
    [span] = telemetry.llm_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "openinference.instrumentation.langchain"
    one_call(telemetry)


# -- LiteLLM --------------------------------------------------------------------------------------


#: LiteLLM asks for a stream's usage only when told (as the OpenAI API does).
USAGE = {"include_usage": True}


def delta_text(chunk: Any) -> str:
    """The text of one streamed chunk (the last, with the usage, has no choice)."""
    return (chunk.choices[0].delta.content or "") if chunk.choices else ""


def litellm_kwargs(llm: SimulatedLLM) -> dict[str, Any]:
    return {
        "model": f"openai/{GPT}",
        "api_base": llm.base_url,
        "api_key": "test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize("path", ["completion", "acompletion", "stream", "astream", "broken_off"])
def test_litellm(path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    import litellm

    kwargs = litellm_kwargs(llm)

    async def astream() -> str:
        stream = await litellm.acompletion(**kwargs, stream=True, stream_options=USAGE)
        return "".join([delta_text(c) async for c in stream])

    with selection():
        if path == "completion":
            assert litellm.completion(**kwargs).choices[0].message.content == ANSWER
        elif path == "acompletion":
            result = asyncio.run(litellm.acompletion(**kwargs))
            assert result.choices[0].message.content == ANSWER
        elif path == "stream":
            stream = litellm.completion(**kwargs, stream=True, stream_options=USAGE)
            assert "".join(delta_text(c) for c in stream) == ANSWER
        elif path == "astream":
            assert asyncio.run(astream()) == ANSWER
        else:
            stream = litellm.completion(**kwargs, stream=True, stream_options=USAGE)
            next(iter(stream))
            stream.close()
    if path == "broken_off":
        one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")
    else:
        one_call(telemetry)


# -- OpenAI Agents SDK ----------------------------------------------------------------------------


def agent(llm: SimulatedLLM, instructions: str = "Be brief.") -> Any:
    import agents
    import openai

    agents.set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    model = agents.OpenAIResponsesModel(model=GPT, openai_client=client)
    return agents.Agent(name="support", instructions=instructions, model=model)


@pytest.mark.parametrize("path", ["run", "run_streamed", "run_streamed_cancelled"])
def test_openai_agents(
    path: str, instrumented: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    from agents import Runner

    if path == "run_streamed_cancelled":
        # A long stream, so that the run is cancelled while the model's stream is being read.
        behaviour.set_default(Reply(text="x" * 800, chunk_chars=4, chunk_delay=0.05))
    support = agent(llm)

    async def main() -> str:
        with selection():
            if path == "run":
                return str((await Runner.run(support, "Where is my parcel?")).final_output)
            result = Runner.run_streamed(support, "Where is my parcel?")
            async for event in result.stream_events():
                # Cancelled once the model's stream has started: the run stops reading it.
                if path == "run_streamed_cancelled" and event.type == "raw_response_event":
                    result.cancel()
            return str(result.final_output)

    output = asyncio.run(main())
    if path == "run_streamed_cancelled":
        one_call(telemetry, checks=False, tokens=False, error="stream_closed_early")
    else:
        assert output == ANSWER
        one_call(telemetry)


# -- pydantic-ai ----------------------------------------------------------------------------------


def pydantic_agent(llm: SimulatedLLM, telemetry: Telemetry, instructions: str = "Be brief.") -> Any:
    import pydantic_ai
    from pydantic_ai.capabilities.instrumentation import Instrumentation
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(GPT, provider=OpenAIProvider(base_url=llm.base_url, api_key="test"))
    settings = InstrumentationSettings(tracer_provider=telemetry.tracer_provider)
    return pydantic_ai.Agent(model, instructions=instructions, capabilities=[Instrumentation(settings)])


@pytest.mark.parametrize("path", ["run_sync", "run_stream"])
def test_pydantic_ai_instrumented(
    path: str, instrumented: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    support = pydantic_agent(llm, telemetry)

    async def stream() -> str:
        async with support.run_stream("Where is my parcel?") as result:
            return "".join([t async for t in result.stream_text(delta=True)])

    with selection():
        text = support.run_sync("Where is my parcel?").output if path == "run_sync" else asyncio.run(stream())
    assert text == ANSWER
    [span] = telemetry.llm_spans()
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "pydantic-ai"
    one_call(telemetry)


# -- rewrite mode ---------------------------------------------------------------------------------


def rewritten_call(framework: str, llm: SimulatedLLM, telemetry: Telemetry) -> None:
    """One call of ``framework`` whose system text is the stable version's, with no Selection."""
    from agents import Runner

    if framework == "agents":
        asyncio.run(Runner.run(agent(llm, STABLE), "Where is my parcel?"))
    elif framework == "pydantic_ai":
        pydantic_agent(llm, telemetry, STABLE).run_sync("Where is my parcel?")
    else:
        model = chat_anthropic(llm) if framework == "langchain_anthropic" else chat_openai(llm)
        model.invoke([("system", STABLE), ("user", "Where is my parcel?")])


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the registry only feeds the router here
@pytest.mark.parametrize(
    "framework",
    ["langchain_openai", "langchain_anthropic", "langchain_openinference", "agents", "pydantic_ai"],
)
def test_rewrite_sends_the_canary_text(
    framework: str,
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    """The canary's text is sent, and the call's one LLM span (a framework's own, when it makes one)
    says so with ``prompt_canary.rewritten``."""
    from openinference.instrumentation.langchain import LangChainInstrumentor

    peer = LangChainInstrumentor() if framework == "langchain_openinference" else None
    if peer is not None:
        peer.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        instrument(router=router_of(), rewrite=True)
        token = unit()
        try:
            rewritten_call(framework, llm, telemetry)
        finally:
            otel_context.detach(token)
    finally:
        if peer is not None:
            peer.uninstrument()
    assert behaviour.requests[-1].system == CANARY
    a = one_call(telemetry)
    assert a["prompt_canary.rewritten"] is True and a["gen_ai.prompt.version"] == "2"
