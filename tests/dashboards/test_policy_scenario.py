"""Rules generated from a policy roll a regressing canary back through Alertmanager.

The parts of :mod:`tests.dashboards.loop`, all real and on loopback, with only the output of
``prompt-canary policy rules`` loaded into Prometheus (the durations of
:data:`~tests.dashboards.support.FAST_POLICY_RULES`, everything else as generated): the default
policy against a canary that breaks JSON, and a policy with only a rule on the LLM judge's score
against a canary whose JSON stays valid, judged on the late scores' ``prompt_canary.score``
data points. The healthy counterpart is in ``test_scenario.py``, where the default policy's rules
run beside the shipped ones.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from otel_prompt_canary.analysis import load_policy
from otel_prompt_canary.analysis.prometheus import ALERT_NAME, prometheus_rules
from tests.dashboards.loop import PROMPT, CanaryLoop, canary_loop
from tests.dashboards.support import (
    FAST_POLICY_RULES,
    fast_policy_rules,
    load_dashboard,
    panels,
    substitute,
)
from tests.dashboards.test_docs import quoted_descriptions
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)


def _rolled_back_by(loop: CanaryLoop, rule: str) -> tuple[dict[str, Any], Any]:
    """Wait for the rollback and stop the application; check that every generated rule evaluates
    and that Alertmanager's alert of ``rule`` on version 2 rolled this rollout back. Returns the
    application's summary and the control plane's decision."""
    eventually(
        lambda: loop.route_state() == "rolled_back",
        timeout=90,
        what=f"the rollback by {rule}",
        between=loop.app.check_running,
        diagnostics=loop.diagnostics,
    )
    time.sleep(1.0)  # a second of calls under the rolled-back route
    summary = loop.stop_app()
    # Once rolled back, every call went to the stable version.
    assert {k for k in summary["calls"] if k.startswith("rolled_back/")} == {"rolled_back/stable/1"}

    # Every generated rule evaluates without error.
    broken = [(r["name"], r["lastError"]) for r in loop.prometheus.rules() if r["health"] != "ok"]
    assert broken == []

    (decision,) = [d for d in loop.alerts.list_alerts(PROMPT) if d.outcome == "applied"]
    assert (decision.source, decision.action, decision.rollout_id) == (
        "alertmanager",
        "rollback",
        loop.rollout_id,
    )
    evidence: Any = decision.alert
    labels = evidence["alert"]["labels"]
    assert labels["alertname"] == ALERT_NAME
    assert (labels["prompt_canary_rule"], labels["gen_ai_prompt_version"]) == (rule, "2")
    return summary, decision


def _recorded(loop: CanaryLoop, signal: str, at: float) -> dict[str, float]:
    """The cohorts' means and samples the generated rules recorded for ``signal`` at ``at``."""
    selector = f'{{prompt_canary_signal="{signal}", gen_ai_prompt_version="2"}}'
    return {
        name: float(loop.prometheus.query(f"prompt_canary:policy_{name}{selector}", at=at)[0]["value"][1])
        for name in ("canary_mean", "stable_mean", "canary_samples", "stable_samples")
    }


def test_the_policy_rules_roll_a_regressing_canary_back(tmp_path: Path) -> None:
    rules = {"policy.rules.yml": fast_policy_rules(PROMPT)}
    with canary_loop(tmp_path, healthy=False, rule_files=rules) as loop:
        _, decision = _rolled_back_by(loop, "json_valid.relative")
        evidence: Any = decision.alert
        description = " ".join(evidence["alert"]["annotations"]["description"].split())
        # It reads as docs/dashboards.md quotes it, with this run's numbers.
        quoted = quoted_descriptions()[1]
        shape = re.sub(
            r"(?<![a-z_])-?\d+(?:\\\.\d+)?(?:e-?\d+)?(?![a-z_])", r"-?[0-9.e+-]+", re.escape(quoted)
        )
        assert re.fullmatch(shape, description), (description, quoted)

        # The bound the alert acted on: the canary's JSON validity (about half its answers) proven
        # more than one point below stable's (all of them), with the judge's warm-up met.
        at = decision.received_at.timestamp()
        values = _recorded(loop, "json_valid", at)
        assert 0.3 < values["canary_mean"] < 0.7 and values["stable_mean"] == 1.0, values
        assert values["canary_samples"] >= 30 and values["stable_samples"] >= 30, values

        # The dashboard's policy panel shows the rule's bound below its limit at that moment.
        (panel,) = [p for p in panels(load_dashboard()) if p["title"].startswith("Policy rules:")]
        shown = {
            target["refId"]: {
                s["metric"]["prompt_canary_rule"]: float(s["value"][1])
                for s in loop.prometheus.query(
                    substitute(target["expr"], {"prompt": PROMPT, "version": ".*"}), at=at
                )
            }
            for target in panel["targets"]
        }
        assert shown["B"] == {
            "json_valid.relative": -0.01,
            "refusal.relative": -0.01,
            "judge.relative": -0.05,
        }
        assert shown["A"]["json_valid.relative"] < -0.01 < shown["A"]["refusal.relative"], shown

        # The refusal rule never fired: only the broken check was blamed.
        fired = loop.prometheus.query(
            "count by (prompt_canary_rule) "
            f'(count_over_time(ALERTS{{alertname="{ALERT_NAME}", alertstate="firing"}}[10m]))'
        )
        assert {s["metric"]["prompt_canary_rule"] for s in fired} == {"json_valid.relative"}


#: Only the LLM judge's score, relative to stable; critical, so that it acts once proven.
JUDGE_POLICY = load_policy(
    {
        "signals": [{"name": "judge", "kind": "mean", "harmful": "decrease", "critical": True}],
        "rules": [{"signal": "judge", "type": "relative", "margin": 0.05, "action": "rollback"}],
    }
)


def test_the_policy_rules_roll_back_on_the_llm_judges_late_scores(tmp_path: Path) -> None:
    """The judge's scores arrive after their calls (a background worker) as metric data points;
    the generated rules judge them as they judge any score."""
    rules = {"policy.rules.yml": prometheus_rules(JUDGE_POLICY, PROMPT, **FAST_POLICY_RULES)}
    with canary_loop(tmp_path, healthy=False, break_rate=0.0, rule_files=rules) as loop:
        _, decision = _rolled_back_by(loop, "judge.relative")
        # What the rule read: the judge's grades (0.5 for the canary's long answers, 0.9 for
        # stable's), past the warm-up in both cohorts.
        at = decision.received_at.timestamp()
        values = _recorded(loop, "judge", at)
        assert values["canary_mean"] == pytest.approx(0.5) and values["stable_mean"] == pytest.approx(0.9)
        warmup = JUDGE_POLICY.statistics.warmup_samples
        assert values["canary_samples"] >= warmup and values["stable_samples"] >= warmup, values
        # The JSON check stayed healthy: no answer of either cohort failed it.
        json_failures = (
            'prompt_canary_checks_total{prompt_canary_check="json_valid", prompt_canary_check_outcome="fail"}'
        )
        failed = loop.prometheus.query(f"sum({json_failures})", at=at)
        assert failed == [] or float(failed[0]["value"][1]) == 0, failed
