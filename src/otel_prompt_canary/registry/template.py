"""Prompt templates: named variables written ``{{ name }}``.

Double braces leave single braces free for the JSON examples prompts are full of. A variable name is a
Python identifier; whitespace inside the braces is ignored. Rendering substitutes every variable and
raises :class:`~otel_prompt_canary.errors.TemplateError` naming the ones missing; extra variables are
ignored so that one call site can serve several versions of a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from otel_prompt_canary.errors import TemplateError

__all__ = ["VARIABLE_PATTERN", "find_variables", "render_text"]

VARIABLE_PATTERN = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def find_variables(texts: Iterable[str]) -> tuple[str, ...]:
    """The distinct variable names used in ``texts``, in order of first appearance."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in VARIABLE_PATTERN.finditer(text):
            seen.setdefault(match.group(1), None)
    return tuple(seen)


def render_text(text: str, variables: Mapping[str, object]) -> str:
    """Substitute ``{{ name }}`` in ``text`` with ``str(variables[name])``."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            missing.append(name)
            return match.group(0)
        return str(variables[name])

    rendered = VARIABLE_PATTERN.sub(substitute, text)
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise TemplateError(f"missing template variable(s): {names}")
    return rendered
