"""Alert receivers on a real uvicorn server (127.0.0.1): concurrent copies of one alert, one transition."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from otel_prompt_canary.analysis import ProportionStats, Report
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.routing.remote import RemoteRegistry
from tests.service.loop_factories import (
    AM_AUTH,
    alertmanager_payload,
    collector_alert,
    grafana_headers,
    grafana_payload,
    loop_settings,
    prometheus_alert,
    proportion,
    report_envelope,
    signed,
)
from tests.service.service_factories import text_spec
from tests.support.auth import AUTH, TOKEN
from tests.support.control_plane import alert_log, post_report
from tests.support.loopback import running_server

COPIES = 100


def _request(receiver: str, rollout_id: str) -> tuple[str, bytes, dict[str, str]]:
    if receiver == "alertmanager":
        body = json.dumps(alertmanager_payload(prometheus_alert())).encode()
        return "/v1/alerts/alertmanager", body, {**AM_AUTH, "content-type": "application/json"}
    if receiver == "grafana":
        body = json.dumps(grafana_payload(prometheus_alert())).encode()
        return "/v1/alerts/grafana", body, grafana_headers(body)
    body, headers = signed(collector_alert(rollout_id=rollout_id))
    return "/v1/alerts/collector", body, headers


@pytest.mark.parametrize("receiver", ["alertmanager", "grafana", "collector"])
def test_concurrent_copies_of_one_alert_make_one_transition(registry: SqlRegistry, receiver: str) -> None:
    with (
        running_server(registry, loop_settings()) as url,
        httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=COPIES)) as http,
    ):
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            assert (
                http.post("/v1/prompts", json=text_spec("greeter", template), headers=AUTH).status_code == 201
            )
        started = http.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
        ).json()
        path, body, headers = _request(receiver, started["rollout_id"])

        barrier = threading.Barrier(COPIES)
        answers: list[Any] = []
        lock = threading.Lock()

        def deliver() -> None:
            barrier.wait()
            response = http.post(path, content=body, headers=headers)
            with lock:
                answers.append(response)

        threads = [threading.Thread(target=deliver) for _ in range(COPIES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    assert [a.status_code for a in answers] == [200] * COPIES, {
        a.text for a in answers if a.status_code != 200
    }
    decided = sorted(a.json()["decisions"][0]["outcome"] for a in answers)
    assert decided == ["applied"] + ["duplicate"] * (COPIES - 1)
    history = registry.history("greeter")
    assert [r.action for r in history] == ["start", "rollback"]
    assert registry.get_route("greeter").state == "rolled_back"
    log = SqlLoopStore(registry).list_alerts("greeter")
    assert len(log) == COPIES
    assert sum(r.outcome == "applied" for r in log) == 1


def test_applications_send_reports_and_read_the_alert_log(registry: SqlRegistry) -> None:
    with (
        running_server(registry, loop_settings()) as url,
        RemoteRegistry(url, token=TOKEN) as remote,
    ):
        remote.push(PromptSpec(name="greeter", template="one"))
        remote.push(PromptSpec(name="greeter", template="two"))
        route = remote.start_rollout("greeter", 2, actor="ana", reason="r")
        assert route.rollout_id is not None
        envelope = report_envelope(
            route.rollout_id,
            window_seconds=60,
            canary={"prompt_canary.check.json_valid": {"1800000000": proportion(10, 9)}},
            report_id="pcr_" + "a" * 32,
        )
        receipt = post_report(url, envelope, token=TOKEN).json()
        assert (receipt["outcome"], receipt["samples"]) == ("merged", 10)
        assert post_report(url, envelope, token=TOKEN).json()["outcome"] == "duplicate"
        report = Report(rollout_id=route.rollout_id, window_seconds=60).record(
            "canary", "prompt_canary.check.json_valid", ProportionStats(n=10, successes=9), at=1_800_000_030
        )
        assert SqlLoopStore(registry).rollout_reports(route.rollout_id) == [report]
        zero = post_report(url, envelope | {"id": "pcr_" + "b" * 32, "window_seconds": 0}, token=TOKEN)
        assert zero.status_code == 422, zero.text

        body, headers = signed(collector_alert(rollout_id=route.rollout_id, action="pause"))
        assert httpx.post(f"{url}/v1/alerts/collector", content=body, headers=headers).status_code == 200
        (record,) = alert_log(url, "greeter")
        assert (record["outcome"], record["action"]) == ("applied", "pause")
        assert alert_log(url, "greeter", rollout_id="nope") == []


def test_concurrent_reports_add_up_exactly(registry: SqlRegistry) -> None:
    # Reports of one window and attribute from many senders at once: every sample counted once.
    with running_server(registry, loop_settings()) as url, httpx.Client(base_url=url, timeout=60) as http:
        for template in ("one", "two"):
            assert (
                http.post("/v1/prompts", json=text_spec("greeter", template), headers=AUTH).status_code == 201
            )
        rid = http.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=AUTH
        ).json()["rollout_id"]
        envelopes = [
            report_envelope(rid, stable={"prompt_canary.check.json_valid": {"10": proportion(3, i % 4)}})
            for i in range(40)
        ]
        barrier = threading.Barrier(len(envelopes))
        codes: list[int] = []

        def send(envelope: dict[str, Any]) -> None:
            body, headers = signed(envelope)
            barrier.wait()
            codes.append(http.post("/v1/reports", content=body, headers=headers).status_code)

        threads = [threading.Thread(target=send, args=(e,)) for e in envelopes * 2]  # each twice
        barrier = threading.Barrier(len(threads))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert codes == [200] * len(threads)
    (report,) = SqlLoopStore(registry).rollout_reports(rid)
    stats = report.stable["prompt_canary.check.json_valid"][10]
    assert (stats.n, stats.successes) == (120, sum(i % 4 for i in range(40)))  # type: ignore[union-attr]
