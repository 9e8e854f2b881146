"""A version's output contract reaches its checks on both paths: a router Selection and zero-code.

The application asks for JSON in the prompt's text and sends no ``response_format`` (the README's
story): ``json_valid`` runs on the calls of every version that declares ``format: json``, and
``json_schema`` on those that declare a schema; calls of versions that declare nothing are checked as
before (the request decides).
"""

from __future__ import annotations

from typing import Any

import openai
import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.instrumentation._scoring import Scoring
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter, bucket
from otel_prompt_canary.scoring import DeclaredOutput, ScoringSettings
from tests.instrumentation.support import Telemetry, attrs, support_bot_model
from tests.support.contracts import SUPPORT_BOT_SCHEMA

MODEL = "sim-gpt-small"
STABLE = (
    'You are the support assistant of {{company}}. Answer with JSON: {"answer": "...", "category": "..."}'
)
CANARY = "You are the warm, friendly support assistant of {{company}}. Explain kindly, then answer as JSON."
FAQ = "Answer questions about our opening hours."
SCHEMA = SUPPORT_BOT_SCHEMA
JSON_VALID = "prompt_canary.check.json_valid"
JSON_SCHEMA = "prompt_canary.check.json_schema"


@pytest.fixture
def registry(registry: SqlRegistry) -> SqlRegistry:
    """Both versions of support-bot declare JSON with a schema; faq declares nothing."""
    output = {"format": "json", "schema": SCHEMA}
    for text in (STABLE, CANARY):
        registry.push(
            PromptSpec.model_validate(
                {"name": "support-bot", "messages": [{"role": "system", "content": text}], "output": output}
            )
        )
    registry.push(PromptSpec(name="faq", template=FAQ))
    return registry


@pytest.fixture
def model(behaviour: Behaviour) -> Behaviour:
    behaviour.set_default(support_bot_model)
    return behaviour


def start_rollout(registry: SqlRegistry, percent: float) -> str:
    ramp = (percent, 100.0) if percent < 100 else (100.0,)
    route = registry.start_rollout("support-bot", 2, ramp=ramp, actor="test", reason="friendlier")
    assert route.rollout_id is not None
    return route.rollout_id


def unit_in(rollout: str, canary: bool) -> str:
    """A unit key the 50 % rollout ``rollout`` routes to the canary (or not)."""
    return next(f"user-{i}" for i in range(1000) if (bucket(rollout, f"user-{i}") < 5000) == canary)


def chat(llm: SimulatedLLM, messages: Any, **request: Any) -> None:
    client = openai.OpenAI(base_url=llm.base_url, api_key="test", max_retries=0)
    client.chat.completions.create(model=MODEL, messages=messages, **request)


def ask(llm: SimulatedLLM, router: PromptRouter, unit: str, question: str, **request: Any) -> None:
    """The README's ``answer()``: the selection renders the messages, the request has no format."""
    with router.select("support-bot", unit_key=unit) as selection:
        messages = selection.render(company="Acme", question=question)
        assert isinstance(messages, list)
        chat(llm, [*messages, {"role": "user", "content": question}], **request)


def spans_by_time(telemetry: Telemetry) -> list[dict[str, Any]]:
    return [attrs(s) for s in sorted(telemetry.llm_spans(), key=lambda s: s.start_time or 0)]


def test_the_selection_path_checks_what_each_version_declares(
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    model: Behaviour,
    telemetry: Telemetry,
) -> None:
    rollout = start_rollout(registry, 50)
    instrument()
    router = router_of()
    stable, canary = unit_in(rollout, False), unit_in(rollout, True)
    for unit in (stable, canary):
        for question in ("Why was my bill so high?", "Where is my parcel?"):
            ask(llm, router, unit, question)
    assert not any(r.wants_json for r in model.requests), "the requests asked for no JSON"

    calls = [(a["gen_ai.prompt.version"], a[JSON_VALID], a[JSON_SCHEMA]) for a in spans_by_time(telemetry)]
    assert calls == [
        ("1", True, True),
        ("1", True, True),
        ("2", False, False),  # the canary broke JSON for a billing question
        ("2", True, True),
    ]
    assert telemetry.total("prompt_canary.checks", prompt_canary__check="json_valid") == 4
    failed = telemetry.total(
        "prompt_canary.checks", prompt_canary__check="json_valid", prompt_canary__check__outcome="fail"
    )
    assert failed == 1
    assert (
        telemetry.total(
            "prompt_canary.checks",
            gen_ai__prompt__version="2",
            prompt_canary__check="json_schema",
            prompt_canary__check__outcome="fail",
        )
        == 1
    )


def test_the_contract_wins_over_a_request_that_asks_for_text(
    instrument: Any, router_of: Any, llm: SimulatedLLM, model: Behaviour, telemetry: Telemetry
) -> None:
    instrument()
    ask(llm, router_of(), "user-1", "Where is my parcel?", response_format={"type": "text"})
    a = attrs(telemetry.one_llm_span())
    assert (a["gen_ai.prompt.version"], a[JSON_VALID], a[JSON_SCHEMA]) == ("1", True, True)


def test_a_version_without_a_contract_is_checked_as_before(
    instrument: Any, router_of: Any, llm: SimulatedLLM, model: Behaviour, telemetry: Telemetry
) -> None:
    instrument()
    router = router_of()
    for request in ({}, {"response_format": {"type": "json_object"}}):
        with router.select("faq", unit_key="user-1") as selection:
            chat(llm, [{"role": "user", "content": str(selection.render())}], **request)
    plain, asked = spans_by_time(telemetry)
    assert JSON_VALID not in plain and JSON_SCHEMA not in plain
    assert asked[JSON_VALID] is True and JSON_SCHEMA not in asked  # the request asked: checked


def test_a_configuration_without_json_valid_keeps_it_off(
    instrument: Any, router_of: Any, llm: SimulatedLLM, model: Behaviour, telemetry: Telemetry
) -> None:
    # OTEL_PROMPT_CANARY_CHECKS names the checks the operator wants: the contract does not add
    # json_valid back; the declared schema still has its own check (json_schema is not in that list).
    instrument(checks="refusal")
    ask(llm, router_of(), "user-1", "Where is my parcel?")
    a = attrs(telemetry.one_llm_span())
    assert JSON_VALID not in a
    assert a[JSON_SCHEMA] is True
    assert a["prompt_canary.check.refusal"] is True


def test_the_zero_code_path_checks_the_version_it_identifies(
    instrument: Any,
    registry: SqlRegistry,
    router_of: Any,
    llm: SimulatedLLM,
    model: Behaviour,
    telemetry: Telemetry,
) -> None:
    start_rollout(registry, 50)
    instrument(router=router_of())
    question = {"role": "user", "content": "Why was my bill so high?"}
    for text in (STABLE, CANARY, FAQ):
        chat(llm, [{"role": "system", "content": text.replace("{{company}}", "Acme")}, question])
    stable, canary, faq = spans_by_time(telemetry)
    assert (stable["prompt_canary.prompt.source"], stable["gen_ai.prompt.version"]) == ("fingerprint", "1")
    assert (stable[JSON_VALID], stable[JSON_SCHEMA]) == (True, True)
    assert (canary["gen_ai.prompt.version"], canary["prompt_canary.cohort"]) == ("2", "canary")
    assert (canary[JSON_VALID], canary[JSON_SCHEMA]) == (False, False)
    assert faq["gen_ai.prompt.name"] == "faq"
    assert JSON_VALID not in faq and JSON_SCHEMA not in faq


def test_rewrite_mode_checks_the_contract_of_the_version_it_sends(
    instrument: Any,
    router_of: Any,
    registry: SqlRegistry,
    llm: SimulatedLLM,
    model: Behaviour,
    telemetry: Telemetry,
) -> None:
    # The canary declares JSON, its stable version nothing: a call rewritten to the canary is
    # checked as the canary declares, a call left on the stable version as before.
    registry.push(PromptSpec(name="greeting", template="Greet {{ name }}."))
    registry.push(
        PromptSpec.model_validate(
            {"name": "greeting", "template": "Greet {{ name }} in JSON.", "output": {"format": "json"}}
        )
    )
    route = registry.start_rollout("greeting", 2, ramp=(50.0, 100.0), actor="test", reason="json")
    assert route.rollout_id is not None
    instrument(router=router_of(), rewrite=True)
    for canary in (True, False):
        unit = unit_in(route.rollout_id, canary)
        token = otel_context.attach(baggage.set_baggage("prompt_canary.unit", unit))
        try:
            chat(llm, [{"role": "system", "content": "Greet Ann."}, {"role": "user", "content": "Hi"}])
        finally:
            otel_context.detach(token)
    assert [r.system for r in model.requests] == ["Greet Ann in JSON.", "Greet Ann."]
    rewritten, kept = spans_by_time(telemetry)
    assert (rewritten["gen_ai.prompt.version"], rewritten["prompt_canary.rewritten"]) == ("2", True)
    assert rewritten[JSON_VALID] is True and JSON_SCHEMA not in rewritten
    assert kept["gen_ai.prompt.version"] == "1" and JSON_VALID not in kept


def test_a_contract_that_cannot_be_checked_leaves_the_other_checks_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The registry refuses a bad schema at push; a store written by hand (or a jsonschema that has
    # grown stricter) could still hold one. The call is then scored by the prompt's configuration.
    scoring = Scoring(ScoringSettings(), on_late_result=lambda response, outcome: None)
    try:
        plan = scoring.plan_for("support-bot", DeclaredOutput(json_schema={"type": "objekt"}))
        assert plan is scoring.plan_for("support-bot")
        assert [c.name for c in plan.checks] == ["json_valid", "max_output_tokens", "truncation", "refusal"]
        assert "the output contract of prompt 'support-bot' is not checked" in caplog.text
    finally:
        scoring.close()
