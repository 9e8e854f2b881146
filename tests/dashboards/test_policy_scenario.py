"""Rules generated from the default policy roll a regressing canary back through Alertmanager.

The parts of :mod:`tests.dashboards.loop`, all real and on loopback, with only the output of
``prompt-canary policy rules`` loaded into Prometheus (the durations of
:data:`~tests.dashboards.support.FAST_POLICY_RULES`, everything else as generated). The healthy
counterpart is in ``test_scenario.py``, where these rules run beside the shipped ones.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from otel_prompt_canary.analysis.prometheus import ALERT_NAME
from tests.dashboards.loop import PROMPT, canary_loop
from tests.dashboards.support import fast_policy_rules, load_dashboard, panels, substitute
from tests.dashboards.test_docs import quoted_descriptions
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)


def test_the_policy_rules_roll_a_regressing_canary_back(tmp_path: Path) -> None:
    rules = {"policy.rules.yml": fast_policy_rules(PROMPT)}
    with canary_loop(tmp_path, healthy=False, rule_files=rules) as loop:
        eventually(
            lambda: loop.route_state() == "rolled_back",
            timeout=60,
            what="the rollback",
            between=loop.app.check_running,
            diagnostics=loop.diagnostics,
        )
        time.sleep(1.0)  # a second of calls under the rolled-back route
        summary = loop.stop_app()

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
        assert (labels["prompt_canary_rule"], labels["gen_ai_prompt_version"]) == ("json_valid.relative", "2")
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
        selector = '{prompt_canary_signal="json_valid", gen_ai_prompt_version="2"}'
        values = {
            name: float(loop.prometheus.query(f"prompt_canary:policy_{name}{selector}", at=at)[0]["value"][1])
            for name in ("canary_mean", "stable_mean", "canary_samples", "stable_samples")
        }
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
        # Once rolled back, every call went to the stable version.
        assert {k for k in summary["calls"] if k.startswith("rolled_back/")} == {"rolled_back/stable/1"}
