"""What a prompt version declares about its answers, in the terms the scoring plan needs.

The registry stores a version's output contract (``output: {format: json, schema: {...}}`` in its
spec). The instrumentation hands it to :func:`~otel_prompt_canary.scoring.build_scoring` as a
:class:`DeclaredOutput`, so that this package needs nothing of the registry. Given one, the plan
checks every answer of the version as JSON, whatever its request asked for, and against the schema
when one is declared (docs/checks.md, "The prompt's output contract").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from otel_prompt_canary.errors import InvalidInputError

__all__ = ["DeclaredOutput"]


@dataclass(frozen=True, slots=True)
class DeclaredOutput:
    """A version's declared output: ``format`` (``json``) and an optional JSON Schema.

    Two values are equal when their format and schema are (a plan is built once per distinct
    declaration). The schema is copied on creation; never change it through :attr:`json_schema`.
    """

    format: Literal["json"] = "json"
    json_schema: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The schema as canonical JSON ("" without one): what equality and hashing compare.
    schema_key: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.format != "json":
            raise InvalidInputError(f"declared output: unknown format {self.format!r}; known: json")
        schema = self.json_schema
        if schema is None:
            return
        if not isinstance(schema, Mapping):
            raise InvalidInputError(
                f"declared output: the schema must be a JSON object, got {type(schema).__name__}"
            )
        try:
            key = json.dumps(
                schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"declared output: the schema is not JSON: {exc}") from None
        # A copy of our own, read from the canonical text: the caller's mapping may change later.
        object.__setattr__(self, "json_schema", json.loads(key))
        object.__setattr__(self, "schema_key", key)

    def __repr__(self) -> str:
        schema = "None" if self.json_schema is None else "{...}"
        return f"DeclaredOutput(format={self.format!r}, json_schema={schema})"
