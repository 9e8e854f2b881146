"""``policy validate|schema|default|rules`` and ``rollout start --policy`` (refused before any write)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from otel_prompt_canary.analysis import DEFAULT_POLICY, load_policy, policy_json_schema, prometheus_rules
from otel_prompt_canary.cli import EXIT_BAD_INPUT, cli
from otel_prompt_canary.registry import open_store
from tests.cli.cli_helpers import SPEC_V1, SPEC_V2, Cli, write

VALID = """\
ramp: {steps: [10, 50, 100], min_duration_seconds: 60}
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback}
"""


def test_validate_a_valid_policy(local: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", VALID)
    out = local.ok("policy", "validate", path).stdout
    assert out.startswith(f"{path}: valid policy: 1 signal, 1 rule (json_valid.relative -> rollback)")
    assert "ramp 10%, 50%, 100%" in out
    document = local.json("policy", "validate", path)
    assert document["rules"][0]["id"] == "json_valid.relative"
    assert load_policy(document) == load_policy(VALID)


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("signals: []\nrules: []\n", (), "invalid policy: a policy needs at least one signal"),
        (VALID.replace("json_valid, type", "judge, type"), (), "names unknown signal 'judge'"),
        (VALID, ("--ramp", "5,100"), "the ramp 5,100 disagrees with the policy's ramp.steps 10,50,100"),
        ("signals: [\n", (), "malformed policy at line 2"),
        ("- 1\n", (), "the policy must be a mapping"),
        (VALID.replace("harmful", "harmfull"), (), "signals.0.harmfull: unknown field"),
    ],
)
def test_validate_refuses_with_exit_2(
    local: Cli, tmp_path: Path, text: str, args: tuple[str, ...], message: str
) -> None:
    path = write(tmp_path / "p.yaml", text)
    error = local.fails(EXIT_BAD_INPUT, "policy", "validate", path, *args)
    assert message in error
    assert path in error


def test_validate_reads_stdin_and_reports_a_missing_file(local: Cli) -> None:
    result = local.runner.invoke(cli, ["policy", "validate", "-"], input=VALID)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<stdin>: valid policy")
    assert "No such file" in local.fails(EXIT_BAD_INPUT, "policy", "validate", "/nonexistent/p.yaml")


def test_schema_and_default(local: Cli) -> None:
    assert json.loads(local.ok("policy", "schema").stdout) == policy_json_schema()
    assert load_policy(local.ok("policy", "default").stdout) == DEFAULT_POLICY


def _two_versions(cli: Cli, tmp_path: Path) -> None:
    cli.ok("prompt", "push", write(tmp_path / "v1.yaml", SPEC_V1))
    cli.ok("prompt", "push", write(tmp_path / "v2.yaml", SPEC_V2))


def test_rules_prints_or_writes_the_policys_prometheus_rules(local: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", VALID)
    printed = local.ok("policy", "rules", path, "--prompt", "support-bot", "--for", "30s").stdout
    assert printed == prometheus_rules(load_policy(VALID), "support-bot", act_after="30s")
    (group,) = yaml.safe_load(printed)["groups"]
    assert [r["labels"]["prompt_canary_rule"] for r in group["rules"] if "alert" in r] == [
        "json_valid.relative"
    ]

    out = tmp_path / "rules.yml"
    options = ("--horizon", "6h", "--resolution", "30s", "-o", str(out))
    assert local.ok("policy", "rules", path, "--prompt", "support-bot", *options).stdout == ""
    assert out.read_text() == prometheus_rules(
        load_policy(VALID), "support-bot", horizon="6h", resolution="30s"
    )


def test_rules_takes_score_ranges(local: Cli, tmp_path: Path) -> None:
    tokens = VALID.replace(
        "json_valid, kind: proportion, harmful: decrease", "output_tokens, kind: mean, harmful: increase"
    )
    path = write(tmp_path / "p.yaml", tokens.replace("json_valid", "output_tokens"))
    error = local.fails(EXIT_BAD_INPUT, "policy", "rules", path, "--prompt", "p")
    assert "score 'output_tokens' has no known range" in error
    printed = local.ok(
        "policy", "rules", path, "--prompt", "p", "--score-range", "output_tokens=0:2048"
    ).stdout
    assert "2048.0 - (" in printed


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("signals: []\nrules: []\n", (), "invalid policy: a policy needs at least one signal"),
        (VALID, ("--prompt", "no spaces"), "invalid prompt name 'no spaces'"),
        (VALID, ("--horizon", "forever"), "invalid horizon 'forever'"),
        (VALID, ("--score-range", "judge"), "Invalid value for '--score-range': 'judge': write NAME=LO:HI"),
        (VALID, ("--score-range", "json_valid=0:1"), "score ranges given for ['json_valid']"),
    ],
)
def test_rules_refuses_with_exit_2(
    local: Cli, tmp_path: Path, text: str, args: tuple[str, ...], message: str
) -> None:
    path = write(tmp_path / "p.yaml", text)
    prompt = () if "--prompt" in args else ("--prompt", "support-bot")
    assert message in local.fails(EXIT_BAD_INPUT, "policy", "rules", path, *prompt, *args)


def test_start_with_an_invalid_policy_writes_nothing(any_cli: Cli, tmp_path: Path) -> None:
    _two_versions(any_cli, tmp_path)
    before = any_cli.json("rollout", "status", "support-bot")
    path = write(tmp_path / "bad.yaml", "signals:\n  - {name: json_valid, kind: proportion}\nrules: []\n")
    error = any_cli.fails(
        EXIT_BAD_INPUT, "rollout", "start", "support-bot", "2", "--policy", path, "--reason", "r"
    )
    assert "invalid policy" in error
    assert "signals.0.harmful: Field required" in error
    assert any_cli.json("rollout", "status", "support-bot") == before
    error = any_cli.fails(
        EXIT_BAD_INPUT, "rollout", "start", "support-bot", "2", "--policy", write(tmp_path / "p.yaml", VALID),
        "--ramp", "1,100", "--reason", "r",
    )  # fmt: skip
    assert "disagrees with the policy's ramp.steps" in error
    assert any_cli.json("rollout", "history", "support-bot") == []


def test_start_takes_the_ramp_from_the_policy(any_cli: Cli, tmp_path: Path) -> None:
    _two_versions(any_cli, tmp_path)
    path = write(tmp_path / "p.yaml", VALID)
    route = any_cli.json("rollout", "start", "support-bot", "2", "--policy", path, "--reason", "r")
    assert route["ramp"] == [10.0, 50.0, 100.0]
    (start,) = any_cli.json("rollout", "history", "support-bot")
    assert start["evidence"]["policy"]["ramp"]["min_duration_seconds"] == 60.0


def test_start_without_a_policy_stores_the_default(local: Cli, db_path: str, tmp_path: Path) -> None:
    _two_versions(local, tmp_path)
    local.ok("rollout", "start", "support-bot", "2", "--ramp", "25,100", "--reason", "r")
    with open_store(db_path) as store:
        stored = store.get_rollout("support-bot").policy
    assert stored is not None
    assert load_policy(stored).rules == DEFAULT_POLICY.rules
    assert stored["ramp"]["steps"] == [25.0, 100.0]  # type: ignore[index]
