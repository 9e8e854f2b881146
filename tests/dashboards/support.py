"""The files of ``dashboards/`` as the suites read them, and a small client of Prometheus's HTTP API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from otel_prompt_canary.analysis import DEFAULT_POLICY
from otel_prompt_canary.analysis.prometheus import prometheus_rules

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
RULES = DASHBOARDS / "prometheus" / "prompt-canary.rules.yml"
RULES_TEST = DASHBOARDS / "prometheus" / "prompt-canary.rules.test.yml"
ALERTMANAGER = DASHBOARDS / "alertmanager" / "alertmanager.yml"
DASHBOARD = DASHBOARDS / "grafana" / "prompt-canary.json"
COLLECTOR_DASHBOARD = DASHBOARDS / "grafana" / "prompt-canary-collector.json"
PROCESSOR_METADATA = REPO / "collector" / "processor" / "promptcanaryprocessor" / "metadata.yaml"

#: The rate window of the rules, and what the live scenarios use instead.
RULES_WINDOW, FAST_WINDOW = "[5m]", "[10s]"
FAST_FOR = "2s"


def fast_rules(text: str) -> str:
    """The rules with a 10-second window and ``for: 2s``, for scenarios that must end in seconds.

    Only the durations change: every expression, threshold, minimum sample count and label stays
    as shipped (``promtool test rules`` covers the real durations).
    """
    windows = text.count(RULES_WINDOW)
    fast, waits = re.subn(
        r"^(\s+)for: \S+$", rf"\1for: {FAST_FOR}", text.replace(RULES_WINDOW, FAST_WINDOW), flags=re.M
    )
    assert windows > 10 and waits >= 5, "the rules no longer look as fast_rules expects"
    return fast


def rule_groups(text: str | None = None) -> list[dict[str, Any]]:
    """The rule groups of the rules file (or of ``text``)."""
    loaded: dict[str, Any] = yaml.safe_load(text if text is not None else RULES.read_text())
    groups: list[dict[str, Any]] = loaded["groups"]
    return groups


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every query of a dashboard, its variables' ``label_values`` included."""
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            label, selector = label_values_query(variable["definition"])
            found.append((f"variable {variable['name']}", f"group by ({label}) ({selector})"))
    return found


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def substitute(expression: str, variables: Mapping[str, str]) -> str:
    """``expression`` with Grafana's ``$name`` and ``${name}`` variables replaced, longest names first."""
    for name in sorted(variables, key=len, reverse=True):
        expression = expression.replace("${" + name + "}", variables[name]).replace(
            "$" + name, variables[name]
        )
    return expression


class PrometheusApi:
    """Queries a Prometheus server's HTTP API; any error answer fails with Prometheus's message."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def _data(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params)
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector of ``expression`` (now, or at Unix time ``at``)."""
        params: dict[str, Any] = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._data("/api/v1/query", **params)
        assert data["resultType"] == "vector", (expression, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result

    def label_values(self, label: str, selector: str) -> list[str]:
        values: list[str] = self._data(f"/api/v1/label/{label}/values", **{"match[]": selector})
        return values

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts."""
        alerts: list[dict[str, Any]] = self._data("/api/v1/alerts")["alerts"]
        return alerts

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, with its ``health`` and ``lastError``."""
        return [rule for group in self._data("/api/v1/rules")["groups"] for rule in group["rules"]]

    def close(self) -> None:
        self.http.close()


def label_values_query(definition: str) -> tuple[str, str]:
    """``(label, selector)`` of a Grafana ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition.strip())
    assert match, definition
    return match.group(2), match.group(1)


def alertmanager_config(control_plane: str, token_file: Path) -> str:
    """dashboards/alertmanager/alertmanager.yml pointed at ``control_plane``, token in ``token_file``.

    Only the webhook's scheme, host and port and the credentials file change: the receiver's path,
    the routes and the other settings are tested as shipped.
    """
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER.read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "prompt-canary"]
    (webhook,) = receiver["webhook_configs"]
    path = httpx.URL(webhook["url"]).path
    assert path == "/v1/alerts/alertmanager", path
    webhook["url"] = control_plane + path
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return yaml.safe_dump(config, sort_keys=False)


#: The generated rules' durations in the live scenarios: Prometheus scrapes every second there.
FAST_POLICY_RULES = {"horizon": "10m", "resolution": "4s", "act_after": "2s"}


def fast_policy_rules(prompt: str) -> str:
    """``prompt-canary policy rules`` of the default policy, with the live scenarios' durations."""
    return prometheus_rules(DEFAULT_POLICY, prompt, **FAST_POLICY_RULES)
