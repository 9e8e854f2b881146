"""Rules generated from a policy compute the judge's bound, and alert exactly when it is proven.

Each case below is one prompt with a known history: stable traffic for two hours (at one pass rate
in the first hour and another in the second), a canary version for the second hour only. With
``promtool test rules`` (Prometheus's own rule engine), the generated rules must

- count the canary from its first call and the stable cohort only while the canary ran;
- record, for every rule, the bound the Python code computes from those counts: for checks the
  judge's own ``compare_to_stable`` / ``compare_rates`` / ``compare_to_threshold``; for scores the
  judge's ``mixture_test`` with the variance bound the rules use (the metrics hold no sum of squares);
- share ``alpha`` between the rules of a policy as the judge does;
- fire ``PromptCanaryPolicyBreach`` with the rule's labels exactly when the bound is past the limit,
  a critical rule after ``--for``, another one only after the ramp's minimum step duration;
- resolve once the canary has stopped receiving traffic.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY,
    Direction,
    Policy,
    ProportionStats,
    Rule,
    compare_rates,
    compare_to_stable,
    compare_to_threshold,
    load_policy,
    mixture_test,
)
from otel_prompt_canary.analysis.prometheus import ALERT_NAME, prometheus_rules
from tests.dashboards.support import REPO
from tests.support.services import promtool

#: One sample every 15 s; the canary starts at 60 min, everything is read at 120 min.
STEP_S, HOUR = 15, 240  # samples per hour
#: Stable traffic goes on for 15 minutes after the canary's last call (60 scrapes).
AFTER = 60
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Case:
    """A prompt judged by its rules, and its per-sample increments (per 15 s scrape)."""

    prompt: str
    rules: list[dict[str, Any]]
    kind: str  # proportion | mean
    harmful: str
    # proportion: (passes, failures) per scrape; mean: (sum, count) per scrape
    canary: tuple[float, float]
    stable_first_hour: tuple[float, float]
    stable: tuple[float, float]
    min_step_seconds: int = 60
    #: eval time (minutes) -> {rule id: alert state}, beside the firing set checked at 120 min.
    states: dict[int, dict[str, str]] = field(default_factory=dict)


def relative(margin: float, **extra: Any) -> dict[str, Any]:
    return {"type": "relative", "margin": margin, "action": "rollback", "critical": True, **extra}


def ratio(value: float, **extra: Any) -> dict[str, Any]:
    return {"type": "relative", "ratio": value, "action": "rollback", "critical": True, **extra}


def absolute(threshold: float, **extra: Any) -> dict[str, Any]:
    return {"type": "absolute", "threshold": threshold, "action": "rollback", "critical": True, **extra}


CASES = [
    # JSON validity 90% on the canary, 99% on stable (60% in the hour before): proven worse.
    Case("json-broken", [relative(0.01)], "proportion", "decrease", (9, 1), (3, 2), (99, 1)),
    # Same rates both sides: nothing is proven.
    Case("json-same", [relative(0.01)], "proportion", "decrease", (97, 3), (1, 9), (97, 3)),
    # Only 1 point worse, within the margin of 2 points.
    Case("json-margin", [relative(0.02)], "proportion", "decrease", (98, 2), (5, 5), (99, 1)),
    # A harmful increase (a check whose True is bad), absolute threshold 5%: 8% is proven above it.
    Case("escalations", [absolute(0.05)], "proportion", "increase", (2, 23), (1, 1), (1, 99)),
    # The same check against stable: 8% against 1%, more than 5 points above.
    Case("escalations-rel", [relative(0.05)], "proportion", "increase", (2, 23), (50, 50), (1, 99)),
    # A check that never passes on the canary: no pass series at all.
    Case("never-passes", [relative(0.0)], "proportion", "decrease", (0, 4), (4, 0), (4, 0)),
    # Two rules share alpha. The relative one (critical) fires a minute after it is proven; the
    # absolute one (not critical) waits the ramp's 30-minute step: pending at 80 min, firing at 120.
    Case(
        "two-rules",
        [relative(0.01), absolute(0.95, action="pause", critical=False)],
        "proportion",
        "decrease",
        (9, 1),
        (3, 2),
        (99, 1),
        min_step_seconds=1800,
        states={80: {"check_x.relative": "firing", "check_x.absolute": "pending"}},
    ),
    # Count data: 10% failures per call on the canary against 1% on stable, proven above twice.
    Case("refusals-ratio", [ratio(2.0)], "proportion", "decrease", (9, 1), (3, 2), (99, 1)),
    # 3% against 2%: within twice stable's.
    Case("refusals-within", [ratio(2.0)], "proportion", "decrease", (97, 3), (5, 5), (98, 2)),
    # Judge mean 0.6 on the canary, 0.85 on stable: proven worse by more than 0.05.
    Case("judge-worse", [relative(0.05)], "mean", "decrease", (1.2, 2), (0.2, 2), (1.7, 2)),
    # Judge 0.84 against 0.85: not proven beyond 0.05.
    Case("judge-close", [relative(0.05)], "mean", "decrease", (1.68, 2), (0.5, 2), (1.7, 2)),
    # Absolute: judge mean proven below 0.7.
    Case("judge-floor", [absolute(0.7)], "mean", "decrease", (1.0, 2), (1.9, 2), (1.9, 2)),
]


def _policy(case: Case) -> Policy:
    signal = "judge" if case.kind == "mean" else "check_x"
    return load_policy(
        {
            "alpha": 0.05,
            "ramp": {"min_duration_seconds": case.min_step_seconds},
            "signals": [{"name": signal, "kind": case.kind, "harmful": case.harmful}],
            "rules": [{"signal": signal, **rule} for rule in case.rules],
            "statistics": {"target_samples": 500, "warmup_samples": 30},
        }
    )


def _ramp(first: float, second: float, *, canary: bool) -> str:
    """A counter's values: ``first`` per scrape for an hour, then ``second`` (a canary: absent, then 0 up)."""
    if canary:
        return f"_x{HOUR} 0+{second}x{HOUR}"
    return f"0+{first}x{HOUR} {first * HOUR + second}+{second}x{HOUR - 1 + AFTER}"


def _series(case: Case) -> list[dict[str, str]]:
    base = f'gen_ai_prompt_name="{case.prompt}"'
    cohorts = {
        "canary": ('gen_ai_prompt_version="2", prompt_canary_cohort="canary"', (0.0, 0.0), case.canary),
        "stable": (
            'gen_ai_prompt_version="1", prompt_canary_cohort="stable"',
            case.stable_first_hour,
            case.stable,
        ),
    }
    out = []
    for cohort, (labels, first, second) in cohorts.items():
        canary = cohort == "canary"
        series = {f"prompt_canary_responses_total{{{base}, {labels}}}": (1.0, 1.0)}
        if case.kind == "proportion":
            check = f'{base}, {labels}, prompt_canary_check="check_x"'
            for outcome, i in (("pass", 0), ("fail", 1)):
                if second[i] or first[i]:
                    name = f'prompt_canary_checks_total{{{check}, prompt_canary_check_outcome="{outcome}"}}'
                    series[name] = (first[i], second[i])
        else:
            score = f'{base}, {labels}, gen_ai_evaluation_name="judge"'
            series[f"prompt_canary_score_sum{{{score}}}"] = (first[0], second[0])
            series[f"prompt_canary_score_count{{{score}}}"] = (first[1], second[1])
        out += [{"series": name, "values": _ramp(*rates, canary=canary)} for name, rates in series.items()]
    return out


def _expected(case: Case) -> list[tuple[Rule, float, bool]]:
    """Each rule, with the bound and the breach the Python code finds on the second hour's counts."""
    policy = _policy(case)
    alpha = policy.rule_alpha
    target = policy.statistics.target_samples
    harmful = Direction(case.harmful)
    canary = [v * HOUR for v in case.canary]
    stable = [v * HOUR for v in case.stable]
    found = []
    for rule in policy.rules:
        relative_rule = rule.type.value == "relative"
        if case.kind == "proportion":
            c = ProportionStats(n=round(sum(canary)), successes=round(canary[0]))
            s = ProportionStats(n=round(sum(stable)), successes=round(stable[0]))
            if rule.ratio is not None:
                test = compare_rates(
                    c, s, harmful=harmful, ratio=rule.ratio, alpha=alpha, target_samples=target
                )
            elif relative_rule:
                test = compare_to_stable(
                    c, s, harmful=harmful, margin=rule.tolerance, alpha=alpha, target_samples=target
                )
            else:
                assert rule.threshold is not None
                test = compare_to_threshold(
                    c, harmful=harmful, threshold=rule.threshold, alpha=alpha, target_samples=target
                )
        else:
            # The judge's mixture test with the variance bound the rules use: Bhatia-Davis on [0, 1],
            # (1 - mean) * mean, times n / (n - 1).
            (cs, cn), (ss, sn) = canary, stable

            def bound(total: float, n: float) -> float:
                mean = total / n
                return (1.0 - mean) * mean * n / (n - 1)

            vc, vs, vp = bound(cs, cn), bound(ss, sn), bound(cs + ss, cn + sn)
            if relative_rule:
                limit = -rule.tolerance if harmful is Direction.DECREASE else rule.tolerance
                floored = max(vc, vp)
                test = mixture_test(
                    cs / cn - ss / sn,
                    floored / cn + vs / sn,
                    (floored + vs) / target,
                    limit=limit,
                    harmful=harmful,
                    alpha=alpha,
                )
            else:
                assert rule.threshold is not None
                test = mixture_test(
                    cs / cn, vc / cn, vc / target, limit=rule.threshold, harmful=harmful, alpha=alpha
                )
        assert test is not None and math.isfinite(test.bound)
        found.append((rule, test.bound, test.breach))
    return found


def _alert(case: Case, rule: Rule, state: str) -> dict[str, Any]:
    severity = {"rollback": "critical", "pause": "warning", "alert": "info"}[rule.action.value]
    return {
        "labels": (
            f'ALERTS{{alertname="{ALERT_NAME}", alertstate="{state}", gen_ai_prompt_name="{case.prompt}", '
            f'gen_ai_prompt_version="2", prompt="{case.prompt}", action="{rule.action.value}", '
            f'severity="{severity}", prompt_canary_rule="{rule.id}", prompt_canary_signal="{rule.signal}"}}'
        ),
        "value": 1,
    }


@pytest.fixture(scope="module")
def rules_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A promtool unit test of every case's generated rules; its path."""
    root = tmp_path_factory.mktemp("policy-rules")
    groups = []
    for case in CASES:
        groups += yaml.safe_load(prometheus_rules(_policy(case), case.prompt))["groups"]
    (root / "generated.rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))

    exprs: list[dict[str, Any]] = []
    firing = []
    for case in CASES:
        for rule, bound, breach in _expected(case):
            selector = (
                f'{{gen_ai_prompt_name="{case.prompt}", gen_ai_prompt_version="2", '
                f'prompt_canary_rule="{rule.id}"}}'
            )
            labels = (
                f'{{gen_ai_prompt_name="{case.prompt}", gen_ai_prompt_version="2", '
                f'prompt_canary_rule="{rule.id}", prompt_canary_signal="{rule.signal}"}}'
            )
            exprs.append(
                {
                    "expr": (
                        f"abs(prompt_canary:policy_bound{selector} - {bound!r})"
                        f" <= bool {TOLERANCE * max(1, abs(bound))!r}"
                    ),
                    "eval_time": "120m",
                    "exp_samples": [{"labels": labels, "value": 1}],
                }
            )
            if breach:
                firing.append(_alert(case, rule, "firing"))
        for minutes, states in case.states.items():
            rules = {r.id: r for r in _policy(case).rules}
            exprs.append(
                {
                    "expr": f'ALERTS{{alertname="{ALERT_NAME}", gen_ai_prompt_name="{case.prompt}"}}',
                    "eval_time": f"{minutes}m",
                    "exp_samples": [_alert(case, rules[rule_id], state) for rule_id, state in states.items()],
                }
            )
    exprs.append(
        {
            "expr": f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing"}}',
            "eval_time": "120m",
            "exp_samples": firing,
        }
    )
    # Fifteen minutes after the canary's last call, every alert has resolved.
    exprs.append({"expr": f'ALERTS{{alertname="{ALERT_NAME}"}}', "eval_time": "135m", "exp_samples": []})
    test = {
        "rule_files": ["generated.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": f"{STEP_S}s",
                "input_series": [s for case in CASES for s in _series(case)],
                "promql_expr_test": exprs,
            }
        ],
    }
    path = root / "generated.rules.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    return path


def test_the_cases_cover_breaches_and_passes() -> None:
    outcomes = [breach for case in CASES for _, _, breach in _expected(case)]
    assert min(outcomes.count(False), outcomes.count(True)) >= 3, outcomes
    # Two rules share alpha: each is tested at half of it, as the judge does.
    assert _policy(CASES[6]).rule_alpha == 0.025


def test_generated_rules_compute_the_judges_bound_and_alert_on_it(rules_test: Path) -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(rules_test.parent / "generated.rules.yml")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool(), "test", "rules", rules_test.name], cwd=rules_test.parent, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_shipped_example_is_what_the_command_writes() -> None:
    example = REPO / "dashboards" / "prometheus" / "support-bot.policy.rules.yml"
    assert example.read_text() == prometheus_rules(DEFAULT_POLICY, "support-bot"), (
        f"{example} is stale: run `prompt-canary policy default | "
        f"prompt-canary policy rules - --prompt support-bot -o {example}`"
    )
