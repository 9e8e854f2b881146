"""docs/judge.md stays true: its policy examples load, and its default policy is the real one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from otel_prompt_canary.analysis import DEFAULT_POLICY, load_policy
from otel_prompt_canary.errors import InvalidInputError

DOC = Path(__file__).resolve().parents[2] / "docs" / "judge.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_policy_examples_load() -> None:
    blocks = [b for b in _yaml_blocks() if "signals:" in b]
    assert len(blocks) == 3
    example, default, counts = (load_policy(b) for b in blocks)
    assert [(r.id, r.ratio) for r in counts.rules] == [("refusal.relative", 2), ("tool_errors.relative", 1.5)]
    assert [r.id for r in example.rules] == [
        "json_valid.relative",
        "json-floor",
        "refusal.relative",
        "judge.relative",
        "output_tokens.absolute",
    ]
    assert default == DEFAULT_POLICY


@pytest.mark.parametrize(
    "line",
    [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("invalid policy: ")],
)
def test_quoted_error_messages_are_real(line: str) -> None:
    documents: dict[str, dict[str, Any]] = {
        "names unknown signal": {
            "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
            "rules": [
                {"signal": "json_valid", "type": "relative", "action": "rollback"},
                {"signal": "judge", "type": "relative", "action": "pause"},
            ],
        },
        "is outside [0, 1]": {
            "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
            "rules": [{"signal": "json_valid", "type": "absolute", "threshold": 1.2, "action": "rollback"}],
        },
        "a relative rule takes 'margin'": {
            "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
            "rules": [{"signal": "json_valid", "type": "relative", "threshold": 0.9, "action": "pause"}],
        },
        "unknown field": {
            "signals": [{"name": "json_valid", "kind": "proportion", "harmfull": "decrease"}],
            "rules": [{"signal": "json_valid", "type": "relative", "action": "pause"}],
        },
    }
    document = next(doc for key, doc in documents.items() if key in line)
    with pytest.raises(InvalidInputError) as info:
        load_policy(document)
    assert str(info.value) == line
