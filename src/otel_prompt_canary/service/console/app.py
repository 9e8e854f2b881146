"""The console as an application of its own, mounted by the control plane at ``/console``.

It has its own error pages (HTML, not the API's JSON), no OpenAPI document, and its static files
(one stylesheet, one small script) served from the package: nothing is fetched from the internet.
It reads and acts on the control plane's own registry, loop store, drift monitor and settings.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from otel_prompt_canary.errors import (
    AuthenticationError,
    PermissionDeniedError,
    PromptCanaryError,
    describe_validation_errors,
)
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.console import actions, pages, signin
from otel_prompt_canary.service.console.context import Service, render
from otel_prompt_canary.service.console.session import SessionKeeper
from otel_prompt_canary.service.console.visitors import ConsoleRefusal, SignInNeeded, Visitor, get_visitor

__all__ = ["create_console"]

_STATIC = Path(__file__).parent / "static"

_HEADINGS = {
    400: "Bad request",
    401: "Not signed in",
    403: "Refused",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    501: "Not available",
}


def create_console(service: FastAPI) -> FastAPI:
    """The console of the control plane ``service`` (mount it at ``/console``)."""
    console = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    console.state.service = service.state
    console.state.sessions = SessionKeeper(service.state.settings, service.state.registry)
    console.include_router(signin.router)
    console.include_router(pages.router)
    console.include_router(actions.router)
    console.mount("/static", StaticFiles(directory=str(_STATIC)), name="static")
    console.add_exception_handler(SignInNeeded, _on_sign_in_needed)
    console.add_exception_handler(ConsoleRefusal, _on_refusal)
    console.add_exception_handler(PromptCanaryError, _on_error)
    console.add_exception_handler(RequestValidationError, _on_validation_error)
    console.add_exception_handler(HTTPException, _on_http_error)
    return console


async def _on_sign_in_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInNeeded)
    service = Service(request.app.state.service)
    if request.url.path.endswith("/live"):
        # The live part of a page polls: the page itself goes to the sign-in form on its next load.
        return HTMLResponse("sign in again", status_code=401)
    return signin.sign_in_page(
        request, service, problem=exc.message, next_path=exc.next_path, status_code=401
    )


async def _error_page(request: Request, status: int, message: str) -> Response:
    service = Service(request.app.state.service)
    visitor = await _visitor_if_any(request)
    return render(
        request,
        "refused.html",
        visitor=visitor,
        service=service,
        environment=request.query_params.get("environment") or DEFAULT_ENVIRONMENT,
        status_code=status,
        heading=_HEADINGS.get(status, "Error"),
        message=message,
        back=request.headers.get("referer") if _same_site(request) else None,
    )


async def _visitor_if_any(request: Request) -> Visitor | None:
    try:
        return await get_visitor(request)
    except (SignInNeeded, ConsoleRefusal, PromptCanaryError):
        # PromptCanaryError: the session store unavailable, say; the error page shows no one.
        return None


def _same_site(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return referer.startswith(f"{request.url.scheme}://{request.url.netloc}/console")


async def _on_refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleRefusal)
    return await _error_page(request, exc.status, exc.message)


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PromptCanaryError)
    if isinstance(exc, PermissionDeniedError | AuthenticationError):
        visitor = await _visitor_if_any(request)
        name = None if visitor is None else visitor.principal.name
        log_refusal(request.method, request.url.path, name, str(exc))
    return await _error_page(request, exc.http_status, str(exc))


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _error_page(request, 422, describe_validation_errors(exc.errors()))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no such page: {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return await _error_page(request, exc.status_code, message)
