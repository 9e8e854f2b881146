"""Grafana alerting's webhook contact point: its payload and its HMAC signature.

Grafana posts ``{"version": "1", "status": ..., "orgId": ..., "alerts": [...], "title": ...,
"message": ...}``: the alert objects are Alertmanager's, with a few fields more (``values``,
``silenceURL``, ``dashboardURL``...).

With the contact point's *HMAC Signature* set (``hmacConfig``: ``secret``, ``header``,
``timestampHeader``), Grafana signs each request: the header holds the lower-case hex
HMAC-SHA256 of the raw body under the secret's UTF-8 bytes; when a timestamp header is
configured it carries Unix seconds and the signed bytes are ``<timestamp>:<body>``. The header
defaults to ``X-Grafana-Alerting-Signature`` here (the name Grafana's form suggests); Grafana's own
fallback, when the form's header is left empty, is ``X-Grafana-Alert-Signature``, which is accepted
too. Configure a timestamp header (``X-Grafana-Alerting-Signature-Timestamp`` by default here) to
get replay protection: its timestamp must then be within the webhook tolerance.

Grafana retries a failed notification on errors and 5xx answers; a 4xx is final.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from otel_prompt_canary.errors import AuthenticationError
from otel_prompt_canary.loop.alerts import AlertNotice
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.service.bodies import parse_json, validate_payload
from otel_prompt_canary.service.credentials import bearer_may
from otel_prompt_canary.service.principals import Role
from otel_prompt_canary.service.receivers.labels import PrometheusAlert, labelled_notices, untimed_window
from otel_prompt_canary.service.settings import GRAFANA_SIGNATURE_HEADER, ServiceSettings
from otel_prompt_canary.service.signatures import unix_seconds

__all__ = ["GRAFANA_FALLBACK_SIGNATURE_HEADER", "GrafanaPayload", "GrafanaReceiver", "authenticate", "sign"]

#: Where Grafana signs when the contact point's header field is left empty.
GRAFANA_FALLBACK_SIGNATURE_HEADER = "X-Grafana-Alert-Signature"


class GrafanaPayload(BaseModel):
    """The body of Grafana's webhook contact point (fields it may add later are accepted)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    version: str = ""
    receiver: str = ""
    status: Literal["firing", "resolved"]
    org_id: int | None = Field(None, alias="orgId")
    group_key: str = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    external_url: str = Field("", alias="externalURL")
    title: str = ""
    alerts: list[PrometheusAlert] = Field(min_length=1, max_length=1000)

    def context(self) -> dict[str, object]:
        """What the evidence of each alert keeps of the notification around it."""
        return {
            "receiver": self.receiver,
            "org_id": self.org_id,
            "group_key": self.group_key,
            "external_url": self.external_url,
            "title": self.title,
        }


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The signature Grafana sends for ``body`` (and ``timestamp``, when it sends one)."""
    signed = body if timestamp is None else timestamp.encode() + b":" + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _signature(headers: Mapping[str, str], settings: ServiceSettings) -> str | None:
    value = headers.get(settings.grafana_signature_header)
    if value is None and settings.grafana_signature_header == GRAFANA_SIGNATURE_HEADER:
        value = headers.get(GRAFANA_FALLBACK_SIGNATURE_HEADER)
    return value


def authenticate(
    headers: Mapping[str, str], body: bytes, settings: ServiceSettings, *, now: float | None = None
) -> str:
    """How the request authenticates (``signature``, ``bearer`` or ``open``); raises otherwise.

    A signature, when present and a secret is configured, must verify (a wrong one is refused even
    with a valid bearer token). Without a signature the token of a principal with the ``alert``
    role is accepted (the write token, say).
    """
    signature = _signature(headers, settings)
    secret = settings.grafana_secret
    if signature is not None and secret is not None:
        stamp = headers.get(settings.grafana_timestamp_header)
        if stamp is not None:
            stamp = stamp.strip()
            seconds = unix_seconds(stamp)
            if seconds is None:
                raise AuthenticationError(
                    f"invalid {settings.grafana_timestamp_header} {stamp[:20]!a}: give Unix seconds "
                    "(1-12 ASCII digits)"
                )
            skew = seconds - (time.time() if now is None else now)
            if abs(skew) > settings.webhook_tolerance_seconds:
                raise AuthenticationError(
                    f"stale {settings.grafana_timestamp_header}: {stamp} is {abs(skew):.0f} s away from "
                    f"the server's clock, beyond the {settings.webhook_tolerance_seconds} s tolerance"
                )
        expected = sign(secret.get_secret_value(), body, stamp)
        if hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
            return "signature"
        raise AuthenticationError(
            f"invalid signature: {settings.grafana_signature_header} is not the HMAC-SHA256 of the "
            "body under the configured Grafana secret"
        )
    if settings.writes_open and secret is None:
        return "open"
    if bearer_may(headers, settings, Role.ALERT, doing="post alerts"):
        return "bearer"
    if signature is not None:
        raise AuthenticationError(
            "the request is signed, but no Grafana secret is configured: start the service with "
            "--grafana-secret (the contact point's HMAC secret)"
        )
    raise AuthenticationError(
        f"missing signature: set the contact point's HMAC signature (secret = the service's "
        f"--grafana-secret, header {settings.grafana_signature_header}) or send the write token"
    )


class GrafanaReceiver:
    """``POST /v1/alerts/grafana``: labels ``prompt`` and ``action`` (and ``rollout_id``)."""

    name = "grafana"
    summary = "Grafana alerting webhook (HMAC signed)"

    def notices(
        self, headers: Mapping[str, str], body: bytes, settings: ServiceSettings
    ) -> list[AlertNotice]:
        """Verify the signature (or token), then read every alert (401 or 422 before anything)."""
        authenticate(headers, body, settings)
        raw = parse_json(body)
        check_storable(raw, "body")
        payload = validate_payload(GrafanaPayload, raw, "Grafana payload")
        return labelled_notices("grafana", payload, untimed_window_seconds=untimed_window(settings))
