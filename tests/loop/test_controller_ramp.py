"""The controller's reasons quote each step's own minimums, and the last step's only what it needs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from otel_prompt_canary.loop import RolloutController, start_rollout
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from tests.loop.factories import FAST_RAMP_POLICY
from tests.support.waiting import eventually

#: The loop suite's fast ramp, each step with minimums of its own (the ramp's: 60 s, 30 samples).
PER_STEP_POLICY: dict[str, Any] = {
    **FAST_RAMP_POLICY,
    "ramp": {
        "steps": [
            {"percent": 10, "min_duration": "30s"},
            {"percent": 50, "min_samples": 40},
            {"percent": 100, "min_duration": "90s", "min_samples": 50},
        ],
        "min_duration_seconds": 60,
        "min_samples": 30,
    },
}


@pytest.fixture
def store(registry: SqlRegistry) -> SqlRegistry:
    registry.push(PromptSpec(name="greeter", template="Greet {{ name }} warmly."))
    registry.push(PromptSpec(name="greeter", template="Greet {{ name }} briefly."))
    return registry


def _feed(controller: RolloutController, rid: str) -> None:
    """20 healthy samples per cohort: both valid, both judged around 0.8."""
    for i in range(20):
        for cohort in ("stable", "canary"):
            controller.observe(rid, cohort, "json_valid", True)
            controller.observe(rid, cohort, "judge", 0.8 + (0.1 if i % 2 else -0.1))


def test_each_reason_quotes_its_steps_minimums_and_the_last_the_canarys_only(store: SqlRegistry) -> None:
    rid = start_rollout(store, "greeter", 2, policy=PER_STEP_POLICY, actor="ana", reason="try").rollout_id
    assert rid is not None
    controller = RolloutController(store, interval_seconds=0.05, time_scale=60)
    eventually(
        lambda: store.get_route("greeter").state == "promoted",
        timeout=60,
        what="the promotion",
        between=lambda: (_feed(controller, rid), controller.tick()),
    )
    reasons = [r.reason for r in store.history("greeter") if r.actor == "controller"]
    assert len(reasons) == 3
    number = r"\d+"
    assert re.fullmatch(
        rf"step 1/3 \(10%\) is ready: it ran {number} s of its 30 s minimum at time scale 60, with "
        rf"{number} canary and {number} stable samples \(minimum 30 each\) and no rule in breach",
        reasons[0],
    ), reasons[0]
    assert re.fullmatch(
        rf"step 2/3 \(50%\) is ready: it ran {number} s of its 60 s minimum at time scale 60, with "
        rf"{number} canary and {number} stable samples \(minimum 40 each\) and no rule in breach",
        reasons[1],
    ), reasons[1]
    # At 100% the stable cohort is exempt from the minimum: the reason says what was required.
    assert re.fullmatch(
        rf"step 3/3 \(100%\) is ready: it ran {number} s of its 90 s minimum at time scale 60, with "
        rf"{number} canary samples \(minimum 50; the stable cohort receives no traffic at 100%\) and "
        "no rule in breach",
        reasons[2],
    ), reasons[2]
    assert "stable samples" not in reasons[2]
