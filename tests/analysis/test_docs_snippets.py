"""docs/judge.md's snippets do what they say: the "Use it" code prints what its comments say, and
the verdict shown under "The evidence in a verdict" is the one that code computes."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "judge.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _block(section: str, language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", section, flags=re.S)
    assert found is not None, f"no {language} block"
    return found.group(1)


def _run_use_it() -> tuple[str, dict[str, Any]]:
    code = _block(_section("Use it"), "python")
    namespace: dict[str, Any] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(DOC), "exec"), namespace)
    return printed.getvalue(), namespace


def test_use_it_prints_what_its_comment_says() -> None:
    code = _block(_section("Use it"), "python")
    output, namespace = _run_use_it()
    # The branch the example's evidence takes prints the line its comment shows.
    taken = {"breach": "print(verdict.action, verdict.rule_id)", "continue": "print(verdict.waiting_for)"}
    line = next(line for line in code.splitlines() if taken[namespace["verdict"].decision] in line)
    assert "#" in line, "the print that runs says what it prints"
    assert output == line.split("#", 1)[1].strip() + "\n"


def test_the_evidence_shown_is_the_verdict_of_use_it() -> None:
    shown = json.loads(_block(_section("The evidence in a verdict"), "json"))
    _, namespace = _run_use_it()
    real = namespace["verdict"].model_dump(mode="json")
    rules = [rule for rule in shown.pop("rules") if isinstance(rule, dict)]
    assert shown == {key: value for key, value in real.items() if key != "rules"}
    assert rules == real["rules"][: len(rules)]
