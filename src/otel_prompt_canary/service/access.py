"""Which credential opens which request, decided from the request's headers before its body is read.

The request guard (:mod:`otel_prompt_canary.service.limits`) asks :func:`check_access` first, so that
a request without an acceptable credential is refused (401) before the service reads or holds a
byte of its body. The handlers check again, completely: a signature over the body can only be
verified once the body is read, so here a signed request passes when it is signed the way its
endpoint accepts and the service has that secret.

======================================  ============================================================
request                                 accepted credentials (``Authorization: Bearer`` unless said)
======================================  ============================================================
``POST /v1/alerts/alertmanager``        the write token, the Alertmanager token or basic auth
``POST /v1/alerts/grafana``             the write token, or Grafana's HMAC signature
``POST /v1/alerts/collector``           the write token, or a Standard Webhooks signature
``POST /v1/reports``, ``/v1/feedback``  the write token, the reporting credential, or a signature
every other ``POST /v1/...``            the write token (prompts, rollouts, datasets, evaluation runs,
                                        drift baselines...)
``GET`` of what applications read       the write, read or reporting credential (when reads are
(routes, prompt versions, policies)     closed)
every other ``GET``                     the write or read token (when reads are closed)
``/healthz``, ``/openapi.json``,        nothing
``/docs``
======================================  ============================================================

With ``--insecure-dev`` and no write token, writes are open, except a receiver that has
credentials of its own configured; without ``read_token`` reads are open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum

from pydantic import SecretStr

from otel_prompt_canary.service import signatures
from otel_prompt_canary.service.credentials import require_bearer, require_write_token
from otel_prompt_canary.service.receivers import alertmanager, grafana
from otel_prompt_canary.service.receivers.grafana import GRAFANA_FALLBACK_SIGNATURE_HEADER
from otel_prompt_canary.service.settings import GRAFANA_SIGNATURE_HEADER, ServiceSettings

__all__ = ["Access", "access_of", "check_access"]


class Access(Enum):
    """What a request needs, by kind."""

    OPEN = "open"
    READ = "read"
    APPLICATION_READ = "application read"
    WRITE = "write"
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    SIGNED = "signed"
    SIGNED_REPORT = "signed report"
    #: Not a write of the API (another method or path: 404 or 405): passed on, its body unread.
    UNKNOWN = "unknown"


_NAME = r"[^/]+"
#: The writes that accept credentials of their senders; every other write needs the write token.
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
_APPLICATION_READS = tuple(
    re.compile(pattern)
    for pattern in (
        r"/v1/routes",
        rf"/v1/routes/{_NAME}",
        r"/v1/policies",
        rf"/v1/prompts/{_NAME}/versions/{_NAME}",
    )
)
_OPEN_READS = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})


def access_of(method: str, path: str) -> Access:
    """What a request for ``method`` ``path`` needs."""
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
        return Access.WRITE  # a write the table does not name needs the write token
    return Access.UNKNOWN


def check_access(method: str, path: str, headers: Mapping[str, str], settings: ServiceSettings) -> Access:
    """What the request needs; raises :class:`~otel_prompt_canary.errors.AuthenticationError` (401)
    when its headers cannot pass.

    ``headers`` must be case-insensitive (Starlette's are).
    """
    access = access_of(method, path)
    if access is Access.READ or access is Access.APPLICATION_READ:
        if not settings.reads_open:
            readers: tuple[SecretStr | None, ...] = (settings.token, settings.read_token)
            if access is Access.APPLICATION_READ:
                readers += (settings.report_token,)
            require_bearer(headers, readers, what="reads", token_name="read token")
    elif access is Access.WRITE:
        require_write_token(headers, settings)
    elif access is Access.ALERTMANAGER:
        alertmanager.authenticate(headers, settings)
    elif access is Access.GRAFANA:
        _check_grafana(headers, settings)
    elif access is Access.SIGNED or access is Access.SIGNED_REPORT:
        _check_signed(headers, settings, reporting=access is Access.SIGNED_REPORT)
    return access


def _check_grafana(headers: Mapping[str, str], settings: ServiceSettings) -> None:
    signed = headers.get(settings.grafana_signature_header) is not None or (
        settings.grafana_signature_header == GRAFANA_SIGNATURE_HEADER
        and headers.get(GRAFANA_FALLBACK_SIGNATURE_HEADER) is not None
    )
    if signed and settings.grafana_secret is not None:
        return  # the signature is verified once the body is read
    grafana.authenticate(headers, b"", settings)  # without a signature to verify, the body is unused


def _check_signed(headers: Mapping[str, str], settings: ServiceSettings, *, reporting: bool) -> None:
    signed = headers.get(signatures.SIGNATURE_HEADER) is not None
    if signed and settings.webhook_secret is not None:
        return  # the signature is verified once the body is read
    # Without a signature to verify, the body is unused.
    signatures.authenticate(headers, b"", settings, reporting=reporting)
