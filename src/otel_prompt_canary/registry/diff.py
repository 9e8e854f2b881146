"""Diffs between two prompt versions, with a one-line summary and the change's blast radius.

The blast radius says how much behaviour a change can move:

- ``system``: the system (or developer) instructions changed; every call is affected;
- ``task``: a task sub-prompt changed (user/assistant/tool messages, or a text template whose
  ``template_role`` is not ``system``);
- ``config``: only the model, its configuration, the environment snapshot or the output contract
  changed (a contract does not reach the model, but it changes which checks judge the answers);
- ``none``: the two versions have the same content.
"""

from __future__ import annotations

import difflib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from otel_prompt_canary.registry.models import PromptVersion

__all__ = ["BlastRadius", "PromptDiff", "diff_versions"]

BlastRadius = Literal["system", "task", "config", "none"]
_SYSTEM_ROLES = frozenset({"system", "developer"})


class PromptDiff(BaseModel):
    """Unified diffs of template and configuration between two versions, and what they amount to."""

    model_config = ConfigDict(frozen=True)

    name: str
    from_version: int
    to_version: int
    blast_radius: BlastRadius
    summary: str
    template_diff: str
    config_diff: str


def _template_parts(v: PromptVersion) -> list[tuple[str, str]]:
    """(role, text) pairs: one for a text template, one per message for a chat template."""
    if v.template is not None:
        return [(v.template_role, v.template)]
    return [(m.role, m.content) for m in v.messages or ()]


def _lines(text: str) -> list[str]:
    # Every line ends with a newline, so unified_diff never glues a last line to the next one.
    return [line + "\n" for line in text.splitlines()]


def _template_lines(v: PromptVersion) -> list[str]:
    if v.template is not None:
        return _lines(v.template)
    lines: list[str] = []
    for i, m in enumerate(v.messages or ()):
        lines.append(f"--- message {i} ({m.role}) ---\n")
        lines.extend(_lines(m.content))
    return lines


def _config_view(v: PromptVersion, *, with_output: bool) -> dict[str, object]:
    view: dict[str, object] = {
        "model": v.model,
        "config": v.config,
        "environment": v.environment.model_dump(),
    }
    # The contract shows only when one side declares it: diffs of versions without one stay as they were.
    if with_output:
        view["output"] = None if v.output is None else v.output.content()
    return view


def _output_changes(a: PromptVersion, b: PromptVersion) -> list[str]:
    """Summary pieces for the output contract: its format, and whether its schema came, went or changed."""
    fa = None if a.output is None else a.output.format
    fb = None if b.output is None else b.output.format
    pieces = [f"output.format: {_short(fa)} -> {_short(fb)}"] if fa != fb else []
    sa = None if a.output is None else a.output.json_schema
    sb = None if b.output is None else b.output.json_schema
    if sa != sb:
        # A schema is too long for the summary line: the config diff below shows it in full.
        change = "added" if sa is None else "removed" if sb is None else "changed"
        pieces.append(f"output.schema {change}")
    return pieces


def _flatten(prefix: str, value: object, out: dict[str, object]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _flatten(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    else:
        out[prefix] = value


def _changed_roles(a: PromptVersion, b: PromptVersion) -> set[str]:
    pa, pb = _template_parts(a), _template_parts(b)
    roles: set[str] = set()
    for i in range(max(len(pa), len(pb))):
        left = pa[i] if i < len(pa) else None
        right = pb[i] if i < len(pb) else None
        if left != right:
            roles.update(part[0] for part in (left, right) if part is not None)
    return roles


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def diff_versions(a: PromptVersion, b: PromptVersion) -> PromptDiff:
    """The diff from version ``a`` to version ``b`` (of the same prompt)."""
    ta, tb = _template_lines(a), _template_lines(b)
    template_diff = "".join(
        difflib.unified_diff(ta, tb, fromfile=f"{a.ref} template", tofile=f"{b.ref} template")
    )
    with_output = a.output is not None or b.output is not None
    view_a, view_b = _config_view(a, with_output=with_output), _config_view(b, with_output=with_output)
    ca = json.dumps(view_a, indent=2, sort_keys=True, ensure_ascii=False).splitlines(True)
    cb = json.dumps(view_b, indent=2, sort_keys=True, ensure_ascii=False).splitlines(True)
    config_diff = "".join(difflib.unified_diff(ca, cb, fromfile=f"{a.ref} config", tofile=f"{b.ref} config"))

    roles = _changed_roles(a, b)
    pieces: list[str] = []
    if roles:
        added = sum(1 for line in template_diff.splitlines() if line[:1] == "+" and line[:3] != "+++")
        removed = sum(1 for line in template_diff.splitlines() if line[:1] == "-" and line[:3] != "---")
        what = "system prompt" if roles & _SYSTEM_ROLES else "task prompt"
        if roles & _SYSTEM_ROLES and roles - _SYSTEM_ROLES:
            what = "system and task prompts"
        pieces.append(f"{what} changed (+{added} -{removed} lines)")
    flat_a: dict[str, object] = {}
    flat_b: dict[str, object] = {}
    _flatten("", _config_view(a, with_output=False), flat_a)
    _flatten("", _config_view(b, with_output=False), flat_b)
    for key in sorted(set(flat_a) | set(flat_b)):
        before, after = flat_a.get(key), flat_b.get(key)
        if before != after:
            pieces.append(f"{key}: {_short(before)} -> {_short(after)}")
    pieces.extend(_output_changes(a, b))

    radius: BlastRadius
    if roles & _SYSTEM_ROLES:
        radius = "system"
    elif roles:
        radius = "task"
    elif len(pieces) > 0:
        radius = "config"
    else:
        radius = "none"
    summary = "; ".join(pieces) if pieces else "no changes"
    return PromptDiff(
        name=b.name,
        from_version=a.version,
        to_version=b.version,
        blast_radius=radius,
        summary=f"{a.ref} -> {b.ref}: {summary} [blast radius: {radius}]",
        template_diff=template_diff,
        config_diff=config_diff,
    )
