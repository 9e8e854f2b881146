"""The Grafana dashboards are importable anywhere, and read only names that are really emitted.

The canary dashboard and the Prometheus rules are checked against a real scrape: the application
of the regressing scenario, instrumented by this project and exposed by
``opentelemetry-exporter-prometheus`` (see :mod:`tests.dashboards.loop`). The Collector dashboard is
checked against the processor's metadata.yaml, from which mdatagen generates its telemetry; the
Collector's Prometheus endpoint adds ``otelcol_`` and, by default, no ``_total`` (as the
Collector end-to-end suite reads them).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tests.collector.support import parse_prometheus
from tests.dashboards.loop import PROMPT, Regression
from tests.dashboards.promql import Names, names_in
from tests.dashboards.support import (
    COLLECTOR_DASHBOARD,
    DASHBOARD,
    PROCESSOR_METADATA,
    dashboard_queries,
    fast_policy_rules,
    load_dashboard,
    panels,
    rule_groups,
)
from tests.drift.factories import drift_metrics_scrape

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Labels Prometheus itself puts on the ALERTS series, beside the alert rules' labels.
ALERTS_LABELS = {"alertname", "alertstate"}
#: Labels every scrape gets from Prometheus.
TARGET_LABELS = {"job", "instance"}
BOTH = pytest.mark.parametrize("path", [DASHBOARD, COLLECTOR_DASHBOARD], ids=["canary", "collector"])


def _read(queries: list[tuple[str, str]]) -> Names:
    read = Names()
    for _, query in queries:
        names_in(query.replace("$__rate_interval", "1m"), read)
    return read


@BOTH
def test_the_dashboard_is_valid_json_with_unique_panel_ids(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == path.stem
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), ids
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


@BOTH
def test_every_query_goes_through_the_datasource_variable(path: Path) -> None:
    dashboard = load_dashboard(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
            assert variable["definition"].startswith("label_values("), variable["name"]

    with_queries = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert with_queries
    for panel in with_queries:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["description"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    # No data source is named anywhere but through the variable.
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', path.read_text())) - {path.stem, "-- Grafana --"}
    assert uids == {"${datasource}"}


def test_the_canary_dashboard_selects_a_prompt_and_its_versions() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    assert "gen_ai_prompt_name" in variables["prompt"]["definition"]
    assert not variables["prompt"]["multi"]  # every panel compares the cohorts of one prompt
    assert "gen_ai_prompt_version" in variables["version"]["definition"]
    assert variables["version"]["multi"] and variables["version"]["includeAll"]
    assert variables["version"]["allValue"] == ".*"


def test_canary_dashboard_and_rules_read_only_what_the_instrumentation_emits(regression: Regression) -> None:
    emitted: dict[str, set[str]] = defaultdict(set)
    for name, labels, _ in parse_prometheus(regression.scrape):
        if name.startswith("prompt_canary_"):
            emitted[name].update(labels)
    # The control plane's drift metrics (GET /v1/drift/metrics), which the drift row reads.
    for name, labels, _ in parse_prometheus(drift_metrics_scrape()):
        emitted[name].update(labels)
    known_labels = set().union(*emitted.values())

    # The shipped rules, and those generated from the default policy (which the dashboard's
    # policy panel reads): every series they read, the instrumentation emits.
    groups = rule_groups() + rule_groups(fast_policy_rules(PROMPT))
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    rule_labels = {key for group in groups for rule in group["rules"] for key in rule.get("labels", {})}
    queries = dashboard_queries(load_dashboard())
    for group in groups:
        for rule in group["rules"]:
            queries.append((rule.get("record") or rule["alert"], rule["expr"]))
            # The queries of the annotations' templates.
            for text in rule.get("annotations", {}).values():
                queries.extend((rule["alert"], q) for q in re.findall(r"`([^`]+)`", text))

    read = _read(queries)
    assert {"prompt_canary_responses_total", "prompt_canary_checks_total", "ALERTS"} <= read.metrics
    unknown = read.metrics - set(emitted) - recorded - {"ALERTS"}
    assert unknown == set(), f"not emitted: {unknown}; emitted: {sorted(emitted)}"
    for metric, label in read.selector_labels:
        if metric in emitted:
            assert label in emitted[metric], (metric, label, emitted[metric])
    unknown_labels = read.labels - known_labels - rule_labels - ALERTS_LABELS
    assert unknown_labels == set(), f"labels not emitted: {unknown_labels}; emitted: {sorted(known_labels)}"
    # The rollout id is not among the metrics' labels: the alerts cannot carry it.
    assert not {label for label in known_labels if "rollout" in label}


def test_the_collector_dashboard_shows_every_metric_of_the_processor() -> None:
    telemetry = yaml.safe_load(PROCESSOR_METADATA.read_text())
    metrics = telemetry["telemetry"]["metrics"]
    exposed = {f"otelcol_{name}" for name in metrics}
    attributes = {a for metric in metrics.values() for a in metric.get("attributes", [])}
    read = _read(dashboard_queries(load_dashboard(COLLECTOR_DASHBOARD)))
    assert read.metrics == exposed
    assert read.labels - TARGET_LABELS <= attributes


def test_the_score_histogram_cannot_describe_output_tokens(regression: Regression) -> None:
    """Why the dashboard and the rules leave output_tokens out of the score quantiles."""
    buckets = {
        labels["le"]: value
        for name, labels, value in parse_prometheus(regression.scrape)
        if name == "prompt_canary_score_bucket"
        and labels.get("gen_ai_evaluation_name") == "output_tokens"
        and labels["prompt_canary_cohort"] == "stable"
    }
    assert buckets["+Inf"] > 0
    assert buckets["1.0"] == 0, "the score buckets now fit token counts: put output_tokens back in"
