"""Fail-safe routing: last known state on errors, never a canary seen rolled back."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from otel_prompt_canary.registry.models import RolloutState
from otel_prompt_canary.routing import PromptRouter
from tests.routing.fakes import (
    ScriptedRegistry,
    ramping,
    rolled_back,
    route,
    version,
)
from tests.support.waiting import eventually

KEYS = [f"user-{i}" for i in range(3000)]


def cohorts(router: PromptRouter, prompt: str = "p") -> set[str]:
    return {router.select(prompt, k).cohort for k in KEYS}


@pytest.fixture
def store() -> ScriptedRegistry:
    return ScriptedRegistry([ramping("p", "ro_1", 2000)], [version("p", 1), version("p", 2)])


def test_store_errors_keep_the_last_known_state(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.01)
    before = {k: router.select("p", k).cohort for k in KEYS}
    store.fail = True
    reads = store.reads
    eventually(lambda: store.reads >= reads + 3)
    assert router.status().last_error is not None
    assert {k: router.select("p", k).cohort for k in KEYS} == before
    store.fail = False
    store.set_routes(ramping("p", "ro_1", 5000, revision=3))
    eventually(lambda: router.route("p").canary_weight_bp == 5000)  # type: ignore[union-attr]
    assert router.status().last_error is None


def test_rollback_seen_then_store_down_never_routes_the_canary(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.01)
    assert "canary" in cohorts(router)
    store.set_routes(rolled_back("p", "ro_1"))
    eventually(lambda: router.route("p").state == RolloutState.ROLLED_BACK)  # type: ignore[union-attr]
    store.fail = True
    reads = store.reads
    eventually(lambda: store.reads >= reads + 3)
    assert cohorts(router) == {"stable"}
    assert {router.select("p").cohort for _ in range(2000)} == {"stable"}


def test_a_stale_replica_showing_a_rolled_back_rollout_never_routes_its_canary(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.01)
    store.set_routes(rolled_back("p", "ro_1"))
    eventually(lambda: "ro_1" in router.status().rolled_back)
    # A lagging replica answers with the state from before the rollback.
    store.set_routes(ramping("p", "ro_1", 5000))
    eventually(lambda: router.route("p").state == RolloutState.RAMPING)  # type: ignore[union-attr]
    assert cohorts(router) == {"stable"}
    assert {router.select("p").cohort for _ in range(2000)} == {"stable"}
    sel = router.select("p", "u1")
    assert (sel.version, sel.rollout_id) == (1, None)

    # A new rollout (a new id) is routed again.
    store.set_routes(ramping("p", "ro_2", 5000, revision=7))
    eventually(lambda: router.select("p", "u1").rollout_id == "ro_2")
    assert cohorts(router) == {"stable", "canary"}


def test_rollback_takes_effect_even_if_versions_cannot_be_read(
    make_router: Callable[..., PromptRouter],
) -> None:
    store = ScriptedRegistry(
        [route("a"), ramping("p", "ro_1", 5000)], [version("a", 1), version("p", 1), version("p", 2)]
    )
    router = make_router(store, poll_interval=0.01)
    assert "canary" in cohorts(router)
    # The rollback arrives together with a change that needs a version, and the store fails
    # while that version is being read.
    store.fail_versions = True
    store.add_versions(version("a", 2))
    store.set_routes(route("a", stable=2, revision=2), rolled_back("p", "ro_1"))
    eventually(lambda: "ro_1" in router.status().rolled_back)
    assert cohorts(router) == {"stable"}
    assert router.select("a").version == 1
    assert router.status().last_error is not None
    store.fail_versions = False
    eventually(lambda: router.select("a").version == 2)
    assert cohorts(router) == {"stable"}


def test_a_missing_version_keeps_the_previous_entry(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.01)
    before = {k: router.select("p", k).version for k in KEYS}
    store.set_routes(
        route("p", stable=1, canary=3, weight_bp=5000, rollout_id="ro_3", state="ramping", revision=9)
    )
    reads = store.reads
    eventually(lambda: store.reads >= reads + 5)
    assert {k: router.select("p", k).version for k in KEYS} == before
    store.add_versions(version("p", 3))  # retried until it can be read
    eventually(lambda: router.select("p", "u1").rollout_id == "ro_3")
    assert {router.select("p", k).version for k in KEYS} == {1, 3}


def test_a_prompt_missing_from_a_later_read_is_kept(
    make_router: Callable[..., PromptRouter],
) -> None:
    store = ScriptedRegistry([route("p"), route("q")], [version("p", 1), version("q", 1)])
    router = make_router(store, poll_interval=0.01)
    store._routes.pop("q")  # e.g. a replica on an older copy of the database
    reads = store.reads
    eventually(lambda: store.reads >= reads + 3)
    assert router.select("q").version == 1


def test_a_cold_start_with_the_store_down_uses_the_fallback_then_the_registry(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    store.fail = True
    router = make_router(store, fallbacks={"p": "fallback"}, initial_timeout=0.2)
    assert not router.wait_ready(0.05)
    assert {router.select("p", k).version for k in KEYS[:100]} == {0}
    store.fail = False
    assert router.wait_ready(5)  # backoff starts at 0.2 s
    assert {router.select("p", k).version for k in KEYS} == {1, 2}


def test_inconsistent_active_routes_route_everyone_to_stable(
    make_router: Callable[..., PromptRouter],
) -> None:
    store = ScriptedRegistry(
        [
            route("nocanary", canary=None, weight_bp=5000, rollout_id="r1", state="ramping"),
            route("noid", canary=2, weight_bp=5000, rollout_id=None, state="paused"),
            route("idlecanary", canary=2, weight_bp=5000, rollout_id="r3", state="idle"),
        ],
        [version(n, v) for n in ("nocanary", "noid", "idlecanary") for v in (1, 2)],
    )
    router = make_router(store)
    for name in ("nocanary", "noid", "idlecanary"):
        assert cohorts(router, name) == {"stable"}, name
    assert router.select("nocanary").rollout_id == "r1"  # an active rollout without a canary
    assert router.select("idlecanary").rollout_id is None


def test_weight_edges(make_router: Callable[..., PromptRouter]) -> None:
    store = ScriptedRegistry(
        [
            route("full", canary=2, weight_bp=10_000, rollout_id="r", state="ramping"),
            route("zero", canary=2, weight_bp=0, rollout_id="r", state="ramping"),
        ],
        [version(n, v) for n in ("full", "zero") for v in (1, 2)],
    )
    router = make_router(store)
    assert cohorts(router, "full") == {"canary"}
    assert {router.select("full").cohort for _ in range(100)} == {"canary"}
    assert cohorts(router, "zero") == {"stable"}
    assert router.select("zero", "u").rollout_id == "r"


def test_a_router_that_saw_the_promotion_follows_the_revert_and_ignores_a_stale_promotion(
    store: ScriptedRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    # ro_1 promoted version 2, then was reverted: the flag says rolled_back, everyone on version 1.
    router = make_router(store, poll_interval=0.01)
    store.set_routes(route("p", stable=2, rollout_id="ro_1", state=RolloutState.PROMOTED, revision=3))
    eventually(lambda: router.select("p", "u1").version == 2)
    store.set_routes(route("p", stable=1, rollout_id="ro_1", state=RolloutState.ROLLED_BACK, revision=4))
    eventually(lambda: router.select("p", "u1").version == 1)
    assert "ro_1" in router.status().rolled_back
    # A lagging replica answers with the promotion: the reverted version is not routed again.
    store.set_routes(route("p", stable=2, rollout_id="ro_1", state=RolloutState.PROMOTED, revision=3))
    reads = store.reads
    eventually(lambda: store.reads >= reads + 3)
    assert {router.select("p", k).version for k in KEYS} == {1}
    # A new rollout (a new id) moves the prompt again.
    store.set_routes(route("p", stable=2, rollout_id="ro_2", state=RolloutState.PROMOTED, revision=9))
    eventually(lambda: router.select("p", "u1").version == 2)
