"""Reading the YAML documents users give (prompt specs, policies), with what aliases repeat bounded.

A YAML alias (``*name``) repeats the node its anchor (``&name``) marks. Nested, a few hundred bytes
of aliases stand for billions of values (the "billion laughs" document): a YAML loader builds them
as shared references, cheaply, but whatever reads the result afterwards (validation, a content
hash, the store) expands every copy. :func:`load_yaml` measures the document as its aliases expand
it before anything is built, and refuses it (:class:`YamlLimitError`, a :class:`yaml.YAMLError`)
when the aliases repeat more than :data:`MAX_ALIAS_EXPANSION` values and characters in all, or
when an alias refers to a node that contains it (a recursive document, which no JSON value can
be). A document without aliases is measured by its own size only, which the caller bounds.

The size of a node counts one per value (mapping, sequence, scalar) plus the characters of each
scalar, so both many small repeats and a few repeats of a long text count.

    load_yaml("base: &b {model: gpt-4.1-mini}\\nprod: *b")   # {'base': {...}, 'prod': {...}}
"""

from __future__ import annotations

from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_ALIAS_EXPANSION", "YamlLimitError", "load_yaml"]

#: The most values and characters that aliases may add to a document, in all.
MAX_ALIAS_EXPANSION: Final = 1_000_000


class YamlLimitError(yaml.MarkedYAMLError):
    """A document refused for its shape, not its syntax: aliases that expand it too far or refer to
    themselves, nesting too deep, a value that cannot be read. Marks where."""


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _own_size(node: Node) -> int:
    return 1 + (len(node.value) if isinstance(node, ScalarNode) else 0)


def _measure(root: Node) -> tuple[int, int]:
    """(size of the document as written, size as its aliases expand it); raises on a cycle.

    Iterative, so that a deeply nested document cannot exhaust the interpreter's stack; each node
    is measured once, so a document of shared nodes is measured in the time it takes to read it.
    """
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            open_nodes.discard(key)
            expanded[key] = _own_size(node) + sum(expanded[id(child)] for child in _children(node))
            continue
        if key in expanded:
            continue
        if key in open_nodes:
            raise YamlLimitError(
                problem="an alias refers to a node that contains it: a recursive document is not JSON",
                problem_mark=node.start_mark,
            )
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise YamlLimitError(
                    problem="an alias refers to a node that contains it: a recursive document is not JSON",
                    problem_mark=child.start_mark,
                )
            if id(child) not in expanded:
                stack.append((child, False))
    written = sum(_own_size(node) for node in _unique(root))
    return written, expanded[id(root)]


def _unique(root: Node) -> list[Node]:
    seen: dict[int, Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(_children(node))
    return list(seen.values())


def load_yaml(text: str) -> object:
    """The value of one YAML document (YAML is a superset of JSON), read with PyYAML's safe loader.

    Raises :class:`yaml.YAMLError` for a malformed document, and :class:`YamlLimitError` (one of
    them, with the place) for a document whose aliases add more than :data:`MAX_ALIAS_EXPANSION`
    values and characters, or refer to themselves. An empty document is None.
    """
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YamlLimitError(problem="the document is nested too deeply") from None
        if node is None:
            return None
        written, expanded = _measure(node)
        if expanded - written > MAX_ALIAS_EXPANSION:
            raise YamlLimitError(
                problem=f"its aliases expand it from {written} to {expanded} values and characters, "
                f"more than the {MAX_ALIAS_EXPANSION} aliases may add: write the repeated parts out, "
                "or repeat less",
                problem_mark=node.start_mark,
            )
        try:
            return loader.construct_document(node)
        except (ValueError, RecursionError) as exc:
            # A number too long for Python to convert, say.
            problem = f"a value cannot be read: {exc}"
            raise YamlLimitError(problem=problem, problem_mark=node.start_mark) from None
    finally:
        loader.dispose()
