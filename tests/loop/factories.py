"""Test data of the loop suite: a policy whose ramp the rollout controller walks in seconds, and a
rollout to report statistics of."""

from __future__ import annotations

from typing import Any

from otel_prompt_canary.registry import PromptSpec, SqlRegistry

__all__ = ["CHECK", "FAST_RAMP_POLICY", "T0", "support_rollout"]

CHECK = "prompt_canary.check.json_valid"
#: A window start, in seconds.
T0 = 1_800_000_000


def support_rollout(registry: SqlRegistry) -> str:
    """Two versions of the prompt ``support`` and a rollout of the second; returns its id."""
    registry.push(PromptSpec(name="support", template="Answer {{ q }}."))
    registry.push(PromptSpec(name="support", template="Answer {{ q }} in JSON."))
    route = registry.start_rollout("support", 2, actor="test")
    assert route.rollout_id is not None
    return route.rollout_id


#: One minute per step, at least 30 samples per cohort: at time scale 60, a step takes about a second.
FAST_RAMP_POLICY: dict[str, Any] = {
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
