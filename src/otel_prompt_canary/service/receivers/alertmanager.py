"""The Prometheus Alertmanager webhook (payload version 4): its payload and its credentials.

Alertmanager posts ``{"version": "4", "status": ..., "receiver": ..., "groupKey": ...,
"alerts": [...]}`` to the ``webhook_configs`` URL, with ``http_config.authorization`` (a bearer
token) or ``http_config.basic_auth``. It retries on 5xx and network errors and gives up on a 4xx,
so a refusal here is final for that notification (and shows in Alertmanager's log and its
``alertmanager_notifications_failed_total``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otel_prompt_canary.errors import AuthenticationError
from otel_prompt_canary.loop.alerts import AlertNotice
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.service.bodies import parse_json, validate_payload
from otel_prompt_canary.service.credentials import authorization, bearer_may, secret_equals
from otel_prompt_canary.service.principals import Role
from otel_prompt_canary.service.receivers.labels import PrometheusAlert, labelled_notices, untimed_window
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["AlertmanagerPayload", "AlertmanagerReceiver", "authenticate"]


class AlertmanagerPayload(BaseModel):
    """The body Alertmanager's webhook receiver posts (fields it may add later are accepted)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    version: str
    group_key: str = Field("", alias="groupKey")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field("", alias="externalURL")
    alerts: list[PrometheusAlert] = Field(min_length=1, max_length=1000)

    @field_validator("version")
    @classmethod
    def _version_4(cls, value: str) -> str:
        if value != "4":
            raise ValueError(
                f"unsupported Alertmanager webhook version {value[:20]!r}: this receiver reads version 4"
            )
        return value

    def context(self) -> dict[str, object]:
        """What the evidence of each alert keeps of the notification around it."""
        return {
            "receiver": self.receiver,
            "group_key": self.group_key,
            "external_url": self.external_url,
        }


def authenticate(headers: Mapping[str, str], settings: ServiceSettings) -> str:
    """How the request authenticates (``bearer``, ``basic`` or ``open``); raises otherwise.

    Accepted: ``Authorization: Bearer`` with the token of a principal with the ``alert`` role (the
    Alertmanager token, the write token, a credential of the credentials file), or
    ``Authorization: Basic`` with the configured user and password.
    """
    own = settings.alertmanager_token is not None or settings.alertmanager_basic_auth is not None
    if settings.writes_open and not own:
        return "open"
    found = authorization(headers)
    if found is None:
        raise AuthenticationError(
            "missing credentials: give Alertmanager's webhook_configs an http_config with "
            "authorization (type Bearer) or basic_auth"
        )
    scheme, value = found
    if scheme == "bearer":
        bearer_may(headers, settings, Role.ALERT, doing="post alerts")  # or raises
        return "bearer"
    if scheme == "basic":
        if settings.alertmanager_basic_auth is None:
            raise AuthenticationError(
                "basic auth is not configured for the Alertmanager receiver: start the service with "
                "--alertmanager-basic-auth USER:PASSWORD, or use a bearer token"
            )
        try:
            pair = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise AuthenticationError("malformed basic credentials: not base64") from None
        if secret_equals(pair, settings.alertmanager_basic_auth):
            return "basic"
        raise AuthenticationError("invalid basic credentials")
    raise AuthenticationError(f"unsupported authorization scheme {scheme[:20]!r}: use Bearer or Basic")


class AlertmanagerReceiver:
    """``POST /v1/alerts/alertmanager``: labels ``prompt`` and ``action`` (and ``rollout_id``)."""

    name = "alertmanager"
    summary = "Prometheus Alertmanager webhook (version 4)"

    def notices(
        self, headers: Mapping[str, str], body: bytes, settings: ServiceSettings
    ) -> list[AlertNotice]:
        """Authenticate, then read every alert of the notification (401 or 422 before anything)."""
        authenticate(headers, settings)
        raw = parse_json(body)
        check_storable(raw, "body")
        payload = validate_payload(AlertmanagerPayload, raw, "Alertmanager payload")
        return labelled_notices("alertmanager", payload, untimed_window_seconds=untimed_window(settings))
