"""The console's sessions: a signed-in session kept by the control plane, and the sign-in form's own.

Two cookies, so that one never replaces the other:

- the **signed-in** session (``Path=/console``): the cookie carries only the session's random id,
  signed (HMAC-SHA256, :mod:`itsdangerous`); the session itself (principal, roles, environments, a
  keyed fingerprint of the credential, issued, expires, ended) is a row of the control plane's
  store (:mod:`otel_prompt_canary.registry.console_sessions`), read with one primary-key lookup on
  every console request. Signing out ends the row: a copy of the cookie saved before is worth
  nothing after, on every replica sharing the database. ``SameSite=Lax``: a link from another site
  (a chat message, a ticket) opens the console signed in; what changes state is a form post, which
  must carry the session's CSRF token and the console's origin (:mod:`.csrf`), and a ``GET``
  changes nothing.
- the **sign-in form's** anonymous session (``Path=/console/sign-in``): signed, holding only a
  random id the form's CSRF token is bound to, ``SameSite=Strict``, an hour long. Showing the form
  sets only this one: it never replaces a signed-in session (a browser keeps cookies of different
  paths apart). Signing in issues a new signed-in session (a new id: one fixed before signing in
  is worth nothing after) and removes the form's.

Both cookies have the name :data:`COOKIE_NAME` (the request guard lets a console form post through
only with it, :mod:`otel_prompt_canary.service.access`); each is told from the other by its
signature (a salt of its own), whatever order a browser sends them in.

Every request also looks the credential up again (:meth:`SessionKeeper.principal_now`): a session
whose credential the service no longer knows, or whose principal's name, roles or environments
changed, ends at once (the credentials file is read at start-up: a change takes effect when the
service restarts with it). The signing key is derived from the service's write token, so every
replica of a control plane reads the cookies of the others and rotating the token ends every
session; a service without a token (``--insecure-dev``) signs with a key of its own process. Both
cookies are ``HttpOnly``, ``Path=/console`` and ``Secure`` unless the console is reached over plain
http on a development service or on loopback. A registry other than the SQL one keeps the sessions
in the process's memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.console_sessions import ConsoleSessions, StoredSession
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.principals import (
    ANONYMOUS,
    Principal,
    Role,
    known_credentials,
    principal_for_digest,
)
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "COOKIE_NAME",
    "SESSION_SECONDS",
    "SIGN_IN_PATH",
    "Loaded",
    "Session",
    "SessionKeeper",
]

#: The name of the console's cookies (the signed-in session's and the sign-in form's).
COOKIE_NAME = "prompt_canary_session"
#: The path of the sign-in form's cookie (the signed-in session's is ``/console``).
SIGN_IN_PATH = "/console/sign-in"
#: How long a signed-in session lasts, from signing in (8 hours: a working day).
SESSION_SECONDS = 8 * 3600
#: How long the sign-in form's session lasts.
_ANONYMOUS_SECONDS = 3600
_PATH = "/console"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Session:
    """One visitor's session: its random ``id`` (what CSRF tokens are bound to), the principal
    signed in (None: the sign-in form's session), when it was issued (Unix seconds) and the
    fingerprint of the credential signed in with (:meth:`SessionKeeper.fingerprint`; None: signed
    in without one, on a service with open writes)."""

    id: str
    principal: Principal | None
    issued_at: float
    credential: str | None = None

    @property
    def signed_in(self) -> bool:
        """Whether a principal is signed in."""
        return self.principal is not None


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a request's cookie held: its session, or why it holds none (``problem``, for people)."""

    session: Session | None
    problem: str | None = None


class SessionStore(Protocol):
    """Where signed-in sessions are kept
    (:class:`~otel_prompt_canary.registry.console_sessions.ConsoleSessions`)."""

    def open(self, session: StoredSession) -> None: ...
    def find(self, session_id: str) -> StoredSession | None: ...
    def end(self, session_id: str) -> bool: ...
    def prune(self) -> int: ...


class SessionKeeper:
    """Issues, reads and ends the console's sessions of a service with ``settings`` serving ``registry``."""

    def __init__(self, settings: ServiceSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.key = _session_key(settings)
        self.sessions: SessionStore = (
            ConsoleSessions(registry.database) if isinstance(registry, SqlRegistry) else _MemorySessions()
        )
        self._signed_in = URLSafeTimedSerializer(self.key, salt="otel-prompt-canary console session v2")
        self._sign_in_form = URLSafeTimedSerializer(self.key, salt="otel-prompt-canary console sign-in form")
        self._index: dict[str, bytes] = {}
        self._indexed: object = None

    # -- the sign-in form's session -----------------------------------------------------------

    def new_form_session(self) -> Session:
        """A new anonymous session for the sign-in form's CSRF token."""
        return Session(id=secrets.token_urlsafe(18), principal=None, issued_at=time.time())

    def load_form_session(self, request: Request) -> Loaded:
        """The sign-in form's session of the request, or None with why."""
        problem = None
        for cookie in _cookies(request):
            try:
                data = self._sign_in_form.loads(cookie, max_age=_ANONYMOUS_SECONDS)
            except SignatureExpired:
                problem = "the sign-in form expired: try again"
                continue
            except BadSignature:
                continue  # the signed-in session's cookie, or not one of ours
            if isinstance(data, dict) and isinstance(data.get("sid"), str):
                issued = data.get("iat")
                issued_at = float(issued) if isinstance(issued, int | float) else 0.0
                return Loaded(Session(id=data["sid"], principal=None, issued_at=issued_at))
        return Loaded(None, problem)

    def store_form_session(self, request: Request, response: Response, session: Session) -> None:
        """Set the sign-in form's session as the response's cookie (the signed-in one is left alone)."""
        value = self._sign_in_form.dumps({"sid": session.id, "iat": session.issued_at})
        self._set(request, response, SIGN_IN_PATH, value, _ANONYMOUS_SECONDS, "strict")

    # -- the signed-in session -----------------------------------------------------------------

    async def load(self, request: Request) -> Loaded:
        """The request's signed-in session, or None with the reason: no cookie, a forged one, one
        signed out of or expired."""
        session_id: object = None
        problem = None
        for cookie in _cookies(request):
            try:
                session_id = self._signed_in.loads(cookie, max_age=SESSION_SECONDS)
                break
            except SignatureExpired:
                problem = "your session expired: sign in again"
            except BadSignature:
                if not self._is_form_cookie(cookie):
                    problem = "your session was not valid (forged or from another server): sign in again"
        if session_id is None:
            return Loaded(None, problem)
        if not isinstance(session_id, str):
            return Loaded(None, "your session was not valid: sign in again")
        stored = await run_in_threadpool(self.sessions.find, session_id)
        if stored is None:
            return Loaded(None, "your session has ended (signed out or expired): sign in again")
        if stored.ended_at is not None:
            return Loaded(None, "your session ended when you signed out: sign in again")
        if stored.expires_at <= utc_now():
            return Loaded(None, "your session expired: sign in again")
        session = _session_of(stored)
        if session is None:
            return Loaded(None, "your session was not valid: sign in again")
        return Loaded(session)

    async def sign_in(
        self, request: Request, response: Response, principal: Principal, digest: bytes | None
    ) -> Session:
        """Open a new session for ``principal``, signed in with the credential whose token has the
        SHA-256 ``digest`` (None: without a credential), as the response's cookie; the sign-in
        form's session is removed and sessions ended or expired are deleted."""
        credential = None if digest is None else self.fingerprint(digest)
        session_id = secrets.token_urlsafe(32)
        stored = StoredSession.signed_in(
            session_id,
            principal.name,
            tuple(sorted(role.value for role in principal.roles)),
            None if principal.environments is None else tuple(sorted(principal.environments)),
            credential=credential,
            lasts=SESSION_SECONDS,
        )

        def keep() -> None:
            # Pruned here, where sessions begin: the table holds about the sessions alive.
            self.sessions.prune()
            self.sessions.open(stored)

        await run_in_threadpool(keep)
        self._set(request, response, _PATH, self.cookie_for(session_id), SESSION_SECONDS, "lax")
        self._delete(request, response, SIGN_IN_PATH, "strict")
        return Session(
            id=session_id, principal=principal, issued_at=stored.issued_at.timestamp(), credential=credential
        )

    def cookie_for(self, session_id: str) -> str:
        """The cookie value of the signed-in session ``session_id``: its id, signed."""
        return self._signed_in.dumps(session_id)

    async def sign_out(self, request: Request, response: Response, session: Session) -> None:
        """End ``session`` for good and remove its cookie."""
        await run_in_threadpool(self.sessions.end, session.id)
        self._delete(request, response, _PATH, "lax")

    # -- the credential behind a session --------------------------------------------------------

    def fingerprint(self, digest: bytes) -> str:
        """What a session keeps of its credential: a keyed hash of the token's SHA-256, which
        names the credential to this service and reveals nothing of the token to anyone else."""
        return hmac.new(self.key, b"credential:" + digest, hashlib.sha256).hexdigest()[:32]

    def principal_now(self, session: Session) -> Principal | None:
        """The principal of ``session``'s credential as the service knows it now, or None when the
        service no longer knows the credential (removed from the credentials file, or a token
        replaced) or the session has none."""
        if session.credential is None:
            # Signed in without a credential: only while the service asks for none.
            return ANONYMOUS if self.settings.writes_open and session.principal == ANONYMOUS else None
        digest = self._digests().get(session.credential)
        return None if digest is None else principal_for_digest(self.settings, digest)

    def _digests(self) -> dict[str, bytes]:
        """Fingerprint -> SHA-256 of every credential of the service, built once for the
        credentials the settings hold (again if they ever hold others)."""
        if self._indexed is not self.settings.credentials:
            self._index = {self.fingerprint(d): d for d, _ in known_credentials(self.settings)}
            self._indexed = self.settings.credentials
        return self._index

    # -- cookies -------------------------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        """Whether the cookies are ``Secure``: always over https; over plain http only on a
        development service (``--insecure-dev``) or loopback would a browser need them not to be."""
        if request.url.scheme == "https":
            return True
        return not (self.settings.insecure_dev or request.url.hostname in _LOOPBACK_HOSTS)

    def _is_form_cookie(self, cookie: str) -> bool:
        try:
            self._sign_in_form.loads(cookie)
        except BadSignature:
            return False
        return True

    def _set(
        self,
        request: Request,
        response: Response,
        path: str,
        value: str,
        lifetime: int,
        samesite: Literal["lax", "strict"],
    ) -> None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=lifetime,
            path=path,
            httponly=True,
            samesite=samesite,
            secure=self.secure(request),
        )

    def _delete(
        self, request: Request, response: Response, path: str, samesite: Literal["lax", "strict"]
    ) -> None:
        response.delete_cookie(
            COOKIE_NAME, path=path, httponly=True, samesite=samesite, secure=self.secure(request)
        )


def _cookies(request: Request) -> list[str]:
    """Every value of the request's cookies named :data:`COOKIE_NAME` (on the sign-in form's path a
    browser sends two; ``request.cookies`` would keep one)."""
    values = []
    for chunk in request.headers.get("cookie", "").split(";"):
        name, sep, value = chunk.partition("=")
        if sep and name.strip() == COOKIE_NAME and value.strip():
            values.append(value.strip().strip('"'))
    return values


class _MemorySessions:
    """Sessions kept in the process's memory, for a registry without a SQL store."""

    def __init__(self) -> None:
        self._sessions: dict[str, StoredSession] = {}
        self._lock = threading.Lock()

    def open(self, session: StoredSession) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def find(self, session_id: str) -> StoredSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def end(self, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.ended_at is not None:
                return False
            self._sessions[session_id] = replace(session, ended_at=utc_now())
            return True

    def prune(self) -> int:
        now: datetime = utc_now()
        with self._lock:
            gone = [k for k, s in self._sessions.items() if s.ended_at is not None or s.expires_at <= now]
            for key in gone:
                del self._sessions[key]
            return len(gone)


def _session_key(settings: ServiceSettings) -> bytes:
    if settings.token is None:
        # No shared secret: cookies are this process's own, and end when it does.
        return secrets.token_bytes(32)
    token = settings.token.get_secret_value().encode()
    # A key of its own, derived from the token: a session cookie never reveals or tests the token.
    return hmac.new(token, b"otel-prompt-canary console session key v1", hashlib.sha256).digest()


def _session_of(stored: StoredSession) -> Session | None:
    """The session a stored row is (None when its roles are not ones this release knows)."""
    try:
        principal = Principal(
            name=stored.principal,
            roles=frozenset(Role(role) for role in stored.roles),
            environments=None if stored.environments is None else frozenset(stored.environments),
        )
    except ValueError:
        return None
    return Session(
        id=stored.id,
        principal=principal,
        issued_at=stored.issued_at.timestamp(),
        credential=stored.credential,
    )
