"""Credentials shared by the API, the alert receivers and the report endpoint.

Every receiver accepts the service's write token (``Authorization: Bearer <token>``): whoever holds
it may roll back through the API anyway. Reports and feedback also accept the reporting credential
(``report_token``), which may do nothing else. Each format adds its own credentials (Alertmanager's bearer
token or basic auth, Grafana's HMAC signature, the Collector's Standard Webhooks signature); see
docs/alerts.md. With ``--insecure-dev`` and no token, a receiver without credentials of its own is
open, like every write. Reads need the read token (``read_token``) when one is set
(:mod:`otel_prompt_canary.service.access` says which credential opens what).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from otel_prompt_canary.errors import AuthenticationError
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "authorization",
    "bearer_is_reporter",
    "bearer_is_service_token",
    "require_bearer",
    "require_write_token",
    "secret_equals",
]


def secret_equals(presented: str | bytes, secret: SecretStr | None) -> bool:
    """Whether ``presented`` is ``secret``, compared in constant time (False without a secret)."""
    if secret is None:
        return False
    given = presented.encode() if isinstance(presented, str) else presented
    return hmac.compare_digest(given, secret.get_secret_value().encode())


def authorization(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``Authorization`` header as (lower-case scheme, credentials), or None when absent."""
    header = headers.get("authorization")
    if header is None or not header.strip():
        return None
    scheme, _, value = header.strip().partition(" ")
    return scheme.lower(), value.strip()


def bearer_is_service_token(headers: Mapping[str, str], settings: ServiceSettings) -> bool:
    """True when the request presents the write token; raises when it presents a wrong bearer.

    False when it presents no ``Authorization`` header, or another scheme.
    """
    found = authorization(headers)
    if found is None or found[0] != "bearer":
        return False
    if not found[1]:
        raise AuthenticationError("empty bearer token: use 'Authorization: Bearer <token>'")
    if secret_equals(found[1], settings.token):
        return True
    raise AuthenticationError("invalid bearer token")


def bearer_is_reporter(headers: Mapping[str, str], settings: ServiceSettings) -> bool:
    """:func:`bearer_is_service_token`, accepting the reporting credential (``report_token``) too."""
    found = authorization(headers)
    if found is not None and found[0] == "bearer" and secret_equals(found[1], settings.report_token):
        return True
    return bearer_is_service_token(headers, settings)


def require_bearer(
    headers: Mapping[str, str], secrets: tuple[SecretStr | None, ...], *, what: str, token_name: str
) -> None:
    """Refuse (401) a request whose bearer token is none of ``secrets``.

    ``what`` names the requests in the message ("writes", "reads"), ``token_name`` the token.
    """
    header = headers.get("authorization")
    if header is None or not header.strip():
        raise AuthenticationError(
            f"missing credentials: {what} need the header 'Authorization: Bearer <{token_name}>'"
        )
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(
            f"unsupported authorization scheme {scheme[:20]!r}: use 'Authorization: Bearer <{token_name}>'"
        )
    presented = presented.strip()
    if not presented:
        raise AuthenticationError(f"empty bearer token: use 'Authorization: Bearer <{token_name}>'")
    if not any(secret_equals(presented, secret) for secret in secrets):
        raise AuthenticationError("invalid bearer token")


def require_write_token(headers: Mapping[str, str], settings: ServiceSettings) -> None:
    """Refuse (401) a write without the write token, unless writes are open (``--insecure-dev``)."""
    if settings.token is not None:
        require_bearer(headers, (settings.token,), what="writes", token_name="token")
