"""``policy validate`` prints each step's own minimums when a ramp's steps set them."""

from __future__ import annotations

from pathlib import Path

from otel_prompt_canary.cli import EXIT_BAD_INPUT
from tests.cli.cli_helpers import Cli, write

SEED_RAMP = (
    Path(__file__).resolve().parents[2]
    / "collector/processor/promptcanaryprocessor/internal/policy/testdata/ramp_per_step.yaml"
)


def test_validate_prints_each_steps_minimums(local: Cli) -> None:
    out = local.ok("policy", "validate", str(SEED_RAMP)).stdout
    assert (
        "; ramp 1% (4h, 500 samples), 5% (12h, 500 samples), 20% (24h, 500 samples), "
        "50% (24h, 2000 samples), 100% (10m, 500 samples): each step's minimum duration and samples "
        "per cohort; alpha 0.05"
    ) in out


def test_validate_keeps_the_short_form_when_every_step_has_the_same_minimums(
    local: Cli, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "p.yaml",
        "ramp: {steps: [{percent: 10, min_duration: 1m}, 100], min_duration_seconds: 60}\n"
        "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\n"
        "rules: [{signal: json_valid, type: relative, action: rollback}]\n",
    )
    out = local.ok("policy", "validate", path).stdout
    assert "; ramp 10%, 100%, each step at least 60 s and 100 samples per cohort; alpha 0.05" in out


def test_validate_names_the_step_that_is_wrong(local: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.yaml",
        "ramp: {steps: [{percent: 1, min_duration: 1.5h}, 100]}\n"
        "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\n"
        "rules: [{signal: json_valid, type: relative, action: rollback}]\n",
    )
    error = local.fails(EXIT_BAD_INPUT, "policy", "validate", path)
    assert "invalid policy: ramp.steps.0.min_duration: invalid duration '1.5h'" in error
