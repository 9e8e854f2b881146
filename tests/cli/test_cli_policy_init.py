"""``policy init``: a starter policy that watches only the signals the application turns on."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_prompt_canary.analysis import load_policy
from otel_prompt_canary.cli import EXIT_BAD_INPUT
from tests.cli.cli_helpers import SPEC_V1, SPEC_V2, Cli, write


def _signals(text: str) -> dict[str, tuple[str, str]]:
    policy = load_policy(text)
    return {s.name: (s.kind.value, s.harmful.value) for s in policy.signals}


def test_the_default_checks_without_the_judge(local: Cli) -> None:
    # What the instrumentation runs with no settings: json_valid, max_output_tokens, truncation, refusal.
    text = local.ok("policy", "init", "-").stdout
    assert _signals(text) == {
        "json_valid": ("proportion", "decrease"),
        "max_output_tokens": ("proportion", "decrease"),
        "truncation": ("proportion", "decrease"),
        "refusal": ("proportion", "decrease"),
    }
    policy = load_policy(text)
    assert not any(s.must_have_data for s in policy.signals)
    assert {r.id: (r.action.value, r.critical) for r in policy.rules} == {
        "json_valid.relative": ("rollback", True),
        "max_output_tokens.relative": ("pause", False),
        "truncation.relative": ("rollback", False),
        "refusal.relative": ("rollback", True),
    }


def test_the_checks_the_instrumentation_is_told_to_run(local: Cli) -> None:
    env = {
        "OTEL_PROMPT_CANARY_CHECKS": "json_valid,output_tokens",
        "OTEL_PROMPT_CANARY_JUDGE_ENDPOINT": "http://j",
    }
    text = local("policy", "init", "-", env=env).stdout
    assert _signals(text) == {
        "json_valid": ("proportion", "decrease"),
        "output_tokens": ("mean", "increase"),
        "judge": ("mean", "decrease"),
    }
    # Options win over the environment.
    text = local("policy", "init", "-", "--checks", "refusal", "--no-judge", env=env).stdout
    assert _signals(text) == {"refusal": ("proportion", "decrease")}


def test_the_scoring_settings_file_and_its_prompt_overrides(local: Cli, tmp_path: Path) -> None:
    scoring = write(
        tmp_path / "scoring.yaml",
        "default:\n  escalation: {enabled: true}\n  regex: [{name: cites_order, pattern: 'order #\\\\d+'}]\n"
        "prompts:\n  support-bot:\n    refusal: {enabled: false}\n"
        "    judge: {base_url: 'http://judge', model: grader}\n",
    )
    everyone = _signals(local.ok("policy", "init", "-", "--scoring", scoring).stdout)
    assert list(everyone) == [
        "json_valid",
        "cites_order",
        "max_output_tokens",
        "truncation",
        "refusal",
        "escalation",
    ]
    text = local.ok("policy", "init", "-", "--scoring", scoring, "--prompt", "support-bot").stdout
    assert list(_signals(text)) == [
        "json_valid",
        "cites_order",
        "max_output_tokens",
        "truncation",
        "escalation",
        "judge",
    ]
    assert "# Starter canary policy for prompt 'support-bot'" in text
    assert "a check this command does not know: review it" in text  # cites_order


def test_it_writes_a_file_the_rollout_starts_with(local: Cli, tmp_path: Path) -> None:
    path = str(tmp_path / "policy.yaml")
    out = local.ok("policy", "init", path, "--checks", "json_valid,refusal").stdout
    assert out == (
        f"{path}: starter policy watching json_valid, refusal; edit it, then "
        f"`prompt-canary rollout start NAME VERSION --policy {path} --reason ...`\n"
    )
    assert local.fails(EXIT_BAD_INPUT, "policy", "init", path) == (
        f"{path} exists: give --force to overwrite it, or another FILE"
    )
    local.ok("policy", "init", path, "--force", "--checks", "json_valid")
    local.ok("prompt", "push", write(tmp_path / "v1.yaml", SPEC_V1))
    local.ok("prompt", "push", write(tmp_path / "v2.yaml", SPEC_V2))
    route = local.json("rollout", "start", "support-bot", "2", "--policy", path, "--reason", "warmer")
    assert route["state"] == "ramping"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--checks", "none"),
            "no check or score is turned on, so a policy would have nothing to watch: name the "
            "application's checks (--checks json_valid,refusal) or turn the judge on (--judge)",
        ),
        (
            ("--checks", "json_valid,judge"),
            "unknown check 'judge': choose from ['escalation', 'json_valid', 'max_output_tokens', "
            "'output_tokens', 'refusal', 'truncation']",
        ),
    ],
)
def test_nothing_to_watch_or_an_unknown_check_is_refused(
    local: Cli, args: tuple[str, ...], message: str
) -> None:
    assert local.fails(EXIT_BAD_INPUT, "policy", "init", "-", *args) == message


def test_a_policy_requiring_a_signal_no_one_produces_is_refused_at_start(
    any_cli: Cli, tmp_path: Path
) -> None:
    any_cli.ok("prompt", "push", write(tmp_path / "v1.yaml", SPEC_V1))
    any_cli.ok("prompt", "push", write(tmp_path / "v2.yaml", SPEC_V2))
    policy = write(
        tmp_path / "judge.yaml",
        "signals:\n  - {name: judge, kind: mean, harmful: decrease, must_have_data: true}\n"
        "rules:\n  - {signal: judge, type: relative, margin: 0.05, action: pause}\n",
    )
    error = any_cli.fails(
        EXIT_BAD_INPUT, "rollout", "start", "support-bot", "2", "--policy", policy, "--reason", "r"
    )
    assert error == (
        "the policy must have data from signal 'judge' (must_have_data), but no one "
        "produces it: no report for prompt 'support-bot' has ever carried prompt_canary.score.judge, so "
        "no step could become ready. Turn it on in the application (docs/checks.md), or start without "
        "must_have_data on it: its rules still judge it once its data arrives"
    )
    assert any_cli.json("rollout", "history", "support-bot") == []
