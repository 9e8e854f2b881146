"""``prometheus_rules``: what it generates for a policy, and what it refuses.

That the generated rules compute the judge's bound and alert on it is shown by Prometheus itself in
``tests/dashboards/test_policy_rules.py`` and ``test_policy_scenario.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from otel_prompt_canary.analysis import DEFAULT_POLICY, load_policy, prometheus_rules
from otel_prompt_canary.analysis.prometheus import ALERT_NAME
from otel_prompt_canary.errors import InvalidInputError


def _group(text: str) -> dict[str, Any]:
    (group,) = yaml.safe_load(text)["groups"]
    return dict(group)


def _alerts(group: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["labels"]["prompt_canary_rule"]: r for r in group["rules"] if "alert" in r}


def _records(group: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (r["record"], r["labels"]["prompt_canary_signal"], r["labels"].get("prompt_canary_rule"))
        for r in group["rules"]
        if "record" in r
    ]


def test_the_default_policy_becomes_one_alert_per_rule_with_the_receivers_labels() -> None:
    group = _group(prometheus_rules(DEFAULT_POLICY, "support-bot"))
    assert group["name"] == "prompt-canary.policy.support-bot"
    assert group["interval"] == "60s"  # every minute; the resolution (5 minutes) is the subquery's step
    alerts = _alerts(group)
    assert set(alerts) == {"json_valid.relative", "refusal.relative", "judge.relative"}
    for rule_id, action, severity, wait in [
        ("json_valid.relative", "rollback", "critical", "60s"),  # critical: --for
        ("refusal.relative", "rollback", "critical", "60s"),
        ("judge.relative", "pause", "warning", "600s"),  # waits a step's minimum duration
    ]:
        alert = alerts[rule_id]
        assert alert["alert"] == ALERT_NAME
        assert alert["for"] == wait
        assert alert["labels"] == {
            "prompt": "support-bot",
            "action": action,
            "severity": severity,
            "prompt_canary_rule": rule_id,
            "prompt_canary_signal": rule_id.split(".")[0],
        }
    # json_valid: margin 0.01, harmful decrease; the judge's warm-up of 30 samples in each cohort.
    expr = alerts["json_valid.relative"]["expr"]
    assert '"json_valid.relative"} < -0.01\n' in expr
    assert expr.count(">= 30") == 2
    assert "[600s])) > 0" in expr  # the canary still has traffic: two resolution steps


def test_constants_are_the_judges() -> None:
    policy = load_policy(
        {
            "alpha": 0.1,
            "signals": [{"name": "escalation", "kind": "proportion", "harmful": "increase"}],
            "rules": [{"signal": "escalation", "type": "absolute", "threshold": 0.2, "action": "alert"}],
            "statistics": {"target_samples": 200, "warmup_samples": 50},
        }
    )
    group = _group(prometheus_rules(policy, "p", horizon="6h", resolution="30s", act_after="0s"))
    text = yaml.safe_dump(group)
    # The mixture's constants for the rule's alpha (0.1, a single rule): 2 ln(1/a) and (m/4)^2 / T.
    log_inv = -math.log(0.1)
    assert repr(2.0 * log_inv) in text and repr(0.25 * 0.25 * 2.0 * log_inv) in text
    (target,) = [
        r["expr"] for r in group["rules"] if r.get("record") == "prompt_canary:policy_target_variance"
    ]
    assert target.endswith(" / 200\n")  # target_samples
    (alert,) = _alerts(group).values()
    assert alert["expr"].startswith('prompt_canary:policy_bound{gen_ai_prompt_name="p"')
    assert " > 0.2\n" in alert["expr"] and ">= 50" in alert["expr"]
    (limit,) = [r["expr"] for r in group["rules"] if r.get("record") == "prompt_canary:policy_limit"]
    assert limit.endswith(" * 0 + 0.2\n")
    assert alert["for"] == "600s"  # not critical: the ramp's default minimum duration
    assert (alert["labels"]["action"], alert["labels"]["severity"]) == ("alert", "info")
    # An absolute rule reads the canary only: no stable series, no subquery.
    assert {name for name, _, _ in _records(group)} == {
        "prompt_canary:policy_canary_samples",
        "prompt_canary:policy_canary_total",
        "prompt_canary:policy_canary_mean",
        "prompt_canary:policy_canary_variance",
        "prompt_canary:policy_contrast",
        "prompt_canary:policy_contrast_variance",
        "prompt_canary:policy_target_variance",
        "prompt_canary:policy_radius",
        "prompt_canary:policy_bound",
        "prompt_canary:policy_limit",
    }
    assert "[6h]" in text and "sum_over_time" not in text


def test_scores_use_their_range_and_unjudged_signals_record_nothing() -> None:
    policy = load_policy(
        {
            "signals": [
                {"name": "output_tokens", "kind": "mean", "harmful": "increase"},
                {"name": "json_valid", "kind": "proportion", "harmful": "decrease", "must_have_data": True},
            ],
            "rules": [{"signal": "output_tokens", "type": "relative", "margin": 50, "action": "pause"}],
        }
    )
    with pytest.raises(InvalidInputError, match="score 'output_tokens' has no known range: give the bounds"):
        prometheus_rules(policy, "p")
    group = _group(prometheus_rules(policy, "p", score_ranges={"output_tokens": (0, 4096)}))
    assert {signal for _, signal, _ in _records(group)} == {"output_tokens"}
    variances = [
        r["expr"] for r in group["rules"] if r.get("record") == "prompt_canary:policy_canary_variance"
    ]
    # Bhatia-Davis: (hi - mean) * (mean - lo), times n / (n - 1), with the mean only inside the range.
    (variance,) = variances
    labels = '{gen_ai_prompt_name="p", prompt_canary_signal="output_tokens"}'
    total, samples = (f"prompt_canary:policy_canary_{part}{labels}" for part in ("total", "samples"))
    mean = f"({total} / {samples} >= 0.0 <= 4096.0)"
    assert variance == f"(4096.0 - {mean})\n* ({mean} - 0.0)\n* {samples} / ({samples} - 1)\n"
    (alert,) = _alerts(group).values()
    assert " > 50.0\n" in alert["expr"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": "bad name"}, "invalid prompt name 'bad name'"),
        ({"horizon": "1 day"}, "invalid horizon '1 day': use a Prometheus duration"),
        ({"horizon": "30m2h"}, "invalid horizon '30m2h'"),  # units largest first, as Prometheus reads them
        ({"resolution": "0s"}, "invalid resolution '0s': it must be longer than 0"),
        ({"act_after": "-1m"}, "invalid act_after '-1m'"),
        ({"horizon": "3m", "resolution": "1m"}, "the horizon 3m must be at least four resolution steps (1m)"),
        (
            {"score_ranges": {"judge": (1.0, 0.0)}},
            "the range of score 'judge' must be two finite numbers 0 <= lo",
        ),
        ({"score_ranges": {"judge": (-1.0, 1.0)}}, "the OpenTelemetry SDK drops negative histogram values"),
        ({"score_ranges": {"json_valid": (0.0, 1.0)}}, "score ranges given for ['json_valid']"),
    ],
)
def test_bad_arguments_are_refused_with_a_precise_message(kwargs: dict[str, Any], message: str) -> None:
    prompt = kwargs.pop("prompt", "support-bot")
    with pytest.raises(InvalidInputError) as caught:
        prometheus_rules(DEFAULT_POLICY, prompt, **kwargs)
    assert message in str(caught.value)


def test_compound_durations_and_the_header() -> None:
    text = prometheus_rules(
        DEFAULT_POLICY, "support-bot", horizon="1d12h", resolution="90s", act_after="1m30s"
    )
    assert text.startswith("# Prometheus rules judging the canaries of prompt 'support-bot' by its policy")
    group = _group(text)
    assert group["interval"] == "60s"
    assert _alerts(group)["json_valid.relative"]["for"] == "90s"
    assert _group(prometheus_rules(DEFAULT_POLICY, "support-bot", resolution="15s"))["interval"] == "15s"
    assert "[1d12h:90s]" in yaml.safe_dump(group, width=10_000)


def test_a_score_of_unknown_range_is_refused_and_known_ones_need_none() -> None:
    def policy(score: str) -> Any:
        return load_policy(
            {
                "signals": [{"name": score, "kind": "mean", "harmful": "decrease"}],
                "rules": [{"signal": score, "type": "relative", "margin": 0.1, "action": "pause"}],
            }
        )

    with pytest.raises(InvalidInputError, match="score 'answer_length' has no known range"):
        prometheus_rules(policy("answer_length"), "p")
    assert "10.0 - (" in prometheus_rules(
        policy("answer_length"), "p", score_ranges={"answer_length": (0, 10)}
    )
    for known in ("judge", "user_feedback"):
        assert "(1.0 - (" in prometheus_rules(policy(known), "p")


def test_a_ratio_rule_compares_failures_per_call_and_alerts_above_zero() -> None:
    policy = load_policy(
        {
            "signals": [
                {"name": "refusal", "kind": "proportion", "harmful": "decrease"},
                {"name": "tool_errors", "kind": "mean", "harmful": "increase"},
            ],
            "rules": [
                {"signal": "refusal", "type": "relative", "ratio": 2, "action": "rollback", "critical": True},
                {"signal": "tool_errors", "type": "relative", "ratio": 1.5, "action": "pause"},
            ],
        }
    )
    group = _group(prometheus_rules(policy, "p", score_ranges={"tool_errors": (0, 20)}))
    records = {
        (r["record"], r["labels"].get("prompt_canary_rule")): r["expr"]
        for r in group["rules"]
        if "record" in r
    }
    refusal = '{gen_ai_prompt_name="p", prompt_canary_signal="refusal"}'
    # A check harmful when it decreases: its failures per call, canary minus twice stable's.
    assert records[("prompt_canary:policy_contrast", "refusal.relative")] == (
        f"(1 - prompt_canary:policy_canary_mean{refusal})"
        f" - 2.0 * (1 - prompt_canary:policy_stable_mean{refusal})\n"
    )
    tools = '{gen_ai_prompt_name="p", prompt_canary_signal="tool_errors"}'
    assert records[("prompt_canary:policy_contrast", "tool_errors.relative")] == (
        f"prompt_canary:policy_canary_mean{tools} - 1.5 * prompt_canary:policy_stable_mean{tools}\n"
    )
    # Under the null the canary's counts vary ratio times as much: the floor, and ratio^2 on stable.
    variance = records[("prompt_canary:policy_contrast_variance", "tool_errors.relative")]
    assert f">= 1.5 * prompt_canary:policy_pooled_variance{tools}" in variance
    assert f"2.25 * prompt_canary:policy_stable_variance{tools}" in variance
    alerts = _alerts(group)
    for rule_id in ("refusal.relative", "tool_errors.relative"):
        assert f'"{rule_id}"}} > 0.0\n' in alerts[rule_id]["expr"]  # the lower bound above 0
        assert records[("prompt_canary:policy_bound", rule_id)].count(" - prompt_canary:policy_radius") == 1
    assert "more than 2 times stable's" in alerts["refusal.relative"]["annotations"]["description"]
