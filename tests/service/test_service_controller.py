"""The rollout controller inside the control plane: reports wake it, it walks or rolls back the ramp.

The controller itself is tested in tests/loop/test_controller.py.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi.testclient import TestClient

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service.app import create_app
from tests.loop.factories import CHECK, FAST_RAMP_POLICY
from tests.service.loop_factories import (
    collector_alert,
    loop_settings,
    post_collector,
    proportion,
    report_envelope,
    signed,
)
from tests.service.service_factories import error_of, two_versions
from tests.support.auth import AUTH
from tests.support.waiting import eventually


def _report(rid: str, *, canary_valid: int, n: int = 40) -> dict[str, Any]:
    window = str(math.floor(time.time()))
    return report_envelope(
        rid,
        stable={CHECK: {window: proportion(n, n)}},
        canary={CHECK: {window: proportion(n, canary_valid)}},
    )


def _start(client: TestClient) -> str:
    """Two versions of ``greeter`` and a rollout of version 2 under the fast ramp; its id."""
    two_versions(client, AUTH)
    started = client.post(
        "/v1/prompts/greeter/rollouts",
        json={"version": 2, "policy": FAST_RAMP_POLICY, "reason": "r"},
        headers=AUTH,
    )
    assert started.status_code == 201, started.text
    rollout_id: str = started.json()["rollout_id"]
    return rollout_id


def test_the_service_walks_the_ramp_on_healthy_reports(registry: SqlRegistry) -> None:
    settings = loop_settings(controller=True, controller_interval_seconds=0.05, time_scale=60)
    with TestClient(create_app(registry, settings)) as client:
        rid = _start(client)

        def send() -> None:
            body, headers = signed(_report(rid, canary_valid=40))
            assert client.post("/v1/reports", content=body, headers=headers).status_code == 200
            time.sleep(0.1)

        eventually(
            lambda: client.get("/v1/routes/greeter").json()["state"] == "promoted",
            timeout=60,
            what="the promotion",
            between=send,
        )
        actions = [
            (r["action"], r["actor"]) for r in client.get("/v1/prompts/greeter/rollout/history").json()
        ]
        assert actions == [
            ("start", "api"),
            ("advance", "controller"),
            ("advance", "controller"),
            ("promote", "controller"),
        ]
        assert client.app.state.controller.running  # type: ignore[attr-defined]
    assert not client.app.state.controller.running  # type: ignore[attr-defined]


def test_the_service_rolls_back_on_breaching_reports(registry: SqlRegistry) -> None:
    settings = loop_settings(controller=True, controller_interval_seconds=0.5, time_scale=60)
    with TestClient(create_app(registry, settings)) as client:
        rid = _start(client)
        verdict = client.get("/v1/prompts/greeter/rollout/verdict").json()
        assert verdict["verdict"]["decision"] == "continue"
        assert verdict["policy"]["ramp"]["steps"] == [10.0, 50.0, 100.0]
        body, headers = signed(_report(rid, canary_valid=20, n=100))
        assert client.post("/v1/reports", content=body, headers=headers).json()["outcome"] == "merged"
        # The report wakes the controller: no need to wait for its interval.
        eventually(
            lambda: client.get("/v1/routes/greeter").json()["state"] == "rolled_back", what="the rollback"
        )
        last = client.get("/v1/prompts/greeter/rollout/history").json()[-1]
        assert (last["action"], last["actor"]) == ("rollback", "controller")
        canary = last["evidence"]["verdict"]["rules"][0]["canary"]
        assert (canary["n"], canary["estimate"]) == (100, 0.2)
        missing = client.get("/v1/prompts/greeter/rollout/verdict")
        assert missing.status_code == 404
        assert "has no active rollout" in error_of(missing)[1]
        # A Collector alert about the finished rollout is recorded and ignored.
        late = post_collector(client, collector_alert(rollout_id=rid))
        assert late.json()["decisions"][0]["outcome"] == "ignored"
