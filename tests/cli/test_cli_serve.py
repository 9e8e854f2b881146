"""``prompt-canary serve``: refuses to start insecurely, and runs the real control plane."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cli_helpers import TOKEN, Cli

from otel_prompt_canary.cli import EXIT_BAD_INPUT, EXIT_FAILURE
from otel_prompt_canary.service import server as service_server


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly instead of blocking if a refused `serve` started a server after all."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(service_server, "run_server", refuse)


@pytest.mark.usefixtures("no_server")
def test_refuses_to_start_without_a_token(db_path: str) -> None:
    error = Cli(db_path).fails(EXIT_BAD_INPUT, "serve")
    assert error == (
        "refusing to start without a token: set --token or OTEL_PROMPT_CANARY_TOKEN "
        "(e.g. `openssl rand -hex 32`), or pass --insecure-dev for local development"
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


@contextmanager
def _serve(*args: str, env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Run `prompt-canary serve` in a subprocess on an ephemeral port; yields (url, stderr lines)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_prompt_canary.cli", "serve", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr],
        daemon=True,  # type: ignore[union-attr]
    )
    reader.start()
    url = None
    deadline = time.monotonic() + 30
    try:
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert process.poll() is None, "".join(seen)
                continue
            seen.append(line)
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
        assert url is not None, "".join(seen)
        yield url, seen
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then exits by the signal it was stopped with.
            assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_PROMPT_CANARY_")}
    return env | extra


def test_serves_with_a_token_from_the_environment(tmp_path: Path, specs: tuple[str, str]) -> None:
    db = str(tmp_path / "served.db")
    env = _env(OTEL_PROMPT_CANARY_TOKEN=TOKEN)
    with _serve("--registry", db, env=env) as (url, _stderr):
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        assert Cli(url).fails(EXIT_FAILURE, "prompt", "push", specs[0]).startswith("missing credentials")
        assert Cli(url, token=TOKEN).ok("prompt", "push", specs[0]).stdout == ("support-bot@1 (new)\n")
    # Everything went to the store.
    assert Cli(db).json("prompt", "list")[0]["name"] == "support-bot"


def test_insecure_dev_starts_without_a_token_and_warns(tmp_path: Path, specs: tuple[str, str]) -> None:
    db = str(tmp_path / "dev.db")
    with _serve("--registry", db, "--insecure-dev", env=_env()) as (url, stderr):
        assert any(line.startswith("warning: --insecure-dev without a token") for line in stderr)
        assert Cli(url).ok("prompt", "push", specs[0]).stdout == "support-bot@1 (new)\n"


def test_refusal_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otel_prompt_canary.cli", "serve", "--registry", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == EXIT_BAD_INPUT
    assert result.stderr.startswith("error: refusing to start without a token")
    assert "Traceback" not in result.stderr
