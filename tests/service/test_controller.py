"""The rollout controller: walks a ramp on healthy data, rolls back or pauses on proven regressions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from loop_factories import collector_alert, loop_settings, post_collector, proportion, report_envelope, signed
from service_factories import AUTH, error_of, two_versions

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.service import RolloutController, create_app
from otel_prompt_canary.service.rollout_policy import start_rollout_with_policy

CHECK = "prompt_canary.check.json_valid"

# One minute per step, at least 30 samples per cohort: at time scale 60, a step takes about a second.
POLICY: dict[str, Any] = {
    "ramp": {"steps": [10, 50, 100], "min_duration_seconds": 60, "min_samples": 30},
    "signals": [
        {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
        {"name": "judge", "kind": "mean", "harmful": "decrease"},
    ],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.02, "action": "rollback", "critical": True},
        {"signal": "judge", "type": "relative", "margin": 0.1, "action": "pause", "critical": True},
    ],
    "statistics": {"warmup_samples": 30, "target_samples": 100},
}


def wait_for(
    condition: Callable[[], bool], timeout: float = 20.0, step: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        if step is not None:
            step()
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlRegistry]:
    with open_store(tmp_path / "registry.db") as registry:
        registry.push(PromptSpec(name="greeter", template="Greet {{ name }} warmly."))
        registry.push(PromptSpec(name="greeter", template="Greet {{ name }} briefly."))
        yield registry


def start(store: SqlRegistry, policy: dict[str, Any] | None = POLICY) -> str:
    route = start_rollout_with_policy(store, "greeter", 2, policy=policy, actor="ana", reason="try")
    assert route.rollout_id is not None
    return route.rollout_id


def feed(
    controller: RolloutController, rid: str, *, canary_valid: float = 1.0, judge: float = 0.8, n: int = 20
) -> None:
    """``n`` samples per cohort: stable always valid and judged 0.8; the canary as asked."""
    for i in range(n):
        controller.observe(rid, "stable", "json_valid", True)
        controller.observe(rid, "stable", "judge", 0.8 + (0.1 if i % 2 else -0.1))
        controller.observe(rid, "canary", "json_valid", i < canary_valid * n)
        controller.observe(rid, "canary", "judge", judge + (0.1 if i % 2 else -0.1))


def test_the_controller_walks_the_ramp_to_promotion(store: SqlRegistry) -> None:
    rid = start(store)
    controller = RolloutController(store, interval_seconds=0.05, time_scale=60)
    begin = time.monotonic()
    wait_for(
        lambda: store.get_route("greeter").state == "promoted",
        step=lambda: (feed(controller, rid), controller.tick()),
    )
    assert time.monotonic() - begin < 15
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
    (alert,) = store.list_alerts("greeter")
    assert (alert.source, alert.action, alert.outcome) == ("controller", "alert", "recorded")
    assert "acknowledged by a resume" in alert.summary
    assert alert.reason == "action 'alert': recorded; it changes no routing"
    controller.tick()
    assert len(store.list_alerts("greeter")) == 1  # recorded once
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
    controller = RolloutController(_Interfering(store), time_scale=60)  # type: ignore[arg-type]
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
        wait_for(lambda: store.get_route("greeter").state == "rolled_back", timeout=5)
    assert not controller.running
    assert [c.state for c in changes] == ["rolled_back"]


# -- in the service ---------------------------------------------------------------------------------


def _report(rid: str, *, canary_valid: int, n: int = 40) -> dict[str, Any]:
    window = str(math.floor(time.time()))
    return report_envelope(
        rid,
        stable={CHECK: {window: proportion(n, n)}},
        canary={CHECK: {window: proportion(n, canary_valid)}},
    )


def test_the_service_walks_the_ramp_on_healthy_reports(tmp_path: Path) -> None:
    settings = loop_settings(controller=True, controller_interval_seconds=0.05, time_scale=60)
    with open_store(tmp_path / "r.db") as store, TestClient(create_app(store, settings)) as client:
        two_versions(client, AUTH)
        started = client.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "policy": POLICY}, headers=AUTH
        )
        rid = started.json()["rollout_id"]

        def send() -> None:
            body, headers = signed(_report(rid, canary_valid=40))
            assert client.post("/v1/reports", content=body, headers=headers).status_code == 200
            time.sleep(0.1)

        wait_for(lambda: client.get("/v1/routes/greeter").json()["state"] == "promoted", step=send)
        actions = [
            (r["action"], r["actor"]) for r in client.get("/v1/prompts/greeter/rollout/history").json()
        ]
        assert actions == [
            ("start", "api"),
            ("advance", "controller"),
            ("advance", "controller"),
            ("promote", "controller"),
        ]
        assert client.app.state.controller.running  # type: ignore[attr-defined]
    assert not client.app.state.controller.running  # type: ignore[attr-defined]


def test_the_service_rolls_back_on_breaching_reports(tmp_path: Path) -> None:
    settings = loop_settings(controller=True, controller_interval_seconds=0.5, time_scale=60)
    with open_store(tmp_path / "r.db") as store, TestClient(create_app(store, settings)) as client:
        two_versions(client, AUTH)
        rid = client.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "policy": POLICY}, headers=AUTH
        ).json()["rollout_id"]
        verdict = client.get("/v1/prompts/greeter/rollout/verdict").json()
        assert verdict["verdict"]["decision"] == "continue"
        assert verdict["policy"]["ramp"]["steps"] == [10.0, 50.0, 100.0]
        body, headers = signed(_report(rid, canary_valid=20, n=100))
        assert client.post("/v1/reports", content=body, headers=headers).json()["outcome"] == "merged"
        # The report wakes the controller: no need to wait for its interval.
        wait_for(lambda: client.get("/v1/routes/greeter").json()["state"] == "rolled_back", timeout=5)
        last = client.get("/v1/prompts/greeter/rollout/history").json()[-1]
        assert (last["action"], last["actor"]) == ("rollback", "controller")
        canary = last["evidence"]["verdict"]["rules"][0]["canary"]
        assert (canary["n"], canary["estimate"]) == (100, 0.2)
        missing = client.get("/v1/prompts/greeter/rollout/verdict")
        assert missing.status_code == 404
        assert "has no active rollout" in error_of(missing)[1]
        # A Collector alert about the finished rollout is recorded and ignored.
        late = post_collector(client, collector_alert(rollout_id=rid))
        assert late.json()["decisions"][0]["outcome"] == "ignored"
