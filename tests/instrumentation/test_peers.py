"""One LLM span per call, carrying this project's attributes, with each peer instrumentation.

Peers here: OpenInference (``openinference-instrumentation-openai``: its spans say
``openinference.span.kind``), ``opentelemetry-instrumentation-genai-openai``, the anthropic SDK's own
spans, and two peers at once. In rewrite mode the peer's one span carries ``prompt_canary.rewritten``.
Both orders of instrumentation; every started span ends.

OpenLLMetry is in test_peer_openllmetry.py: it runs in a process of its own, instrumented once as an
application would, since its ``uninstrument()`` leaves its Responses wrappers in place.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from tests.instrumentation.support import Telemetry, attrs, selection

MODEL = "sim-gpt-small"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
OPENINFERENCE = "openinference.instrumentation.openai"


def _peer(module: str) -> Any:
    return importlib.import_module(module).OpenAIInstrumentor()


@pytest.fixture(params=["peer_first", "ours_first"])
def peer(request: pytest.FixtureRequest, instrument: Any, telemetry: Telemetry) -> Iterator[str]:
    module, order = OPENINFERENCE, request.param
    instrumentor = _peer(module)
    providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
    if order == "peer_first":
        instrumentor.instrument(**providers)
        ours = instrument()
    else:
        ours = instrument()
        instrumentor.instrument(**providers)
    yield module
    if order == "peer_first":
        ours.uninstrument()
    instrumentor.uninstrument()


def client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def the_call(telemetry: Telemetry, *, checks: bool = True) -> dict[str, Any]:
    """The one LLM span of the one call: a peer's, tagged, with results; nothing left open."""
    assert telemetry.open_spans() == []
    tagged = telemetry.tagged()
    assert len(tagged) == 1, [(s.name, s.instrumentation_scope) for s in telemetry.finished()]
    span = tagged[0]
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name != "otel_prompt_canary.instrumentation"
    assert len(telemetry.llm_spans()) == 1, [s.name for s in telemetry.llm_spans()]
    a = attrs(span)
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["prompt_canary.cohort"] == "canary"
    assert a["prompt_canary.rollout.id"] == "ro_test"
    if checks:
        assert a["prompt_canary.check.refusal"] is True
    assert telemetry.total("prompt_canary.responses") == 1
    return a


@pytest.mark.parametrize("api", ["chat", "chat_stream", "responses", "responses_stream", "chat_raw"])
def test_one_tagged_span_per_call(
    peer: str, api: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="Hi there.", chunk_chars=3))
    c = client(llm)
    with selection():
        if api == "chat":
            c.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        elif api == "chat_stream":
            list(c.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        elif api == "responses":
            c.responses.create(model=MODEL, input="Hello", instructions="Be brief.")
        elif api == "responses_stream":
            list(c.responses.create(model=MODEL, input="Hello", stream=True))
        else:
            c.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES).parse()  # type: ignore[arg-type]
    the_call(telemetry)
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="refusal") == 1


def test_async_calls(peer: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry) -> None:
    behaviour.set_default(Reply(text="Hi there.", chunk_chars=3))

    async def main() -> None:
        c = openai.AsyncOpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
        with selection():
            await c.responses.create(model=MODEL, input="Hello")

    asyncio.run(main())
    the_call(telemetry)


def test_stream_abandoned_midway(
    peer: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="x" * 100, chunk_chars=3))
    with selection():
        stream = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        next(iter(stream))
        stream.close()
    the_call(telemetry, checks=False)
    assert telemetry.total("prompt_canary.responses", error__type="stream_closed_early") == 1


def test_two_peers_at_once(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
    first, second = _peer(OPENINFERENCE), _peer("opentelemetry.instrumentation.genai.openai")
    first.instrument(**providers)
    ours = instrument()
    second.instrument(**providers)
    try:
        with selection():
            client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    finally:
        second.uninstrument()
        ours.uninstrument()
        first.uninstrument()
    assert telemetry.open_spans() == []
    [span] = telemetry.tagged()
    assert attrs(span)["prompt_canary.check.refusal"] is True
    assert len(telemetry.llm_spans()) == 2  # each peer's own span; only one carries ours


# -- the anthropic SDK's own spans ----------------------------------------------------------------

STABLE = "You are the support assistant of ACME. Be concise."
CANARY = "You are the friendly support assistant of ACME. Answer in two sentences."


@pytest.fixture
def registry(registry: SqlRegistry) -> SqlRegistry:
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": STABLE}]))  # type: ignore[list-item]
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": CANARY}]))  # type: ignore[list-item]
    registry.start_rollout("support-reply", 2, ramp=(100.0,), actor="test")
    return registry


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the registry only feeds the router here
@pytest.mark.parametrize("path", ["create", "raw", "stream"])
def test_anthropic_sdk_span_carries_rewritten(
    path: str,
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    instrument(router=router_of(), rewrite=True)
    c = anthropic.Anthropic(
        base_url=llm.anthropic_base_url,
        api_key="t",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    kwargs: Any = {"model": "sim-claude-small", "max_tokens": 50, "system": STABLE}
    kwargs["messages"] = [{"role": "user", "content": "Hi"}]
    token = otel_context.attach(baggage.set_baggage("prompt_canary.unit", "user-1"))
    try:
        if path == "create":
            c.messages.create(**kwargs)
        elif path == "raw":
            c.messages.with_raw_response.create(**kwargs).parse()
        else:
            with c.messages.stream(**kwargs) as stream:
                stream.until_done()
    finally:
        otel_context.detach(token)
    assert behaviour.requests[-1].system == CANARY
    assert telemetry.open_spans() == []
    [span] = telemetry.tagged()
    assert span.name == "anthropic.messages.create"
    a = attrs(span)
    assert a["prompt_canary.rewritten"] is True
    assert a["prompt_canary.cohort"] == "canary" and a["gen_ai.prompt.version"] == "2"
    assert a["prompt_canary.check.refusal"] is True  # written before the SDK ended its span
    assert telemetry.total("prompt_canary.token.usage", gen_ai__token__type="output") == 1


# -- rewrite mode with each OpenAI peer ------------------------------------------------------------

GENAI = "opentelemetry.instrumentation.genai.openai"


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the registry only feeds the router here
@pytest.mark.parametrize("order", ["peer_first", "ours_first"])
@pytest.mark.parametrize("module", [OPENINFERENCE, GENAI])
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_rewritten_on_the_peer_span(
    module: str,
    order: str,
    api: str,
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    """Rewrite mode under a peer: the canary's text is sent, and the peer's one span says so."""
    behaviour.set_default(Reply(text="Hi there."))
    instrumentor = _peer(module)
    providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
    if order == "peer_first":
        instrumentor.instrument(**providers)
    ours = instrument(router=router_of(), rewrite=True)
    if order == "ours_first":
        instrumentor.instrument(**providers)
    token = otel_context.attach(baggage.set_baggage("prompt_canary.unit", "user-1"))
    try:
        c = client(llm)
        if api == "chat":
            c.chat.completions.create(
                model=MODEL,
                messages=[{"role": "system", "content": STABLE}, {"role": "user", "content": "Hi"}],
            )
        else:
            c.responses.create(model=MODEL, input="Hi", instructions=STABLE)
    finally:
        otel_context.detach(token)
        if order == "peer_first":
            ours.uninstrument()
        instrumentor.uninstrument()
    assert behaviour.requests[-1].system == CANARY
    assert telemetry.open_spans() == []
    [span] = telemetry.llm_spans()
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == module
    a = attrs(span)
    assert a["prompt_canary.rewritten"] is True
    assert a["gen_ai.prompt.version"] == "2" and a["prompt_canary.cohort"] == "canary"
    assert a["prompt_canary.check.refusal"] is True
    assert telemetry.total("prompt_canary.responses") == 1
