"""Helpers of the CLI tests: spec files, a runner bound to one registry, and ``serve`` in a process."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from otel_prompt_canary.cli import cli
from tests.support.waiting import eventually

SPEC_V1 = """\
# A prompt spec, as users write them.
name: support-bot
messages:
  - role: system
    content: |
      You are the support assistant of Acme. Answer with compact JSON only:
      {"answer": "<one or two sentences>", "category": "billing|shipping|other"}
  - role: user
    content: "{{ question }}"
model: gpt-4.1-mini
config:
  temperature: 0.2
commit_message: First version
"""

SPEC_V2 = SPEC_V1.replace("temperature: 0.2", "temperature: 0.7").replace(
    "Answer with compact JSON only:", "Be warm, then answer as JSON:"
)

ROUTE_FIELDS = {
    "prompt",
    "environment",
    "stable_version",
    "canary_version",
    "canary_weight_bp",
    "rollout_id",
    "state",
    "step",
    "revision",
    "ramp",
    "updated_at",
}

# The environment the CLI reads; cleared so the developer's own settings never leak into a test.
CLEAN_ENV: dict[str, str | None] = {
    "OTEL_PROMPT_CANARY_REGISTRY": None,
    "OTEL_PROMPT_CANARY_TOKEN": None,
    "OTEL_PROMPT_CANARY_ENVIRONMENT": None,
    "USER": "tester",
}


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


class Cli:
    """Runs ``prompt-canary`` in process against one registry (a path or a URL)."""

    def __init__(self, registry: str, token: str | None = None) -> None:
        self.registry = registry
        self.token = token
        self.runner = CliRunner()

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        prefix = ["--registry", self.registry]
        if self.token:
            prefix += ["--token", self.token]
        result = self.runner.invoke(cli, [*prefix, *args], env=CLEAN_ENV | (env or {}))
        # Expected failures exit with a code; anything else would be a bug (a traceback).
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("--json", *args).stdout)

    def fails(self, code: int, *args: str) -> str:
        """Run a command that must fail with ``code``; returns its one-line error."""
        result = self(*args)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        assert result.stdout == ""
        first = result.stderr.splitlines()[0]
        assert first.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
        return first.removeprefix("error: ")


def process_environment(**extra: str) -> dict[str, str]:
    """This process's environment without the CLI's own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_PROMPT_CANARY_")}
    return env | extra


@contextmanager
def serving(
    *args: str, env: dict[str, str], started: list[subprocess.Popen[str]] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """Run ``prompt-canary serve`` in a subprocess on an ephemeral port; yields (url, stderr lines
    printed until it said where it runs). Stopped with SIGTERM at the end. The process is appended
    to ``started`` when given (to read its memory, say)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_prompt_canary.cli", "serve", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if started is not None:
        started.append(process)
    assert process.stderr is not None
    stderr = process.stderr
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
    seen: list[str] = []
    urls: list[str] = []

    def announced() -> bool:
        while not urls and not lines.empty():
            seen.append(lines.get_nowait())
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", seen[-1])
            if match:
                urls.append(match.group(1))
        return bool(urls)

    def still_running() -> None:
        assert process.poll() is None, f"the server exited ({process.returncode})"

    try:
        eventually(
            announced,
            timeout=30,
            what="the server saying where it runs",
            between=still_running,
            diagnostics=lambda: "".join(seen),
        )
        yield urls[0], seen
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            # uvicorn shuts down gracefully, then exits by the signal it was stopped with.
            assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                process.kill()
