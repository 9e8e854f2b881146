"""The Alertmanager example is valid and routes every prompt-canary alert to the control plane.

``amtool`` (Debian's ``prometheus-alertmanager`` package) checks the file and walks its routing
tree; the live scenarios (test_scenario.py) run it for real, pointed at a control plane.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.dashboards.support import ALERTMANAGER, alertmanager_config, rule_groups
from tests.support.services import unavailable


def _amtool(*args: str) -> str:
    binary = shutil.which("amtool")
    if not binary:
        unavailable("amtool not found (apt-get install prometheus-alertmanager)")
    assert binary
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _receivers(*labels: str) -> set[str]:
    """The receivers an alert with ``labels`` (``name=value``) is sent to."""
    found = _amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    return set(found.strip().split(","))


def test_amtool_accepts_the_example_and_its_test_copy(tmp_path: Path) -> None:
    assert "SUCCESS" in _amtool("check-config", str(ALERTMANAGER))
    copy = tmp_path / "alertmanager.yml"
    copy.write_text(alertmanager_config("http://127.0.0.1:8787", tmp_path / "token"))
    assert "SUCCESS" in _amtool("check-config", str(copy))


def test_every_alert_of_the_rules_reaches_the_control_plane_and_the_team() -> None:
    (_, alerts) = rule_groups()
    for rule in alerts["rules"]:
        labels = {
            "alertname": rule["alert"],
            "gen_ai_prompt_name": "support-bot",
            "gen_ai_prompt_version": "2",
            **rule["labels"],
            "prompt": "support-bot",  # what Prometheus makes of the template
        }
        assert _receivers(*(f"{k}={v}" for k, v in labels.items())) == {"prompt-canary", "team"}, rule[
            "alert"
        ]


def test_alerts_the_control_plane_would_refuse_are_not_sent_to_it() -> None:
    assert _receivers("alertname=HighCPU", "severity=critical") == {"team"}
    assert _receivers("alertname=PromptCanaryX", "action=rollback") == {"team"}  # no prompt
    assert _receivers("alertname=PromptCanaryX", "action=promote", "prompt=support-bot") == {"team"}


def test_the_webhook_is_authenticated_and_reports_resolved_alerts() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == "prompt-canary"]
    assert route["group_by"] == ["..."]  # one alert per notification
    assert route["continue"] is True
    (receiver,) = [r for r in config["receivers"] if r["name"] == "prompt-canary"]
    (webhook,) = receiver["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["url"].endswith("/v1/alerts/alertmanager")
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials_file" in webhook["http_config"]["authorization"]
