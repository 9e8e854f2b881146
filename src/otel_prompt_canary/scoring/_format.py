"""Format checks: the output parses as JSON, matches a JSON Schema, matches (or avoids) a regex.

JSON is parsed at most once per response even when both :class:`JsonValidCheck` and
:class:`JsonSchemaCheck` run: the last parse is remembered, keyed by the identity of the output
string. ``NaN`` and ``Infinity``, which Python's ``json`` accepts but JSON does not, make a document
invalid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.json_schemas import schema_validator
from otel_prompt_canary.scoring._outcomes import validate_evaluation_name
from otel_prompt_canary.scoring._response import LLMResponse

__all__ = ["JsonSchemaCheck", "JsonValidCheck", "RegexCheck", "parse_json_output"]

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder built once: json.loads(text, parse_constant=...) would build a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_MISSING = object()
# (text, allow_fence, value or _MISSING): the last document parsed. A tuple swap is atomic, so threads
# sharing it can only miss, never read a mixed entry.
_last_parse: tuple[str, bool, object] = ("", False, _MISSING)


def _unfence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        match = _FENCE.fullmatch(stripped)
        if match is not None:
            return match.group(1)
    return text


def parse_json_output(text: str, *, allow_fence: bool = False) -> tuple[bool, Any]:
    """Parse ``text`` as one JSON document: ``(True, value)``, or ``(False, None)`` when invalid.

    With ``allow_fence``, an output that is exactly one Markdown code block (```` ```json ... ``` ````)
    is parsed from inside the block.
    """
    global _last_parse
    cached_text, cached_fence, cached_value = _last_parse
    if cached_text is text and cached_fence is allow_fence:
        return (cached_value is not _MISSING, None if cached_value is _MISSING else cached_value)
    source = _unfence(text) if allow_fence else text
    try:
        value: object = _DECODER.decode(source)
    except (ValueError, RecursionError):
        value = _MISSING
    _last_parse = (text, allow_fence, value)
    return (value is not _MISSING, None if value is _MISSING else value)


def _applies(response: LLMResponse) -> bool:
    # A pure tool call has no text to judge: the format checks do not apply to it.
    return bool(response.output_text) or not response.tool_calls


class JsonValidCheck:
    """Passes when the output parses as one JSON document.

    Args:
        name: The check's name (default ``json_valid``).
        when: ``always``, or ``requested`` to apply only when the request asked for JSON
            (``response_format`` ``json_object``/``json_schema``); otherwise the check does not apply.
        allow_fence: Also accept an output that is exactly one ```` ```json ```` fenced block.
        require_object: Fail unless the document is a JSON object.
    """

    __slots__ = ("_allow_fence", "_name", "_require_object", "_when")

    def __init__(
        self,
        *,
        name: str = "json_valid",
        when: Literal["always", "requested"] = "always",
        allow_fence: bool = False,
        require_object: bool = False,
    ) -> None:
        if when not in ("always", "requested"):
            raise InvalidInputError(f"json_valid: 'when' must be 'always' or 'requested', got {when!r}")
        self._name = validate_evaluation_name(name)
        self._when = when
        self._allow_fence = allow_fence
        self._require_object = require_object

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool | None:
        """True: valid JSON; False: not; None: not applicable (tool call, JSON not requested)."""
        if self._when == "requested" and not response.requested_json:
            return None
        if not _applies(response):
            return None
        ok, value = parse_json_output(response.output_text, allow_fence=self._allow_fence)
        if ok and self._require_object:
            return isinstance(value, dict)
        return ok

    def __repr__(self) -> str:
        return (
            f"JsonValidCheck(name={self._name!r}, when={self._when!r}, "
            f"allow_fence={self._allow_fence}, require_object={self._require_object})"
        )


class JsonSchemaCheck:
    """Passes when the output is JSON that validates against ``schema`` (any JSON Schema draft that
    ``jsonschema`` knows; ``$schema`` picks it, else the latest).

    The schema is checked and its validator built once, here: a bad schema raises
    :class:`~otel_prompt_canary.errors.InvalidInputError`. Output that is not JSON fails.
    """

    __slots__ = ("_allow_fence", "_name", "_validator")

    def __init__(
        self, schema: Mapping[str, Any], *, name: str = "json_schema", allow_fence: bool = False
    ) -> None:
        self._name = validate_evaluation_name(name)
        self._allow_fence = allow_fence
        try:
            self._validator = schema_validator(schema)
        except InvalidInputError as exc:
            raise InvalidInputError(f"json_schema: {exc}") from exc.__cause__

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool | None:
        """True: valid JSON matching the schema; False: not; None: a pure tool call."""
        if not _applies(response):
            return None
        ok, value = parse_json_output(response.output_text, allow_fence=self._allow_fence)
        return ok and bool(self._validator.is_valid(value))

    def errors(self, response: LLMResponse) -> list[str]:
        """Why ``response`` fails (``path: message`` lines); empty when it passes. For debugging."""
        ok, value = parse_json_output(response.output_text, allow_fence=self._allow_fence)
        if not ok:
            return ["(root): the output is not valid JSON"]
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in self._validator.iter_errors(value)
        ]

    def __repr__(self) -> str:
        return f"JsonSchemaCheck(name={self._name!r}, allow_fence={self._allow_fence})"


class RegexCheck:
    """Passes when the output matches ``pattern`` (``must_match=True``) or does not (``False``).

    The pattern is compiled once. ``full_match`` requires the whole output to match; otherwise a match
    anywhere counts. ``max_chars`` bounds the text searched (the first characters), which also bounds
    the cost of an unlucky pattern on a long output.
    """

    __slots__ = ("_full", "_max_chars", "_must_match", "_name", "_regex")

    def __init__(
        self,
        pattern: str,
        *,
        name: str = "regex",
        must_match: bool = True,
        ignore_case: bool = False,
        multiline: bool = False,
        dot_all: bool = False,
        full_match: bool = False,
        max_chars: int | None = None,
    ) -> None:
        self._name = validate_evaluation_name(name)
        flags = (
            (re.IGNORECASE if ignore_case else 0)
            | (re.MULTILINE if multiline else 0)
            | (re.DOTALL if dot_all else 0)
        )
        try:
            self._regex = re.compile(pattern, flags)
        except re.error as exc:
            raise InvalidInputError(f"regex {name!r}: invalid pattern {pattern!r}: {exc}") from None
        if max_chars is not None and max_chars < 1:
            raise InvalidInputError(f"regex {name!r}: max_chars must be at least 1, got {max_chars}")
        self._must_match = must_match
        self._full = full_match
        self._max_chars = max_chars

    @property
    def name(self) -> str:
        """The check's name."""
        return self._name

    def check(self, response: LLMResponse) -> bool | None:
        """True: the output matches (or, with ``must_match=False``, does not); None: a pure tool call."""
        if not _applies(response):
            return None
        text = response.output_text
        if self._max_chars is not None:
            text = text[: self._max_chars]
        found = (self._regex.fullmatch(text) if self._full else self._regex.search(text)) is not None
        return found is self._must_match

    def __repr__(self) -> str:
        return f"RegexCheck({self._regex.pattern!r}, name={self._name!r}, must_match={self._must_match})"
