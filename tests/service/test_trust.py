"""Which credential can cause which transition (docs/alerts.md, "Who can do what").

Alert credentials can only stop a rollout; the reporting credential and the Collector's secret feed
the controller's evidence, and under ``promotion: manual`` no report, however healthy it claims the
canary is, takes the canary to everyone.
"""

from __future__ import annotations

import base64
import math
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.service.app import create_app
from tests.loop.factories import CHECK, FAST_RAMP_POLICY
from tests.service.loop_factories import (
    AM_PASSWORD,
    AM_USER,
    GRAFANA_SECRET,
    alertmanager_payload,
    loop_settings,
    prometheus_alert,
    proportion,
    report_envelope,
    signed,
)
from tests.service.service_factories import error_of, two_versions
from tests.support.auth import ALERTMANAGER_TOKEN, AUTH, REPORT_AUTH, REPORT_TOKEN
from tests.support.waiting import eventually

_BASIC = base64.b64encode(f"{AM_USER}:{AM_PASSWORD}".encode()).decode()

#: Every credential that is not the write token, as the header that presents it.
CREDENTIALS: dict[str, dict[str, str]] = {
    "reporting credential": REPORT_AUTH,
    "Alertmanager token": {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"},
    "Alertmanager basic auth": {"Authorization": f"Basic {_BASIC}"},
    "Grafana secret": {"Authorization": f"Bearer {GRAFANA_SECRET}"},
}


def _start(client: TestClient, policy: dict[str, Any]) -> str:
    two_versions(client, AUTH)
    started = client.post(
        "/v1/prompts/greeter/rollouts", json={"version": 2, "policy": policy, "reason": "r"}, headers=AUTH
    )
    assert started.status_code == 201, started.text
    rollout_id: str = started.json()["rollout_id"]
    return rollout_id


def _healthy(rollout_id: str) -> dict[str, Any]:
    """A fabricated report: a perfect canary, as many samples as it takes."""
    window = str(math.floor(time.time()))
    return report_envelope(
        rollout_id,
        stable={CHECK: {window: proportion(40, 40)}},
        canary={CHECK: {window: proportion(40, 40)}},
        origin="application",
    )


@pytest.mark.parametrize("sender", ["reporting credential", "Collector signature"])
def test_reports_alone_cannot_promote_under_manual_promotion(registry: SqlRegistry, sender: str) -> None:
    settings = loop_settings(
        report_token=REPORT_TOKEN, controller=True, controller_interval_seconds=0.05, time_scale=60
    )
    with TestClient(create_app(registry, settings)) as client:
        rollout_id = _start(client, FAST_RAMP_POLICY | {"promotion": "manual"})

        def send() -> None:
            envelope = _healthy(rollout_id)
            if sender == "reporting credential":
                answer = client.post("/v1/reports", json=envelope, headers=REPORT_AUTH)
            else:
                body, headers = signed(envelope)
                answer = client.post("/v1/reports", content=body, headers=headers)
            assert answer.json()["outcome"] == "merged", answer.text
            time.sleep(0.05)

        def waiting() -> bool:
            return any("promotion is manual" in r["summary"] for r in client.get("/v1/alerts").json())

        eventually(waiting, timeout=60, what="the controller waiting for a person", between=send)
        for _ in range(10):  # more of the same changes nothing
            send()
        route = client.get("/v1/routes/greeter").json()
        assert (route["state"], route["step"], route["canary_weight_bp"]) == ("ramping", 1, 5000)
        actions = [
            (r["action"], r["actor"]) for r in client.get("/v1/prompts/greeter/rollout/history").json()
        ]
        assert actions == [("start", "api"), ("advance", "controller")]
        # Neither credential may promote directly either; the write token may.
        promote = {"reason": "looks good"}
        refused = client.post("/v1/prompts/greeter/rollout/promote", json=promote, headers=REPORT_AUTH)
        assert refused.status_code == 403
        accepted = client.post("/v1/prompts/greeter/rollout/promote", json=promote, headers=AUTH)
        assert accepted.json()["state"] == "promoted"


@pytest.mark.parametrize("store_backend", ["sqlite"])  # who may write is the service's rule, not the store's
@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize("action", ["advance", "resume", "promote", "rollback", "pause"])
def test_no_credential_but_the_write_token_moves_a_rollout_through_the_api(
    registry: SqlRegistry, credential: str, action: str
) -> None:
    with TestClient(create_app(registry, loop_settings(report_token=REPORT_TOKEN))) as client:
        _start(client, FAST_RAMP_POLICY)
        before = client.get("/v1/routes/greeter").json()
        answer = client.post(
            f"/v1/prompts/greeter/rollout/{action}", json={"reason": "r"}, headers=CREDENTIALS[credential]
        )
        # A credential the control plane knows is forbidden (403), another one unknown (401).
        known = credential in ("reporting credential", "Alertmanager token")
        assert answer.status_code == (403 if known else 401), answer.text
        assert error_of(answer)[0] == ("PermissionDeniedError" if known else "AuthenticationError")
        assert client.get("/v1/routes/greeter").json() == before


def test_an_alert_can_only_stop(registry: SqlRegistry) -> None:
    am = CREDENTIALS["Alertmanager token"]
    with TestClient(create_app(registry, loop_settings(report_token=REPORT_TOKEN))) as client:
        rollout_id = _start(client, FAST_RAMP_POLICY)
        for action in ("promote", "resume", "advance", "start"):
            asked = client.post(
                "/v1/alerts/alertmanager",
                json=alertmanager_payload(prometheus_alert(action=action)),
                headers=am,
            )
            assert asked.status_code == 422, asked.text
            assert f"{action!r} is not an action an alert can ask for" in error_of(asked)[1]
        paused = client.post(
            "/v1/alerts/alertmanager", json=alertmanager_payload(prometheus_alert(action="pause")), headers=am
        )
        assert paused.json()["applied"] == 1
        resolved = client.post(
            "/v1/alerts/alertmanager",
            json=alertmanager_payload(prometheus_alert(action="pause", status="resolved")),
            headers=am,
        )
        assert resolved.json()["decisions"][0]["outcome"] == "recorded"
        assert client.get("/v1/routes/greeter").json()["state"] == "paused"
        # An alert credential cannot report either: reports are evidence for advancing.
        report = client.post("/v1/reports", json=_healthy(rollout_id), headers=am)
        assert report.status_code == 403
        assert "that needs the role 'report' (it has alert)" in error_of(report)[1]


def test_an_alert_without_a_start_deduplicates_for_a_window_not_for_ever(registry: SqlRegistry) -> None:
    am = CREDENTIALS["Alertmanager token"]
    settings = loop_settings(report_token=REPORT_TOKEN, retention="untimed_alerts=2h")
    with TestClient(create_app(registry, settings)) as client:
        _start(client, FAST_RAMP_POLICY)
        untimed = prometheus_alert(action="alert")
        del untimed["startsAt"]
        timed = prometheus_alert(action="alert", fingerprint="1f2e3d4c5b6a7988")
        outcomes = [
            client.post("/v1/alerts/alertmanager", json=alertmanager_payload(alert), headers=am).json()
            for alert in (untimed, untimed, timed)
        ]
        assert [o["decisions"][0]["outcome"] for o in outcomes] == ["recorded", "duplicate", "recorded"]
        assert outcomes[0]["decisions"][0]["key"].endswith(":-:firing")
    k = t.alert_keys.c
    with registry.database.engine.connect() as conn:
        rows = conn.execute(select(k.alert_key, k.decided_at, k.expires_at)).all()
    windows = {key: None if ends is None else ends - decided for key, decided, ends in rows}
    untimed_key, timed_key = outcomes[0]["decisions"][0]["key"], outcomes[2]["decisions"][0]["key"]
    assert windows[untimed_key] == timedelta(hours=2)  # from its first decision
    assert windows[timed_key] is None  # a key with its start holds for the retention of ids
