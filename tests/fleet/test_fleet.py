"""A fleet: three ``prompt-canary serve`` replicas (real processes) on one PostgreSQL database.

Routers long-poll different replicas; writes, alerts and reports go to different replicas, some to
several at once (a Collector or an Alertmanager retrying through a load balancer); one replica is
killed with ``kill -9`` while reports stream to it and a router waits on it, and is started again
on the same port, as a supervisor would. At the end:

- every transition is in the audit trail exactly once, in order, with contiguous revisions;
- every router, including the one whose replica was killed, routes as the rollback says;
- no acknowledged write is lost: every acknowledged report is counted, once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import open_store
from otel_prompt_canary.routing import PromptRouter
from tests.conftest import fresh_postgres_database
from tests.fleet.replicas import CHECK, Replica, ReportStream, concurrently, replicas
from tests.service.loop_factories import (
    AM_AUTH,
    alertmanager_payload,
    collector_alert,
    prometheus_alert,
    signed,
)
from tests.support.auth import AUTH
from tests.support.waiting import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

KEYS = [f"user-{i}" for i in range(2000)]


@pytest.fixture
def database(postgres_url: str) -> str:
    """An empty database: the replicas, started together, race to create its tables."""
    return fresh_postgres_database(postgres_url)


@pytest.fixture
def fleet(database: str, tmp_path: Path) -> Iterator[tuple[Replica, Replica, Replica]]:
    with replicas(["a", "b", "c"], database, tmp_path) as (a, b, c):
        yield a, b, c


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _outcomes(responses: list[httpx.Response]) -> list[str]:
    return sorted(_ok(r)["decisions"][0]["outcome"] for r in responses)


def _converged(router: PromptRouter, rollout_id: str) -> bool:
    route = router.route("greeter")
    return route is not None and route.state == "rolled_back" and rollout_id in router.status().rolled_back


def test_a_fleet_applies_every_transition_once_and_loses_no_acknowledged_write(
    fleet: tuple[Replica, Replica, Replica], database: str
) -> None:
    a, b, c = fleet
    http = httpx.Client(timeout=30)
    for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
        _ok(
            http.post(a.url + "/v1/prompts", json={"name": "greeter", "template": template}, headers=AUTH),
            201,
        )
    started = _ok(
        http.post(
            b.url + "/v1/prompts/greeter/rollouts",
            json={"version": 2, "ramp": "10,50,100", "reason": "the brief greeting"},
            headers=AUTH,
        ),
        201,
    )
    rollout_id = started["rollout_id"]
    # A router per replica; short waits so that a router whose replica died comes back quickly.
    routers = {r.name: PromptRouter(r.url, long_poll_wait=2, timeout=2, initial_timeout=30) for r in fleet}
    reports = ReportStream(rollout_id, fleet)
    try:
        for router in routers.values():
            # A replica answers from what it last read of the store (within store_poll_seconds):
            # one that has not seen the push on replica A yet knows no "greeter" at first.
            eventually(
                lambda router=router: (
                    (route := router.route("greeter")) is not None and route.rollout_id == rollout_id
                )
            )
            assert router.select("greeter", "u").rollout_id == rollout_id

        # The same advance sent to every replica at once: one applies, the others lose the
        # compare-and-set on the revision.
        revision = started["revision"]
        advances = concurrently(
            *(
                lambda r=r: http.post(
                    r.url + "/v1/prompts/greeter/rollout/advance",
                    json={"reason": "step up", "expected_revision": revision},
                    headers=AUTH,
                )
                for r in fleet
            )
        )
        assert sorted(r.status_code for r in advances) == [200, 409, 409], [r.text for r in advances]
        for router in routers.values():
            eventually(lambda router=router: getattr(router.route("greeter"), "step", None) == 1)

        # Reports stream to the three replicas; c is killed while it takes its share.
        reports.start()
        eventually(lambda: reports.acknowledged_by("c") >= 5, timeout=60, what="reports acknowledged by c")
        c.kill()
        eventually(lambda: routers["c"].status().last_error is not None, what="c's router seeing c gone")

        # While c is down, the Collector's pause reaches a and b at once (a retry through the load
        # balancer): one transition, and one duplicate.
        body, headers = signed(collector_alert(rollout_id=rollout_id, action="pause"))
        pauses = concurrently(
            *(
                lambda r=r: http.post(r.url + "/v1/alerts/collector", content=body, headers=headers)
                for r in (a, b)
            )
        )
        assert _outcomes(pauses) == ["applied", "duplicate"]

        c.start()  # the supervisor restarts it, on the same port and database
        eventually(lambda: reports.acknowledged_by("c") >= 10, timeout=60, what="reports to c after restart")
        _ok(
            http.post(
                c.url + "/v1/prompts/greeter/rollout/resume", json={"reason": "false alarm"}, headers=AUTH
            )
        )
        # Alertmanager, highly available, sends the same rollback alert to every replica.
        payload = alertmanager_payload(prometheus_alert(action="rollback"))
        rollbacks = concurrently(
            *(
                lambda r=r: http.post(r.url + "/v1/alerts/alertmanager", json=payload, headers=AM_AUTH)
                for r in fleet
            )
        )
        assert _outcomes(rollbacks) == ["applied", "duplicate", "duplicate"]
        reports.stop()

        # Every router converges, the one on the restarted replica too.
        for name, router in routers.items():
            eventually(
                lambda router=router: _converged(router, rollout_id),
                timeout=30,
                what=f"the router on replica {name} seeing the rollback",
                diagnostics=lambda router=router: str(router.status()),
            )
            assert {router.select("greeter", k).version for k in KEYS} == {1}
            assert {router.select("greeter", k).cohort for k in KEYS} == {"stable"}
    finally:
        reports.stop()
        for router in routers.values():
            router.close()

    # Every transition once, in order, on one chain of revisions; every replica reads the same.
    history = _ok(http.get(a.url + "/v1/prompts/greeter/rollout/history"))
    assert [h["action"] for h in history] == ["start", "advance", "pause", "resume", "rollback"]
    assert {h["rollout_id"] for h in history} == {rollout_id}
    assert (history[2]["actor"], history[4]["actor"]) == ("collector gateway-0", "alertmanager")
    for before, after in itertools.pairwise(history):
        assert after["from_revision"] == before["to_revision"]
    for other in (b, c):
        assert _ok(http.get(other.url + "/v1/prompts/greeter/rollout/history")) == history
    route = _ok(http.get(c.url + "/v1/routes/greeter"))
    assert (route["state"], route["revision"]) == ("rolled_back", history[-1]["to_revision"])

    # No acknowledged report lost: those c never answered (it died) are sent again, as senders
    # retry; then the store counts every report exactly once.
    resent = reports.resend_unacknowledged(a)
    assert all(s.answered_by == "a" for s in resent), [s.outcomes for s in resent]
    assert all(s.answered_by is not None for s in reports.sent)
    assert any(s.sent_to[0] == "c" and s.answered_by == "c" for s in reports.sent)
    assert {s.outcomes[-1] for s in reports.sent} <= {"merged", "duplicate"}
    assert all(s.outcomes.count("merged") <= 1 for s in reports.sent)
    with open_store(database) as store:
        snapshot = SqlLoopStore(store).rollout_snapshot(rollout_id)
    assert snapshot.stable[CHECK].n == sum(s.n for s in reports.sent)
    assert snapshot.canary[CHECK].n == sum(s.n for s in reports.sent)
    assert c.starts == 2
    reports.close()
    http.close()
