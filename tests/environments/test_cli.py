"""The CLI in one environment or another: ``--environment`` (or ``OTEL_PROMPT_CANARY_ENVIRONMENT``)
on the rollout commands, and a promotion from staging to production with ``--from-environment``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.cli.cli_helpers import Cli
from tests.support.auth import TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

#: An operator of staging only (a credential of the control plane's credentials file).
STAGING_OPERATOR = Credential("ci-staging", ["operate"], environments=["staging"])


@pytest.fixture
def cli(registry: SqlRegistry, tmp_path: Path) -> Iterator[Cli]:
    """The CLI against a control plane serving staging and production."""
    for text in ("Hello {{ name }}.", "Hi {{ name }}!"):
        registry.push(PromptSpec(name="greeter", template=text))
    settings = ServiceSettings(
        token=TOKEN,
        environments="staging,production",
        controller=False,
        credentials_file=write_credentials(tmp_path, [STAGING_OPERATOR]),
    )
    with running_server(registry, settings) as url:
        yield Cli(url, token=TOKEN)


def test_a_version_goes_through_staging_then_production(cli: Cli) -> None:
    started = cli.json("rollout", "start", "greeter", "2", "--reason", "try", "--environment", "staging")
    assert (started["environment"], started["canary_version"]) == ("staging", 2)
    assert cli.json("rollout", "status", "greeter")["state"] == "idle"  # production untouched
    # The variable names the environment when the option is absent.
    promoted = cli(
        "--json", "rollout", "promote", "greeter", "--reason", "good",
        env={"OTEL_PROMPT_CANARY_ENVIRONMENT": "staging"},
    )  # fmt: skip
    assert promoted.exit_code == 0, promoted.output

    shipped = cli.json("rollout", "start", "greeter", "--from-environment", "staging", "--reason", "ship")
    assert (shipped["environment"], shipped["canary_version"], shipped["state"]) == (
        "production",
        2,
        "ramping",
    )
    trail = cli.json("rollout", "history", "greeter")
    assert trail[-1]["evidence"]["promotion"]["from_environment"] == "staging"
    assert [r["action"] for r in cli.json("rollout", "history", "greeter", "--environment", "staging")] == [
        "start",
        "promote",
    ]
    status = cli.ok("rollout", "status", "greeter", "--environment", "staging").stdout
    assert [line.split()[:2] for line in status.splitlines()[:3]] == [
        ["prompt", "greeter"],
        ["environment", "staging"],
        ["state", "promoted"],
    ]


def test_an_unknown_environment_is_refused_with_nothing_changed(cli: Cli) -> None:
    message = cli.fails(1, "rollout", "start", "greeter", "2", "--reason", "x", "--environment", "qa")
    assert "unknown environment 'qa': this control plane serves staging, production" in message
    invalid = cli("rollout", "status", "greeter", "--environment", "Prod")
    assert invalid.exit_code == 2 and "invalid environment name 'Prod'" in invalid.stderr
    assert cli.json("rollout", "history", "greeter") == []
    assert cli.json("rollout", "history", "greeter", "--environment", "staging") == []


def test_a_credential_of_staging_acts_in_staging_only(cli: Cli) -> None:
    operator = Cli(cli.registry, token=STAGING_OPERATOR.token)
    message = operator.fails(
        1, "rollout", "start", "greeter", "2", "--reason", "x", "--environment", "production"
    )
    assert (
        "principal 'ci-staging' may not POST /v1/prompts/greeter/rollouts in environment 'production': "
        "that needs the role 'operate' (it has operate in staging)"
    ) in message
    assert cli.json("rollout", "history", "greeter") == []  # nothing changed in production
    started = operator.json("rollout", "start", "greeter", "2", "--reason", "try", "--environment", "staging")
    assert (started["environment"], started["state"]) == ("staging", "ramping")
    [record] = cli.json("rollout", "history", "greeter", "--environment", "staging")
    assert record["principal"] == "ci-staging"


def test_promoting_into_the_first_environment_is_refused(cli: Cli) -> None:
    message = cli.fails(
        2, "rollout", "start", "greeter", "--from-environment", "production", "--reason", "x",
        "--environment", "staging",
    )  # fmt: skip
    assert "cannot promote into staging from production" in message
    assert cli.json("rollout", "history", "greeter", "--environment", "staging") == []


def test_serve_takes_the_environments_in_promotion_order() -> None:
    from click.testing import CliRunner

    from otel_prompt_canary.cli import cli as command

    help_text = CliRunner().invoke(command, ["serve", "--help"]).output
    assert "--environments NAMES" in help_text
    assert ServiceSettings(insecure_dev=True, environments="staging, production").environments == (
        "staging",
        "production",
    )
    for wrong, message in [
        ("staging,staging", "environment 'staging' is named twice"),
        ("Staging", "invalid environment name 'Staging'"),
        ("", "invalid environment name ''"),
    ]:
        with pytest.raises(ValueError, match=message):
            ServiceSettings(insecure_dev=True, environments=wrong)
