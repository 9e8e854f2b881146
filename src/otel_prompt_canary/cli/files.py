"""Reading the files users give: prompt specs and policies, YAML or JSON, from a path or ``-`` (stdin).

Every problem stops the command with exit 2 and one line that names the file (``<stdin>`` for
``-``): it cannot be read, it is malformed (``malformed YAML at line L, column C: problem``), it is
not a mapping, or it is invalid (each field and why, worded by
:func:`~otel_prompt_canary.errors.describe_validation_errors`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import ValidationError

from otel_prompt_canary.cli.group import fail_input
from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.registry.models import PromptSpec
from otel_prompt_canary.yaml_documents import YamlLimitError, load_yaml

__all__ = ["file_name", "load_policy_document", "load_spec", "naming_the_file"]


def file_name(path: str) -> str:
    """The file as messages name it: ``<stdin>`` for ``-``."""
    return "<stdin>" if path == "-" else path


def _read_text(path: str, what: str = "") -> str:
    shown = f"{what} {file_name(path)}" if what else file_name(path)
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail_input(f"cannot read {shown}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail_input(f"cannot read {shown}: it is not UTF-8 text")


def _malformed(path: str, what: str, problem: str, at: tuple[int, int] | None) -> NoReturn:
    where = f" at line {at[0]}, column {at[1]}" if at else ""
    fail_input(f"{file_name(path)}: malformed {what}{where}: {problem}")


def _parse_json(text: str, path: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _malformed(path, "JSON", exc.msg, (exc.lineno, exc.colno))


def _parse_yaml(text: str, path: str, what: str) -> object:
    try:
        return load_yaml(text)  # YAML is a superset of JSON; aliases are bounded
    except YamlLimitError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fail_input(f"{file_name(path)}: {what} refused{where}: {exc.problem}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        _malformed(path, what, problem, (mark.line + 1, mark.column + 1) if mark else None)


def load_spec(path: str) -> PromptSpec:
    """Read a prompt spec from a YAML or JSON file (``-`` for standard input)."""
    text = _read_text(path)
    as_json = path.lower().endswith(".json")
    data = _parse_json(text, path) if as_json else _parse_yaml(text, path, "YAML")
    if not isinstance(data, dict):
        fail_input(
            f"{file_name(path)}: a prompt spec is a mapping with 'name' and one of 'template' or 'messages'"
        )
    try:
        return PromptSpec.model_validate(data)
    except ValidationError as exc:
        fail_input(f"{file_name(path)}: invalid prompt spec: {describe_validation_errors(exc.errors())}")


def load_policy_document(path: str) -> dict[str, Any]:
    """Read a policy document (YAML or JSON; ``-`` for stdin): a mapping of JSON values, not yet checked."""
    data = _parse_yaml(_read_text(path, "policy"), path, "policy")
    if not isinstance(data, dict):
        fail_input(f"{file_name(path)}: the policy must be a mapping (a JSON object)")
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        fail_input(f"{file_name(path)}: the policy must hold JSON values only: {exc}")
    return data


@contextmanager
def naming_the_file(path: str | None) -> Iterator[None]:
    """Stop with exit 2 on invalid input raised inside, the message led by the file's name (if any)."""
    try:
        yield
    except InvalidInputError as exc:
        fail_input(f"{file_name(path)}: {exc}" if path else str(exc))
