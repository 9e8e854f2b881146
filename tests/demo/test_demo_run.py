"""`prompt-canary demo` end to end: a regression is rolled back, a healthy candidate promoted."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_prompt_canary.cli import cli


def run(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli, ["demo", "--report", str(report), "--time-scale", "15", "--rate", "100", *extra]
    )
    return result.exit_code, result.output, report.read_text() if report.exists() else ""


def test_the_regression_is_rolled_back_with_evidence(tmp_path: Path) -> None:
    code, output, html = run(tmp_path)
    assert code == 0, output
    assert "Outcome: ROLLED_BACK" in output
    assert "rollback by controller: rule 'json_valid.relative' is proven" in output
    assert "<svg" in html
    assert "Decision: rollback" in html


def test_a_healthy_candidate_walks_the_ramp_to_promotion(tmp_path: Path) -> None:
    code, output, html = run(tmp_path, "--healthy")
    assert code == 0, output
    assert "Outcome: PROMOTED" in output
    assert output.count("advance  by controller") == 3
    assert "promote  by controller" in output
    assert "Decision: promote" in html


def test_the_output_tokens_row_shows_figures_for_both_cohorts(tmp_path: Path) -> None:
    # The row the README shows: a mean and a sample count per cohort, never "-" once traffic flows.
    code, output, _ = run(tmp_path)
    assert code == 0, output
    row = re.compile(r"output tokens \(score\)\s+(\d+\.\d) \(n=(\d+)\)\s+(\d+\.\d) \(n=(\d+)\)")
    figures = [m.groups() for m in row.finditer(output)]
    assert figures, output
    stable_mean, stable_n, canary_mean, canary_n = figures[-1]
    assert int(stable_n) > 0 and int(canary_n) > 0
    assert float(canary_mean) > float(stable_mean)  # the friendlier candidate writes longer answers


def test_without_the_demo_extra_it_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)  # as if the openai SDK were not installed
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a clean exit, no traceback
    assert result.output == (
        "error: the demo needs the demo extra (openai missing): pip install 'otel-prompt-canary[demo]'\n"
    )
