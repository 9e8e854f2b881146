"""The Collector processor's alert receiver: one signed alert per request.

The payload is :class:`~otel_prompt_canary.service.payloads.CollectorAlert`
(``schemas/collector-alert.schema.json``), signed with Standard Webhooks headers
(:mod:`otel_prompt_canary.service.signatures`) whose ``webhook-id`` is the payload's ``id``; the
write token is accepted instead of a signature.
"""

from __future__ import annotations

from collections.abc import Mapping

from otel_prompt_canary.loop.alerts import AlertNotice
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.service import signatures
from otel_prompt_canary.service.bodies import parse_json, validate_payload
from otel_prompt_canary.service.payloads import CollectorAlert
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["CollectorReceiver"]


class CollectorReceiver:
    """``POST /v1/alerts/collector``: one alert of the ``promptcanary`` processor."""

    name = "collector"
    summary = "The Collector processor's signed alert"

    def notices(
        self, headers: Mapping[str, str], body: bytes, settings: ServiceSettings
    ) -> list[AlertNotice]:
        """Verify the signature (or token), then read the alert (401 or 422 before anything)."""
        message = signatures.authenticate(headers, body, settings)
        raw = parse_json(body)
        check_storable(raw, "body")
        alert = validate_payload(CollectorAlert, raw, "Collector alert")
        signatures.check_message_id(message, alert.id)
        return [alert.notice(raw)]
