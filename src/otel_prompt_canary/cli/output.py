"""How commands print: JSON for ``--json``, aligned tables and fields, times, counts and percentages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from pydantic import BaseModel

__all__ = [
    "count",
    "format_fields",
    "format_table",
    "percent",
    "print_json",
    "ramp_text",
    "time_text",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    """Print ``value`` (models, lists and dicts of them) as indented JSON."""
    click.echo(json.dumps(_jsonable(value), indent=2, ensure_ascii=False))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; ``None`` shows as ``-``."""
    cells = [[str(h) for h in headers]]
    cells += [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def format_fields(rows: Sequence[tuple[str, str]]) -> list[str]:
    """``name  value`` lines, the values aligned in one column."""
    width = max(len(name) for name, _ in rows)
    return [f"{name.ljust(width)}  {value}" for name, value in rows]


def time_text(value: datetime | None) -> str:
    """``2026-11-27 04:21:53Z`` (``Z`` when the time is zone-aware), ``-`` for none."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if value.utcoffset() is not None else "")


def count(n: int, noun: str) -> str:
    """``1 signal``, ``2 signals``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def percent(bp: int) -> str:
    """A weight in basis points as a percentage: ``550`` -> ``5.5%``."""
    return f"{bp / 100:g}%"


def ramp_text(ramp: Sequence[float], current: int | None) -> str:
    """``1%, [5%], 20%``: the ramp, with the current step in brackets while a rollout is active."""
    steps = [f"{p:g}%" for p in ramp]
    if current is not None and 0 <= current < len(steps):
        steps[current] = f"[{steps[current]}]"
    return ", ".join(steps)
