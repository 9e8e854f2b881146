"""A value that satisfies a JSON schema, for answers to requests that ask for structured output.

Covers the subset of JSON Schema that structured-output requests use (objects, arrays, scalars, enums,
``const``, ``anyOf``/``oneOf``/``allOf``, local ``$ref`` into ``$defs``/``definitions``, common string
formats and numeric bounds), which is what SDK helpers such as ``chat.completions.parse`` generate from
pydantic models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["example_for_schema"]

_MAX_DEPTH = 8

_STRING_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def example_for_schema(
    schema: Mapping[str, Any],
    *,
    text: str = "example",
    hints: Mapping[str, Any] | None = None,
) -> Any:
    """A deterministic value valid against ``schema``.

    Strings are ``text`` unless a format, enum or length bound says otherwise. ``hints`` gives values
    for object properties by name; a hint is used only when it has the JSON type the schema expects.
    """
    return _Builder(schema, text, hints or {}).build(schema, 0)


class _Builder:
    def __init__(self, root: Mapping[str, Any], text: str, hints: Mapping[str, Any]) -> None:
        self.root = root
        self.text = text
        self.hints = hints

    def build(self, schema: Mapping[str, Any], depth: int) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.build(self._first_non_null(schema[key]), depth)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged = _merge(merged, self._resolve(part))
            return self.build(merged, depth)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "string":
            return self._string(schema)
        if kind in ("integer", "number"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return False
        return None

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            ref = str(schema["$ref"])
            target: Any = self.root
            for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else ():
                target = target.get(part, {}) if isinstance(target, Mapping) else {}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(dict(target) if isinstance(target, Mapping) else {}, rest)
            seen += 1
        return schema

    @staticmethod
    def _first_non_null(options: list[Any]) -> Mapping[str, Any]:
        for option in options:
            if isinstance(option, Mapping) and option.get("type") != "null":
                return option
        return options[0] if options and isinstance(options[0], Mapping) else {}

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        if depth >= _MAX_DEPTH:
            return {}
        result: dict[str, Any] = {}
        for name, sub in (schema.get("properties") or {}).items():
            sub_schema = self._resolve(sub) if isinstance(sub, Mapping) else {}
            hint = self.hints.get(name)
            if hint is not None and _hint_fits(hint, sub_schema):
                result[name] = hint
            else:
                result[name] = self.build(sub_schema, depth + 1)
        return result

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        items = schema.get("items")
        count = max(1, int(schema.get("minItems", 1)))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        if not isinstance(items, Mapping) or depth >= _MAX_DEPTH:
            return []
        return [self.build(items, depth + 1) for _ in range(count)]

    def _string(self, schema: Mapping[str, Any]) -> str:
        value = _STRING_FORMATS.get(str(schema.get("format")), self.text)
        minimum = int(schema.get("minLength", 0))
        if len(value) < minimum:
            value = value + "x" * (minimum - len(value))
        if "maxLength" in schema:
            value = value[: int(schema["maxLength"])]
        return value


def _type_of(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value: float = 1
    if "minimum" in schema:
        value = max(value, float(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        value = max(value, float(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        value = min(value, float(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        value = min(value, float(schema["exclusiveMaximum"]) - (1 if integer else 0.5))
    return int(value) if integer else value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def _hint_fits(hint: Any, schema: Mapping[str, Any]) -> bool:
    if schema.get("enum"):
        return hint in schema["enum"]
    kind = _type_of(schema)
    checks: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "object": dict,
        "array": list,
    }
    if kind is None:
        return True
    expected = checks.get(kind)
    if expected is None or (isinstance(hint, bool) and kind in ("integer", "number")):
        return False
    return isinstance(hint, expected)
