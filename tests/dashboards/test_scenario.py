"""The rules, the Alertmanager example and the Grafana dashboard against live, instrumented traffic.

See :mod:`tests.dashboards.loop` for the parts (all real, on loopback). The rules run with a
10-second window and ``for: 2s`` instead of 5 minutes and 5 to 15 minutes
(:func:`~tests.dashboards.support.fast_rules`); thresholds and minimum samples are as shipped.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.dashboards.loop import PROMPT, ROLLBACK_ALERT, CanaryLoop, Regression, canary_loop
from tests.dashboards.support import (
    COLLECTOR_DASHBOARD,
    FAST_WINDOW,
    RULES,
    dashboard_queries,
    fast_policy_rules,
    fast_rules,
    label_values_query,
    load_dashboard,
    panels,
    rule_groups,
    substitute,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)

#: What the dashboard's variables stand for in the scenarios: the prompt, every version.
VARIABLES = {"prompt": PROMPT, "version": ".*", "__rate_interval": FAST_WINDOW.strip("[]")}
#: Panels that must show both cohorts, each with its own version, while a canary runs.
COMPARED_PANELS = (
    "Responses per second",
    "Check failure ratio, per check",
    "Error ratio",
    "Mean score, per evaluation",
    "Score quantiles (p10, p50, p90)",
    "Duration of successful calls (p50, p95)",
    "Tokens per call",
    "Tokens per second",
)
#: How long a healthy canary is watched once the rules have their minimum samples: several times
#: what the regressing canary's rollback alert needs to fire from that point (``for: 2s``).
HEALTHY_WATCH_SECONDS = 12.0


def _rules_are_healthy(loop: CanaryLoop, count: int = 24) -> None:
    rules = loop.prometheus.rules()
    assert len(rules) == count
    broken = [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok" or r.get("lastError")]
    assert broken == []


def test_a_regressing_canary_is_rolled_back_by_its_alert_through_alertmanager(regression: Regression) -> None:
    loop = regression.loop
    _rules_are_healthy(loop)

    # The control plane applied the rollback alert, received from Alertmanager, to this rollout.
    decisions = loop.alerts.list_alerts(PROMPT)
    assert {d.source for d in decisions} == {"alertmanager"}
    applied = [d for d in decisions if d.outcome == "applied" and d.action == "rollback"]
    assert len(applied) == 1, decisions
    (decision,) = applied
    evidence: Any = decision.alert
    labels = evidence["alert"]["labels"]
    assert labels["alertname"] == ROLLBACK_ALERT
    assert (labels["prompt"], labels["action"], labels["severity"]) == (PROMPT, "rollback", "critical")
    assert (labels["gen_ai_prompt_version"], labels["prompt_canary_check"]) == ("2", "json_valid")
    assert decision.rollout_id == loop.rollout_id
    assert "json_valid" in evidence["alert"]["annotations"]["description"]

    last = loop.store.history(PROMPT)[-1]
    assert (last.action, last.actor, last.id) == ("rollback", "alertmanager", decision.audit_id)

    # Only the broken check was ever blamed, pending or firing. Read from Prometheus's ALERTS series
    # over the whole run: once rolled back the canary has no traffic, and its alerts resolve.
    blamed = {
        s["metric"]["prompt_canary_check"]
        for s in loop.prometheus.query(
            "count by (prompt_canary_check) "
            '(count_over_time(ALERTS{alertname=~"PromptCanaryCheckFailures.*"}[5m]))'
        )
    }
    assert blamed == {"json_valid"}

    # The application's router saw the flip: once rolled back, every call went to the stable version.
    after = {key: n for key, n in regression.calls.items() if key.startswith("rolled_back/")}
    assert set(after) == {"rolled_back/stable/1"}, regression.calls


def test_every_dashboard_query_evaluates_and_compares_the_cohorts(regression: Regression) -> None:
    prometheus = regression.loop.prometheus
    dashboard = load_dashboard()

    # The variables' label_values queries find the prompt and both versions.
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    label, selector = label_values_query(variables["prompt"]["definition"])
    assert PROMPT in prometheus.label_values(label, selector)
    label, selector = label_values_query(substitute(variables["version"]["definition"], VARIABLES))
    assert set(prometheus.label_values(label, selector)) == {"1", "2"}

    results: dict[str, list[dict[str, Any]]] = {}  # by panel title
    legends: dict[str, list[dict[str, Any]]] = {}  # by legend format
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expression = substitute(target["expr"], VARIABLES)
            assert "$" not in expression, (panel["title"], expression)
            # Evaluated when both cohorts had traffic; an invalid query fails here.
            found = prometheus.query(expression, at=regression.fired_at)
            results.setdefault(panel["title"], []).extend(found)
            legends.setdefault(target["legendFormat"], []).extend(found)

    for title in COMPARED_PANELS:
        seen = {
            (s["metric"].get("prompt_canary_cohort"), s["metric"].get("gen_ai_prompt_version"))
            for s in results[title]
        }
        assert seen == {("stable", "1"), ("canary", "2")}, title

    failures = {
        (s["metric"]["prompt_canary_cohort"], s["metric"]["prompt_canary_check"]): float(s["value"][1])
        for s in results["Check failure ratio, per check"]
    }
    assert failures[("stable", "json_valid")] == 0
    assert 0.35 < failures[("canary", "json_valid")] < 0.65
    # The judge grades the canary's long-winded answers lower: its median score is lower.
    medians = {
        s["metric"]["prompt_canary_cohort"]: float(s["value"][1])
        for s in legends["p50 {{gen_ai_evaluation_name}} {{prompt_canary_cohort}} v{{gen_ai_prompt_version}}"]
        if s["metric"]["gen_ai_evaluation_name"] == "judge"
    }
    assert medians["canary"] < 0.6 < 0.8 < medians["stable"], medians
    (share,) = results["Canary share of responses"]
    assert 0.3 < float(share["value"][1]) < 0.7
    assert ROLLBACK_ALERT in {s["metric"]["alertname"] for s in results["Alerts"]}
    assert {s["metric"]["error_type"] for s in results["Errors per second, by type"]} == {"503"}


def test_the_collector_dashboard_queries_are_valid(regression: Regression) -> None:
    # No Collector here: the queries find nothing, but Prometheus parses and evaluates each one.
    variables = VARIABLES | {"job": ".*"}
    for where, query in dashboard_queries(load_dashboard(COLLECTOR_DASHBOARD)):
        expression = substitute(query, variables)
        assert "$" not in expression, where
        assert regression.loop.prometheus.query(expression) == [], where


def test_a_healthy_canary_fires_no_alert(tmp_path: Any) -> None:
    # The shipped rules and the rules generated from the default policy, side by side.
    rules = {
        "prompt-canary.rules.yml": fast_rules(RULES.read_text()),
        "policy.rules.yml": fast_policy_rules(PROMPT),
    }
    generated = sum(len(g["rules"]) for g in rule_groups(rules["policy.rules.yml"]))
    with canary_loop(tmp_path, healthy=True, rule_files=rules) as loop:
        # The alerts are evaluated on real data: both cohorts past the rules' minimum of 100
        # samples per window.
        def enough_samples() -> bool:
            found = loop.prometheus.query(
                f"sum by (prompt_canary_cohort) (increase(prompt_canary_checks_total"
                f'{{prompt_canary_check="json_valid"}}{FAST_WINDOW}))'
            )
            return len(found) == 2 and all(float(s["value"][1]) >= 150 for s in found)

        eventually(
            enough_samples,
            timeout=45,
            what="150 json_valid checks per window in each cohort",
            between=loop.app.check_running,
            diagnostics=loop.diagnostics,
        )
        deadline = time.monotonic() + HEALTHY_WATCH_SECONDS
        while time.monotonic() < deadline:
            assert loop.prometheus.alerts() == []
            time.sleep(0.25)

        ratios = loop.prometheus.query(
            'prompt_canary:check_failure_ratio:rate5m{prompt_canary_check="json_valid"}'
        )
        assert {s["metric"]["prompt_canary_cohort"]: float(s["value"][1]) for s in ratios} == {
            "stable": 0,
            "canary": 0,
        }
        # Never even pending during the run.
        assert loop.prometheus.query("count_over_time(ALERTS[5m])") == []
        _rules_are_healthy(loop, 24 + generated)
        # The generated rules judged real data: both cohorts' JSON validity recorded, and equal.
        means = loop.prometheus.query('prompt_canary:policy_canary_mean{prompt_canary_signal="json_valid"}')
        assert [float(s["value"][1]) for s in means] == [1.0]
        assert loop.alerts.list_alerts(PROMPT) == []
        assert loop.route_state() == "ramping"
