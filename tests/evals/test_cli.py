"""``prompt-canary dataset``, ``eval`` and the gate of ``rollout start``, the same on a local store and
through a control plane (each on SQLite and PostgreSQL), against the simulated LLM through the real
openai SDK and its usual environment variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_prompt_canary.demo.behaviour import Behaviour
from otel_prompt_canary.demo.simulated_llm import SimulatedLLM
from tests.cli.cli_helpers import Cli, write
from tests.cli.conftest import any_cli, db_path, direct, remote, served_store, server_url
from tests.evals.golden import BILLING_CASES, SPEC_V1, SPEC_V2, SPEC_V3, dataset_jsonl, dataset_yaml

__all__ = ["any_cli", "db_path", "direct", "remote", "served_store", "server_url"]  # the CLI suite's fixtures

POLICY = """\
signals:
  - {name: json_valid, kind: proportion, harmful: decrease}
rules:
  - {signal: json_valid, type: relative, margin: 0.01, action: rollback}
gate:
  dataset: support-golden
  min_pass_rate: 0.9
"""


@pytest.fixture
def env(llm: SimulatedLLM, behaviour: Behaviour) -> dict[str, str | None]:
    """The SDK's usual variables, pointing at the simulated LLM."""
    return {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key", "OTEL_PROMPT_CANARY_CHECKS": None}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return {
        "v1": write(tmp_path / "v1.yaml", SPEC_V1),
        "v2": write(tmp_path / "v2.yaml", SPEC_V2),
        "v3": write(tmp_path / "v3.yaml", SPEC_V3),
        "golden": write(tmp_path / "support-golden.yaml", dataset_yaml()),
        "policy": write(tmp_path / "policy.yaml", POLICY),
        "html": str(tmp_path / "report.html"),
    }


def evaluate(cli: Cli, env: dict[str, str | None], version: str, *extra: str) -> tuple[int, str, str]:
    result = cli(
        "eval", "run", "support-bot", version, "--dataset", "support-golden", "--judge-model", "sim-judge",
        *extra, env=env,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_a_broken_candidate_fails_the_gate_and_starts_only_with_skip_gate(
    any_cli: Cli, env: dict[str, str | None], files: dict[str, str]
) -> None:
    for version in ("v1", "v2", "v3"):
        any_cli.ok("prompt", "push", files[version])
    assert any_cli.ok("dataset", "push", files["golden"]).stdout.strip() == (
        "support-bot/support-golden@1 (new, 12 cases)"
    )

    code, out, err = evaluate(any_cli, env, "stable")
    assert code == 0, err
    assert out.startswith("support-bot@1 on support-golden@1: 12 of 12 cases passed, 0 failed, 0 errors")

    code, out, err = evaluate(
        any_cli, env, "2", "--policy", files["policy"], "--html", files["html"], "--json"
    )
    assert code == 1
    assert err.startswith(
        "error: support-bot@2 on support-golden@1 does not pass the evaluation gate: the pass rate"
    )
    document = json.loads(out)
    assert document["run"]["status"] == "complete" and document["gate"]["passed"] is False
    assert document["gate"]["failed_cases"] == list(BILLING_CASES)
    base = document["comparison"]["baseline"]
    assert (base["version"], base["cases"], base["passed"]) == (1, 12, 12)
    pass_signal = document["comparison"]["signals"][0]
    assert (pass_signal["signal"], pass_signal["worse_cases"]) == ("pass", list(BILLING_CASES))
    report = Path(files["html"]).read_text(encoding="utf-8")
    assert "does not pass the evaluation gate" in report and report.count('class="worse"') == 4

    refused = any_cli.fails(
        1, "rollout", "start", "support-bot", "2", "--policy", files["policy"], "--reason", "friendlier tone"
    )
    assert refused.startswith("support-bot@2 on support-golden@1 does not pass the evaluation gate: ")
    assert "failed cases: billing-1, billing-2, billing-3, billing-4" in refused
    assert any_cli.json("rollout", "status", "support-bot")["state"] == "idle"

    any_cli.ok(
        "rollout", "start", "support-bot", "2", "--policy", files["policy"], "--skip-gate",
        "--reason", "hotfix, reviewed by hand",
    )  # fmt: skip
    [*_, start] = any_cli.json("rollout", "history", "support-bot")
    assert start["action"] == "start"
    assert start["reason"].startswith(
        "hotfix, reviewed by hand [evaluation gate skipped; it would refuse: the pass"
    )
    # The same, as evidence: from a local store and from a control plane alike.
    gate = start["evidence"]["gate"]
    assert (gate["outcome"], gate["failed_cases"], gate["totals"]["passed"]) == (
        "skipped",
        list(BILLING_CASES),
        8,
    )
    assert start["evidence"]["policy"]["gate"]["dataset"] == "support-golden"


def test_an_equivalent_candidate_passes_and_prompt_diff_shows_the_runs_side_by_side(
    any_cli: Cli, env: dict[str, str | None], files: dict[str, str]
) -> None:
    for version in ("v1", "v2", "v3"):
        any_cli.ok("prompt", "push", files[version])
    any_cli.ok("dataset", "push", files["golden"])
    assert evaluate(any_cli, env, "1")[0] == 0
    code, out, err = evaluate(any_cli, env, "3", "--policy", files["policy"])
    assert code == 0, err
    assert "gate (--policy): the evaluation gate passes: run " in out
    assert "cases that got worse: none" in out
    assert evaluate(any_cli, env, "2")[0] == 0  # no --policy: a run that completes exits 0

    any_cli.ok("rollout", "start", "support-bot", "3", "--policy", files["policy"], "--reason", "temperature")
    [*_, start] = any_cli.json("rollout", "history", "support-bot")
    assert "[evaluation gate passed: run " in start["reason"]
    gate = start["evidence"]["gate"]
    assert (gate["outcome"], gate["problems"], gate["worse_cases"]) == ("passed", [], [])
    assert gate["run_id"] in start["reason"]

    diff = any_cli.ok("prompt", "diff", "support-bot", "1", "2").stdout
    assert "Evaluations on support-golden@1: v1 (run " in diff
    assert "cases that got worse: billing-1, billing-2, billing-3, billing-4" in diff
    evaluations = any_cli.json("prompt", "diff", "support-bot", "1", "3")["evaluations"]
    assert [e["candidate"]["version"] for e in evaluations] == [3]

    runs = any_cli.json("eval", "list", "support-bot")
    assert [r["version"] for r in runs] == [2, 3, 1]
    listed = any_cli.ok("eval", "list", "support-bot", "--version", "2").stdout
    assert "support-golden@1  complete  manual  66.7% (8/12)" in listed
    shown = any_cli.ok("eval", "show", "support-bot", runs[0]["run_id"]).stdout
    assert "billing-1  failed   json_valid: the answer is not valid JSON" in shown


def test_datasets_are_listed_shown_and_diffed(any_cli: Cli, files: dict[str, str], tmp_path: Path) -> None:
    any_cli.ok("prompt", "push", files["v1"])
    any_cli.ok("dataset", "push", files["golden"])
    assert "(unchanged: identical content, 12 cases)" in any_cli.ok("dataset", "push", files["golden"]).stdout
    jsonl = write(tmp_path / "support-golden.jsonl", dataset_jsonl())
    assert (
        "support-golden@2 (new, 12 cases)"
        in any_cli.ok("dataset", "push", jsonl, "--prompt", "support-bot").stdout
    )

    listed = any_cli.ok("dataset", "list", "support-bot").stdout.splitlines()
    assert listed[1].split()[:4] == ["support-golden", "2", "2", "12"]
    shown = any_cli.ok("dataset", "show", "support-bot", "support-golden@1").stdout
    [row] = [line for line in shown.splitlines() if "billing-1" in line]
    assert row.startswith('5     billing-1   billing   {"question": "Why was my card charged twice thi...')
    assert row.endswith("contains 1, avoids 1, reference")
    assert any_cli.json("dataset", "show", "support-bot", "support-golden")["version"] == 2
    diff = any_cli.ok("dataset", "diff", "support-bot", "support-golden", "1", "2").stdout
    assert diff.startswith("support-bot/support-golden@1 -> support-golden@2: 12 cases changed (billing-1,")
    assert "description changed" in diff


def test_a_bad_dataset_is_refused_naming_the_line_and_nothing_is_stored(
    any_cli: Cli, files: dict[str, str], tmp_path: Path
) -> None:
    any_cli.ok("prompt", "push", files["v1"])
    lines = dataset_jsonl().splitlines()
    lines[2] = lines[2].replace('"question"', '"qustion"')
    bad = write(tmp_path / "bad.jsonl", "\n".join(lines) + "\n")
    error = any_cli.fails(2, "dataset", "push", bad, "--prompt", "support-bot")
    assert error.startswith(
        "line 3 (case 'billing-3'): unknown variable 'qustion' (support-bot@1 uses: question)"
    )
    lines[2] = lines[0]
    twice = write(tmp_path / "twice.jsonl", "\n".join(lines) + "\n")
    error = any_cli.fails(2, "dataset", "push", twice, "--prompt", "support-bot")
    assert "line 3 (case 'billing-1'): the id is already used by line 1 (case 'billing-1')" in error
    assert "no datasets yet" in any_cli.ok("dataset", "list", "support-bot").stdout


def test_an_incomplete_run_is_stored_and_exits_1(
    any_cli: Cli, env: dict[str, str | None], files: dict[str, str], behaviour: Behaviour
) -> None:
    from otel_prompt_canary.demo.behaviour import Reply

    any_cli.ok("prompt", "push", files["v1"])
    any_cli.ok("dataset", "push", files["golden"])
    behaviour.when(user_contains="password", reply=Reply.failure(503, retry_after=0.01))
    code, out, err = evaluate(any_cli, env, "1", "--retries", "1")
    assert code == 1
    assert err.startswith("error: the run is incomplete (1 of 12 cases ended in error after their retries")
    assert "it never passes a gate" in err
    assert "account-1  error" in out
    [run] = any_cli.json("eval", "list", "support-bot")
    assert run["status"] == "incomplete"
