"""Rules generated from a policy compute the judge's bound, and alert exactly when it is proven.

Each case below is one prompt with a known history: stable traffic for two hours (at one pass rate
in the first hour and another in the second), a canary version for the second hour only. With
``promtool test rules`` (Prometheus's own rule engine), the generated rules must

- count the canary from its first call and the stable cohort only while the canary ran;
- record the bound the Python judge computes from those counts (checks: ``compare_to_stable`` /
  ``compare_to_threshold`` exactly; scores: the same mixture test with the Bhatia-Davis variance);
- fire ``PromptCanaryPolicyBreach`` with the rule's labels exactly when the bound is past the limit,
  and resolve once the canary has stopped receiving traffic.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_prompt_canary.analysis import (
    Direction,
    ProportionStats,
    compare_to_stable,
    compare_to_threshold,
    load_policy,
    mixture_rho2,
    mixture_test,
)
from otel_prompt_canary.analysis.prometheus import ALERT_NAME, prometheus_rules
from tests.support.services import promtool

#: One sample every 15 s; the canary starts at 60 min, everything is read at 120 min.
STEP_S, HOUR = 15, 240  # samples per hour
#: Stable traffic goes on for 10 minutes after the canary's last call (40 scrapes).
AFTER = 40
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Case:
    """A prompt judged by one rule, and its per-sample increments (per 15 s scrape)."""

    prompt: str
    rule: dict[str, Any]
    kind: str  # proportion | mean
    harmful: str
    # proportion: (passes, failures) per scrape; mean: (sum, count) per scrape
    canary: tuple[float, float]
    stable_first_hour: tuple[float, float]
    stable: tuple[float, float]


def relative(margin: float) -> dict[str, Any]:
    return {"type": "relative", "margin": margin}


def absolute(threshold: float) -> dict[str, Any]:
    return {"type": "absolute", "threshold": threshold}


CASES = [
    # JSON validity 90% on the canary, 99% on stable (60% in the hour before): proven worse.
    Case("json-broken", relative(0.01), "proportion", "decrease", (9, 1), (3, 2), (99, 1)),
    # Same rates both sides: nothing is proven.
    Case("json-same", relative(0.01), "proportion", "decrease", (97, 3), (1, 9), (97, 3)),
    # Only 1 point worse, within the margin of 2 points.
    Case("json-margin", relative(0.02), "proportion", "decrease", (98, 2), (5, 5), (99, 1)),
    # A harmful increase (a check whose True is bad), absolute threshold 5%: 8% is proven above it.
    Case("escalations", absolute(0.05), "proportion", "increase", (2, 23), (1, 1), (1, 99)),
    # A check that never passes on the canary: no pass series at all.
    Case("never-passes", relative(0.0), "proportion", "decrease", (0, 4), (4, 0), (4, 0)),
    # Judge mean 0.6 on the canary, 0.85 on stable: proven worse by more than 0.05.
    Case("judge-worse", relative(0.05), "mean", "decrease", (1.2, 2), (0.2, 2), (1.7, 2)),
    # Judge 0.84 against 0.85: not proven beyond 0.05.
    Case("judge-close", relative(0.05), "mean", "decrease", (1.68, 2), (0.5, 2), (1.7, 2)),
    # Absolute: judge mean proven below 0.7.
    Case("judge-floor", absolute(0.7), "mean", "decrease", (1.0, 2), (1.9, 2), (1.9, 2)),
]


def _policy(case: Case) -> Any:
    signal = "judge" if case.kind == "mean" else "check_x"
    return load_policy(
        {
            "alpha": 0.05,
            "ramp": {"min_duration_seconds": 60},
            "signals": [{"name": signal, "kind": case.kind, "harmful": case.harmful}],
            "rules": [{"signal": signal, "action": "rollback", "critical": True, **case.rule}],
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
        out.append(
            {
                "series": f"prompt_canary_responses_total{{{base}, {labels}}}",
                "values": _ramp(1, 1, canary=canary),
            }
        )
        if case.kind == "proportion":
            check = f'{base}, {labels}, prompt_canary_check="check_x"'
            for outcome, i in (("pass", 0), ("fail", 1)):
                if second[i] or first[i]:
                    out.append(
                        {
                            "series": (
                                f"prompt_canary_checks_total"
                                f'{{{check}, prompt_canary_check_outcome="{outcome}"}}'
                            ),
                            "values": _ramp(first[i], second[i], canary=canary),
                        }
                    )
        else:
            score = f'{base}, {labels}, gen_ai_evaluation_name="judge"'
            out.append(
                {
                    "series": f"prompt_canary_score_sum{{{score}}}",
                    "values": _ramp(first[0], second[0], canary=canary),
                }
            )
            out.append(
                {
                    "series": f"prompt_canary_score_count{{{score}}}",
                    "values": _ramp(first[1], second[1], canary=canary),
                }
            )
    return out


def _expected_bound(case: Case) -> tuple[float, bool]:
    """The bound and the breach the Python judge finds on the second hour's counts."""
    policy = _policy(case)
    alpha, rule = policy.rule_alpha, policy.rules[0]
    rho2 = mixture_rho2(alpha, policy.statistics.target_samples)
    harmful = Direction(case.harmful)
    canary = [v * HOUR for v in case.canary]
    stable = [v * HOUR for v in case.stable]
    if case.kind == "proportion":
        c = ProportionStats(n=round(sum(canary)), successes=round(canary[0]))
        s = ProportionStats(n=round(sum(stable)), successes=round(stable[0]))
        if rule.type.value == "relative":
            test = compare_to_stable(c, s, harmful=harmful, margin=rule.tolerance, alpha=alpha, rho2=rho2)
        else:
            assert rule.threshold is not None
            test = compare_to_threshold(c, harmful=harmful, threshold=rule.threshold, alpha=alpha, rho2=rho2)
    else:
        # The judge's mixture test with the variance Prometheus can bound: mean * (1 - mean).
        (cs, cn), (ss, sn) = canary, stable
        mc, ms, mp = cs / cn, ss / sn, (cs + ss) / (cn + sn)

        def bd(m: float) -> float:
            return (1.0 - m) * (m - 0.0)

        if rule.type.value == "relative":
            limit = -rule.tolerance if harmful is Direction.DECREASE else rule.tolerance
            variance = max(bd(mc), bd(mp)) / cn + bd(ms) / sn
            test = mixture_test(
                mc - ms, variance, bd(mp), limit=limit, harmful=harmful, alpha=alpha, rho2=rho2
            )
        else:
            assert rule.threshold is not None
            test = mixture_test(
                mc, bd(mc) / cn, bd(mc), limit=rule.threshold, harmful=harmful, alpha=alpha, rho2=rho2
            )
    assert test is not None
    return test.bound, test.breach


@pytest.fixture(scope="module")
def rules_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A promtool unit test of every case's generated rules; its path."""
    root = tmp_path_factory.mktemp("policy-rules")
    groups = []
    for case in CASES:
        groups += yaml.safe_load(prometheus_rules(_policy(case), case.prompt))["groups"]
    (root / "generated.rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))

    exprs, alerts = [], []
    for case in CASES:
        bound, breach = _expected_bound(case)
        assert math.isfinite(bound)
        selector = f'{{gen_ai_prompt_name="{case.prompt}", gen_ai_prompt_version="2"}}'
        exprs.append(
            {
                "expr": (
                    f"abs(prompt_canary:policy_bound{selector} - {bound!r})"
                    f" <= bool {TOLERANCE * max(1, abs(bound))!r}"
                ),
                "eval_time": "120m",
                "exp_samples": [
                    {
                        "labels": (
                            f'{{gen_ai_prompt_name="{case.prompt}", gen_ai_prompt_version="2", '
                            f'prompt_canary_rule="{_policy(case).rules[0].id}", '
                            f'prompt_canary_signal="{_policy(case).rules[0].signal}"}}'
                        ),
                        "value": 1,
                    }
                ],
            }
        )
        alerts.append((case, breach))
    firing = [
        {
            "labels": (
                f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing", gen_ai_prompt_name="{c.prompt}", '
                f'gen_ai_prompt_version="2", prompt="{c.prompt}", action="rollback", severity="critical", '
                f'prompt_canary_rule="{_policy(c).rules[0].id}", '
                f'prompt_canary_signal="{_policy(c).rules[0].signal}"}}'
            ),
            "value": 1,
        }
        for c, breach in alerts
        if breach
    ]
    exprs.append(
        {
            "expr": f'ALERTS{{alertname="{ALERT_NAME}", alertstate="firing"}}',
            "eval_time": "120m",
            "exp_samples": firing,
        }
    )
    # Ten minutes after the canary's last call, every alert has resolved.
    exprs.append({"expr": f'ALERTS{{alertname="{ALERT_NAME}"}}', "eval_time": "130m", "exp_samples": []})
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
    outcomes = [_expected_bound(c)[1] for c in CASES]
    assert 3 <= sum(outcomes) <= len(CASES) - 3, outcomes


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
