"""Coexistence with opentelemetry-instrumentation-genai-openai: one LLM span per call, carrying ours.

Both orders of instrumentation are covered: the peer's wrapper outside ours and inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.genai import openai as peer_module

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.instrumentation.support import Telemetry, attrs, events, selection

PEER_SCOPE = "opentelemetry.instrumentation.genai.openai"
MODEL = "sim-gpt-small"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]


@pytest.fixture(params=["peer_first", "ours_first"])
def both(request: pytest.FixtureRequest, instrument: Any, telemetry: Telemetry) -> Iterator[str]:
    peer = peer_module.OpenAIInstrumentor()
    providers = {"tracer_provider": telemetry.tracer_provider, "meter_provider": telemetry.meter_provider}
    if request.param == "peer_first":
        peer.instrument(**providers)
        ours = instrument()
    else:
        ours = instrument()
        peer.instrument(**providers)
    yield request.param
    # The peer unwraps whatever wrapper is outermost: undo in reverse order of instrumenting.
    if request.param == "peer_first":
        ours.uninstrument()
    peer.uninstrument()


def client(llm: SimulatedLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)


def test_one_span_with_our_attributes(
    both: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="Hi there."))
    with selection():
        result = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    span = telemetry.one_llm_span()
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == PEER_SCOPE
    a = attrs(span)
    assert a["gen_ai.prompt.name"] == "support-reply"
    assert a["gen_ai.prompt.version"] == "2"
    assert a["prompt_canary.cohort"] == "canary"
    assert a["prompt_canary.rollout.id"] == "ro_test"
    assert a["prompt_canary.check.refusal"] is True
    assert a["gen_ai.response.id"] == result.id  # the peer's own attribute
    assert not events(span)  # per-check span events are opt-in (test_span_events.py)
    assert telemetry.total("prompt_canary.responses", prompt_canary__cohort="canary") == 1


def test_stream_one_span(both: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry) -> None:
    behaviour.set_default(Reply(text="Streaming hi there.", chunk_chars=4))
    with selection():
        stream = client(llm).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Streaming hi there."
    span = telemetry.one_llm_span()
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == PEER_SCOPE
    a = attrs(span)
    assert a["gen_ai.prompt.name"] == "support-reply"
    # Our proxy sits beneath the peer's whatever the order: results land before the peer ends its span.
    assert a["prompt_canary.check.refusal"] is True
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="refusal") == 1


def test_error_tags_the_peer_span(
    both: str, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply.failure(503))
    with selection(), pytest.raises(openai.InternalServerError):
        client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    span = telemetry.one_llm_span()
    assert attrs(span)["gen_ai.prompt.name"] == "support-reply"
    assert telemetry.total("prompt_canary.responses", error__type="503") == 1


def test_uninstrumenting_either_leaves_the_other(
    instrument: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    from openai.resources.chat.completions import Completions

    original = vars(Completions)["create"]
    ours = instrument()
    peer = peer_module.OpenAIInstrumentor()
    peer.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    ours.uninstrument()  # ours is beneath the peer's wrapper: it is spliced out
    with selection():
        client(llm).chat.completions.create(model=MODEL, messages=MESSAGES)
    span = telemetry.one_llm_span()
    assert "prompt_canary.check.refusal" not in attrs(span)
    peer.uninstrument()
    assert vars(Completions)["create"] is original
