"""The exceptions this package raises, one tree rooted in :class:`PromptCanaryError`.

::

    PromptCanaryError
    ├── InvalidInputError            bad spec, name, ramp, template or request (HTTP 400/422)
    │   ├── TooLargeError            a template or body over the configured limit (HTTP 413)
    │   └── FeedbackKeyError         a feedback key that is malformed, forged, altered or expired
    ├── NotFoundError                unknown prompt, version or rollout (HTTP 404)
    ├── ConflictError                the request cannot apply to the current state (HTTP 409)
    │   ├── IllegalTransitionError   e.g. promote a rollout that was rolled back
    │   └── RevisionMismatchError    compare-and-set lost: the routing flag moved meanwhile
    ├── AuthenticationError          missing or wrong credentials (HTTP 401)
    ├── PermissionDeniedError        a known principal acting beyond its roles (HTTP 403)
    ├── TemplateError                rendering failed: a variable is missing
    └── RegistryUnavailableError     the store or control plane cannot be reached

Third-party exceptions (SQLAlchemy, httpx, pydantic) are mapped at the boundary with ``raise ... from``;
a pydantic ``ValidationError`` becomes one line with :func:`describe_validation_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "FeedbackKeyError",
    "IllegalTransitionError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PromptCanaryError",
    "RegistryUnavailableError",
    "RevisionMismatchError",
    "TemplateError",
    "TooLargeError",
    "describe_validation_errors",
]


class PromptCanaryError(Exception):
    """Base class of every error raised by otel-prompt-canary."""

    #: The HTTP status the control plane answers with for this error.
    http_status: int = 500


class InvalidInputError(PromptCanaryError, ValueError):
    """The input is malformed or breaks a rule; the message says which and where."""

    http_status = 422


class TooLargeError(InvalidInputError):
    """A template or request body is over the configured size limit."""

    http_status = 413


class FeedbackKeyError(InvalidInputError):
    """A feedback key that cannot be used: ``reason`` says why (``malformed``, ``signature``,
    ``expired``), the message says it in words."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        #: ``malformed``, ``signature`` (forged, altered, or signed with another credential) or ``expired``.
        self.reason = reason


class NotFoundError(PromptCanaryError, LookupError):
    """An unknown prompt, version or rollout."""

    http_status = 404


class ConflictError(PromptCanaryError):
    """The request is well formed but cannot apply to the current state."""

    http_status = 409


class IllegalTransitionError(ConflictError):
    """The rollout state machine does not allow this transition from the current state."""


class RevisionMismatchError(ConflictError):
    """Compare-and-set failed: the routing state's revision is not the one the caller expected."""


class AuthenticationError(PromptCanaryError):
    """Missing or wrong credentials for a write."""

    http_status = 401


class PermissionDeniedError(PromptCanaryError):
    """The credential is known, but its principal may not do this (a role it lacks, an environment
    outside its scope, an approval of its own version); the message names what is missing."""

    http_status = 403


class TemplateError(PromptCanaryError, KeyError):
    """A template could not be rendered, typically because a variable is missing."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class RegistryUnavailableError(PromptCanaryError):
    """The registry store or the control plane cannot be reached."""

    http_status = 503


def describe_validation_errors(
    errors: Iterable[Mapping[str, Any]], *, where: Sequence[str | int] = ()
) -> str:
    """One line naming each failed field and why: ``loc: message; loc: message``.

    ``errors`` are pydantic's (``ValidationError.errors()``); ``where`` prefixes every location (say
    ``("body",)``). Messages never echo the input. An unknown field reads ``unknown field``; a
    request body that is missing or not JSON reads as such.
    """
    parts: list[str] = []
    for err in errors:
        loc = (*where, *err.get("loc", ()))
        kind = err.get("type", "")
        if kind == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "invalid JSON")
            at = f" at character {loc[-1]}" if len(loc) > 1 else ""
            parts.append(f"malformed JSON body{at}: {reason}")
            continue
        if kind == "missing" and loc == ("body",):
            parts.append("the request needs a JSON body")
            continue
        message = "unknown field" if kind == "extra_forbidden" else str(err.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        shown = ".".join(str(part) for part in loc)
        parts.append(f"{shown}: {message}" if shown else message)
    return "; ".join(parts) or "invalid input"
