"""Drift monitoring over HTTP: live reports, ``/v1/drift``, acknowledging and pinning, the metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.drift.factories import CHECK, FAST, Clock, Feeder, live_body, push_bot
from tests.support.auth import AUTH, REPORT_AUTH, REPORT_TOKEN, TOKEN

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "report.schema.json").read_text())


def _settings(**extra: object) -> ServiceSettings:
    # The service's own monitor ticks once an hour here: the tests drive a monitor of their own clock.
    return ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, drift_interval_seconds=3600, **extra)  # type: ignore[arg-type]


@pytest.fixture
def client(registry: SqlRegistry) -> Iterator[TestClient]:
    push_bot(registry)
    with TestClient(create_app(registry, _settings())) as test_client:
        yield test_client


def _window(client: TestClient) -> int:
    return int(datetime.now(UTC).timestamp()) // 60 * 60


def test_a_live_report_is_counted_once_for_its_stable_version(
    client: TestClient, registry: SqlRegistry
) -> None:
    window = _window(client)
    body = live_body(window, n=17, passed=16, models={"sim-1": 17}, number=1)
    jsonschema.validate(body, SCHEMA)
    answer = client.post("/v1/reports", json=body, headers=REPORT_AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "report_id": body["id"],
        "rollout_id": "live:1",
        "outcome": "merged",
        "reason": "added 17 samples to the live statistics of bot@1",
        "samples": 17,
        "counted_origin": "application",
    }
    again = client.post("/v1/reports", json=body, headers=REPORT_AUTH).json()
    assert again["outcome"] == "duplicate"
    other = live_body(window, n=17, passed=17, origin="collector", number=2)
    ignored = client.post("/v1/reports", json=other, headers=REPORT_AUTH).json()
    assert (
        ignored["outcome"] == "ignored" and "count the reports of origin 'application'" in ignored["reason"]
    )

    monitor: DriftMonitor = client.app.state.drift_monitor  # type: ignore[attr-defined]
    ((stored_window, _, attribute, stats),) = monitor.live.stable_windows(
        "bot", 1, since=0, until=window + 60
    )
    assert (stored_window, attribute, stats.n) == (window, CHECK, 17)
    (model,) = monitor.live.response_models("bot", 1)
    assert (model.model, model.calls, model.first_window) == ("sim-1", 17, window)


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"rollout_id": "live:one"}, 422, "a live report's rollout id is 'live:<version>'"),
        ({"rollout_id": "live:0"}, 422, "a number from 1"),
        ({"canary": {CHECK: {"0": {"kind": "proportion", "n": 1, "successes": 1}}}}, 422, "no canary cohort"),
        ({"response_models": None}, 422, "leave the field out when no response model is known"),
        ({"response_models": {"stable": {"m": {"60": -1}}}}, 422, "response_models"),
        ({"prompt": "nobody"}, 404, "unknown prompt"),
    ],
)
def test_a_malformed_live_report_is_refused_whole(
    client: TestClient, change: dict[str, object], status: int, message: str
) -> None:
    body = {**live_body(_window(client), n=3, passed=3, number=3), **change}
    answer = client.post("/v1/reports", json=body, headers=REPORT_AUTH)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]
    monitor: DriftMonitor = client.app.state.drift_monitor  # type: ignore[attr-defined]
    assert monitor.live.stable_windows("bot", 1, since=0, until=2**40) == []


def test_a_live_report_of_an_unknown_version_is_acknowledged_and_not_stored(client: TestClient) -> None:
    answer = client.post(
        "/v1/reports", json=live_body(_window(client), n=3, passed=3, version=9), headers=REPORT_AUTH
    )
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "ignored"
    assert answer.json()["reason"] == "unknown version 9 of prompt 'bot': the live report was not stored"


def test_with_drift_monitoring_off_live_reports_are_ignored_and_the_api_says_501(
    registry: SqlRegistry,
) -> None:
    push_bot(registry)
    with TestClient(create_app(registry, _settings(drift="off"))) as client:
        answer = client.post(
            "/v1/reports", json=live_body(_window(client), n=3, passed=3), headers=REPORT_AUTH
        )
        assert answer.json()["outcome"] == "ignored"
        assert "drift monitoring is off" in answer.json()["reason"]
        off = client.get("/v1/drift")
        assert off.status_code == 501 and "drift monitoring is off" in off.json()["error"]["message"]


def test_an_alert_is_shown_acknowledged_over_http_and_exported_as_metrics(
    client: TestClient, registry: SqlRegistry
) -> None:
    clock = Clock()
    feed = Feeder(DriftMonitor(registry, FAST, clock=clock), clock)
    feed.minutes(70, pass_rate=0.99)
    for _ in range(240):
        if feed.minute(pass_rate=0.9):
            break
    (alert,) = feed.raised

    overview = client.get("/v1/drift").json()
    assert (
        overview["settings"]
        == "alpha=0.01,horizon=30d,window=1m,baseline=1d,baseline_samples=1000,settle=30s"
    )
    (prompt,) = overview["prompts"]
    assert (prompt["prompt"], prompt["version"]) == ("bot", 1)
    assert [a["id"] for a in prompt["alerts"]] == [alert.id]
    assert client.get("/v1/prompts/bot/drift").json()["signals"][0]["status"] == "alarm"
    assert client.get("/v1/prompts/nobody/drift").status_code == 404
    assert [a["id"] for a in client.get("/v1/drift/alerts", params={"open": "true"}).json()] == [alert.id]

    metrics = client.get("/v1/drift/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    labels = f'gen_ai_prompt_name="bot",gen_ai_prompt_version="1",signal="{CHECK}"'
    assert f"prompt_canary_drift_alarm{{{labels}}} 1.0" in metrics.text
    assert (
        'prompt_canary_drift_open_alerts{gen_ai_prompt_name="bot",gen_ai_prompt_version="1"} 1'
        in metrics.text
    )

    path = f"/v1/drift/alerts/{alert.id}/acknowledge"
    assert client.post(path, json={"reason": "known"}).status_code == 401
    assert client.post(path, json={}, headers=AUTH).status_code == 422
    done = client.post(
        path, json={"reason": "the provider fixed it"}, headers={**AUTH, "X-Prompt-Canary-Actor": "ana"}
    )
    assert done.status_code == 200, done.text
    # Recorded as done by the credential's principal; the actor the request names is a note.
    assert (done.json()["acknowledged_by"], done.json()["acknowledge_reason"]) == (
        "admin",
        "the provider fixed it [actor named by the request: ana]",
    )
    assert client.post(path, json={"reason": "again"}, headers=AUTH).status_code == 409
    assert (
        client.post("/v1/drift/alerts/999/acknowledge", json={"reason": "r"}, headers=AUTH).status_code == 404
    )
    assert client.get("/v1/drift/alerts", params={"open": "true"}).json() == []
    assert client.get("/v1/prompts/bot/drift").json()["signals"][0]["status"] == "baselining"


def test_pinning_a_baseline_checks_the_period(client: TestClient) -> None:
    now = datetime.now(UTC)
    path = "/v1/prompts/bot/drift/baseline"
    backwards = client.post(
        path, json={"start": now.isoformat(), "end": now.isoformat(), "reason": "r"}, headers=AUTH
    )
    assert backwards.status_code == 422 and "after body.start" in backwards.json()["error"]["message"]
    naive = client.post(
        path, json={"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00", "reason": "r"}, headers=AUTH
    )
    assert naive.status_code == 422
    early = client.post(
        path,
        json={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z", "reason": "r"},
        headers=AUTH,
    )
    assert early.status_code == 422 and "went live" in early.json()["error"]["message"]
