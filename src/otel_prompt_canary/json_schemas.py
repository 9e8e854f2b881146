"""JSON Schemas users give, checked once: a prompt's output contract and the ``json_schema`` check.

The registry refuses a prompt spec whose output schema is invalid when it is pushed, and scoring
refuses a ``json_schema`` check built on one; both word the mistake the same way, with its place in
the schema (``invalid schema at properties/category/type: ...``).

``jsonschema`` is imported on first use: an application imports it only when a schema is checked.
This module imports nothing but :mod:`otel_prompt_canary.errors`, so that the registry and the pure
scoring package can both use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from otel_prompt_canary.errors import InvalidInputError

__all__ = ["schema_validator"]


def _jsonschema() -> Any:
    try:
        return importlib.import_module("jsonschema")
    except ImportError as exc:
        raise InvalidInputError(
            "checking a JSON Schema needs the 'jsonschema' package: pip install jsonschema"
        ) from exc


def schema_validator(schema: Mapping[str, Any]) -> Any:
    """The ``jsonschema`` validator of ``schema``, after checking it against its draft's metaschema.

    The draft is the one ``$schema`` names, else the latest ``jsonschema`` knows. Raises
    :class:`InvalidInputError` ``invalid schema at PATH: why`` (``(root)`` for the top) for a schema
    that is not one, and for a value that is not a JSON object.
    """
    if not isinstance(schema, Mapping):
        raise InvalidInputError(f"the schema must be a JSON object, got {type(schema).__name__}")
    jsonschema = _jsonschema()
    document = dict(schema)
    validator_class = jsonschema.validators.validator_for(document)
    try:
        validator_class.check_schema(document)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(root)"
        raise InvalidInputError(f"invalid schema at {where}: {exc.message}") from None
    return validator_class(document)
