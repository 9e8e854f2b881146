"""Who is using the console, and what they may do: sign-in, the session of each request, CSRF checks
on every form, role checks on every action, and the log of what was refused.

A page needs a signed-in principal that may read; an action also needs the role the API asks for
the same change (``operate`` to move a rollout, ``review`` to approve), in the environment acted
on. A refusal is logged as the API's are (logger ``otel_prompt_canary.service.access``, WARNING:
principal, method, path, why) and answered with a page that says why; nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from otel_prompt_canary.errors import PermissionDeniedError
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.console.csrf import csrf_problem, csrf_token
from otel_prompt_canary.service.console.session import Session, SessionKeeper
from otel_prompt_canary.service.principals import (
    ANONYMOUS,
    Principal,
    Role,
    principal_for_digest,
    require_role,
    token_digest,
)
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "ConsoleRefusal",
    "SignInNeeded",
    "Visitor",
    "VisitorDep",
    "principal_for_console",
    "refuse",
]


class SignInNeeded(Exception):
    """The request has no signed-in session: answered with the sign-in page and ``message``."""

    def __init__(self, message: str | None, next_path: str) -> None:
        super().__init__(message or "sign in")
        self.message = message
        self.next_path = next_path


class ConsoleRefusal(Exception):
    """A refused request (a role beyond the principal's scope, a form that fails its CSRF check):
    answered with ``status`` and a page saying ``message``; already logged."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in request: its session, principal and the CSRF token its forms carry."""

    session: Session
    principal: Principal
    csrf: str

    def may(self, role: Role, environment: str | None = None) -> bool:
        """Whether the principal holds ``role`` (in ``environment``)."""
        return self.principal.may(role, environment)


def keeper_of(request: Request) -> SessionKeeper:
    """The console's session keeper."""
    keeper: SessionKeeper = request.app.state.sessions
    return keeper


def principal_for_console(settings: ServiceSettings, token: str) -> tuple[Principal, bytes | None] | None:
    """The principal a credential presented at sign-in speaks for and the SHA-256 of its token
    (what the session is bound to), or None for no credential of this service. With open writes
    (``--insecure-dev`` without a token) an empty credential signs in as
    :data:`~otel_prompt_canary.service.principals.ANONYMOUS`, bound to no credential."""
    token = token.strip()
    if not token:
        return (ANONYMOUS, None) if settings.writes_open else None
    digest = token_digest(token)
    principal = principal_for_digest(settings, digest)
    return None if principal is None else (principal, digest)


def may_use_console(principal: Principal) -> bool:
    """Whether ``principal`` may read what the console shows (``operate`` and ``review`` read too)."""
    return principal.may(Role.READ)


def refuse(request: Request, principal: Principal | None, status: int, why: str) -> ConsoleRefusal:
    """Log a refused request (as the API's refusals are logged) and make the refusal to raise."""
    log_refusal(request.method, request.url.path, None if principal is None else principal.name, why)
    return ConsoleRefusal(status, why)


async def get_visitor(request: Request) -> Visitor:
    """The signed-in visitor of a console request (the sign-in page when there is none)."""
    keeper = keeper_of(request)
    loaded = await keeper.load(request)
    session = loaded.session
    next_path = _here(request) if request.method == "GET" else "/console/"
    if session is None or session.principal is None:
        if loaded.problem is not None:
            log_refusal(request.method, request.url.path, None, loaded.problem)
        raise SignInNeeded(loaded.problem, next_path)
    # The credential is looked up again on every request: one removed from the credentials file,
    # or whose principal changed, ends the session now rather than when it expires.
    principal = keeper.principal_now(session)
    if principal != session.principal:
        signed_in = session.principal.name
        if principal is None:
            why = "your credential is no longer valid (removed or replaced): sign in again"
        else:
            why = "your credential's principal, roles or environments changed: sign in again"
        log_refusal(request.method, request.url.path, signed_in, f"session of {signed_in!r} ended: {why}")
        raise SignInNeeded(why, next_path)
    assert principal is not None  # equal to the session's, which is someone
    if not may_use_console(principal):
        raise refuse(
            request,
            principal,
            403,
            f"principal {principal.name!r} may not use the console: that needs the role 'read' "
            f"(it has {principal.describe()})",
        )
    return Visitor(session=session, principal=principal, csrf=csrf_token(keeper.key, session))


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def _here(request: Request) -> str:
    """The page asked for, with its query (its environment, say): where to go after signing in."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def check_form(request: Request, visitor: Visitor | None, session: Session, presented: str | None) -> None:
    """Refuse (403, logged) a form post that fails the CSRF check of ``session``."""
    problem = csrf_problem(request, keeper_of(request).key, session, presented)
    if problem is not None:
        raise refuse(request, None if visitor is None else visitor.principal, 403, problem)


def require_visitor_role(
    request: Request, visitor: Visitor, role: Role, environment: str | None, *, doing: str
) -> None:
    """Refuse (403, logged) unless the visitor holds ``role`` (in ``environment``): the API's check
    (:func:`~otel_prompt_canary.service.principals.require_role`), with its message."""
    try:
        require_role(visitor.principal, role, environment, doing=doing)
    except PermissionDeniedError as exc:
        raise refuse(request, visitor.principal, 403, str(exc)) from None
