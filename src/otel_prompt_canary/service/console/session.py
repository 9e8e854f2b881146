"""The console's session: a signed, expiring cookie naming the principal signed in, if any.

A visitor always holds a session (an anonymous one until they sign in), so that every form, the
sign-in form included, carries a CSRF token bound to it (:mod:`.csrf`). Signing in replaces the
session with a new one (a new id: a session fixed before signing in is worth nothing after).

The cookie is signed (HMAC-SHA256, :mod:`itsdangerous`), not encrypted: it holds the principal's
name, roles and environments, never the credential. Its key is derived from the service's write
token, so every replica of a control plane reads the sessions of the others and rotating the token
ends every session; a service without a token (``--insecure-dev``) signs with a key of its own
process. The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/console`` and ``Secure`` unless
the console is reached over plain http on a development service or on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from otel_prompt_canary.service.principals import Principal, Role
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "COOKIE_NAME",
    "SESSION_SECONDS",
    "Loaded",
    "Session",
    "SessionKeeper",
]

#: The session cookie's name.
COOKIE_NAME = "prompt_canary_session"
#: How long a signed-in session lasts, from signing in (8 hours: a working day).
SESSION_SECONDS = 8 * 3600
#: How long an anonymous session (the sign-in form's) lasts.
_ANONYMOUS_SECONDS = 3600
_PATH = "/console"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Session:
    """One visitor's session: its random ``id`` (what CSRF tokens are bound to), the principal
    signed in (None: not signed in) and when it was issued (Unix seconds)."""

    id: str
    principal: Principal | None
    issued_at: float

    @property
    def signed_in(self) -> bool:
        """Whether a principal is signed in."""
        return self.principal is not None


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a request's cookie held: its session, or why it holds none (``problem``, for people)."""

    session: Session | None
    problem: str | None = None


class SessionKeeper:
    """Issues, reads and clears the session cookie of the console of a service with ``settings``."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.key = _session_key(settings)
        self._serializer = URLSafeTimedSerializer(self.key, salt="otel-prompt-canary console session")

    def new(self, principal: Principal | None) -> Session:
        """A new session (a new id) for ``principal``, or an anonymous one."""
        return Session(id=secrets.token_urlsafe(18), principal=principal, issued_at=time.time())

    def load(self, request: Request) -> Loaded:
        """The request's session, or None with the reason: no cookie, a forged one, an expired one."""
        cookie = request.cookies.get(COOKIE_NAME)
        if not cookie:
            return Loaded(None)
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except SignatureExpired:
            return Loaded(None, "your session expired: sign in again")
        except BadSignature:
            return Loaded(None, "your session was not valid (forged or from another server): sign in again")
        session = _session_of(data)
        if session is None:
            return Loaded(None, "your session was not valid: sign in again")
        lifetime = SESSION_SECONDS if session.signed_in else _ANONYMOUS_SECONDS
        if time.time() - session.issued_at > lifetime:
            return Loaded(None, "your session expired: sign in again")
        return Loaded(session)

    def store(self, request: Request, response: Response, session: Session) -> None:
        """Set ``session`` as the response's cookie."""
        lifetime = SESSION_SECONDS if session.signed_in else _ANONYMOUS_SECONDS
        response.set_cookie(
            COOKIE_NAME,
            self._serializer.dumps(_data_of(session)),
            max_age=lifetime,
            path=_PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )

    def clear(self, request: Request, response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(
            COOKIE_NAME, path=_PATH, httponly=True, samesite="strict", secure=self.secure(request)
        )

    def secure(self, request: Request) -> bool:
        """Whether the cookie is ``Secure``: always over https; over plain http only on a
        development service (``--insecure-dev``) or loopback would a browser need it not to be."""
        if request.url.scheme == "https":
            return True
        return not (self.settings.insecure_dev or request.url.hostname in _LOOPBACK_HOSTS)


def _session_key(settings: ServiceSettings) -> bytes:
    if settings.token is None:
        # No shared secret: sessions are this process's own, and end when it does.
        return secrets.token_bytes(32)
    token = settings.token.get_secret_value().encode()
    # A key of its own, derived from the token: a session cookie never reveals or tests the token.
    return hmac.new(token, b"otel-prompt-canary console session key v1", hashlib.sha256).digest()


def _data_of(session: Session) -> dict[str, Any]:
    principal = session.principal
    data: dict[str, Any] = {"sid": session.id, "iat": session.issued_at}
    if principal is not None:
        data["p"] = principal.name
        data["r"] = sorted(role.value for role in principal.roles)
        data["e"] = None if principal.environments is None else sorted(principal.environments)
    return data


def _session_of(data: object) -> Session | None:
    """The session a verified cookie holds (None when its content is not one: an older format)."""
    if not isinstance(data, dict):
        return None
    sid, issued = data.get("sid"), data.get("iat")
    if not isinstance(sid, str) or not isinstance(issued, int | float):
        return None
    name = data.get("p")
    if name is None:
        return Session(id=sid, principal=None, issued_at=float(issued))
    roles, environments = data.get("r"), data.get("e")
    if not isinstance(name, str) or not isinstance(roles, list):
        return None
    try:
        principal = Principal(
            name=name,
            roles=frozenset(Role(role) for role in roles),
            environments=None if environments is None else frozenset(str(e) for e in environments),
        )
    except ValueError:
        return None
    return Session(id=sid, principal=principal, issued_at=float(issued))
