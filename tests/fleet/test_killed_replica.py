"""``kill -9`` of a control plane while writes stream to it, on SQLite and on PostgreSQL.

One ``prompt-canary serve`` process takes pushes, transitions and reports from three writers at
once; it is killed with SIGKILL three times, each time while every writer is busy, and started
again on the same store. Every write it acknowledged must be there afterwards, exactly as
acknowledged: each pushed version with its template, each transition in the audit trail on one
chain of revisions, each report counted once (sent again, it is a duplicate). A write that was never
acknowledged may or may not have been applied; sent again, it is applied at most once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import open_store
from tests.fleet.replicas import CHECK, Replica, ReportStream, replicas
from tests.support.auth import AUTH, REPORT_AUTH
from tests.support.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

KILLS = 3


class Writer:
    """Calls ``write(http)`` in a loop on a thread; each call returns whether it was acknowledged.

    Failures (the server killed, refusing connections, a lost race) are counted and retried.
    """

    def __init__(self, name: str, write: Callable[[httpx.Client], bool]) -> None:
        self.write = write
        self.acknowledged = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer {name}", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    done = self.write(http)
                except httpx.HTTPError:
                    done = False
                if done:
                    self.acknowledged += 1
                else:
                    self.failures += 1
                self._stop.wait(0.01 if done else 0.05)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive()


@pytest.fixture
def server(store_target: str, tmp_path: Path) -> Iterator[Replica]:
    with replicas(["only"], store_target, tmp_path) as (only,):
        yield only


def test_no_acknowledged_write_is_lost_across_kill_9(server: Replica, store_target: str) -> None:
    url = server.url
    http = httpx.Client(base_url=url, timeout=30)
    for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
        answer = http.post("/v1/prompts", json={"name": "greeter", "template": template}, headers=AUTH)
        assert answer.status_code == 201, answer.text
    start = http.post("/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "try"}, headers=AUTH)
    assert start.status_code == 201, start.text
    rollout_id = start.json()["rollout_id"]

    pushed: dict[int, str] = {}  # version -> template, as acknowledged
    transitions: list[tuple[int, str]] = []  # (to_revision, action), as acknowledged
    counter = itertools.count()

    def push(client: httpx.Client) -> bool:
        template = f"Say {{{{ name }}}} with care, take {next(counter)}."
        answer = client.post(
            url + "/v1/prompts", json={"name": "durable", "template": template}, headers=AUTH
        )
        if answer.status_code != 201:
            return False
        version = answer.json()["version"]
        pushed[version["version"]] = version["template"]
        return True

    def transition(client: httpx.Client) -> bool:
        read = client.get(url + "/v1/routes/greeter")
        if read.status_code != 200:
            return False
        route = read.json()
        action = "pause" if route["state"] == "ramping" else "resume"
        answer = client.post(
            url + f"/v1/prompts/greeter/rollout/{action}",
            json={"reason": "flip", "expected_revision": route["revision"]},
            headers=AUTH,
        )
        if answer.status_code != 200:
            return False
        transitions.append((answer.json()["revision"], action))
        return True

    reports = ReportStream(rollout_id, [server])
    with Writer("pushes", push) as pushes, Writer("transitions", transition) as flips:
        reports.start()
        try:
            for _ in range(KILLS):
                done = (pushes.acknowledged, flips.acknowledged, reports.acknowledged_by("only"))
                eventually(
                    lambda done=done: (
                        pushes.acknowledged >= done[0] + 10
                        and flips.acknowledged >= done[1] + 4
                        and reports.acknowledged_by("only") >= done[2] + 10
                    ),
                    timeout=60,
                    what="every writer acknowledged again",
                    between=server.check_running,
                    diagnostics=server.log_tail,
                )
                failed = (pushes.failures, flips.failures)
                server.kill()  # while all three write
                eventually(
                    lambda failed=failed: pushes.failures > failed[0] and flips.failures > failed[1],
                    what="writes failing while the server is down",
                )
                server.start()
            eventually(lambda done=pushes.acknowledged: pushes.acknowledged > done, what="a push after")
        finally:
            reports.stop()

    assert server.starts == KILLS + 1
    # Every acknowledged version is there, with what was pushed.
    for number, template in pushed.items():
        answer = http.get(f"/v1/prompts/durable/versions/{number}")
        assert answer.status_code == 200, (number, answer.text)
        assert answer.json()["template"] == template
    with open_store(store_target) as store:
        history = store.history("greeter")
        route = store.get_route("greeter")
        versions = [v.version for v in store.list_versions("durable")]
    # Versions are numbered without a hole; acknowledged ones are among them.
    assert versions == list(range(1, len(versions) + 1))
    assert set(pushed) <= set(versions)
    # Every acknowledged transition is in the audit trail, on one chain of revisions.
    trail = {(h.to_revision, h.action.value) for h in history}
    assert set(transitions) <= trail
    for before, after in itertools.pairwise(history):
        assert after.from_revision == before.to_revision
    assert route.revision == history[-1].to_revision

    # Reports: every acknowledged one is stored (sent again: a duplicate); the others, sent again,
    # are counted at most once; the totals are then every report exactly once.
    acknowledged = [s for s in reports.sent if s.answered_by is not None]
    reports.resend_unacknowledged(server)
    assert all(s.answered_by is not None for s in reports.sent), [s.outcomes for s in reports.sent]
    for item in acknowledged[:: max(1, len(acknowledged) // 50)]:
        again = http.post("/v1/reports", json=item.envelope, headers=REPORT_AUTH)
        assert (again.status_code, again.json().get("outcome")) == (200, "duplicate"), again.text
    with open_store(store_target) as store:
        snapshot = SqlLoopStore(store).rollout_snapshot(rollout_id)
    assert snapshot.stable[CHECK].n == sum(s.n for s in reports.sent)
    reports.close()
    http.close()
