"""Zero-code identification of prompts by their system text, and the rewrite mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation._fingerprint import compile_template
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import bucket
from tests.instrumentation.support import Telemetry, attrs

MODEL = "sim-gpt-small"
STABLE = "You are the support assistant of {{company}}. Be concise."
CANARY = "You are the friendly support assistant of {{company}}. Answer in two sentences."
FAQ = "Answer questions about our opening hours."


def stable_text(company: str = "ACME") -> str:
    return STABLE.replace("{{company}}", company)


def canary_text(company: str = "ACME") -> str:
    return CANARY.replace("{{company}}", company)


@pytest.fixture
def registry(registry: SqlRegistry) -> SqlRegistry:
    """The test's registry (tests/conftest.py) with two versions of a chat prompt and a text one."""
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": STABLE}]))  # type: ignore[list-item]
    registry.push(PromptSpec(name="support-reply", messages=[{"role": "system", "content": CANARY}]))  # type: ignore[list-item]
    registry.push(PromptSpec(name="faq", template=FAQ))
    return registry


def start_rollout(reg: SqlRegistry, percent: float) -> str:
    route = reg.start_rollout(
        "support-reply", 2, ramp=(percent, 100.0) if percent < 100 else (100.0,), actor="test"
    )
    assert route.rollout_id is not None
    return route.rollout_id


def chat(llm: SimulatedLLM, system: str) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]
    )


def last_system(behaviour: Behaviour) -> str:
    return behaviour.requests[-1].system


def test_compile_template() -> None:
    pattern = compile_template("Hi {{ name }}, from {{team}} (and {{name}}).")
    match = pattern.fullmatch("Hi Ann, from Sales (and Ann).")
    assert match is not None and match.groupdict() == {"name": "Ann", "team": "Sales"}
    assert pattern.fullmatch("Hi Ann, from Sales (and Bob).") is None
    assert compile_template("a.b*c").fullmatch("a.b*c") and not compile_template("a.b*c").fullmatch("aXbbc")


def test_exact_and_template_matches(
    instrument: Any, router_of: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    instrument(router=router_of())
    chat(llm, FAQ)
    chat(llm, stable_text("Globex"))
    chat(llm, "Something else entirely.")
    faq, support, other = sorted(telemetry.llm_spans(), key=lambda s: s.start_time or 0)
    assert attrs(faq)["gen_ai.prompt.name"] == "faq"
    assert attrs(faq)["gen_ai.prompt.version"] == "1"
    assert attrs(faq)["prompt_canary.cohort"] == "stable"
    assert attrs(faq)["prompt_canary.prompt.source"] == "fingerprint"
    assert "prompt_canary.rollout.id" not in attrs(faq)
    assert attrs(support)["gen_ai.prompt.name"] == "support-reply"
    assert attrs(support)["gen_ai.prompt.version"] == "1"
    assert "gen_ai.prompt.name" not in attrs(other)


def test_canary_text_sent_by_the_app_is_the_canary(
    instrument: Any, registry: SqlRegistry, router_of: Any, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    rollout = start_rollout(registry, 50)
    instrument(router=router_of())
    chat(llm, canary_text())
    a = attrs(telemetry.one_llm_span())
    assert (a["gen_ai.prompt.version"], a["prompt_canary.cohort"], a["prompt_canary.rollout.id"]) == (
        "2",
        "canary",
        rollout,
    )


def test_without_rewrite_the_stable_text_stays_stable(
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    rollout = start_rollout(registry, 100)
    instrument(router=router_of())
    chat(llm, stable_text())
    assert last_system(behaviour) == stable_text()
    a = attrs(telemetry.one_llm_span())
    assert (a["gen_ai.prompt.version"], a["prompt_canary.cohort"], a["prompt_canary.rollout.id"]) == (
        "1",
        "stable",
        rollout,
    )


def _unit(rollout: str, canary: bool, weight_bp: int = 5000) -> str:
    for i in range(1000):
        unit = f"user-{i}"
        if (bucket(rollout, unit) < weight_bp) == canary:
            return unit
    raise AssertionError("no unit found")


def test_rewrite_sends_the_canary_text_to_canary_units(
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    rollout = start_rollout(registry, 50)
    instrument(router=router_of(), rewrite=True)
    for canary in (True, False):
        token = otel_context.attach(baggage.set_baggage("prompt_canary.unit", _unit(rollout, canary)))
        try:
            chat(llm, stable_text("Initech"))
        finally:
            otel_context.detach(token)
        assert last_system(behaviour) == (canary_text("Initech") if canary else stable_text("Initech"))
    rewritten, kept = sorted(telemetry.llm_spans(), key=lambda s: s.start_time or 0)
    assert attrs(rewritten)["gen_ai.prompt.version"] == "2"
    assert attrs(rewritten)["prompt_canary.cohort"] == "canary"
    assert attrs(rewritten)["prompt_canary.rewritten"] is True
    assert attrs(kept)["gen_ai.prompt.version"] == "1"
    assert attrs(kept)["prompt_canary.cohort"] == "stable"
    assert "prompt_canary.rewritten" not in attrs(kept)


def test_rewrite_on_anthropic_system(
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    behaviour: Behaviour,
    telemetry: Telemetry,
) -> None:
    start_rollout(registry, 100)
    instrument(router=router_of(), rewrite=True)
    client = anthropic.Anthropic(
        base_url=llm.anthropic_base_url, api_key="t", max_retries=0, open_telemetry=False
    )
    client.messages.create(
        model="sim-claude-small",
        max_tokens=50,
        system=stable_text(),
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert last_system(behaviour) == canary_text()
    assert attrs(telemetry.one_llm_span())["gen_ai.prompt.version"] == "2"


def test_registry_setting_opens_a_router(
    instrument: Any, registry: SqlRegistry, store_target: str, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    from otel_prompt_canary.instrumentation._active import active_runtime

    instrument(registry=store_target)
    runtime = active_runtime()
    assert runtime is not None and runtime.identify is not None
    router = runtime.identify.__self__._router  # type: ignore[attr-defined]
    assert router.wait_ready(5)
    chat(llm, FAQ)
    assert attrs(telemetry.one_llm_span())["gen_ai.prompt.name"] == "faq"


def test_unreachable_registry_never_breaks_calls(
    instrument: Any, tmp_path: Path, llm: SimulatedLLM, telemetry: Telemetry
) -> None:
    instrument(registry="http://127.0.0.1:9/nowhere", registry_wait=0.2)
    chat(llm, FAQ)
    assert "gen_ai.prompt.name" not in attrs(telemetry.one_llm_span())
