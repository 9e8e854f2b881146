"""Drift alerts delivered: to a real Alertmanager (which routes them back to the control plane, where
they are recorded and roll nothing back), and to a signed webhook, until each receiver accepts them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.drift_notifier import DriftNotifier
from otel_prompt_canary.service.settings import webhook_key
from otel_prompt_canary.service.signatures import verify
from tests.drift.factories import CHECK, FAST, Clock, Feeder, push_bot
from tests.support.auth import ALERTMANAGER_TOKEN, TOKEN
from tests.support.loopback import http_server, running_server
from tests.support.services import alertmanager_server
from tests.support.waiting import eventually

SECRET = "drift-webhook-secret-0123456789"

CONFIG = """\
route:
  receiver: prompt-canary
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: prompt-canary
    webhook_configs:
      - url: {url}/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


def _alarm(registry: SqlRegistry) -> tuple[DriftMonitor, DriftAlert]:
    push_bot(registry)
    clock = Clock()
    monitor = DriftMonitor(registry, FAST, clock=clock)
    feed = Feeder(monitor, clock, seed=4)
    feed.minutes(70, pass_rate=0.99)
    for _ in range(240):
        if feed.minute(pass_rate=0.9):
            break
    (alert,) = feed.raised
    return monitor, alert


def test_a_drift_alert_reaches_a_real_alertmanager_and_comes_back_recorded(
    registry: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    monitor, alert = _alarm(registry)
    settings = ServiceSettings(
        token=TOKEN, alertmanager_token=ALERTMANAGER_TOKEN, controller=False, drift="off"
    )
    with (
        running_server(registry, settings) as service,
        alertmanager_server(CONFIG.format(url=service, token=ALERTMANAGER_TOKEN)) as alertmanager,
    ):
        notifier = DriftNotifier(monitor, ServiceSettings(token=TOKEN, drift_alertmanager_url=alertmanager))
        try:
            assert notifier.tick() == 1
            assert monitor.alerts_to_notify() == ([], [])

            def in_alertmanager() -> list[dict[str, Any]]:
                found = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=10).json()
                return [a for a in found if a["labels"].get("alertname") == "PromptCanaryDrift"]

            eventually(in_alertmanager, timeout=30, what="the drift alert in Alertmanager")
            (seen,) = in_alertmanager()
            assert seen["labels"] | {"drift_alert_id": "-"} == {
                "alertname": "PromptCanaryDrift",
                "prompt": "bot",
                "version": "1",
                "signal": CHECK,
                "drift_alert_id": "-",
                "severity": "warning",
                "action": "alert",
            }
            assert seen["annotations"]["summary"] == alert.summary

            def recorded(status: str) -> bool:
                return any(
                    a.source == "alertmanager" and a.status == status for a in loop_store.list_alerts("bot")
                )

            eventually(lambda: recorded("firing"), timeout=30, what="Alertmanager's notification recorded")
            (back,) = [a for a in loop_store.list_alerts("bot") if a.source == "alertmanager"]
            assert (back.action, back.outcome) == ("alert", "recorded")
            assert registry.get_route("bot").state == "idle"  # an alert: no routing changes

            monitor.acknowledge(alert.id, actor="ana", reason="known provider change")
            assert notifier.tick() == 1  # the resolution: endsAt is the acknowledgement
            eventually(lambda: recorded("resolved"), timeout=30, what="the resolved notification recorded")
        finally:
            notifier.stop()


class _Receiver:
    """A webhook receiver on loopback: records what it is sent, answers ``status``."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 204
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, str]]:
    found = _Receiver()
    with http_server(found.handler(), name="drift webhook receiver") as url:
        yield found, url


def test_a_signed_webhook_is_sent_until_accepted_then_its_resolution(
    registry: SqlRegistry, receiver: tuple[_Receiver, str]
) -> None:
    monitor, alert = _alarm(registry)
    found, url = receiver
    settings = ServiceSettings(token=TOKEN, drift_webhook_url=url, drift_webhook_secret=SECRET)
    notifier = DriftNotifier(monitor, settings)
    try:
        found.status = 503
        assert notifier.tick() == 0  # refused: kept for the next tick
        found.status = 204
        assert notifier.tick() == 1
        assert notifier.tick() == 0  # delivered once
        (first_headers, _), (headers, body) = found.received
        assert first_headers["webhook-id"] == headers["webhook-id"]  # the same id on every attempt
        signed = verify(headers, body, webhook_key(SECRET), tolerance_seconds=300)
        assert signed.id.startswith("pcd_")
        payload = json.loads(body)
        assert (payload["type"], payload["status"], payload["alert"]["id"]) == (
            "prompt_canary.drift_alert",
            "firing",
            alert.id,
        )

        monitor.acknowledge(alert.id, actor="ana", reason="known")
        assert notifier.tick() == 1
        resolved = json.loads(found.received[-1][1])
        assert resolved["status"] == "resolved" and resolved["alert"]["acknowledged_by"] == "ana"
        assert found.received[-1][0]["webhook-id"] != headers["webhook-id"]
    finally:
        notifier.stop()


def test_a_webhook_without_a_secret_is_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="needs --drift-webhook-secret"):
        ServiceSettings(token=TOKEN, drift_webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ValueError, match="invalid URL"):
        ServiceSettings(token=TOKEN, drift_alertmanager_url="alertmanager:9093")
