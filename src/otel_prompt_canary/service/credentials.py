"""Bearer credentials, shared by the request guard, the alert receivers and the report endpoint.

A bearer token (``Authorization: Bearer <token>``) is some principal's
(:func:`~otel_prompt_canary.service.principals.principal_for_token`): the write token's
(``admin``), the read token's, the reporting credential's, the Alertmanager token's, or one of the
credentials file. Each receiver accepts any principal with the ``alert`` role, the report endpoint
any with the ``report`` role; each format adds its own credentials (Alertmanager's basic auth,
Grafana's HMAC signature, the Collector's Standard Webhooks signature; see docs/alerts.md). With
``--insecure-dev`` and no credential configured, a receiver without credentials of its own is open,
like every write (:mod:`otel_prompt_canary.service.access` says which credential opens what).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from otel_prompt_canary.errors import AuthenticationError
from otel_prompt_canary.service.principals import Principal, Role, principal_for_token, require_role
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["authorization", "bearer_may", "bearer_principal", "secret_equals"]


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


def bearer_principal(
    headers: Mapping[str, str], settings: ServiceSettings, *, what: str, token_name: str
) -> Principal:
    """The principal of the request's bearer token; refuses (401) a request without one, or whose
    token is no one's.

    ``what`` names the requests in the message ("writes", "reads"), ``token_name`` the token.
    """
    found = authorization(headers)
    if found is None:
        raise AuthenticationError(
            f"missing credentials: {what} need the header 'Authorization: Bearer <{token_name}>'"
        )
    scheme, presented = found
    if scheme != "bearer":
        raw = headers.get("authorization", "").strip().partition(" ")[0]
        raise AuthenticationError(
            f"unsupported authorization scheme {raw[:20]!r}: use 'Authorization: Bearer <{token_name}>'"
        )
    if not presented:
        raise AuthenticationError(f"empty bearer token: use 'Authorization: Bearer <{token_name}>'")
    principal = principal_for_token(settings, presented)
    if principal is None:
        raise AuthenticationError("invalid bearer token")
    return principal


def bearer_may(headers: Mapping[str, str], settings: ServiceSettings, role: Role, *, doing: str) -> bool:
    """True when the request presents the bearer token of a principal with ``role``; False when it
    presents no ``Authorization`` header, or another scheme.

    Raises :class:`~otel_prompt_canary.errors.AuthenticationError` (401) for a bearer token that is
    no one's, :class:`~otel_prompt_canary.errors.PermissionDeniedError` (403) for a principal
    without ``role`` (``doing`` says what it asked, in words).
    """
    found = authorization(headers)
    if found is None or found[0] != "bearer":
        return False
    principal = bearer_principal(headers, settings, what="requests", token_name="token")
    require_role(principal, role, doing=doing)
    return True
