"""Test data for the loop: signed Collector alerts and reports, Alertmanager and Grafana payloads.

Signatures are computed here independently of the service's own code, from the formats' specs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from otel_prompt_canary.service import ServiceSettings
from tests.service.service_factories import started
from tests.support.auth import ALERTMANAGER_TOKEN, AUTH, TOKEN

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"collector-secret-0123456789abcdef").decode()
WEBHOOK_KEY = b"collector-secret-0123456789abcdef"
GRAFANA_SECRET = "grafana-hmac-secret-0123456789"
AM_USER, AM_PASSWORD = "alertmanager", "am-password-0123456789"

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def loop_settings(**extra: Any) -> ServiceSettings:
    """Every receiver configured; the controller off unless asked for."""
    options: dict[str, Any] = {
        "token": TOKEN,
        "webhook_secret": WEBHOOK_SECRET,
        "grafana_secret": GRAFANA_SECRET,
        "alertmanager_token": ALERTMANAGER_TOKEN,
        "alertmanager_basic_auth": f"{AM_USER}:{AM_PASSWORD}",
        "controller": False,
    }
    return ServiceSettings(**(options | extra))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_id(rollout_id: str, rule: str, action: str) -> str:
    """The processor's id: pca_ + 32 hex of SHA-256 over the netstrings of rollout, rule, action."""
    data = b"".join(f"{len(v.encode())}:".encode() + v.encode() + b"," for v in (rollout_id, rule, action))
    return "pca_" + hashlib.sha256(data).hexdigest()[:32]


def collector_alert(
    prompt: str = "greeter",
    rollout_id: str = "ro-1",
    action: str = "rollback",
    rule: str = "json.relative",
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": alert_id(rollout_id, rule, action),
        "type": "prompt_canary.alert",
        "source": "gateway-0",
        "prompt": prompt,
        "rollout_id": rollout_id,
        "action": action,
        "rule": rule,
        "reason": "canary JSON validity is proven worse than stable",
        "evidence": {
            "signal": "prompt_canary.check.json_valid",
            "kind": "proportion",
            "cohorts": {"stable": {"n": 4210, "successes": 4185}, "canary": {"n": 212, "successes": 190}},
            "estimate": -0.06,
            "bound": -0.02,
            "statistic": 5.1,
        },
        "created_at": now_iso(),
    }
    return body | extra


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed(
    payload: dict[str, Any] | bytes,
    *,
    message_id: str | None = None,
    timestamp: int | None = None,
    key: bytes = WEBHOOK_KEY,
) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of a payload."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if message_id is None:
        message_id = payload["id"] if isinstance(payload, dict) else "msg_1"
    stamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": standard_signature(key, message_id, stamp, body),
    }


def post_collector(client: TestClient, payload: dict[str, Any], **kwargs: Any) -> Any:
    body, headers = signed(payload, **kwargs)
    return client.post("/v1/alerts/collector", content=body, headers=headers)


def report_envelope(
    rollout_id: str,
    *,
    prompt: str = "greeter",
    window_seconds: int = 1,
    stable: dict[str, Any] | None = None,
    canary: dict[str, Any] | None = None,
    report_id: str | None = None,
    origin: str | None = "collector",
    source: str = "gateway-0",
) -> dict[str, Any]:
    """A report of schemas/report.schema.json; cohorts map attribute -> window start -> stats.

    The Collector's by default; ``origin=None`` leaves the field out, as senders older than it do.
    """
    keys = [k for c in (stable or {}, canary or {}) for series in c.values() for k in series]
    starts = [int(k) for k in keys if k.lstrip("-").isdigit()] or [0]
    iso = lambda s: datetime.fromtimestamp(s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
    envelope: dict[str, Any] = {
        "id": report_id or "pcr_" + uuid.uuid4().hex,
        "type": "prompt_canary.report",
        "source": source,
        "prompt": prompt,
        "rollout_id": rollout_id,
        "window_seconds": window_seconds,
        "versions": {"stable": "1", "canary": "2"},
        "stable": stable or {},
        "canary": canary or {},
        "window_start": iso(min(starts)),
        "window_end": iso(max(starts) + window_seconds),
        "created_at": now_iso(),
    }
    if origin is not None:
        envelope["origin"] = origin
    return envelope


def proportion(n: int, successes: int) -> dict[str, Any]:
    return {"kind": "proportion", "n": n, "successes": successes}


def prometheus_alert(
    prompt: str = "greeter",
    action: str = "rollback",
    *,
    status: str = "firing",
    starts_at: str | None = None,
    fingerprint: str = "0f1e2d3c4b5a6978",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "CanaryJsonValidity", "prompt": prompt, "action": action, **labels},
        "annotations": {"summary": "canary JSON validity below stable"},
        "startsAt": starts_at or now_iso(),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else now_iso(),
        "generatorURL": "http://prometheus.local/graph?g0.expr=x",
        "fingerprint": fingerprint,
    }


def alertmanager_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CanaryJsonValidity"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "prompt-canary",
        "groupLabels": {"alertname": "CanaryJsonValidity"},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://alertmanager.local:9093",
        "alerts": list(alerts),
    }


def grafana_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    extended = [
        a | {"values": {"B": 0.91, "C": 1}, "silenceURL": "http://grafana.local/s", "dashboardURL": ""}
        for a in alerts
    ]
    return {
        "receiver": "prompt-canary",
        "status": status,
        "orgId": 1,
        "alerts": extended,
        "groupLabels": {"alertname": "CanaryJsonValidity"},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": {},
        "externalURL": "http://grafana.local/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="CanaryJsonValidity"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] CanaryJsonValidity",
        "state": "alerting",
        "message": "**Firing**",
    }


def grafana_headers(
    body: bytes, *, timestamp: int | None = None, secret: str = GRAFANA_SECRET
) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    signed_bytes = body
    if timestamp is not None:
        headers["X-Grafana-Alerting-Signature-Timestamp"] = str(timestamp)
        signed_bytes = f"{timestamp}:".encode() + body
    headers["X-Grafana-Alerting-Signature"] = hmac.new(
        secret.encode(), signed_bytes, hashlib.sha256
    ).hexdigest()
    return headers


AM_AUTH = {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}


def basic_auth(user: str = AM_USER, password: str = AM_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def rollout(client: TestClient, name: str = "greeter", ramp: str = "1,5,20,50,100") -> dict[str, Any]:
    """Two versions of ``name`` and a rollout of version 2; returns the route."""
    return started(client, AUTH, name, ramp)


def state_of(client: TestClient, name: str = "greeter") -> tuple[Any, ...]:
    """Everything an alert may change: the route, the audit trail and the alert log."""
    return (
        client.get(f"/v1/routes/{name}").json(),
        client.get(f"/v1/prompts/{name}/rollout/history").json(),
        client.get("/v1/alerts").json(),
    )
