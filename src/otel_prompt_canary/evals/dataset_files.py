"""Reading dataset files: JSONL (one case per line) or YAML/JSON (a mapping with ``cases``, or a list
of cases), every problem named by its file and line.

::

    spec = read_dataset(text, source="golden.jsonl", prompt="support-bot")

A JSONL file holds cases only: its name and prompt come from the caller (the CLI's ``--name``,
default the file's stem, and ``--prompt``). A YAML or JSON file may give ``name``, ``prompt``,
``description`` and ``judge`` beside its ``cases``; the caller's values, when given, win.
Refusals (:class:`~otel_prompt_canary.errors.InvalidInputError`) read ``golden.jsonl: line 12 (case
'refund-1'): expect.must_contain: ...``; a file over :data:`MAX_FILE_BYTES` or with more than
:data:`~otel_prompt_canary.evals.datasets.MAX_CASES` cases is refused
(:class:`~otel_prompt_canary.errors.TooLargeError`) before it is parsed further.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Final

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from otel_prompt_canary.errors import InvalidInputError, TooLargeError, describe_validation_errors
from otel_prompt_canary.evals.datasets import MAX_CASES, Case, DatasetSpec
from otel_prompt_canary.yaml_documents import load_yaml

__all__ = ["MAX_FILE_BYTES", "read_dataset"]

#: The largest dataset file read, in bytes (its content is bounded again once parsed).
MAX_FILE_BYTES: Final = 4 * 1024 * 1024

_JSONL_SUFFIXES: Final = (".jsonl", ".ndjson")
_HEADER_KEYS: Final = frozenset({"name", "prompt", "description", "judge", "cases"})


def _case_where(line: int, data: object) -> str:
    case_id = data.get("id") if isinstance(data, Mapping) else None
    return f"line {line} (case {case_id!r})" if isinstance(case_id, str) else f"line {line}"


def _case(data: object, line: int, source: str) -> Case:
    where = f"{source}: {_case_where(line, data)}"
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"{where}: a case is a mapping with 'id', 'variables' or 'messages', 'expect'"
        )
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"{where}: {describe_validation_errors(exc.errors())}") from None


def _jsonl(text: str, source: str) -> tuple[list[Case], list[int]]:
    cases: list[Case] = []
    lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(cases) == MAX_CASES:
            raise TooLargeError(
                f"{source}: more than {MAX_CASES} cases (line {number} is case {MAX_CASES + 1}): "
                "split the file"
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{source}: line {number}: malformed JSON at column {exc.colno}: {exc.msg}"
            ) from None
        cases.append(_case(data, number, source))
        lines.append(number)
    if not cases:
        raise InvalidInputError(f"{source}: no cases: a JSONL dataset holds one case (a JSON object) a line")
    return cases, lines


def _case_nodes(root: Node | None) -> list[Node]:
    """The nodes of the cases in a composed YAML document: the root list, or the ``cases`` list."""
    if isinstance(root, SequenceNode):
        return list(root.value)
    if isinstance(root, MappingNode):
        for key, value in root.value:
            if isinstance(key, ScalarNode) and key.value == "cases" and isinstance(value, SequenceNode):
                return list(value.value)
    return []


def _document(text: str, source: str) -> tuple[object, list[int]]:
    """The parsed YAML (or JSON) document, and the line each of its cases starts at."""
    try:
        data = load_yaml(text)  # bounded aliases; JSON is YAML
        lines = [node.start_mark.line + 1 for node in _case_nodes(yaml.compose(text, Loader=yaml.SafeLoader))]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{source}: malformed YAML{where}: {problem}") from None
    return data, lines


def _structured(text: str, source: str) -> tuple[dict[str, Any], list[Case], list[int]]:
    data, lines = _document(text, source)
    header: dict[str, Any] = {}
    if isinstance(data, list):
        raw_cases: object = data
    elif isinstance(data, Mapping):
        unknown = sorted(str(key) for key in data if key not in _HEADER_KEYS)
        if unknown:
            raise InvalidInputError(
                f"{source}: unknown field {', '.join(repr(k) for k in unknown)}; a dataset has "
                "name, prompt, description, judge and cases"
            )
        header = {key: value for key, value in data.items() if key != "cases"}
        raw_cases = data.get("cases")
    else:
        raise InvalidInputError(f"{source}: a dataset is a mapping with 'cases', or a list of cases")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise InvalidInputError(f"{source}: 'cases' must be a list of at least one case")
    if len(raw_cases) > MAX_CASES:
        raise TooLargeError(
            f"{source}: {len(raw_cases)} cases, more than the limit of {MAX_CASES} (case {MAX_CASES + 1} "
            f"starts at line {lines[MAX_CASES]}): split the file"
        )
    cases = [_case(raw, line, source) for raw, line in zip(raw_cases, lines, strict=True)]
    return header, cases, lines


def read_dataset(
    text: str, *, source: str, name: str | None = None, prompt: str | None = None
) -> DatasetSpec:
    """The dataset spec a file holds; ``source`` names it in messages and picks the format
    (``.jsonl``/``.ndjson``: JSONL, else YAML or JSON). ``name`` defaults to the file's ``name``,
    then to its stem; ``prompt`` to the file's ``prompt``."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FILE_BYTES:
        raise TooLargeError(
            f"{source}: {size} bytes, over the limit of {MAX_FILE_BYTES} bytes for a dataset file"
        )
    if source.lower().endswith(_JSONL_SUFFIXES):
        header: dict[str, Any] = {}
        cases, lines = _jsonl(text, source)
    else:
        header, cases, lines = _structured(text, source)
    stem = PurePath(source).stem if source not in ("-", "<stdin>") else None
    data = dict(header)
    data["name"] = name or header.get("name") or stem
    if prompt is not None:
        data["prompt"] = prompt
    if not data.get("name"):
        raise InvalidInputError(f"{source}: the dataset needs a name: give --name")
    if not data.get("prompt"):
        raise InvalidInputError(f"{source}: the dataset needs the prompt it belongs to: give --prompt")
    data["cases"] = cases
    data["lines"] = lines
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"{source}: {describe_validation_errors(exc.errors())}") from None
