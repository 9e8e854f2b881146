"""The router reading a real registry store (SQLite and PostgreSQL): changes seen within a second."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry
from otel_prompt_canary.routing import PromptRouter, assign_cohort
from otel_prompt_canary.routing.store_source import DEFAULT_POLL_INTERVAL
from tests.routing.fakes import ScriptedRegistry, route, version
from tests.support.loopback import free_port
from tests.support.waiting import eventually

KEYS = [f"user-{i}" for i in range(4000)]


@pytest.fixture
def store(registry: SqlRegistry) -> SqlRegistry:
    """The test's registry (its target is ``store_target``) with two versions of ``support``."""
    registry.push(PromptSpec(name="support", template="v1: {{ question }}"))
    registry.push(PromptSpec(name="support", template="v2: {{ question }}"))
    return registry


def canary_units(router: PromptRouter) -> set[str]:
    return {k for k in KEYS if router.select("support", k).cohort == "canary"}


def test_reads_a_path_and_sees_changes_within_a_second(
    store_target: str, store: SqlRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    # Within a second: a router opened on a path or URL reads the store more often than that.
    assert DEFAULT_POLL_INTERVAL < 1
    router = make_router(store_target)
    sel = router.select("support", "u1")
    assert (sel.version, sel.cohort, sel.rollout_id) == (1, "stable", None)
    assert sel.render(question="q") == "v1: q"

    started = store.start_rollout("support", 2, actor="test", ramp=(5, 20, 100))
    eventually(lambda: router.select("support", "u1").rollout_id is not None, what="the rollout")
    assert router.route("support") == started

    at_5 = canary_units(router)
    assert all(assign_cohort(started.rollout_id or "", k, 500) == "canary" for k in at_5)
    store.transition("support", Action.ADVANCE, actor="test", reason="step")
    eventually(lambda: router.route("support").canary_weight_bp == 2000)  # type: ignore[union-attr]
    at_20 = canary_units(router)
    assert at_5 < at_20  # units in the canary at 5% stay in it at 20%
    assert 0.15 < len(at_20) / len(KEYS) < 0.25

    store.transition("support", Action.ROLLBACK, actor="test", reason="regression")
    eventually(lambda: router.route("support").state == "rolled_back")  # type: ignore[union-attr]
    assert canary_units(router) == set()
    assert router.select("support", "u1").rollout_id is None
    assert router.status().rolled_back == {started.rollout_id}


def test_promotion_makes_the_candidate_stable(
    store: SqlRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.05)
    store.start_rollout("support", 2, actor="test", ramp=(50, 100))
    eventually(lambda: router.select("support").rollout_id is not None)
    store.transition("support", Action.PROMOTE, actor="test", reason="good")
    eventually(lambda: router.route("support").state == "promoted")  # type: ignore[union-attr]
    assert {router.select("support", k).version for k in KEYS[:500]} == {2}
    assert {router.select("support", k).rollout_id for k in KEYS[:500]} == {None}


def test_paused_rollout_keeps_routing_the_canary(
    store: SqlRegistry, make_router: Callable[..., PromptRouter]
) -> None:
    router = make_router(store, poll_interval=0.05)
    started = store.start_rollout("support", 2, actor="test", ramp=(20, 100))
    eventually(lambda: router.select("support").rollout_id is not None)
    before = canary_units(router)
    store.transition("support", Action.PAUSE, actor="test", reason="hold")
    eventually(lambda: router.route("support").state == "paused")  # type: ignore[union-attr]
    assert canary_units(router) == before
    assert router.select("support", "u1").rollout_id == started.rollout_id


def test_an_empty_store_serves_fallbacks(tmp_path: Path, make_router: Callable[..., PromptRouter]) -> None:
    router = make_router(tmp_path / "empty.db", fallbacks={"support": "fallback {{ question }}"})
    assert router.status().ready
    sel = router.select("support", "u1")
    assert (sel.version, sel.render(question="q")) == (0, "fallback q")


def test_an_unreachable_database_at_start_neither_hangs_nor_crashes(
    make_router: Callable[..., PromptRouter],
) -> None:
    # The constructor returns after its initial timeout, though no database answers.
    router = make_router(
        f"postgresql://canary:secret@127.0.0.1:{free_port()}/nothing",
        fallbacks={"support": "fallback"},
        initial_timeout=0.5,
    )
    assert router.select("support").version == 0
    status = router.status()
    assert not status.ready and status.last_error
    assert "secret" not in status.source and "secret" not in repr(router)


def test_a_registry_object_is_not_closed_by_the_router() -> None:
    scripted = ScriptedRegistry([route("p")], [version("p", 1)])
    with PromptRouter(scripted) as router:
        assert router.select("p").version == 1
    assert router.closed and not scripted.closed


def test_close_stops_the_thread_and_selection_keeps_working(store: SqlRegistry, store_target: str) -> None:
    before = set(threading.enumerate())
    router = PromptRouter(store_target)
    assert len(set(threading.enumerate()) - before) == 1
    router.close()
    router.close()  # idempotent
    assert set(threading.enumerate()) - before == set()
    assert router.select("support", "u1").version == 1
    assert "closed" in repr(router)


def test_a_dropped_router_stops_its_thread() -> None:
    router = PromptRouter(ScriptedRegistry([route("p")], [version("p", 1)]))
    thread = router._source.thread
    assert thread.is_alive()
    del router
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
