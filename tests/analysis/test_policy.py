"""Policy documents: loading, defaults, precise validation messages and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY,
    DEFAULT_POLICY_YAML,
    Direction,
    Policy,
    RuleAction,
    RuleType,
    SignalKind,
    load_policy,
    policy_json_schema,
)
from otel_prompt_canary.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, action: rollback}
"""


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
        "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"}],
    }
    doc.update(changes)
    return doc


def test_minimal_policy_gets_documented_defaults() -> None:
    policy = load_policy(MINIMAL)
    assert policy.alpha == 0.05
    assert policy.ramp.steps == (1, 5, 20, 50, 100)
    assert policy.ramp.min_duration_seconds == 600
    assert policy.ramp.min_samples == 100
    assert policy.statistics.target_samples == 500
    assert policy.statistics.warmup_samples == 30
    rule = policy.rules[0]
    assert rule.id == "json_valid.relative"
    assert rule.margin == 0.0
    assert rule.threshold is None
    assert not policy.is_critical(rule)
    assert policy.signals[0].attribute == "prompt_canary.check.json_valid"


def test_default_policy_is_the_documented_one() -> None:
    policy = DEFAULT_POLICY
    assert policy == load_policy(DEFAULT_POLICY_YAML)
    assert [(s.name, s.kind, s.harmful) for s in policy.signals] == [
        ("json_valid", SignalKind.PROPORTION, Direction.DECREASE),
        ("refusal", SignalKind.PROPORTION, Direction.DECREASE),
        ("judge", SignalKind.MEAN, Direction.DECREASE),
    ]
    assert [(r.id, r.type, r.margin, r.action, policy.is_critical(r)) for r in policy.rules] == [
        ("json_valid.relative", RuleType.RELATIVE, 0.01, RuleAction.ROLLBACK, True),
        ("refusal.relative", RuleType.RELATIVE, 0.01, RuleAction.ROLLBACK, True),
        ("judge.relative", RuleType.RELATIVE, 0.05, RuleAction.PAUSE, False),
    ]
    assert policy.signal("judge").attribute == "prompt_canary.score.judge"
    assert policy.rule_alpha == pytest.approx(0.05 / 3)


def test_policy_round_trips_through_json() -> None:
    dumped = DEFAULT_POLICY.model_dump(mode="json")
    assert load_policy(dumped) == DEFAULT_POLICY
    assert load_policy(json.dumps(dumped)) == DEFAULT_POLICY
    assert Policy.model_validate_json(DEFAULT_POLICY.model_dump_json()) == DEFAULT_POLICY


def test_load_policy_reads_files(tmp_path: Path) -> None:
    yaml_path = tmp_path / "policy.yaml"
    yaml_path.write_text(MINIMAL, encoding="utf-8")
    json_path = tmp_path / "policy.json"
    json_path.write_text(json.dumps(_doc()), encoding="utf-8")
    assert load_policy(yaml_path) == load_policy(str(yaml_path)) == load_policy(MINIMAL)
    assert load_policy(json_path).rules[0].margin == 0.01
    with pytest.raises(InvalidInputError, match=r"policy file '.*missing\.yaml' does not exist"):
        load_policy(str(tmp_path / "missing.yaml"))


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("signals: []\nrules: []\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"^invalid policy '.*bad\.yaml': a policy needs"):
        load_policy(path)


def test_an_explicit_id_and_signal_level_critical() -> None:
    policy = load_policy(
        _doc(
            signals=[{"name": "json_valid", "kind": "proportion", "harmful": "decrease", "critical": True}],
            rules=[
                {
                    "id": "format",
                    "signal": "json_valid",
                    "type": "absolute",
                    "threshold": 0.9,
                    "action": "alert",
                }
            ],
        )
    )
    assert policy.rules[0].id == "format"
    assert policy.is_critical(policy.rules[0])


INVALID: list[tuple[dict[str, Any], str]] = [
    (_doc(signals=[]), "a policy needs at least one signal: without signals there is nothing to judge"),
    (_doc(rules=[]), "a policy needs at least one rule: without rules nothing can breach"),
    (
        _doc(rules=[{"signal": "judge", "type": "relative", "action": "pause"}]),
        "rule 'judge.relative' names unknown signal 'judge'; the signals are: 'json_valid'",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "relative", "margin": 1.5, "action": "pause"}]),
        "rule 'json_valid.relative' on proportion signal 'json_valid': margin 1.5 can never be "
        "exceeded; a proportion margin is in [0, 1)",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "relative", "threshold": 0.9, "action": "pause"}]),
        "rules.0: rule 'json_valid.relative': a relative rule takes 'margin' (how much worse than "
        "stable is tolerated), not 'threshold'",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "absolute", "threshold": 1.2, "action": "rollback"}]),
        "rule 'json_valid.absolute' on proportion signal 'json_valid': threshold 1.2 is outside [0, 1]",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "absolute", "threshold": 0, "action": "rollback"}]),
        "a proportion can never be proven below 0; raise the threshold",
    ),
    (
        _doc(
            signals=[{"name": "flagged", "kind": "proportion", "harmful": "increase"}],
            rules=[{"signal": "flagged", "type": "absolute", "threshold": 1, "action": "alert"}],
        ),
        "a proportion can never be proven above 1; lower the threshold",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "absolute", "action": "rollback"}]),
        "rules.0: rule 'json_valid.absolute': an absolute rule needs a 'threshold'",
    ),
    (
        _doc(
            rules=[
                {
                    "signal": "json_valid",
                    "type": "absolute",
                    "margin": 0.1,
                    "threshold": 0.9,
                    "action": "rollback",
                }
            ]
        ),
        "an absolute rule takes 'threshold', not 'margin'",
    ),
    (
        _doc(rules=[{"signal": "json_valid", "type": "relative", "margin": -0.1, "action": "rollback"}]),
        "rules.0.margin: Input should be greater than or equal to 0",
    ),
    (
        _doc(
            rules=[
                {"signal": "json_valid", "type": "relative", "action": "rollback"},
                {"signal": "json_valid", "type": "relative", "margin": 0.1, "action": "alert"},
            ]
        ),
        "rule id 'json_valid.relative' is used twice; give the rules distinct 'id' values",
    ),
    (
        _doc(
            signals=[
                {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
                {"name": "json_valid", "kind": "mean", "harmful": "decrease"},
            ]
        ),
        "signal 'json_valid' is declared twice; signal names are unique",
    ),
    (
        _doc(
            signals=[
                {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
                {"name": "latency", "kind": "mean", "harmful": "increase"},
            ]
        ),
        "signal 'latency' is judged by no rule and is not must_have_data: add a rule on it or remove it",
    ),
    (
        _doc(signals=[{"name": "json_valid", "kind": "ratio", "harmful": "decrease"}]),
        "signals.0.kind: Input should be 'proportion' or 'mean'",
    ),
    (
        _doc(signals=[{"name": "json_valid", "kind": "proportion", "harmfull": "decrease"}]),
        "signals.0.harmfull: unknown field",
    ),
    (
        _doc(signals=[{"name": "json valid!", "kind": "proportion", "harmful": "decrease"}]),
        "signals.0.name: invalid signal name 'json valid!': a check or score name is 1-64 "
        "characters from a-z, 0-9 and '_'",
    ),
    (
        _doc(signals=[{"name": "JsonValid", "kind": "proportion", "harmful": "decrease"}]),
        "signals.0.name: invalid signal name 'JsonValid'",
    ),
    (_doc(alpha=0), "alpha: Input should be greater than 0"),
    (_doc(alpha=0.7), "alpha: Input should be less than or equal to 0.5"),
    (
        _doc(ramp={"steps": [5, 1, 100]}),
        "ramp.steps: ramp steps must be strictly increasing, got [5.0, 1.0, 100.0]",
    ),
    (_doc(ramp={"steps": [1, 5, 50]}), "ramp.steps: the last ramp step must be 100, got 50.0"),
    (_doc(ramp={"steps": [0, 100]}), "ramp.steps: every ramp step must be in (0, 100], got 0.0"),
    (_doc(ramp={"steps": [0.001, 100]}), "ramp.steps: ramp step 0.001% is finer than 0.01%"),
    (_doc(ramp={"steps": []}), "ramp.steps: Tuple should have at least 1 item"),
    (_doc(ramp={"min_samples": 0}), "ramp.min_samples: Input should be greater than or equal to 1"),
    (
        _doc(statistics={"warmup_samples": 1}),
        "statistics.warmup_samples: Input should be greater than or equal to 2",
    ),
    ({"rules": []}, "signals: Field required"),
]


@pytest.mark.parametrize(("document", "message"), INVALID)
def test_undecidable_or_malformed_policies_are_refused_precisely(
    document: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_policy(document)
    assert str(info.value).startswith("invalid policy: ")
    assert message in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    document = _doc(
        signals=[
            {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
            {"name": "latency", "kind": "mean", "harmful": "increase"},
        ],
        rules=[
            {"signal": "json_valid", "type": "absolute", "threshold": 2, "action": "rollback"},
            {"signal": "judge", "type": "relative", "action": "pause"},
        ],
    )
    with pytest.raises(InvalidInputError) as info:
        load_policy(document)
    assert str(info.value) == (
        "invalid policy: rule 'json_valid.absolute' on proportion signal 'json_valid': threshold 2.0 "
        "is outside [0, 1]; rule 'judge.relative' names unknown signal 'judge'; the signals are: "
        "'json_valid', 'latency'; signal 'latency' is judged by no rule and is not must_have_data: "
        "add a rule on it or remove it"
    )


def test_yaml_flow_mappings_are_yaml_not_json() -> None:
    text = (
        "{signals: [{name: json_valid, kind: proportion, harmful: decrease}],"
        " rules: [{signal: json_valid, type: relative, action: alert}]}"
    )
    assert load_policy(text).rules[0].action == RuleAction.ALERT


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("signals: [\n", "invalid policy: not valid YAML or JSON"),
        ('{"signals": \n', "invalid policy: not valid YAML or JSON"),
        ("- a\n- b\n", "invalid policy: expected a mapping with 'signals' and 'rules', got list"),
    ],
)
def test_unparseable_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_policy(text)


def test_policies_are_immutable() -> None:
    with pytest.raises(ValueError, match="frozen"):
        DEFAULT_POLICY.alpha = 0.1  # type: ignore[misc]


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    assert committed == policy_json_schema(), (
        "schemas/policy.schema.json is stale: "
        "run `.venv/bin/python -m otel_prompt_canary.analysis > schemas/policy.schema.json`"
    )


def test_schema_describes_the_document() -> None:
    schema = policy_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["signals", "rules"]
    rule = schema["$defs"]["Rule"]
    assert set(rule["required"]) == {"signal", "type", "action"}
    assert "default" not in rule["properties"]["id"]
    assert schema["$defs"]["RuleAction"]["enum"] == ["rollback", "pause", "alert"]
    assert schema["$defs"]["Signal"]["additionalProperties"] is False
    assert schema["$defs"]["Signal"]["properties"]["name"]["pattern"] == "^[a-z0-9_]{1,64}$"
