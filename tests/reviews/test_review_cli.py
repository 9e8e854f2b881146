"""The review verbs of the CLI: against a control plane (the reviewer is the token's principal) and
against a local store (the reviewer is ``$USER``), with ``rollout start`` refused until approved."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import SPEC_V1, SPEC_V2, Cli, write
from tests.support.auth import TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

ALICE = Credential("alice", ["operate"])
BOB = Credential("bob", ["review"])


@pytest.fixture
def control_plane(registry: SqlRegistry, tmp_path: Path) -> Iterator[str]:
    settings = ServiceSettings(
        token=TOKEN,
        credentials_file=write_credentials(tmp_path, [ALICE, BOB]),
        required_approvals=1,
        controller=False,
    )
    with running_server(registry, settings) as url:
        yield url


def test_review_and_start_through_a_control_plane(control_plane: str, tmp_path: Path) -> None:
    alice, bob = Cli(control_plane, ALICE.token), Cli(control_plane, BOB.token)
    for spec in (write(tmp_path / "v1.yaml", SPEC_V1), write(tmp_path / "v2.yaml", SPEC_V2)):
        alice.ok("prompt", "push", spec)
    start = ("rollout", "start", "support-bot", "2", "--reason", "warmer tone")
    assert alice.fails(1, *start) == (
        "version 2 of support-bot needs 1 approval by someone other than its author alice; it has 0. "
        "Review it first: prompt-canary prompt approve support-bot 2"
    )
    assert alice.fails(1, "prompt", "approve", "support-bot", "2").startswith(
        "principal 'alice' may not review versions: that needs the role 'review' (it has operate)"
    )
    changes = bob.ok("prompt", "request-changes", "support-bot", "2", "--comment", "keep the JSON line")
    assert changes.stdout.splitlines() == [
        "bob requested changes to support-bot@2 (review 1)",
        "approvals: none (0 of 1 required); changes requested by bob; may not roll out yet",
    ]
    assert "bob requested changes" in alice.fails(1, *start)
    approved = bob.ok("prompt", "approve", "support-bot", "2", "--comment", "fine now")
    assert approved.stdout.splitlines()[-1] == "approvals: bob (1 of 1 required); may roll out"
    listed = bob.json("prompt", "reviews", "support-bot", "2")
    assert [(r["principal"], r["verdict"], r["comment"]) for r in listed["reviews"]] == [
        ("bob", "request_changes", "keep the JSON line"),
        ("bob", "approve", "fine now"),
    ]
    assert listed["status"]["approved"] is True
    route = alice.json("rollout", "start", "support-bot", "2", "--reason", "warmer tone")
    assert route["state"] == "ramping"
    table = alice.ok("prompt", "reviews", "support-bot", "2", "--limit", "1").stdout.splitlines()
    assert table[0].split() == ["ID", "AT", "PRINCIPAL", "VERDICT", "COMMENT"]
    assert len(table) == 3 and "fine now" in table[1]


def test_a_request_for_changes_needs_a_comment(control_plane: str) -> None:
    result = Cli(control_plane, BOB.token)("prompt", "request-changes", "support-bot", "2")
    assert result.exit_code == 2 and "Missing option '--comment'" in result.stderr


def test_reviews_on_a_local_store(store_target: str, tmp_path: Path) -> None:
    local = Cli(store_target)
    for spec in (write(tmp_path / "v1.yaml", SPEC_V1), write(tmp_path / "v2.yaml", SPEC_V2)):
        result = local("prompt", "push", spec, env={"USER": "alice"})
        assert result.exit_code == 0, result.output
    own = local("prompt", "approve", "support-bot", "2", env={"USER": "alice"})
    assert own.exit_code == 1
    assert own.stderr.startswith(
        "error: principal 'alice' may not approve version 2 of support-bot: it is its author"
    )
    approved = local(
        "--json", "prompt", "approve", "support-bot", "2", "--comment", "ok", env={"USER": "bob"}
    )
    assert approved.exit_code == 0, approved.output
    answer = json.loads(approved.stdout)
    assert (answer["review"]["principal"], answer["status"]["approvers"]) == ("bob", ["bob"])
    missing = local("prompt", "reviews", "support-bot", "7")
    assert missing.exit_code == 1 and "unknown version 7 of prompt 'support-bot'" in missing.stderr
