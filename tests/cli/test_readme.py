"""The README's "In five minutes" commands run as written, in order, and print what it shows."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_prompt_canary.cli import cli
from tests.cli.cli_helpers import CLEAN_ENV

ROOT = Path(__file__).resolve().parents[2]


def _five_minutes() -> list[tuple[list[str], list[str]]]:
    """(arguments, the output lines the README shows) of each ``prompt-canary`` command but ``serve``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## In five minutes") : text.index("Run the control plane for a fleet")]
    commands: list[tuple[list[str], list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                words = shlex.split(line[2:], comments=True)
                assert words[0] == "prompt-canary", line
                commands.append((words[1:], []))
            else:
                commands[-1][1].append(line)
    return commands


def test_the_five_minute_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    commands = _five_minutes()
    ran = [args[:2] for args, _ in commands]
    # The policy the rollout starts with is written by a command the README shows before it.
    assert ran.index(["policy", "init"]) < ran.index(["rollout", "start"])
    for args, shown in commands:
        result = CliRunner().invoke(cli, args, env=CLEAN_ENV)
        assert result.exit_code == 0, (args, result.output)
        if shown:
            assert result.stdout.splitlines()[: len(shown)] == shown, args
    assert (tmp_path / "policy.yaml").is_file()
