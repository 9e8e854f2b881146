"""Who may do what: the principal of a request and the role it needs, decided from its headers,
path and query before its body is read.

The request guard (:mod:`otel_prompt_canary.service.limits`) asks :func:`check_access` first, so
that a request without an acceptable credential is refused (401) before the service reads or holds
a byte of its body, and a known principal acting beyond its roles is refused (403) with a message
naming the principal, the role it lacks and the environment. The guard puts the principal on the
request (``request.state.principal``, read by
:func:`~otel_prompt_canary.service.principals.get_principal`): handlers record its name in audit
records, versions and reviews. Refusals are logged (logger ``otel_prompt_canary.service.access``,
WARNING: principal, method, path, why).

Each request needs one role (``[env]``: environment-bound, see below):

- ``GET /v1/routes``, ``/v1/routes/{name}``, ``/v1/policies`` [env];
  ``GET /v1/prompts/{name}/versions/{version}``: read or report (what applications read);
- ``GET /v1/prompts``, ``/v1/prompts/{name}`` (with each prompt's routing flag),
  ``.../rollout``, ``.../rollout/verdict``, ``.../rollout/history`` [env]: read;
- every other ``GET`` (versions, diffs, reviews, alerts, datasets, evaluations, drift): read;
- ``POST /v1/prompts/{name}/rollouts``, ``.../rollout/{action}`` [env]: operate;
- ``POST /v1/prompts/{name}/versions/{version}/reviews``: review;
- every other ``POST /v1/...`` (push a version, datasets, evaluation runs, drift baselines and
  acknowledgements): operate;
- ``POST /v1/reports``, ``/v1/feedback``: report, or the Collector's signature;
- ``POST /v1/alerts/alertmanager``: alert, or Alertmanager's basic auth;
- ``POST /v1/alerts/grafana``: alert, or Grafana's HMAC signature;
- ``POST /v1/alerts/collector``: alert, or the Collector's signature;
- ``/``, ``/console...``: the console's session (:data:`Access.CONSOLE`; the console checks it);
  a console form (``POST``, ``PUT``, ``PATCH``) sent without the session cookie is refused
  here (403) before its body is read: every form of the console, sign-in included, is served with
  a session (an anonymous one before signing in), so only a client that is not a console page
  posts without one. A form with a session cookie has its body read (up to ``max_body_bytes``)
  before the console checks the session, its CSRF token and its origin;
- ``/healthz``, ``/openapi.json``, ``/docs``: nothing.

The environment-bound requests are those that take ``?environment=``.
A credential is ``Authorization: Bearer <token>``. ``admin`` holds every role; ``operate`` and
``review`` include ``read`` (:mod:`otel_prompt_canary.service.principals`). The environment of an
environment-bound request is its ``environment`` query parameter, else
:data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`; a principal limited to some environments holds
its roles only there.

Signatures are verified once the body is read: here a signed request passes when it is signed the
way its endpoint accepts and the service has that secret, and the receivers check it again,
completely. With ``--insecure-dev`` and neither a write token nor a credentials file, writes are
open (to the principal ``anonymous``), except a receiver that has credentials of its own
configured; without ``read_token`` and credentials file, reads are open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from starlette.datastructures import QueryParams
from starlette.requests import cookie_parser

from otel_prompt_canary.errors import AuthenticationError, PermissionDeniedError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT, ENVIRONMENT_PARAMETER
from otel_prompt_canary.service import signatures
from otel_prompt_canary.service.credentials import authorization, bearer_principal
from otel_prompt_canary.service.principals import (
    ALERTMANAGER,
    ANONYMOUS,
    ANONYMOUS_READER,
    COLLECTOR,
    GRAFANA,
    Principal,
    Role,
    principal_for_token,
    require_role,
)
from otel_prompt_canary.service.receivers import alertmanager, grafana
from otel_prompt_canary.service.receivers.grafana import GRAFANA_FALLBACK_SIGNATURE_HEADER
from otel_prompt_canary.service.settings import GRAFANA_SIGNATURE_HEADER, ServiceSettings

__all__ = ["Access", "Granted", "access_of", "check_access", "environment_bound", "log_refusal"]

logger = logging.getLogger("otel_prompt_canary.service.access")


class Access(Enum):
    """What a request needs, by kind."""

    OPEN = "open"
    #: The console's pages and forms: its session decides (the console checks it).
    CONSOLE = "console"
    READ = "read"
    APPLICATION_READ = "application read"
    WRITE = "write"
    REVIEW = "review"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    SIGNED = "signed"
    SIGNED_REPORT = "signed report"
    #: Not a request of the API (another method or path: 404 or 405): passed on, its body unread.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Granted:
    """What :func:`check_access` let through: the kind of request, its principal (None for the
    console's requests and unknown ones), and its environment when it is environment-bound."""

    access: Access
    principal: Principal | None
    environment: str | None = None


_NAME = r"[^/]+"
#: The writes that accept credentials of their senders.
_RECEIVERS: tuple[tuple[re.Pattern[str], Access], ...] = tuple(
    (re.compile(pattern), access)
    for pattern, access in (
        (r"/v1/alerts/alertmanager", Access.ALERTMANAGER),
        (r"/v1/alerts/grafana", Access.GRAFANA),
        (r"/v1/alerts/collector", Access.SIGNED),
        (r"/v1/reports", Access.SIGNED_REPORT),
        (r"/v1/feedback", Access.SIGNED_REPORT),
    )
)
_REVIEWS = re.compile(rf"/v1/prompts/{_NAME}/versions/{_NAME}/reviews")
_APPLICATION_READS = tuple(
    re.compile(pattern)
    for pattern in (
        r"/v1/routes",
        rf"/v1/routes/{_NAME}",
        r"/v1/policies",
        rf"/v1/prompts/{_NAME}/versions/{_NAME}",
    )
)
#: Requests about one environment's routing flags and rollouts (by method).
_ENVIRONMENT_BOUND: dict[str, tuple[re.Pattern[str], ...]] = {
    "GET": tuple(
        re.compile(pattern)
        for pattern in (
            r"/v1/routes",
            rf"/v1/routes/{_NAME}",
            r"/v1/policies",
            r"/v1/prompts",
            rf"/v1/prompts/{_NAME}",
            rf"/v1/prompts/{_NAME}/rollout",
            rf"/v1/prompts/{_NAME}/rollout/verdict",
            rf"/v1/prompts/{_NAME}/rollout/history",
        )
    ),
    "POST": tuple(
        re.compile(pattern)
        for pattern in (rf"/v1/prompts/{_NAME}/rollouts", rf"/v1/prompts/{_NAME}/rollout/{_NAME}")
    ),
}
_OPEN_READS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})

#: What each kind of request asks, in words, for refusals.
_ASKS = {
    Access.WRITE: "change this",
    Access.REVIEW: "review versions",
    Access.ALERTMANAGER: "post alerts",
    Access.GRAFANA: "post alerts",
    Access.SIGNED: "post alerts",
    Access.SIGNED_REPORT: "post reports or feedback",
}


def access_of(method: str, path: str) -> Access:
    """What a request for ``method`` ``path`` needs."""
    if path == "/" or path == "/console" or path.startswith("/console/"):
        return Access.CONSOLE
    if method in ("GET", "HEAD"):
        if path in _OPEN_READS:
            return Access.OPEN
        if any(p.fullmatch(path) for p in _APPLICATION_READS):
            return Access.APPLICATION_READ
        return Access.READ
    if method == "POST" and path.startswith("/v1/"):
        for pattern, access in _RECEIVERS:
            if pattern.fullmatch(path):
                return access
        if _REVIEWS.fullmatch(path):
            return Access.REVIEW
        return Access.WRITE  # a write the table does not name needs the operate role
    return Access.UNKNOWN


def environment_bound(method: str, path: str) -> bool:
    """Whether a request for ``method`` ``path`` is about one environment (routing flags, rollouts)."""
    patterns = _ENVIRONMENT_BOUND.get("GET" if method == "HEAD" else method, ())
    return any(p.fullmatch(path) for p in patterns)


def log_refusal(method: str, path: str, principal: str | None, why: str) -> None:
    """Log a refused request (WARNING): who asked, what, and why."""
    logger.warning("refused %s %s for principal %s: %s", method, path, principal or "-", why)


def check_access(
    method: str, path: str, headers: Mapping[str, str], settings: ServiceSettings, query: str = ""
) -> Granted:
    """The principal of the request and what it asks; raises
    :class:`~otel_prompt_canary.errors.AuthenticationError` (401) when its headers cannot pass, and
    :class:`~otel_prompt_canary.errors.PermissionDeniedError` (403) when its principal lacks the
    role it needs (in its environment).

    ``headers`` must be case-insensitive (Starlette's are); ``query`` is the raw query string.
    """
    access = access_of(method, path)
    if access is Access.CONSOLE and method in ("POST", "PUT", "PATCH") and not _has_session(headers):
        why = (
            "a console form posted without the console's session cookie: the sign-in form expired "
            "(or cookies are off); open /console/sign-in and try again"
        )
        log_refusal(method, path, None, why)
        raise PermissionDeniedError(why)
    environment = None
    if environment_bound(method, path):
        environment = QueryParams(query).get(ENVIRONMENT_PARAMETER) or DEFAULT_ENVIRONMENT
    if access in (Access.READ, Access.APPLICATION_READ) and settings.reads_open:
        # Reads are open to anyone: a credential, when it is someone's, only names who reads.
        anyone = ANONYMOUS if settings.writes_open else ANONYMOUS_READER
        return Granted(access, _optional_bearer(headers, settings) or anyone, environment)
    try:
        principal = _principal(access, headers, settings)
    except AuthenticationError as exc:
        log_refusal(method, path, None, str(exc))
        raise
    if principal is not None:
        try:
            _check_role(access, principal, environment, method, path)
        except PermissionDeniedError as exc:
            log_refusal(method, path, principal.name, str(exc))
            raise
    return Granted(access, principal, environment)


def _has_session(headers: Mapping[str, str]) -> bool:
    """Whether the request carries the console's session cookie (signed or not: the console
    checks it)."""
    # Imported here: the console's package imports this module.
    from otel_prompt_canary.service.console.session import COOKIE_NAME

    return bool(cookie_parser(headers.get("cookie", "")).get(COOKIE_NAME))


def _principal(access: Access, headers: Mapping[str, str], settings: ServiceSettings) -> Principal | None:
    """Who the request speaks for (authenticated); None when the guard does not decide."""
    if access is Access.CONSOLE or access is Access.UNKNOWN:
        return None
    if access is Access.OPEN:
        return ANONYMOUS_READER
    if access is Access.READ or access is Access.APPLICATION_READ:
        return bearer_principal(headers, settings, what="reads", token_name="read token")
    if access is Access.WRITE or access is Access.REVIEW:
        if settings.writes_open:
            return ANONYMOUS
        return bearer_principal(headers, settings, what="writes", token_name="token")
    if access is Access.ALERTMANAGER:
        return _alertmanager(headers, settings)
    if access is Access.GRAFANA:
        return _grafana(headers, settings)
    return _signed(headers, settings)


def _check_role(
    access: Access, principal: Principal, environment: str | None, method: str, path: str
) -> None:
    if access is Access.OPEN:
        return
    role = {
        Access.READ: Role.READ,
        Access.APPLICATION_READ: Role.READ,
        Access.WRITE: Role.OPERATE,
        Access.REVIEW: Role.REVIEW,
        Access.SIGNED_REPORT: Role.REPORT,
    }.get(access, Role.ALERT)
    also = Role.REPORT if access is Access.APPLICATION_READ else None  # what applications read
    doing = f"read {path}" if role is Role.READ else _ASKS.get(access, "change this")
    if access is Access.WRITE:
        doing = f"{method} {path}"
    require_role(principal, role, environment, doing=doing, also=also)


def _optional_bearer(headers: Mapping[str, str], settings: ServiceSettings) -> Principal | None:
    """The principal of a bearer token the request presents, if any is anyone's (open reads
    ignore a wrong one, as they always have)."""
    found = authorization(headers)
    if found is None or found[0] != "bearer":
        return None
    return principal_for_token(settings, found[1])


def _alertmanager(headers: Mapping[str, str], settings: ServiceSettings) -> Principal:
    own = settings.alertmanager_token is not None or settings.alertmanager_basic_auth is not None
    if settings.writes_open and not own:
        return ANONYMOUS
    found = authorization(headers)
    if found is not None and found[0] == "bearer":
        return bearer_principal(headers, settings, what="alerts", token_name="token")
    alertmanager.authenticate(headers, settings)  # basic auth, or refused with the precise message
    return ALERTMANAGER


def _grafana(headers: Mapping[str, str], settings: ServiceSettings) -> Principal:
    signed = headers.get(settings.grafana_signature_header) is not None or (
        settings.grafana_signature_header == GRAFANA_SIGNATURE_HEADER
        and headers.get(GRAFANA_FALLBACK_SIGNATURE_HEADER) is not None
    )
    if signed and settings.grafana_secret is not None:
        return GRAFANA  # the signature is verified once the body is read
    if settings.writes_open and settings.grafana_secret is None:
        return ANONYMOUS
    found = authorization(headers)
    if found is not None and found[0] == "bearer":
        return bearer_principal(headers, settings, what="alerts", token_name="token")
    grafana.authenticate(headers, b"", settings)  # refused with the precise message
    raise AuthenticationError("missing credentials")  # not reached: authenticate() refused


def _signed(headers: Mapping[str, str], settings: ServiceSettings) -> Principal:
    signed = headers.get(signatures.SIGNATURE_HEADER) is not None
    if signed and settings.webhook_secret is not None:
        return COLLECTOR  # the signature is verified once the body is read
    if settings.writes_open and settings.webhook_secret is None:
        return ANONYMOUS
    found = authorization(headers)
    if found is not None and found[0] == "bearer":
        return bearer_principal(headers, settings, what="reports and alerts", token_name="token")
    signatures.authenticate(headers, b"", settings)  # refused with the precise message
    raise AuthenticationError("missing credentials")  # not reached: authenticate() refused
