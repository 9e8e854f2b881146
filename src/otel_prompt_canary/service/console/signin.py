"""Signing in and out of the console.

``GET /console/sign-in`` shows the form (and gives the visitor the sign-in form's own anonymous
session, in a cookie of its own, whose CSRF token the form carries: showing the form never touches
a signed-in session); ``POST /console/sign-in`` takes the credential from the form's body (never
from a URL), and on success opens a new signed-in session and goes where the visitor was going;
``POST /console/sign-out`` ends the session for good (:mod:`.session`).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.console.context import Service, get_service, render
from otel_prompt_canary.service.console.csrf import FIELD, csrf_problem, csrf_token
from otel_prompt_canary.service.console.forms import read_form
from otel_prompt_canary.service.console.visitors import (
    get_visitor,
    keeper_of,
    may_use_console,
    principal_for_console,
    refuse,
)

__all__ = ["router", "sign_in_page"]

log = logging.getLogger("otel_prompt_canary.service.console")

router = APIRouter()

_MAX_TOKEN_CHARS = 4096


def _safe_next(path: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if not path or not path.startswith("/console") or path.startswith("//") or "\\" in path:
        return "/console/"
    return path


def sign_in_page(
    request: Request,
    service: Service,
    *,
    problem: str | None = None,
    notice: str | None = None,
    next_path: str = "/console/",
    status_code: int = 200,
) -> HTMLResponse:
    """The sign-in form, with a new anonymous session for its CSRF token."""
    keeper = keeper_of(request)
    session = keeper.new_form_session()
    response = render(
        request,
        "sign_in.html",
        visitor=None,
        service=service,
        environment=DEFAULT_ENVIRONMENT,
        status_code=status_code,
        csrf=csrf_token(keeper.key, session),
        next_path=_safe_next(next_path),
        problem=problem,
        notice=notice,
        open_writes=service.settings.writes_open,
    )
    keeper.store_form_session(request, response, session)
    return response


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (or the console, for a visitor signed in already)."""
    service = await get_service(request)
    loaded = await keeper_of(request).load(request)
    if loaded.session is not None and loaded.session.principal is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    notice = "You are signed out." if request.query_params.get("signed_out") == "1" else None
    return sign_in_page(
        request, service, problem=loaded.problem, notice=notice, next_path=next or "/console/"
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Sign in with the credential of the form; the sign-in page again, with why, when it fails."""
    service = await get_service(request)
    keeper = keeper_of(request)
    form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    loaded = keeper.load_form_session(request)
    if loaded.session is None:
        why = loaded.problem or "the sign-in form expired (or cookies are off): try again"
        log_refusal(request.method, request.url.path, None, why)
        return sign_in_page(request, service, problem=why, next_path=next_path, status_code=403)
    problem = csrf_problem(request, keeper.key, loaded.session, form.get(FIELD))
    if problem is not None:
        log_refusal(request.method, request.url.path, None, problem)
        return sign_in_page(request, service, problem=problem, next_path=next_path, status_code=403)
    token = form.get("token") or ""
    if len(token) > _MAX_TOKEN_CHARS:
        return sign_in_page(request, service, problem="that credential is too long", status_code=422)
    found = principal_for_console(service.settings, token)
    if found is None:
        log_refusal(request.method, request.url.path, None, "sign-in with an unknown credential")
        return sign_in_page(
            request,
            service,
            problem="that credential is not one of this control plane's",
            next_path=next_path,
            status_code=401,
        )
    principal, digest = found
    if not may_use_console(principal):
        refusal = refuse(
            request,
            principal,
            403,
            f"principal {principal.name!r} may not use the console: that needs the role 'read' "
            f"(it has {principal.describe()})",
        )
        return sign_in_page(request, service, problem=refusal.message, next_path=next_path, status_code=403)
    log.info("principal %s signed in to the console", principal.name)
    response = RedirectResponse(next_path, status_code=303)
    await keeper.sign_in(request, response, principal, digest)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session for good (a form with the session's CSRF token, as every other): its cookie,
    even a copy saved before, no longer signs anyone in."""
    visitor = await get_visitor(request)
    form = await read_form(request)
    problem = csrf_problem(request, keeper_of(request).key, visitor.session, form.get(FIELD))
    if problem is not None:
        raise refuse(request, visitor.principal, 403, problem)
    log.info("principal %s signed out of the console", visitor.principal.name)
    response = RedirectResponse("/console/sign-in?signed_out=1", status_code=303)
    await keeper_of(request).sign_out(request, response, visitor.session)
    return response
