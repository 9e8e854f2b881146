"""``prompt-canary demo --drift``: a clean promotion, then the provider's model changes behind the same
name, and drift monitoring catches it, saying when and on which signal."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from otel_prompt_canary.cli import cli


def test_the_provider_change_after_a_promotion_is_caught_on_its_signals(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["demo", "--drift", "--report", str(report), "--time-scale", "15"])
    output = result.output
    assert result.exit_code == 0, output
    assert "Outcome: DRIFT_DETECTED" in output
    assert "promote  by controller" in output and "rollback" not in output  # a clean promotion first

    events = re.findall(r"^\s+(\d+\.\d)s  (baseline|change|alert)\s+(.*)$", output, re.MULTILINE)
    kinds = [kind for _, kind, _ in events]
    assert kinds[:2] == ["baseline", "change"] and "alert" in kinds
    found = re.findall(r"alert    caught ([0-9.]+) s after the change on (.+?): ", output)
    caught = {signal: float(delay) for delay, signal in found}
    assert "JSON valid (check)" in caught  # when and on which signal
    assert all(delay >= 0 for delay in caught.values())  # nothing before the change
    assert "dropped from its baseline 100.00%" in output

    html = report.read_text()
    assert "Drift monitoring of the promoted version" in html and "<svg" in html
