"""Standard Webhooks signatures: how the Collector processor signs its alerts and reports.

A signed request carries three headers (https://www.standardwebhooks.com/):

- ``webhook-id``: the message id, the same on every retry of one message;
- ``webhook-timestamp``: Unix seconds of the attempt;
- ``webhook-signature``: space-separated signatures ``v1,<base64>``, where ``<base64>`` is the
  base64 of ``HMAC-SHA256(key, webhook-id + "." + webhook-timestamp + "." + raw body)``; the key is
  the secret's base64 part when the secret is written ``whsec_<base64>``, else its UTF-8 bytes.

A request verifies when the timestamp is within the tolerance of the server's clock (either way)
and at least one ``v1`` signature matches; signatures of other versions are skipped. A timestamp is
1 to 12 ASCII digits (:func:`unix_seconds`): ``str.isdigit`` would also take ``²``, which ``int()``
refuses.
:func:`authenticate` is what the Collector's alert receiver and the report endpoint ask: a signed
request must verify, an unsigned one may present the write token instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from otel_prompt_canary.errors import AuthenticationError, InvalidInputError
from otel_prompt_canary.service.credentials import bearer_may
from otel_prompt_canary.service.principals import Role
from otel_prompt_canary.service.settings import ServiceSettings, webhook_key

__all__ = [
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignedMessage",
    "authenticate",
    "check_message_id",
    "sign",
    "unix_seconds",
    "verify",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

_MAX_ID_LENGTH = 256
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def unix_seconds(text: str) -> int | None:
    """A timestamp header's Unix seconds: 1 to 12 ASCII digits, blanks around ignored; else None."""
    stamp = text.strip()
    return int(stamp) if _UNIX_SECONDS.fullmatch(stamp) else None


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A verified message: its id and timestamp."""

    id: str
    timestamp: int


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (one ``v1`` signature) of a message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    *,
    tolerance_seconds: int,
    now: float | None = None,
) -> SignedMessage:
    """Check the Standard Webhooks headers of a request; raises :class:`AuthenticationError`.

    ``headers`` must be case-insensitive (Starlette's are). The message says exactly what is wrong.
    """
    message_id = headers.get(ID_HEADER)
    stamp = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    for name, value in ((ID_HEADER, message_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, signatures)):
        if not value or not value.strip():
            raise AuthenticationError(
                f"missing {name} header: signed requests carry webhook-id, webhook-timestamp and "
                "webhook-signature (Standard Webhooks)"
            )
    assert message_id is not None and stamp is not None and signatures is not None
    if len(message_id) > _MAX_ID_LENGTH or not message_id.isprintable():
        raise AuthenticationError(f"invalid webhook-id: 1-{_MAX_ID_LENGTH} printable characters")
    parsed = unix_seconds(stamp)
    if parsed is None:
        raise AuthenticationError(
            f"invalid webhook-timestamp {stamp.strip()[:20]!a}: give Unix seconds (1-12 ASCII digits)"
        )
    timestamp = parsed
    current = time.time() if now is None else now
    skew = timestamp - current
    if abs(skew) > tolerance_seconds:
        when = "old" if skew < 0 else "far in the future"
        raise AuthenticationError(
            f"stale webhook-timestamp: {timestamp} is {abs(skew):.0f} s {when}, beyond the "
            f"{tolerance_seconds} s tolerance (check the sender's clock; a replay is refused)"
        )
    expected = sign(key, message_id, timestamp, body).encode()
    found_v1 = False
    for candidate in signatures.split():
        version, sep, _ = candidate.partition(",")
        if not sep or version != "v1":
            continue
        found_v1 = True
        if hmac.compare_digest(candidate.encode(), expected):
            return SignedMessage(id=message_id, timestamp=timestamp)
    if not found_v1:
        raise AuthenticationError("invalid webhook-signature: no 'v1,<base64>' signature in it")
    raise AuthenticationError(
        "invalid webhook-signature: no v1 signature matches the body under the configured webhook secret"
    )


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    settings: ServiceSettings,
    *,
    now: float | None = None,
    reporting: bool = False,
) -> SignedMessage | None:
    """The verified message when the request is signed, None when it passes by token (or open).

    A signature, when present and a secret is configured, must verify; a wrong one is refused even
    with a valid bearer token. Without one, the token of a principal with the ``alert`` role is
    accepted (the write token, say), and with ``reporting`` (reports, feedback) one with the
    ``report`` role instead (the reporting credential, say).
    """
    signed = headers.get(SIGNATURE_HEADER) is not None
    secret = settings.webhook_secret
    if signed and secret is not None:
        key = webhook_key(secret.get_secret_value())
        return verify(headers, body, key, tolerance_seconds=settings.webhook_tolerance_seconds, now=now)
    if settings.writes_open and secret is None:
        return None
    role, doing = (Role.REPORT, "post reports or feedback") if reporting else (Role.ALERT, "post alerts")
    if bearer_may(headers, settings, role, doing=doing):
        return None
    if signed:
        raise AuthenticationError(
            "the request is signed, but no webhook secret is configured: start the service with "
            "--webhook-secret (the processor's webhook.secret)"
        )
    raise AuthenticationError(
        "missing credentials: sign the request (webhook-id, webhook-timestamp, webhook-signature) "
        "or send 'Authorization: Bearer <token>'"
    )


def check_message_id(message: SignedMessage | None, payload_id: str) -> None:
    """A signed payload's ``id`` must be its ``webhook-id`` (422 otherwise)."""
    if message is not None and message.id != payload_id:
        raise InvalidInputError(
            f"body.id {payload_id!r} is not the webhook-id {message.id[:80]!r}: they must be equal"
        )
