"""Drift alerts delivered: to Alertmanager's API and to a signed webhook, until each receiver accepts them.

Every ``interval_seconds`` the notifier posts the drift alerts no receiver has accepted yet
(:meth:`~otel_prompt_canary.loop.drift.DriftMonitor.alerts_to_notify`), and the resolution of the
acknowledged ones; an alert counts as notified once every configured receiver answered 2xx, so a
receiver that is down gets it at a later tick, and a restart resends what was not delivered.

- **Alertmanager** (``POST <url>/api/v2/alerts``): one alert per drift alert, labels ``alertname``
  ``PromptCanaryDrift``, ``prompt``, ``version``, ``signal`` or ``model``, ``drift_alert_id``,
  ``severity`` ``warning`` and ``action`` ``alert`` (routed back to the control plane's receiver, it
  is only recorded); ``startsAt`` the detection, ``endsAt`` the acknowledgement. Alertmanager
  resolves an alert that is not posted again within its ``resolve_timeout``, so open alerts are
  posted again every ``resend_seconds``.
- **Webhook**: ``{"id", "type": "prompt_canary.drift_alert", "status": "firing"|"resolved", "alert",
  "created_at"}``, signed as the Collector's alerts are (Standard Webhooks: ``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``). The id is the same on every retry and from every
  replica (``pcd_`` and 32 hex digits of the alert and its status), so a receiver de-duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert
from otel_prompt_canary.loop.ticking import Ticking, TicksInBackground
from otel_prompt_canary.service.settings import ServiceSettings, webhook_key
from otel_prompt_canary.service.signatures import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["ALERT_NAME", "WEBHOOK_TYPE", "DriftNotifier", "alertmanager_alert", "webhook_body"]

log = logging.getLogger("otel_prompt_canary.service.drift")

#: The ``alertname`` of drift alerts in Alertmanager.
ALERT_NAME: Final = "PromptCanaryDrift"
#: The ``type`` of the drift webhook's body.
WEBHOOK_TYPE: Final = "prompt_canary.drift_alert"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alertmanager_alert(alert: DriftAlert, *, generator_url: str = "") -> dict[str, Any]:
    """``alert`` as an alert of Alertmanager's API v2 (``endsAt`` once acknowledged)."""
    labels = {
        "alertname": ALERT_NAME,
        "prompt": alert.prompt,
        "version": str(alert.version),
        alert.subject_kind: alert.subject,
        "drift_alert_id": str(alert.id),
        "severity": "warning",
        "action": "alert",
    }
    annotations = {"summary": alert.summary}
    if alert.acknowledged_at is not None:
        annotations["acknowledged"] = f"by {alert.acknowledged_by}: {alert.acknowledge_reason}"
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _iso(alert.detected_at),
        "generatorURL": generator_url,
    }
    if alert.acknowledged_at is not None:
        body["endsAt"] = _iso(alert.acknowledged_at)
    return body


def webhook_body(alert: DriftAlert, *, resolved: bool) -> tuple[str, bytes]:
    """The webhook's id and JSON body for ``alert`` (firing, or ``resolved`` by its acknowledgement)."""
    status = "resolved" if resolved else "firing"
    digest = hashlib.sha256(f"{alert.id}\0{status}\0{_iso(alert.detected_at)}".encode()).hexdigest()
    message_id = "pcd_" + digest[:32]
    body = {
        "id": message_id,
        "type": WEBHOOK_TYPE,
        "status": status,
        "alert": alert.model_dump(mode="json"),
        "created_at": _iso(datetime.now(UTC)),
    }
    return message_id, json.dumps(body, separators=(",", ":")).encode()


class DriftNotifier(TicksInBackground):
    """Delivers the drift alerts of ``monitor`` to the receivers ``settings`` configures."""

    def __init__(
        self,
        monitor: DriftMonitor,
        settings: ServiceSettings,
        *,
        interval_seconds: float = 5.0,
        resend_seconds: float = 60.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self.alertmanager_url = settings.drift_alertmanager_url
        self.webhook_url = settings.drift_webhook_url
        secret = settings.drift_webhook_secret
        self._key = None if secret is None else webhook_key(secret.get_secret_value())
        self.interval_seconds = interval_seconds
        self.resend_seconds = resend_seconds
        self._client = client or httpx.Client(timeout=10.0)
        self._owns_client = client is None
        self._clock = clock
        self._last_resend = float("-inf")
        self._failing: set[str] = set()
        self._ticking = Ticking("prompt-canary-drift-notifier", interval_seconds, self.tick)

    @property
    def configured(self) -> bool:
        """True when there is a receiver to deliver to."""
        return self.alertmanager_url is not None or self.webhook_url is not None

    def tick(self) -> int:
        """Deliver what is due; returns how many alerts (or resolutions) every receiver accepted."""
        if not self.configured:
            return 0
        delivered = 0
        firing, resolved = self.monitor.alerts_to_notify()
        for alert in firing:
            if self._deliver(alert, resolved=False):
                self.monitor.mark_notified(alert.id)
                delivered += 1
        for alert in resolved:
            if self._deliver(alert, resolved=True):
                self.monitor.mark_notified(alert.id, resolved=True)
                delivered += 1
        now = self._clock()
        if self.alertmanager_url is not None and now - self._last_resend >= self.resend_seconds:
            still_open = self.monitor.list_alerts(open_only=True, limit=1000)
            if not still_open or self._post_alertmanager(still_open):
                self._last_resend = now
        return delivered

    def _deliver(self, alert: DriftAlert, *, resolved: bool) -> bool:
        ok = True
        if self.alertmanager_url is not None:
            ok = self._post_alertmanager([alert]) and ok
        if self.webhook_url is not None:
            ok = self._post_webhook(alert, resolved=resolved) and ok
        return ok

    def _post_alertmanager(self, alerts: list[DriftAlert]) -> bool:
        assert self.alertmanager_url is not None
        body = [alertmanager_alert(a) for a in alerts]
        return self._post(f"{self.alertmanager_url}/api/v2/alerts", json.dumps(body).encode(), {})

    def _post_webhook(self, alert: DriftAlert, *, resolved: bool) -> bool:
        assert self.webhook_url is not None
        message_id, body = webhook_body(alert, resolved=resolved)
        headers = {ID_HEADER: message_id}
        if self._key is not None:
            stamp = int(self._clock())
            headers |= {
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: sign(self._key, message_id, stamp, body),
            }
        return self._post(self.webhook_url, body, headers)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        try:
            answer = self._client.post(
                url, content=body, headers={"content-type": "application/json", **headers}
            )
        except httpx.HTTPError as exc:
            return self._failed(url, f"{type(exc).__name__}: {exc}")
        if answer.is_success:
            if url in self._failing:
                self._failing.discard(url)
                log.info("drift alerts reach %s again", url)
            return True
        return self._failed(url, f"HTTP {answer.status_code}: {answer.text[:200]}")

    def _failed(self, url: str, why: str) -> bool:
        if url not in self._failing:
            self._failing.add(url)
            log.warning(
                "cannot deliver drift alerts to %s (%s); trying again every %g s",
                url,
                why,
                self.interval_seconds,
            )
        return False

    # -- running in the background (TicksInBackground) --------------------------------------

    def _stopped(self) -> None:
        """Close the HTTP client it made, once the thread has ended."""
        if self._owns_client:
            self._client.close()
