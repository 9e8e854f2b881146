"""Reading a JSON request body whole, for the endpoints that must see the raw bytes first.

The alert receivers and the report endpoint verify a signature over the exact bytes received before
they parse anything, so they read the body themselves instead of letting FastAPI parse it. Both
helpers answer bad input with :class:`~otel_prompt_canary.errors.InvalidInputError` (HTTP 422)
saying where and why, never echoing the input.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors

__all__ = ["parse_json", "validate_payload"]

_M = TypeVar("_M", bound=BaseModel)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """The JSON value of a request body; :class:`InvalidInputError` (422) with where and why."""
    if not body:
        raise InvalidInputError("the request needs a JSON body")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"malformed JSON body at character {exc.pos}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInputError("malformed JSON body: it is not UTF-8") from None
    except ValueError as exc:
        raise InvalidInputError(f"malformed JSON body: {exc}") from None
    except RecursionError:
        raise InvalidInputError("malformed JSON body: nested too deeply") from None


def validate_payload(model: type[_M], data: Any, what: str) -> _M:
    """``data`` as ``model``; :class:`InvalidInputError` naming every offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = describe_validation_errors(exc.errors(), where=("body",))
        raise InvalidInputError(f"invalid {what}: {message}") from None
