"""Error answers: every failure becomes ``{"error": {"type": ..., "message": ...}}``.

``type`` is the name of the :mod:`otel_prompt_canary.errors` class (``NotFoundError``,
``IllegalTransitionError``...), so that clients can raise the same exception again; the status is
that class's ``http_status``. Request validation failures are ``InvalidInputError`` (422) with a
message naming each offending field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from otel_prompt_canary.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PromptCanaryError,
    describe_validation_errors,
)

__all__ = ["error_response", "install_error_handlers"]

logger = logging.getLogger("otel_prompt_canary.service")

_STATUS_TYPES: dict[int, str] = {
    400: InvalidInputError.__name__,
    401: AuthenticationError.__name__,
    404: NotFoundError.__name__,
    405: "MethodNotAllowedError",
    413: "TooLargeError",
    415: InvalidInputError.__name__,
    422: InvalidInputError.__name__,
}


def error_response(
    status: int, type_: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error answer."""
    return JSONResponse({"error": {"type": type_, "message": message}}, status_code=status, headers=headers)


async def _on_registry_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PromptCanaryError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else None
    if exc.http_status >= 500:
        logger.warning("%s %s failed: %s", request.method, request.url.path, exc)
    return error_response(exc.http_status, type(exc).__name__, str(exc), headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message = describe_validation_errors(exc.errors())
    return error_response(422, InvalidInputError.__name__, message)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404 and exc.detail == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    type_ = _STATUS_TYPES.get(status, "HTTPError")
    return error_response(status, type_, message, exc.headers)


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "InternalError", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every failure of ``app`` with the JSON error format."""
    app.add_exception_handler(PromptCanaryError, _on_registry_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected_error)
