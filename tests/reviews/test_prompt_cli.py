"""``prompt-canary prompt`` beside the reviews: ``list`` and ``show`` in one environment
(``--environment`` or ``OTEL_PROMPT_CANARY_ENVIRONMENT``, as the API's ``?environment=``), and
``prompt reviews`` naming each review's principal, verdict, comment and time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.registry.reviews import ReviewVerdict, SqlReviews
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import Cli
from tests.support.auth import TOKEN
from tests.support.loopback import running_server


def _two_versions(registry: SqlRegistry) -> None:
    for text in ("Hello {{ name }}.", "Hi {{ name }}!"):
        registry.push(PromptSpec(name="greeter", template=text), author="alice")


@pytest.fixture
def cli(registry: SqlRegistry) -> Iterator[Cli]:
    """The CLI against a control plane serving staging and production, v2 ramping in staging."""
    _two_versions(registry)
    registry.start_rollout("greeter", 2, actor="t", reason="try", environment="staging")
    settings = ServiceSettings(token=TOKEN, environments="staging,production", controller=False)
    with running_server(registry, settings) as url:
        yield Cli(url, token=TOKEN)


def _row(listing: str) -> list[str]:
    lines = listing.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("NAME"))) :]
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
    return table[1].split()


def test_prompt_list_shows_the_flags_of_the_environment_asked_for(cli: Cli) -> None:
    assert _row(cli.ok("prompt", "list").stdout)[3:7] == ["1", "-", "-", "idle"]
    staging = cli.ok("prompt", "list", "--environment", "staging").stdout
    assert staging.splitlines()[0] == "routing flags in staging"
    assert _row(staging)[3:7] == ["1", "2", "1%", "ramping"]
    by_variable = cli("prompt", "list", env={"OTEL_PROMPT_CANARY_ENVIRONMENT": "staging"})
    assert by_variable.exit_code == 0 and by_variable.stdout == staging
    listed = cli.json("prompt", "list", "--environment", "staging")
    assert [(p["route"]["environment"], p["route"]["state"]) for p in listed] == [("staging", "ramping")]
    assert cli.json("prompt", "list")[0]["route"]["environment"] == "production"


def _flag(shown: str) -> str:
    return next(line for line in shown.splitlines() if line.startswith("flag"))[len("flag") :].strip()


def test_prompt_show_says_what_the_version_is_in_the_environment(cli: Cli) -> None:
    assert _flag(cli.ok("prompt", "show", "greeter@2", "--environment", "staging").stdout) == (
        "staging: ramping, stable v1, canary v2 at 1% [revision 2]; this version is the canary at 1%"
    )
    assert _flag(cli.ok("prompt", "show", "greeter@1", "--environment", "staging").stdout).endswith(
        "; this version is stable"
    )
    shown = cli("prompt", "show", "greeter", env={"OTEL_PROMPT_CANARY_ENVIRONMENT": "production"})
    assert _flag(shown.stdout) == "production: idle, stable v1 [revision 1]; this version is not routed"
    # The JSON is the version, as before: `rollout status --json` gives the flag.
    assert cli.json("prompt", "show", "greeter@2", "--environment", "staging")["version"] == 2


def test_an_environment_the_control_plane_does_not_serve_is_refused(cli: Cli) -> None:
    for command in (("prompt", "list"), ("prompt", "show", "greeter")):
        message = cli.fails(1, *command, "--environment", "qa")
        assert "unknown environment 'qa': this control plane serves staging, production" in message
    result = cli("prompt", "list", "--environment", "Not An Env")
    assert result.exit_code == 2 and "invalid environment" in result.stderr.lower()


def test_prompt_list_and_show_on_a_local_store(registry: SqlRegistry, store_target: str) -> None:
    _two_versions(registry)
    registry.start_rollout("greeter", 2, actor="t", reason="try", environment="staging")
    local = Cli(store_target)
    assert _row(local.ok("prompt", "list", "--environment", "staging").stdout)[3:7] == [
        "1",
        "2",
        "1%",
        "ramping",
    ]
    assert _flag(local.ok("prompt", "show", "greeter@2").stdout).endswith("this version is not routed")


def test_prompt_reviews_names_principal_verdict_comment_and_time(
    registry: SqlRegistry, store_target: str
) -> None:
    _two_versions(registry)
    reviews = SqlReviews(registry)
    reviews.record_review("greeter", 2, ReviewVerdict.REQUEST_CHANGES, principal="bob", comment="too curt")
    reviews.record_review("greeter", 2, ReviewVerdict.APPROVE, principal="carol", comment="reads well")
    table = Cli(store_target).ok("prompt", "reviews", "greeter", "2").stdout.splitlines()
    assert table[0].split() == ["ID", "AT", "PRINCIPAL", "VERDICT", "COMMENT"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table[1:3]]
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("1", "bob", "request_changes", "too curt"),
        ("2", "carol", "approve", "reads well"),
    ]
    for row in rows:
        at = datetime.strptime(row[1], "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - at) < timedelta(days=1)  # a time, today's, not a placeholder
    assert table[3] == "approvals: carol; changes requested by bob; may not roll out yet"
