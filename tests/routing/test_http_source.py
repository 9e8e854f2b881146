"""The router long-polling a control plane over HTTP (a small real server on 127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from otel_prompt_canary.registry.models import RolloutState
from otel_prompt_canary.routing import PromptRouter
from tests.routing.fakes import (
    FakeControlPlane,
    ramping,
    rolled_back,
    route,
    version,
)
from tests.support.waiting import eventually

KEYS = [f"user-{i}" for i in range(3000)]


def cohorts(router: PromptRouter, prompt: str = "p") -> set[str]:
    return {router.select(prompt, k).cohort for k in KEYS}


def serve_rollout(plane: FakeControlPlane, weight_bp: int = 2000) -> None:
    plane.add_versions(version("p", 1), version("p", 2))
    plane.set_routes(ramping("p", "ro_1", weight_bp))


def test_initial_read_then_long_poll(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    router = make_router(control_plane.url + "/", token="s3cret", long_poll_wait=30)
    assert router.status().ready
    sel = router.select("p", "u1")
    assert sel.rollout_id == "ro_1" and sel.render(question="q") in ("p v1: q", "p v2: q")
    assert cohorts(router) == {"stable", "canary"}

    # The next read waits on the server with the revision it has.
    eventually(lambda: len(control_plane.route_requests()) >= 2)
    first, second = control_plane.route_requests()[:2]
    assert first[1] is None and first[2] is None  # no If-None-Match, no wait: answered at once
    assert second[1] is not None and second[1].startswith('"r') and second[2] == "30"
    assert all(r[3] == "Bearer s3cret" for r in control_plane.requests)

    # A change is seen as soon as the server answers the held request...
    control_plane.set_routes(ramping("p", "ro_1", 5000, revision=3))
    eventually(lambda: router.route("p").canary_weight_bp == 5000, what="the change")  # type: ignore[union-attr]
    # ...not by a later read: the held one is the only request that named the old revision.
    assert [r[1] for r in control_plane.route_requests()].count(second[1]) == 1


def test_unchanged_routes_are_304_and_versions_are_fetched_once(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    make_router(control_plane.url, long_poll_wait=0.05)
    eventually(lambda: len(control_plane.route_requests()) >= 4)
    version_reads = [r for r in control_plane.requests if "/versions/" in r[0]]
    assert sorted(r[0] for r in version_reads) == [
        "/v1/prompts/p/versions/1",
        "/v1/prompts/p/versions/2",
    ]


def test_control_plane_stopped_mid_run_keeps_the_last_known_state(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    router = make_router(control_plane.url, long_poll_wait=1)
    before = {k: router.select("p", k).cohort for k in KEYS}
    control_plane.stop()
    eventually(lambda: router.status().last_error is not None)
    time.sleep(0.5)  # a few failed reconnects, with backoff
    assert {k: router.select("p", k).cohort for k in KEYS} == before
    assert router.select("p", "u1").rollout_id == "ro_1"

    # Back up with a change: picked up after the backoff.
    control_plane.set_routes(ramping("p", "ro_1", 5000, revision=3))
    control_plane.start()
    eventually(lambda: router.route("p").canary_weight_bp == 5000, timeout=10)  # type: ignore[union-attr]
    eventually(lambda: router.status().last_error is None)


def test_rollback_seen_then_control_plane_down_never_routes_the_canary(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane, 5000)
    router = make_router(control_plane.url, long_poll_wait=1)
    assert "canary" in cohorts(router)
    control_plane.set_routes(rolled_back("p", "ro_1"))
    eventually(lambda: router.route("p").state == RolloutState.ROLLED_BACK)  # type: ignore[union-attr]
    control_plane.stop()
    eventually(lambda: router.status().last_error is not None)
    assert cohorts(router) == {"stable"}
    assert {router.select("p").cohort for _ in range(2000)} == {"stable"}


def test_a_stale_replica_never_brings_a_rolled_back_canary_back(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane, 5000)
    router = make_router(control_plane.url, long_poll_wait=1)
    control_plane.set_routes(rolled_back("p", "ro_1"))
    eventually(lambda: "ro_1" in router.status().rolled_back)
    control_plane.set_routes(ramping("p", "ro_1", 5000))  # a lagging replica answers next
    eventually(lambda: router.route("p").state == RolloutState.RAMPING)  # type: ignore[union-attr]
    assert cohorts(router) == {"stable"}
    assert router.select("p", "u1").rollout_id is None


def test_unreachable_at_start_serves_the_fallback_then_the_control_plane(
    make_router: Callable[..., PromptRouter],
) -> None:
    plane = FakeControlPlane().start()
    plane.stop()  # the port is known, nothing listens on it
    serve_rollout(plane)
    # The constructor returns after its initial timeout, though nothing listens yet.
    router = make_router(plane.url, fallbacks={"p": "fallback {{ question }}"}, initial_timeout=0.3)
    assert not router.status().ready
    sel = router.select("p", "u1")
    assert (sel.version, sel.cohort, sel.render(question="q")) == (0, "stable", "fallback q")
    assert "ConnectError" in (router.status().last_error or "")
    plane.start()
    try:
        assert router.wait_ready(10)
        assert router.select("p", "u1").rollout_id == "ro_1"
    finally:
        plane.stop()


def test_server_errors_back_off_and_keep_state(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    router = make_router(control_plane.url, long_poll_wait=0.05)
    before = {k: router.select("p", k).cohort for k in KEYS}
    control_plane.fail_status = 503
    eventually(lambda: "HTTP 503" in (router.status().last_error or ""))
    count = len(control_plane.route_requests())
    time.sleep(1.0)
    # Backoff 0.2, 0.4, 0.8 s...: a handful of retries in a second, not a busy loop.
    assert len(control_plane.route_requests()) - count <= 5
    assert {k: router.select("p", k).cohort for k in KEYS} == before
    control_plane.fail_status = None
    eventually(lambda: router.status().last_error is None, timeout=10)


def test_a_server_without_long_poll_is_not_busy_polled(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    control_plane.ignore_conditional = True
    make_router(control_plane.url)
    count = len(control_plane.route_requests())
    time.sleep(1.0)
    assert len(control_plane.route_requests()) - count <= 6  # min interval 0.25 s


def test_close_interrupts_a_long_poll(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    serve_rollout(control_plane)
    router = PromptRouter(control_plane.url, long_poll_wait=30)
    eventually(lambda: len(control_plane.route_requests()) >= 2)
    time.sleep(0.1)  # the long poll is now held by the server
    router.close()
    # close() joins the thread for 5 s at most; held for 30 s, it would still run: close ended the poll.
    assert not any(t.name.startswith("prompt-canary-routes") for t in threading.enumerate())
    assert router.select("p", "u1").rollout_id == "ro_1"


def test_missing_version_is_retried(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    control_plane.add_versions(version("p", 1))
    control_plane.set_routes(route("p"))
    router = make_router(control_plane.url, long_poll_wait=5)
    control_plane.set_routes(ramping("p", "ro_1", 5000))  # version 2 is not served yet
    eventually(lambda: any(r[0].endswith("/versions/2") for r in control_plane.requests))
    assert cohorts(router) == {"stable"}
    control_plane.add_versions(version("p", 2))  # no route change: the router must retry
    eventually(lambda: router.select("p", "u1").rollout_id == "ro_1")
    assert cohorts(router) == {"stable", "canary"}


def test_malformed_routes_are_skipped(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    control_plane.add_versions(version("p", 1), version("q", 1))
    control_plane.set_routes(route("p"), route("q"))

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        body["routes"][0] = {"prompt": "p", "canary_weight_bp": "lots"}
        body["routes"][1]["a_field_from_a_newer_server"] = True
        return body

    control_plane.rewrite_body = rewrite
    router = make_router(control_plane.url, long_poll_wait=1, fallbacks={"p": "fallback"})
    assert router.select("q").version == 1  # extra fields are ignored
    assert router.select("p").version == 0  # the malformed route is skipped
