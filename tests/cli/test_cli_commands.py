"""Every command end to end, against a registry file and against a running control plane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_prompt_canary.cli import cli
from tests.cli.cli_helpers import CLEAN_ENV, ROUTE_FIELDS, Cli, write


def test_push_list_show_diff(any_cli: Cli, specs: tuple[str, str]) -> None:
    v1, v2 = specs
    assert any_cli.ok("prompt", "push", v1).stdout == "support-bot@1 (new)\n"
    assert any_cli.ok("prompt", "push", v1).stdout == ("support-bot@1 (unchanged: identical content)\n")
    assert any_cli.ok("prompt", "push", v2).stdout == "support-bot@2 (new)\n"

    table = any_cli.ok("prompt", "list").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "LATEST",
        "VERSIONS",
        "STABLE",
        "CANARY",
        "WEIGHT",
        "STATE",
        "REVISION",
    ]
    assert table[1].split() == ["support-bot", "2", "2", "1", "-", "-", "idle", "1"]
    # Columns line up: each header starts where its values start.
    assert table[0].index("STATE") == table[1].index("idle")

    shown = any_cli.ok("prompt", "show", "support-bot@1").stdout
    assert shown.startswith("version      support-bot@1  sha256:")
    # A control plane records the principal of the credential that pushed (the write token's is
    # "admin"), not a name the client states; a local store records the CLI's --actor ($USER).
    assert ("by admin" if any_cli.registry.startswith("http") else "by tester") in shown
    assert "--- message 0 (system) ---" in shown
    assert "Answer with compact JSON only:" in shown
    assert "variables    question" in shown
    latest = any_cli.ok("prompt", "show", "support-bot").stdout
    assert "support-bot@2" in latest
    assert any_cli.ok("prompt", "show", "support-bot@latest").stdout == latest

    diff = any_cli.ok("prompt", "diff", "support-bot", "1", "2").stdout
    lines = diff.splitlines()
    assert lines[0] == (
        "support-bot@1 -> support-bot@2: system prompt changed (+1 -1 lines); "
        "config.temperature: 0.2 -> 0.7 [blast radius: system]"
    )
    assert "--- support-bot@1 template" in lines
    assert "-You are the support assistant of Acme. Answer with compact JSON only:" in lines
    assert '+    "temperature": 0.7' in lines


def test_rollout_lifecycle(any_cli: Cli, specs: tuple[str, str]) -> None:
    for spec in specs:
        any_cli.ok("prompt", "push", spec)
    started = any_cli.ok("rollout", "start", "support-bot", "2", "--ramp", "1,5,100", "--reason", "warmer")
    assert started.stdout.startswith("started rollout ")
    assert started.stdout.splitlines()[1] == (
        "support-bot: ramping, v2 at 1% (step 1/3), stable v1 [revision 2]"
    )

    status = any_cli.ok("rollout", "status", "support-bot").stdout
    assert "state     ramping (step 1/3)" in status
    assert "canary    v2 at 1% (100 bp)" in status
    assert "v1 -> v2, started " in status
    assert "by tester" in status
    assert "ramp      [1%], 5%, 100%" in status

    def step(action: str, *extra: str) -> str:
        out: str = any_cli.ok("rollout", action, "support-bot", "--reason", action, *extra).stdout
        return out.strip()

    assert step("advance") == "support-bot: ramping, v2 at 5% (step 2/3), stable v1 [revision 3]"
    assert step("pause", "--evidence", '{"p": 0.01}') == (
        "support-bot: paused, v2 at 5% (step 2/3), stable v1 [revision 4]"
    )
    assert step("resume", "--expected-revision", "4") == (
        "support-bot: ramping, v2 at 5% (step 2/3), stable v1 [revision 5]"
    )
    assert step("promote", "--actor", "release-bot") == (
        "support-bot: promoted, stable v2, no canary [revision 6]"
    )

    history = any_cli.ok("rollout", "history", "support-bot").stdout.splitlines()
    assert history[0].split()[:4] == ["ID", "AT", "ACTION", "ACTOR"]
    actions = [line.split()[3] for line in history[1:]]
    assert actions == ["start", "advance", "pause", "resume", "promote"]
    assert "release-bot" in history[-1]
    assert history[-1].rstrip().endswith("promote")
    records = any_cli.json("rollout", "history", "support-bot")
    assert records[2]["evidence"] == {"p": 0.01}
    assert [r["actor"] for r in records] == ["tester"] * 4 + ["release-bot"]
    assert len(any_cli.json("rollout", "history", "support-bot", "--limit", "2")) == 2

    # A second rollout, rolled back.
    v3 = Path(specs[0]).read_text().replace("temperature: 0.2", "temperature: 0.3")
    any_cli.ok("prompt", "push", write(Path(specs[0]).parent / "v3.yaml", v3))
    any_cli.ok("rollout", "start", "support-bot", "3", "--reason", "cooler")
    assert step("rollback") == "support-bot: rolled_back, stable v2, no canary [revision 8]"
    status = any_cli.ok("rollout", "status", "support-bot").stdout
    assert "state     rolled_back" in status
    assert ", ended " in status


def test_json_shapes(any_cli: Cli, specs: tuple[str, str], tmp_path: Path) -> None:
    pushed = any_cli.json("prompt", "push", specs[0])
    assert set(pushed) == {"version", "created"}
    assert pushed["created"] is True
    version_fields = {
        "name",
        "version",
        "content_hash",
        "template",
        "messages",
        "template_role",
        "variables",
        "model",
        "config",
        "environment",
        "commit_message",
        "author",
        "created_at",
    }
    assert set(pushed["version"]) == version_fields
    any_cli.ok("prompt", "push", specs[1])

    listed = any_cli.json("prompt", "list")
    assert [set(p) for p in listed] == [{"name", "latest_version", "versions", "route"}]
    assert set(listed[0]["route"]) == ROUTE_FIELDS

    shown = any_cli.json("prompt", "show", "support-bot@2")
    assert set(shown) == version_fields
    assert shown["config"] == {"temperature": 0.7}

    diff = any_cli.json("prompt", "diff", "support-bot", "1", "2")
    assert set(diff) == {
        "name",
        "from_version",
        "to_version",
        "blast_radius",
        "summary",
        "template_diff",
        "config_diff",
        "evaluations",  # the two versions' runs side by side (docs/evaluations.md): none here
    }
    assert diff["evaluations"] == []
    assert diff["blast_radius"] == "system"

    policy = write(
        tmp_path / "policy.yaml",
        "signals:\n  - {name: format_valid, kind: proportion, harmful: decrease}\n"
        "rules:\n  - {signal: format_valid, type: relative, margin: 0.02, action: rollback}\n",
    )
    route = any_cli.json("rollout", "start", "support-bot", "2", "--policy", policy, "--reason", "r")
    assert set(route) == ROUTE_FIELDS
    assert route["canary_weight_bp"] == 100
    assert route["ramp"] == [1.0, 5.0, 20.0, 50.0, 100.0]
    # The routing flag's fields, and the verdict beside them: GET .../rollout/verdict's document.
    status = any_cli.json("rollout", "status", "support-bot")
    assert set(status) == ROUTE_FIELDS | {"verdict"}
    assert {field: status[field] for field in ROUTE_FIELDS} == route
    assert set(status["verdict"]) == VERDICT_FIELDS
    assert status["verdict"]["rollout_id"] == route["rollout_id"]
    assert status["verdict"]["policy"]["signals"][0]["name"] == "format_valid"
    verdict = status["verdict"]["verdict"]
    assert (verdict["decision"], verdict["ready"], verdict["step"]) == ("continue", False, 0)
    assert "the canary cohort has 0 of the 100 samples the step needs" in verdict["waiting_for"]

    paused = any_cli.json("rollout", "pause", "support-bot", "--reason", "look")
    assert set(paused) == ROUTE_FIELDS
    assert paused["state"] == "paused"
    assert any_cli.json("rollout", "status", "support-bot")["verdict"]["state"] == "paused"
    any_cli.ok("rollout", "rollback", "support-bot", "--reason", "done")
    assert any_cli.json("rollout", "status", "support-bot")["verdict"] is None

    history = any_cli.json("rollout", "history", "support-bot")
    assert set(history[0]) == {
        "id",
        "prompt",
        "rollout_id",
        "action",
        "actor",
        "reason",
        "evidence",
        "from_state",
        "to_state",
        "from_revision",
        "to_revision",
        "stable_version",
        "canary_version",
        "canary_weight_bp",
        "at",
        "environment",
        "principal",
    }


VERDICT_FIELDS = {
    "prompt",
    "rollout_id",
    "state",
    "step",
    "ramp",
    "step_started_at",
    "elapsed_seconds",
    "time_scale",
    "acknowledged_rules",
    "policy",
    "verdict",
    "report_origin",
}


def _token_args(any_cli: Cli) -> list[str]:
    return ["--token", any_cli.token] if any_cli.token else []


def test_global_options_may_follow_the_command(any_cli: Cli, specs: tuple[str, str]) -> None:
    any_cli.ok("prompt", "push", specs[0])
    args = ["prompt", "list", "--json", "--registry", any_cli.registry, *_token_args(any_cli)]
    result = any_cli.runner.invoke(cli, args, env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["name"] == "support-bot"


def test_registry_and_token_from_the_environment(any_cli: Cli, specs: tuple[str, str]) -> None:
    env = CLEAN_ENV | {
        "OTEL_PROMPT_CANARY_REGISTRY": any_cli.registry,
        "OTEL_PROMPT_CANARY_TOKEN": any_cli.token,
    }
    result = any_cli.runner.invoke(cli, ["prompt", "push", specs[0]], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "support-bot@1 (new)\n"


def test_push_from_stdin(any_cli: Cli) -> None:
    result = any_cli.runner.invoke(
        cli,
        ["--registry", any_cli.registry, *_token_args(any_cli), "prompt", "push", "-"],
        input='{"name": "from-stdin", "template": "Hi {{ who }}"}',
        env=CLEAN_ENV,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "from-stdin@1 (new)\n"


def test_empty_registry(any_cli: Cli) -> None:
    assert "no prompts yet" in any_cli.ok("prompt", "list").stdout
    assert any_cli.json("prompt", "list") == []


def test_default_registry_lives_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, specs: tuple[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["prompt", "push", specs[0]], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".prompt-canary" / "registry.db").is_file()


def test_actor_defaults_to_user_then_cli(local: Cli, specs: tuple[str, str]) -> None:
    for spec in specs:
        local.ok("prompt", "push", spec)
    local.ok("rollout", "start", "support-bot", "2", "--reason", "r")
    result = local(
        "rollout",
        "pause",
        "support-bot",
        "--reason",
        "x",
        env={"USER": None, "USERNAME": None, "LOGNAME": None},
    )
    assert result.exit_code == 0, result.output
    actors = [r["actor"] for r in local.json("rollout", "history", "support-bot")]
    assert actors == ["tester", "cli"]


def test_version_and_help(local: Cli) -> None:
    assert local.ok("--version").stdout.startswith("prompt-canary, version ")
    help_text = local.ok("rollout", "--help").stdout
    for command in (
        "start",
        "status",
        "advance",
        "pause",
        "resume",
        "promote",
        "rollback",
        "revert",
        "history",
    ):
        assert f"  {command} " in help_text
