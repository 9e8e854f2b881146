"""The simulated LLM's behaviour without a server: rules, replies, the demo model, schema examples."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import otel_prompt_canary.demo as demo
from otel_prompt_canary.demo import (
    Behaviour,
    CanaryDemoModel,
    ModelRequest,
    Reply,
    Rule,
    ToolCall,
    count_tokens,
    example_for_schema,
)

STABLE = "You are a support assistant. Answer as compact JSON with topic, answer and escalate."
CANARY = STABLE + " Be warm and thorough."
QUESTIONS = {
    "refund": "Can I get my money back for order 1234?",
    "billing": "Why was I charged twice on my invoice?",
    "shipping": "When will my package be delivered?",
    "account": "I forgot my password",
    "other": "Do you have a store in Lyon?",
}


def request(user: str = "hi", *, system: str = "", **fields: Any) -> ModelRequest:
    messages = ((("system", system),) if system else ()) + (("user", user),)
    return ModelRequest(
        api="chat.completions", model="m", system=system, user=user, messages=messages, **fields
    )


def parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_public_surface() -> None:
    assert set(demo.__all__) == {
        "API",
        "Behaviour",
        "CanaryDemoModel",
        "Cohort",
        "Finish",
        "ModelRequest",
        "Reply",
        "Responder",
        "Rule",
        "SimulatedLLM",
        "ToolCall",
        "count_tokens",
        "create_app",
        "default_responder",
        "demo_behaviour",
        "example_for_schema",
        "running_simulated_llm",
        "start_simulated_llm",
    }
    for name in demo.__all__:
        assert getattr(demo, name) is not None


# --- rules and replies --------------------------------------------------------------------------------


def test_newest_matching_rule_wins_and_times_limits_a_rule() -> None:
    behaviour = Behaviour(default=Reply(text="default"))
    behaviour.when(user_contains="REFUND", reply=Reply(text="old"))
    behaviour.when(user_contains="refund", reply=Reply(text="once"), times=1)
    assert behaviour.respond(request("a Refund please")).text == "once"
    assert behaviour.respond(request("a refund please")).text == "old"
    assert behaviour.respond(request("hello")).text == "default"
    assert [r.user for r in behaviour.requests] == ["a Refund please", "a refund please", "hello"]


def test_rule_conditions() -> None:
    rule = Rule(
        reply=Reply(text="x"),
        system_contains="support",
        api="chat.completions",
        model="m",
        when=lambda r: r.max_tokens is None,
    )
    assert rule.matches(request(system="A SUPPORT bot"))
    assert not rule.matches(request(system="a poet"))
    assert not rule.matches(request(system="support", max_tokens=3))
    assert not rule.matches(
        ModelRequest(api="messages", model="m", system="support", messages=(("system", "support"),))
    )


def test_callable_replies_remove_and_clear() -> None:
    behaviour = Behaviour()
    rule = behaviour.add(Rule(reply=lambda r: Reply(text=r.user.upper())))
    assert behaviour.respond(request("shout")).text == "SHOUT"
    behaviour.remove(rule)
    assert behaviour.respond(request("shout")).text == "Simulated answer to: shout"
    behaviour.when(reply=Reply(text="x"))
    behaviour.clear()
    assert behaviour.requests == []
    assert behaviour.respond(request("q")).text.startswith("Simulated")


def test_default_answers_follow_the_requested_format() -> None:
    behaviour = Behaviour()
    assert json.loads(behaviour.respond(request(wants_json=True)).text) == {
        "answer": "Simulated answer to: hi"
    }
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert json.loads(behaviour.respond(request(wants_json=True, json_schema=schema)).text) == {"n": 1}


def test_reply_finish_tokens_and_limit() -> None:
    call = ToolCall(name="lookup", arguments={"id": 7})
    assert Reply(text="hi").finish_reason == "stop"
    assert Reply(tool_calls=(call,)).finish_reason == "tool_calls"
    assert Reply(tool_calls=(call,)).output_token_count() == count_tokens('lookup{"id":7}')
    assert Reply(text="abc", output_tokens=99).output_token_count() == 99
    cut = Reply(text="x" * 100, tool_calls=(call,)).limited_to(10)
    assert (cut.text, cut.tool_calls, cut.finish_reason) == ("x" * 40, (), "length")
    assert Reply(text="short").limited_to(10) == Reply(text="short")
    assert Reply.json({"a": [1, 2]}).text == '{"a":[1,2]}'
    assert Reply.failure(429, retry_after=0.5).error_status == 429
    assert (count_tokens(""), count_tokens("abcd"), count_tokens("abcde")) == (0, 1, 2)


def test_behaviour_is_safe_to_change_while_answering() -> None:
    behaviour = Behaviour()
    errors: list[BaseException] = []

    def answer_many() -> None:
        try:
            for i in range(300):
                behaviour.respond(request(f"q{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=answer_many) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(300):
        behaviour.when(user_contains=f"q{i}", reply=Reply(text="x"), times=1)
    for t in threads:
        t.join()
    assert errors == []
    assert len(behaviour.requests) == 1000  # the default history bound


def test_moderation_terms() -> None:
    behaviour = Behaviour(moderation_terms={"hate": ["grr"]})
    assert behaviour.moderate("GRR!") == {"hate": True}
    assert behaviour.moderate("fine") == {"hate": False}


# --- the demo model -----------------------------------------------------------------------------------


def test_stable_prompt_always_answers_valid_compact_json() -> None:
    model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=1.0)
    for topic, question in QUESTIONS.items():
        for _ in range(20):
            text = model(request(question, system=STABLE)).text
            assert json.loads(text)["topic"] == topic
            assert text == json.dumps(json.loads(text), separators=(",", ":"))


def test_canary_breaks_the_configured_query_class_at_the_configured_rate() -> None:
    model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=0.3, seed=7)
    runs = 500
    broken = sum(not parses(model(request(QUESTIONS["refund"], system=CANARY)).text) for _ in range(runs))
    assert 0.3 - 0.06 < broken / runs < 0.3 + 0.06
    for topic in ("shipping", "account", "other"):
        assert all(parses(model(request(QUESTIONS[topic], system=CANARY)).text) for _ in range(50))


def test_canary_is_more_verbose_and_healthy_mode_matches_stable() -> None:
    model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=0.0)
    stable = model(request(QUESTIONS["shipping"], system=STABLE))
    canary = model(request(QUESTIONS["shipping"], system=CANARY))
    assert canary.output_token_count() > stable.output_token_count() + 20
    model.healthy = True
    assert (
        model(request(QUESTIONS["refund"], system=CANARY)).text
        == model(request(QUESTIONS["refund"], system=STABLE)).text
    )


@pytest.mark.parametrize("style", ["prose", "truncate"])
def test_break_styles(style: Any) -> None:
    model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=1.0, break_style=style)
    text = model(request(QUESTIONS["billing"], system=CANARY)).text
    assert not parses(text)
    assert text.startswith("Sure!") == (style == "prose")


def test_demo_answers_are_deterministic_given_a_seed() -> None:
    def answers(seed: int) -> list[str]:
        model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, seed=seed)
        return [model(request(QUESTIONS["refund"], system=CANARY)).text for _ in range(40)]

    assert answers(1) == answers(1)
    assert answers(1) != answers(2)


def test_demo_answer_follows_a_requested_schema() -> None:
    model = CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY)
    schema = {
        "type": "object",
        "properties": {
            "topic": {"type": "string"},
            "answer": {"type": "string"},
            "priority": {"type": "integer"},
        },
        "required": ["topic", "answer", "priority"],
    }
    answer = json.loads(model(request(QUESTIONS["shipping"], system=STABLE, json_schema=schema)).text)
    assert answer["topic"] == "shipping" and answer["priority"] == 1 and "ship" in answer["answer"]


def test_demo_model_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="break_rate"):
        CanaryDemoModel(stable_prompt=STABLE, canary_prompt=CANARY, break_rate=1.5)
    with pytest.raises(ValueError, match="differ"):
        CanaryDemoModel(stable_prompt=STABLE, canary_prompt=f"  {STABLE} ")


# --- schema examples ----------------------------------------------------------------------------------


def test_example_for_schema_covers_structured_output_schemas() -> None:
    schema = {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "minLength": 12},
                    "qty": {"type": "integer", "minimum": 2},
                },
                "required": ["sku", "qty"],
            },
            "Kind": {"enum": ["gift", "order"]},
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "kind": {"$ref": "#/$defs/Kind"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "when": {"type": "string", "format": "date-time"},
            "score": {"type": "number", "maximum": 0.5},
            "ok": {"type": "boolean"},
            "fixed": {"const": 3},
        },
    }
    assert example_for_schema(schema, text="hi") == {
        "items": [{"sku": "hixxxxxxxxxx", "qty": 2}] * 2,
        "kind": "gift",
        "note": "hi",
        "when": "2025-01-01T00:00:00Z",
        "score": 0.5,
        "ok": False,
        "fixed": 3,
    }


def test_example_for_schema_uses_hints_of_the_right_type_only() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"enum": ["x", "y"]}},
    }
    assert example_for_schema(schema, hints={"a": "nope", "b": "yes", "c": "y"}) == {
        "a": 1,
        "b": "yes",
        "c": "y",
    }


def test_example_for_schema_stops_on_recursive_schemas() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }
    value = example_for_schema(schema)
    depth = 0
    while isinstance(value, dict) and value:
        value, depth = value["next"], depth + 1
    assert depth <= 10
