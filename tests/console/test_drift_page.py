"""The drift page: each live stable version's signals against their baselines, and its open alerts,
from the control plane's drift monitor (here one driven by the test's clock)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.settings import ServiceSettings
from tests.console.console_client import ConsolePerson
from tests.drift.factories import CHECK, FAST, Clock, Feeder, push_bot
from tests.support.auth import TOKEN

BASE = "http://127.0.0.1"


def test_the_drift_page_shows_baselines_values_and_open_alerts(registry: SqlRegistry) -> None:
    push_bot(registry)
    clock = Clock()
    monitor = DriftMonitor(registry, FAST, clock=clock)
    feed = Feeder(monitor, clock)
    with TestClient(
        create_app(registry, ServiceSettings(token=TOKEN, controller=False)), base_url=BASE
    ) as client:
        client.app.state.drift_monitor = monitor  # type: ignore[attr-defined]
        person = ConsolePerson(client, BASE)
        assert person.sign_in(TOKEN).status == 200

        feed.minutes(30, pass_rate=0.99)
        page = person.get("/console/drift")
        assert page.status == 200
        assert "bot v1" in page.main and "model sim-1" in page.main
        assert f"{CHECK} baselining" in page.main

        feed.minutes(40, pass_rate=0.99)
        for _ in range(240):
            if feed.minute(pass_rate=0.94):
                break
        (alert,) = feed.raised
        page = person.get("/console/drift")
        assert f"{CHECK} alarm" in page.main
        assert "1 open alert" in page.main
        assert f"Alert #{alert.id}" in page.main and "dropped from its baseline" in page.main
