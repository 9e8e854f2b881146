"""Drift's writes (pin a baseline, acknowledge an alert) need ``operate`` in the environment drift
watches (the default one), and record the request's principal, not the actor it names.

Over the real API (uvicorn on loopback); the drift alert is raised by a monitor of the test's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.drift.factories import FAST, Clock, Feeder, push_bot
from tests.service.service_factories import error_of
from tests.support.auth import AUTH, TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

STAGING_OPS = Credential("ci-staging", ["operate"], environments=["staging"])
OPS = Credential("oncall", ["operate"], environments=["production"])
ACCESS_LOG = "otel_prompt_canary.service.access"


@pytest.fixture
def alert(registry: SqlRegistry) -> DriftAlert:
    push_bot(registry)
    clock = Clock()
    feed = Feeder(DriftMonitor(registry, FAST, clock=clock), clock)
    feed.minutes(70, pass_rate=0.99)
    for _ in range(240):
        if feed.minute(pass_rate=0.9):
            break
    (raised,) = feed.raised
    return raised


@pytest.fixture
def client(registry: SqlRegistry, alert: DriftAlert, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        token=TOKEN,
        environments="staging,production",
        credentials_file=write_credentials(tmp_path, [STAGING_OPS, OPS]),
        drift_interval_seconds=3600,
        controller=False,
    )
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _open_alerts(client: httpx.Client) -> list[int]:
    return [a["id"] for a in client.get("/v1/drift/alerts", params={"open": "true"}, headers=AUTH).json()]


def test_an_operator_of_staging_may_not_acknowledge_or_pin_productions_drift(
    client: httpx.Client, alert: DriftAlert, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    period = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat(), "reason": "mine"}
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOG):
        acknowledged = client.post(
            f"/v1/drift/alerts/{alert.id}/acknowledge", json={"reason": "mine"}, headers=STAGING_OPS.auth
        )
        pinned = client.post("/v1/prompts/bot/drift/baseline", json=period, headers=STAGING_OPS.auth)
    assert (acknowledged.status_code, pinned.status_code) == (403, 403), (acknowledged.text, pinned.text)
    assert error_of(acknowledged) == (
        "PermissionDeniedError",
        "principal 'ci-staging' may not acknowledge drift alerts in environment 'production': that "
        "needs the role 'operate' (it has operate in staging)",
    )
    assert "may not pin drift baselines in environment 'production'" in error_of(pinned)[1]
    assert sum("ci-staging" in r.getMessage() for r in caplog.records) == 2
    assert _open_alerts(client) == [alert.id]
    history = client.get("/v1/alerts", params={"prompt": "bot"}, headers=AUTH).json()
    assert not any("mine" in r["reason"] for r in history)


def test_the_principal_acknowledges_whatever_actor_the_request_names(
    client: httpx.Client, alert: DriftAlert
) -> None:
    done = client.post(
        f"/v1/drift/alerts/{alert.id}/acknowledge",
        json={"reason": "the provider fixed it"},
        headers={**OPS.auth, "X-Prompt-Canary-Actor": "bob"},
    )
    assert done.status_code == 200, done.text
    assert (done.json()["acknowledged_by"], done.json()["acknowledge_reason"]) == (
        "oncall",
        "the provider fixed it [actor named by the request: bob]",
    )
    assert _open_alerts(client) == []
