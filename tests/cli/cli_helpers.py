"""Helpers of the CLI tests: spec files and a runner bound to one registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from otel_prompt_canary.cli import cli

TOKEN = "cli-test-token-0123456789"

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
