"""Reading a console form post: its fields as text, bounded, with a precise refusal for anything else."""

from __future__ import annotations

from fastapi import Request

from otel_prompt_canary.errors import InvalidInputError

__all__ = ["MAX_FIELD_CHARS", "optional_int", "read_form", "required_text"]

#: The longest field a console form sends (a review comment, with room to spare).
MAX_FIELD_CHARS = 8192
_MAX_FIELDS = 32
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a form post (the first value of each); 422 for a body that is not a form of
    text fields, or with too many or too long fields."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in _FORM_TYPES:
        raise InvalidInputError(
            f"a console action is a form post ({_FORM_TYPES[0]}), not {kind or 'no body'}"
        )
    async with request.form(max_files=0, max_fields=_MAX_FIELDS, max_part_size=MAX_FIELD_CHARS * 4) as form:
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise InvalidInputError(f"form field {key[:40]!r} must be text, not a file")
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidInputError(f"form field {key[:40]!r} is over {MAX_FIELD_CHARS} characters")
            fields.setdefault(key, value)
    return fields


def required_text(fields: dict[str, str], name: str, what: str) -> str:
    """The field ``name``, stripped; 422 naming ``what`` when it is missing or blank."""
    value = fields.get(name, "").strip()
    if not value:
        raise InvalidInputError(f"{what} is required")
    return value


def optional_int(fields: dict[str, str], name: str, what: str, *, high: int = 2**63 - 1) -> int | None:
    """The field ``name`` as a whole number from 1 to ``high``, or None when it is absent or empty."""
    value = fields.get(name, "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= high:
        raise InvalidInputError(f"{what} must be a whole number from 1 to {high}, got {value[:40]!r}")
    return int(value)
