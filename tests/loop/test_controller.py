"""The rollout controller: walks a ramp on healthy data, rolls back or pauses on proven regressions.

It runs in the control plane too: tests/service/test_service_controller.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop import RolloutController, SqlLoopStore
from otel_prompt_canary.registry import Action, SqlRegistry
from tests.loop.factories import CHECK, feed, start
from tests.support.waiting import eventually


def test_the_controller_walks_the_ramp_to_promotion(store: SqlRegistry) -> None:
    rid = start(store)
    controller = RolloutController(store, interval_seconds=0.05, time_scale=60)
    # Unscaled, the three steps of a minute would take three minutes: promoted within the wait's
    # one minute, the controller counted the steps' time at the scale.
    eventually(
        lambda: store.get_route("greeter").state == "promoted",
        timeout=60,
        what="the promotion",
        between=lambda: (feed(controller, rid), controller.tick()),
    )
    history = store.history("greeter")
    assert [(r.action, r.actor) for r in history] == [
        ("start", "ana"),
        ("advance", "controller"),
        ("advance", "controller"),
        ("promote", "controller"),
    ]
    promote = history[-1]
    assert promote.reason.startswith("step 3/3 (100%) is ready: it ran")
    evidence: Any = promote.evidence
    assert evidence["verdict"]["ready"] is True
    assert evidence["verdict"]["decision"] == "continue"
    assert evidence["time_scale"] == 60
    assert evidence["elapsed_seconds"] >= 60
    assert store.get_route("greeter").stable_version == 2


def test_a_proven_regression_rolls_back_at_once(store: SqlRegistry) -> None:
    rid = start(store)
    controller = RolloutController(store, time_scale=60)
    for _ in range(5):
        feed(controller, rid, canary_valid=0.5)
    (decision,) = controller.tick()
    assert (decision.action, decision.applied) == (Action.ROLLBACK, True)
    assert store.get_route("greeter").state == "rolled_back"
    last = store.history("greeter")[-1]
    assert last.actor == "controller"
    assert last.reason.startswith("rule 'json_valid.relative' is proven: canary json_valid is below stable")
    verdict: Any = last.evidence["verdict"]  # type: ignore[index]
    assert (verdict["decision"], verdict["action"], verdict["rule_id"]) == (
        "breach",
        "rollback",
        "json_valid.relative",
    )
    assert controller.tick() == []  # finished: nothing more to judge


def test_pause_is_acknowledged_by_a_resume(store: SqlRegistry) -> None:
    rid = start(store)
    controller = RolloutController(store, time_scale=60)
    for _ in range(5):
        feed(controller, rid, judge=0.4)
    (paused,) = controller.tick()
    assert paused.action is Action.PAUSE
    assert store.get_route("greeter").state == "paused"
    assert controller.tick() == []  # already paused: nothing more

    store.transition("greeter", Action.RESUME, actor="ana", reason="the judge is noisy; go on")
    assert controller.tick() == []  # acknowledged: recorded as an alert, no pause, no advance
    assert store.get_route("greeter").state == "ramping"
    (alert,) = SqlLoopStore(store).list_alerts("greeter")
    assert (alert.source, alert.action, alert.outcome) == ("controller", "alert", "recorded")
    assert "acknowledged by a resume" in alert.summary
    assert alert.reason == "action 'alert': recorded; it changes no routing"
    controller.tick()
    assert len(SqlLoopStore(store).list_alerts("greeter")) == 1  # recorded once
    assessment = controller.assessment("greeter")
    assert assessment is not None
    assert assessment.acknowledged == {"judge.relative"}
    assert not assessment.verdict.ready

    # A rollback rule still acts.
    for _ in range(10):
        feed(controller, rid, canary_valid=0.5, judge=0.4)
    (rolled,) = controller.tick()
    assert rolled.action is Action.ROLLBACK


def test_a_paused_rollout_never_advances(store: SqlRegistry) -> None:
    rid = start(store)
    store.transition("greeter", Action.PAUSE, actor="ana", reason="hold")
    controller = RolloutController(store, time_scale=1e4)
    time.sleep(1.05 - time.time() % 1)  # samples count in the step from the next window on
    for _ in range(5):
        feed(controller, rid)
    assert controller.tick() == []
    assessment = controller.assessment("greeter")
    assert assessment is not None and assessment.verdict.ready
    assert store.get_route("greeter").step == 0


class _Interfering:
    """A store whose first controller transition loses the race to a person's pause."""

    def __init__(self, store: SqlRegistry) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def transition(self, name: str, action: Action, **kwargs: Any) -> Any:
        if kwargs.get("actor") == "controller":
            self._store.transition(name, Action.PAUSE, actor="ana", reason="got there first")
        return self._store.transition(name, action, **kwargs)


def test_a_transition_is_compare_and_set(store: SqlRegistry) -> None:
    rid = start(store)
    controller = RolloutController(_Interfering(store), SqlLoopStore(store), time_scale=60)  # type: ignore[arg-type]
    for _ in range(5):
        feed(controller, rid, canary_valid=0.5)
    (decision,) = controller.tick()
    assert decision.action is Action.ROLLBACK
    assert not decision.applied
    assert "changed meanwhile" in decision.reason
    assert [r.action for r in store.history("greeter")] == ["start", "pause"]


def test_without_data_nothing_moves_and_bad_samples_are_refused(store: SqlRegistry) -> None:
    rid = start(store, policy=None)  # the default policy: 10 minutes per step
    controller = RolloutController(store, time_scale=60)
    feed(controller, rid)
    assert controller.tick() == []
    assessment = controller.assessment("greeter")
    assert assessment is not None
    assert "the step has run" in assessment.verdict.waiting_for[0]
    with pytest.raises(InvalidInputError, match="is a check"):
        controller.observe(rid, "canary", CHECK, 0.5)
    with pytest.raises(InvalidInputError, match="unknown cohort"):
        controller.observe(rid, "blue", "json_valid", True)


def test_the_background_thread(store: SqlRegistry) -> None:
    rid = start(store)
    changes: list[Any] = []
    with RolloutController(
        store, interval_seconds=0.05, time_scale=60, on_change=changes.append
    ) as controller:
        assert controller.running
        for _ in range(5):
            feed(controller, rid, canary_valid=0.5)
        eventually(lambda: store.get_route("greeter").state == "rolled_back", what="the rollback")
    assert not controller.running
    assert [c.state for c in changes] == ["rolled_back"]
