"""Who promotes: under ``promotion: manual`` the rollout controller walks the steps below 100% and
stops there, whatever the reports say; a person takes the canary to everyone."""

from __future__ import annotations

import pytest

from otel_prompt_canary.loop import RolloutController, SqlLoopStore
from otel_prompt_canary.registry import Action, SqlRegistry
from tests.loop.factories import FAST_RAMP_POLICY, feed, start
from tests.support.waiting import eventually

MANUAL = FAST_RAMP_POLICY | {"promotion": "manual"}


def _waiting(registry: SqlRegistry) -> list[str]:
    return [
        record.summary
        for record in SqlLoopStore(registry).list_alerts("greeter")
        if record.source == "controller" and "promotion is manual" in record.summary
    ]


def test_manual_promotion_stops_the_controller_before_everyone(store: SqlRegistry) -> None:
    rid = start(store, MANUAL)
    controller = RolloutController(store, interval_seconds=0.05, time_scale=60)
    eventually(
        lambda: _waiting(store),
        timeout=60,
        what="the controller waiting for a person",
        between=lambda: (feed(controller, rid), controller.tick()),
    )
    route = store.get_route("greeter")
    assert (route.state, route.step, route.canary_weight_bp) == ("ramping", 1, 5000)
    (waiting,) = _waiting(store)
    assert waiting.startswith("step 2/3 (50%) is ready")
    assert "a person promotes it, or advances it to 100%" in waiting
    # However much healthy data arrives, it stays there, and says so once.
    for _ in range(3):
        feed(controller, rid)
        assert controller.tick() == []
    assert store.get_route("greeter") == route
    assert len(_waiting(store)) == 1
    store.transition("greeter", Action.PROMOTE, actor="ana", reason="reviewed the verdict")
    assert [(r.action, r.actor) for r in store.history("greeter")] == [
        ("start", "ana"),
        ("advance", "controller"),
        ("promote", "ana"),
    ]


@pytest.mark.parametrize("store_backend", ["sqlite"])  # the controller's rule, not the store's
def test_at_the_last_step_a_manual_rollout_waits_for_its_promotion(store: SqlRegistry) -> None:
    rid = start(store, MANUAL)
    store.transition("greeter", Action.ADVANCE, actor="ana", reason="to half")
    store.transition("greeter", Action.ADVANCE, actor="ana", reason="to everyone, to watch it")
    controller = RolloutController(store, interval_seconds=0.05, time_scale=60)
    eventually(
        lambda: _waiting(store),
        timeout=60,
        what="the controller waiting at 100%",
        between=lambda: (feed(controller, rid), controller.tick()),
    )
    (waiting,) = _waiting(store)
    assert waiting.startswith("step 3/3 (100%) is ready")
    assert "a person promotes it (prompt-canary rollout promote greeter" in waiting
    assert store.get_route("greeter").state == "ramping"


def test_automatic_promotion_is_the_default_and_left_out_of_the_stored_policy(store: SqlRegistry) -> None:
    start(store)
    policy = store.get_rollout("greeter").policy
    # At its default the field is left out, so that an older Collector processor reads the policy.
    assert policy is not None and "promotion" not in policy
    store.transition("greeter", Action.ROLLBACK, actor="ana", reason="next")
    start(store, MANUAL)
    stored = store.get_rollout("greeter").policy
    assert stored is not None and stored["promotion"] == "manual"
