"""The metric and label names a PromQL expression reads, for checking them against a real scrape.

A tokenizer and a few rules, enough for the expressions of ``dashboards/`` (selectors, functions,
aggregations with ``by``, vector matching with ``on``/``group_left``, comparisons), not a parser:

- a name followed by ``(`` is a function; an aggregation's name (``sum``, ``max``...) is never a metric;
- a name inside ``{...}`` is a label of the selector's metric;
- a name inside the parentheses after ``by``, ``without``, ``on``, ``ignoring``, ``group_left`` or
  ``group_right`` is a label;
- any other name that is not a keyword is a metric.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Names", "names_in"]

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[{}(),=<>+\-*/^%])
  | (?P<space>\s+)
    """,
    re.VERBOSE,
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    }
)
_KEYWORDS = _GROUPING | _AGGREGATIONS | {"and", "or", "unless", "bool", "offset", "inf", "nan"}


@dataclass
class Names:
    """What an expression reads: metrics, labels, and the (metric, label) pairs of its selectors."""

    metrics: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    selector_labels: set[tuple[str, str]] = field(default_factory=set)


def _tokens(expression: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expression[position : position + 30]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            found.append((kind, match.group()))
        position = match.end()
    return found


def names_in(expression: str, into: Names | None = None) -> Names:
    """The names ``expression`` reads, added to ``into`` when given."""
    names = into if into is not None else Names()
    tokens = _tokens(expression)
    selector_of: str | None = None  # the metric whose {...} we are in ("" for a bare selector)
    label_list_depth: int | None = None  # paren depth of a by(...)/on(...) list we are in
    depth = 0
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "op":
            if text == "(":
                depth += 1
            elif text == ")":
                if label_list_depth == depth:
                    label_list_depth = None
                depth -= 1
            elif text == "}":
                selector_of = None
            elif text == "{" and selector_of is None:
                selector_of = ""
            continue
        if kind != "name":
            continue
        if selector_of is not None:
            names.labels.add(text)
            if selector_of:
                names.selector_labels.add((selector_of, text))
        elif label_list_depth is not None:
            names.labels.add(text)
        elif text in _GROUPING and following == "(":
            label_list_depth = depth + 1
        elif text in _KEYWORDS or following == "(":
            continue
        else:
            names.metrics.add(text)
            if following == "{":
                selector_of = text
    return names
