"""`prompt-canary demo` end to end: a regression is rolled back, a healthy candidate promoted."""

from __future__ import annotations

from pathlib import Path

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
