"""Per-check ``gen_ai.evaluation.result`` span events: off by default, on with ``span_events``.

The check and score outcomes are on the LLM span as ``prompt_canary.check.*``/``prompt_canary.score.*``
attributes and in the metrics whatever the setting; the events repeat them only when asked for, on
this project's span or on a peer's. Late results are log records either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.genai import openai as peer_module

from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation import InstrumentationConfig
from tests.instrumentation.support import Telemetry, attrs, events, selection

MODEL = "sim-gpt-small"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
CHECKS = "refusal,truncation,max_output_tokens,output_tokens"


def chat(llm: SimulatedLLM) -> Any:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    with selection():
        return client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]


def test_the_setting_is_off_by_default_and_read_from_the_environment() -> None:
    assert InstrumentationConfig().span_events is False
    assert InstrumentationConfig.from_env({}).span_events is False
    assert InstrumentationConfig.from_env({"OTEL_PROMPT_CANARY_SPAN_EVENTS": "true"}).span_events is True
    assert InstrumentationConfig.from_env({"OTEL_PROMPT_CANARY_SPAN_EVENTS": "off"}).span_events is False
    environment = {"OTEL_PROMPT_CANARY_SPAN_EVENTS": "true"}
    assert InstrumentationConfig.from_env(environment, span_events=False).span_events is False


def test_by_default_results_are_attributes_and_metrics_and_no_event(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="Here you go.", output_tokens=7))
    instrument(checks=CHECKS)
    chat(llm)
    span = telemetry.one_llm_span()
    a = attrs(span)
    assert a["prompt_canary.check.refusal"] is True
    assert a["prompt_canary.check.truncation"] is True
    assert a["prompt_canary.check.max_output_tokens"] is True
    assert a["prompt_canary.score.output_tokens"] == 7.0
    assert span.events == ()
    assert telemetry.log_events() == []  # nothing late: no log record either
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="refusal") == 1
    assert telemetry.total("prompt_canary.score", gen_ai__evaluation__name="output_tokens") == 1


def test_span_events_repeat_each_result_on_the_span(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="word " * 40, output_tokens=40, finish="length"))
    instrument(checks=CHECKS, span_events=True)
    chat(llm)
    span = telemetry.one_llm_span()
    by_name = {e["gen_ai.evaluation.name"]: e for e in events(span)}
    assert by_name == {
        "refusal": {
            "gen_ai.evaluation.name": "refusal",
            "gen_ai.evaluation.score.value": 1.0,
            "gen_ai.evaluation.score.label": "pass",
        },
        "truncation": {
            "gen_ai.evaluation.name": "truncation",
            "gen_ai.evaluation.score.value": 0.0,
            "gen_ai.evaluation.score.label": "fail",
        },
        "max_output_tokens": {
            "gen_ai.evaluation.name": "max_output_tokens",
            "gen_ai.evaluation.score.value": 1.0,
            "gen_ai.evaluation.score.label": "pass",
        },
        # A score has a value and no label; no event carries gen_ai.response.id: the span does.
        "output_tokens": {"gen_ai.evaluation.name": "output_tokens", "gen_ai.evaluation.score.value": 40.0},
    }
    a = attrs(span)
    assert a["prompt_canary.check.truncation"] is False  # the attributes are there all the same
    assert a["prompt_canary.score.output_tokens"] == 40.0
    assert telemetry.log_events() == []


@pytest.fixture
def with_peer(telemetry: Telemetry) -> Iterator[None]:
    """``opentelemetry-instrumentation-genai-openai`` instrumented first: its span stands for the call.

    Requested before ``instrument``, so that ours is uninstrumented first (the peer unwraps whatever
    wrapper is outermost).
    """
    peer = peer_module.OpenAIInstrumentor()
    peer.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield
    peer.uninstrument()


@pytest.mark.parametrize("span_events", [False, True], ids=["default", "span_events"])
def test_on_a_peers_span_the_setting_decides_alike(
    with_peer: None,
    instrument: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
    span_events: bool,
) -> None:
    behaviour.set_default(Reply(text="Hi there."))
    instrument(span_events=span_events)
    chat(llm)
    span = telemetry.one_llm_span()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "opentelemetry.instrumentation.genai.openai"
    assert attrs(span)["prompt_canary.check.refusal"] is True
    names = {e["gen_ai.evaluation.name"] for e in events(span)}
    assert names == ({"refusal", "truncation", "max_output_tokens"} if span_events else set())
