"""Settings, the public surface, observers, feedback, mirrors and check selection."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any

import openai
import pytest

import otel_prompt_canary.instrumentation as instrumentation
from otel_prompt_canary.demo.behaviour import Behaviour, Reply
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.instrumentation import (
    ENVIRONMENT,
    InstrumentationConfig,
    Observation,
    add_observation_listener,
    record_feedback,
    remove_observation_listener,
)
from tests.instrumentation.support import Telemetry, attrs, selection

DOCS = Path(__file__).resolve().parents[2] / "docs" / "instrumentation.md"


def test_public_surface() -> None:
    assert sorted(instrumentation.__all__) == [
        "ENVIRONMENT",
        "InstrumentationConfig",
        "Observation",
        "ObservationListener",
        "PromptCanaryInstrumentor",
        "add_observation_listener",
        "record_feedback",
        "remove_observation_listener",
        "settings_of",
    ]


def test_every_setting_has_a_variable_and_a_documented_row() -> None:
    docs = DOCS.read_text()
    assert {f.name for f in fields(InstrumentationConfig)} == set(ENVIRONMENT)
    for name, (variable, _, _) in ENVIRONMENT.items():
        assert variable.startswith("OTEL_PROMPT_CANARY_")
        assert f"| `{variable}` | `{name}` |" in docs


def test_from_env_and_overrides() -> None:
    config = InstrumentationConfig.from_env(
        {
            "OTEL_PROMPT_CANARY_REGISTRY": "registry.db",
            "OTEL_PROMPT_CANARY_REWRITE": "TRUE",
            "OTEL_PROMPT_CANARY_CHECKS": "refusal, max_output_tokens:128",
            "OTEL_PROMPT_CANARY_MIRRORS": "langfuse",
            "OTEL_PROMPT_CANARY_JUDGE_SAMPLE_RATE": "0.5",
            "OTEL_PROMPT_CANARY_SPAN_MODE": "attach",
        },
        registry="other.db",
    )
    assert config.registry == "other.db"
    assert config.rewrite is True
    assert config.checks == ("refusal", "max_output_tokens:128")
    assert config.mirrors == frozenset({"langfuse"})
    assert config.judge_sample_rate == 0.5
    assert config.span_mode == "attach"
    assert "registry_token" not in repr(InstrumentationConfig(registry_token="secret"))
    assert InstrumentationConfig.from_env({"OTEL_PROMPT_CANARY_CHECKS": "none"}).checks == ()


def test_invalid_environment_values_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        config = InstrumentationConfig.from_env(
            {"OTEL_PROMPT_CANARY_REWRITE": "maybe", "OTEL_PROMPT_CANARY_JUDGE_SAMPLE_RATE": "2"}
        )
    assert config.rewrite is False and config.judge_sample_rate == 0.05
    assert "OTEL_PROMPT_CANARY_REWRITE" in caplog.text


@pytest.mark.parametrize(
    "settings",
    [
        {"judge_sample_rate": 1.5},
        {"mirrors": ["datadog"]},
        {"libraries": ["urllib"]},
        {"span_mode": "sometimes"},
        {"span_events": "yes"},
        {"checks": ["refusal:3"]},
        {"checks": ["unknown"]},
        {"rewrite": True, "fingerprint": False},
        {"judge_endpoint": "http://judge"},
        {"no_such_setting": 1},
    ],
)
def test_invalid_keywords_raise(settings: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        InstrumentationConfig.from_env({}, **settings)


def chat(llm: SimulatedLLM) -> Any:
    client = openai.OpenAI(base_url=llm.base_url, api_key="t", max_retries=0)
    return client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}])


def test_checks_setting_and_mirrors(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    behaviour.set_default(Reply(text="a fairly long answer", output_tokens=50))
    instrument(checks=["max_output_tokens:10"], mirrors=["openinference", "langfuse"])
    with selection():
        chat(llm)
    a = attrs(telemetry.one_llm_span())
    assert a["prompt_canary.check.max_output_tokens"] is False
    assert not [k for k in a if k.startswith("prompt_canary.check.") and not k.endswith("max_output_tokens")]
    assert a["llm.prompt_template.version"] == "2"
    assert a["langfuse.observation.prompt.name"] == "support-reply"
    assert a["langfuse.observation.prompt.version"] == 2


def test_listener_and_feedback(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    seen: list[Observation] = []
    add_observation_listener(seen.append)
    try:
        instrument()
        with selection():
            result = chat(llm)
        assert record_feedback(result.id, 0.25) is True
        assert record_feedback("unknown-id", True) is False
        with pytest.raises(InvalidInputError):
            record_feedback(result.id, 3)
    finally:
        remove_observation_listener(seen.append)
    call, feedback = seen
    assert (call.prompt_name, call.version, call.cohort, call.rollout_id) == (
        "support-reply",
        "2",
        "canary",
        "ro_test",
    )
    assert {c.name for c in call.results.checks} >= {"refusal", "truncation"}
    assert call.response_id == result.id and not call.late
    assert feedback.late and feedback.results.scores[0].name == "user_feedback"
    assert feedback.results.scores[0].value == 0.25
    [event] = telemetry.log_events()
    assert event["gen_ai.evaluation.name"] == "user_feedback"
    assert event["gen_ai.response.id"] == result.id
    assert event["prompt_canary.cohort"] == "canary"
    # The rollout keys a late result in the Collector processor; the metric does not carry it.
    assert event["prompt_canary.rollout.id"] == "ro_test"
    assert telemetry.total("prompt_canary.score", gen_ai__evaluation__name="user_feedback") == 1
    assert not [a for a, _ in telemetry.points("prompt_canary.score") if "prompt_canary.rollout.id" in a]


def test_record_feedback_when_not_instrumented() -> None:
    assert record_feedback("chatcmpl-x", True) is False


def test_span_mode_attach_makes_no_span(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    instrument(span_mode="attach")
    with selection():
        chat(llm)
    assert telemetry.llm_spans() == []
    assert telemetry.total("prompt_canary.responses", prompt_canary__cohort="canary") == 1


def test_judge_scores_arrive_late_as_events_and_metrics(
    instrument: Any, llm: SimulatedLLM, behaviour: Behaviour, telemetry: Telemetry
) -> None:
    from otel_prompt_canary.instrumentation.instrumentor import PromptCanaryInstrumentor

    behaviour.when(model="judge-model", reply=Reply.json({"score": 0.75}))
    behaviour.set_default(Reply(text="A helpful answer."))
    seen: list[Observation] = []
    add_observation_listener(seen.append)
    try:
        instrument(judge_endpoint=llm.base_url, judge_model="judge-model", judge_sample_rate=1.0)
        with selection():
            result = chat(llm)
        installation = PromptCanaryInstrumentor()._installation
        assert installation is not None and installation.scoring.worker is not None
        assert installation.scoring.worker.flush(10)
    finally:
        remove_observation_listener(seen.append)
    assert "prompt_canary.score.judge" not in attrs(telemetry.one_llm_span())  # the span ended first
    [event] = [e for e in telemetry.log_events() if e["gen_ai.evaluation.name"] == "judge"]
    assert event["gen_ai.evaluation.score.value"] == 0.75
    assert event["gen_ai.response.id"] == result.id
    assert event["gen_ai.prompt.name"] == "support-reply"
    assert (event["gen_ai.prompt.version"], event["prompt_canary.cohort"]) == ("2", "canary")
    assert event["prompt_canary.rollout.id"] == "ro_test"
    assert "gen_ai.evaluation.score.label" not in event  # a score, not a check outcome
    assert (
        telemetry.total(
            "prompt_canary.score", gen_ai__evaluation__name="judge", prompt_canary__cohort="canary"
        )
        == 1
    )
    assert [o.late for o in seen] == [False, True]
    assert len(telemetry.llm_spans()) == 1  # the judge's own call is not recorded as an LLM call
