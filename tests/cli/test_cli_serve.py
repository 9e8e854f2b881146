"""``prompt-canary serve``: refuses to start insecurely, and runs the real control plane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest

from otel_prompt_canary.cli import EXIT_BAD_INPUT, EXIT_FAILURE, cli
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service import server as service_server
from tests.cli.cli_helpers import Cli, process_environment, serving
from tests.support.auth import TOKEN


@pytest.mark.usefixtures("no_server")
def test_refuses_to_start_without_a_token(db_path: str) -> None:
    error = Cli(db_path).fails(EXIT_BAD_INPUT, "serve")
    assert error == (
        "refusing to start without a token: set --token or OTEL_PROMPT_CANARY_TOKEN "
        "(e.g. `openssl rand -hex 32`) or --credentials-file, or pass --insecure-dev for local development"
    )


@pytest.mark.usefixtures("no_server")
def test_refuses_a_short_token(db_path: str) -> None:
    error = Cli(db_path, token="abc").fails(EXIT_BAD_INPUT, "serve")
    assert error.startswith("the token is too short (3 characters)")


@pytest.mark.usefixtures("no_server")
def test_refuses_inconsistent_limits(db_path: str) -> None:
    error = Cli(db_path, token=TOKEN).fails(
        EXIT_BAD_INPUT, "serve", "--max-body-bytes", "2048", "--max-template-bytes", "4096"
    )
    assert error == "max_template_bytes (4096) must not exceed max_body_bytes (2048)"


def test_says_how_to_install_the_server(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "otel_prompt_canary.service.server", None)
    error = Cli(db_path, token=TOKEN).fails(EXIT_FAILURE, "serve")
    assert "pip install 'otel-prompt-canary[server]'" in error


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServiceSettings]:
    """The settings `serve` would run the server with, recorded instead of serving."""
    seen: list[ServiceSettings] = []

    def record(_registry: object, settings: ServiceSettings, **_where: object) -> None:
        seen.append(settings)

    monkeypatch.setattr(service_server, "run_server", record)
    return seen


def test_every_setting_is_one_option_of_serve() -> None:
    serve = cli.commands["serve"]
    options = {param.name: param for param in serve.params if isinstance(param, click.Option)}
    for name, field in ServiceSettings.model_fields.items():
        if name == "token":
            continue  # the global --token
        option = options[name]
        assert option.envvar == "OTEL_PROMPT_CANARY_" + name.upper()
        assert option.help == field.description
        if field.default is not None:
            # A list setting (environments) is an option written comma-separated.
            default = ",".join(field.default) if isinstance(field.default, tuple) else field.default
            assert option.default == default, name


def test_options_and_variables_reach_the_settings(db_path: str, started: list[ServiceSettings]) -> None:
    env: dict[str, str | None] = {
        "OTEL_PROMPT_CANARY_CONTROLLER_INTERVAL_SECONDS": "0.5",
        "OTEL_PROMPT_CANARY_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
    }
    result = Cli(db_path, token=TOKEN)(
        "serve", "--time-scale", "60", "--no-controller", "--webhook-tolerance", "30", env=env
    )
    assert result.exit_code == 0, result.output
    (settings,) = started
    assert (settings.time_scale, settings.controller, settings.webhook_tolerance_seconds) == (60, False, 30)
    assert settings.controller_interval_seconds == 0.5
    assert settings.webhook_secret is not None
    assert settings.token is not None and settings.token.get_secret_value() == TOKEN
    assert settings.max_body_bytes == ServiceSettings.model_fields["max_body_bytes"].default
    assert "warning: --time-scale 60" in result.stderr


@pytest.mark.usefixtures("no_server")
def test_a_bad_setting_from_the_environment_is_refused_by_name(db_path: str) -> None:
    result = Cli(db_path, token=TOKEN)("serve", env={"OTEL_PROMPT_CANARY_TIME_SCALE": "fast"})
    assert result.exit_code == EXIT_BAD_INPUT
    assert "OTEL_PROMPT_CANARY_TIME_SCALE" in result.stderr
    assert "'fast' is not a valid float" in result.stderr


def test_serves_with_a_token_from_the_environment(tmp_path: Path, specs: tuple[str, str]) -> None:
    db = str(tmp_path / "served.db")
    env = process_environment(OTEL_PROMPT_CANARY_TOKEN=TOKEN)
    with serving("--registry", db, env=env) as (url, _stderr):
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        assert Cli(url).fails(EXIT_FAILURE, "prompt", "push", specs[0]).startswith("missing credentials")
        assert Cli(url, token=TOKEN).ok("prompt", "push", specs[0]).stdout == ("support-bot@1 (new)\n")
    # Everything went to the store.
    assert Cli(db).json("prompt", "list")[0]["name"] == "support-bot"


def test_insecure_dev_starts_without_a_token_and_warns(tmp_path: Path, specs: tuple[str, str]) -> None:
    db = str(tmp_path / "dev.db")
    with serving("--registry", db, "--insecure-dev", env=process_environment()) as (url, stderr):
        assert any(line.startswith("warning: --insecure-dev without a token") for line in stderr)
        assert Cli(url).ok("prompt", "push", specs[0]).stdout == "support-bot@1 (new)\n"


def test_refusal_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otel_prompt_canary.cli", "serve", "--registry", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        env=process_environment(),
        timeout=60,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.startswith("error: refusing to start without a token")
    assert "Traceback" not in result.stderr


def test_insecure_dev_refuses_a_host_beyond_loopback(db_path: str) -> None:
    result = Cli(db_path)("serve", "--insecure-dev", "--host", "0.0.0.0", env=process_environment())
    assert result.exit_code == EXIT_BAD_INPUT
    assert "--insecure-dev listens on loopback only" in result.stderr


def test_open_reads_beyond_loopback_are_warned_about(db_path: str, started: list[ServiceSettings]) -> None:
    result = Cli(db_path, token=TOKEN)("serve", "--host", "0.0.0.0", env=process_environment())
    assert result.exit_code == 0, result.output
    assert "warning: reads are open" in result.stderr
    quiet = Cli(db_path, token=TOKEN)(
        "serve", "--host", "0.0.0.0", "--read-token", "read-token-0123456789abcdef", env=process_environment()
    )
    assert "reads are open" not in quiet.stderr
    assert started[-1].read_token is not None
