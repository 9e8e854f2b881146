"""Starting a rollout: the policy is resolved and validated before the registry writes anything.

Refused before any write, too: a start without a reason, and a policy that must have data from a
signal never reported for the prompt.
"""

from __future__ import annotations

from typing import Any

import pytest

from otel_prompt_canary.analysis import DEFAULT_POLICY, MeanStats, ProportionStats, Report
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.loop import SqlLoopStore, resolve_rollout_policy, start_rollout
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry

JSON_RULE: dict[str, Any] = {
    "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
    "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"}],
}


@pytest.fixture
def two_versions(registry: SqlRegistry) -> SqlRegistry:
    registry.push(PromptSpec(name="support", template="Answer {{ q }}."))
    registry.push(PromptSpec(name="support", template="Answer {{ q }} in JSON."))
    return registry


@pytest.mark.parametrize(
    "policy",
    [
        {"signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}]},
        {"rules": [{"signal": "nope"}]},
    ],
)
def test_a_policy_that_cannot_be_decided_is_refused_before_anything_is_written(
    two_versions: SqlRegistry, policy: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInputError, match="invalid policy"):
        start_rollout(two_versions, "support", 2, policy=policy, actor="t", reason="r")
    assert two_versions.get_route("support").state == "idle"
    assert two_versions.history("support") == []


def test_the_policy_is_stored_in_full_with_the_ramp_it_walks(two_versions: SqlRegistry) -> None:
    route = start_rollout(
        two_versions, "support", 2, policy=JSON_RULE, ramp="10,100", actor="ana", reason="r"
    )
    assert route.ramp == (10.0, 100.0)
    stored = two_versions.get_rollout("support").policy
    assert stored == resolve_rollout_policy(JSON_RULE, "10,100").document
    assert stored is not None and stored["ramp"]["steps"] == [10.0, 100.0]  # type: ignore[index]
    (start,) = two_versions.history("support")
    assert start.evidence == {"policy": stored}


def test_a_resolved_policy_starts_as_it_is_and_takes_no_second_ramp(two_versions: SqlRegistry) -> None:
    resolved = resolve_rollout_policy(JSON_RULE, "5,100")
    with pytest.raises(InvalidInputError, match="not with a resolved policy"):
        start_rollout(two_versions, "support", 2, policy=resolved, ramp="5,100", actor="t", reason="r")
    assert two_versions.history("support") == []
    route = start_rollout(two_versions, "support", 2, policy=resolved, actor="t", reason="r")
    assert route.ramp == (5.0, 100.0)
    assert two_versions.get_rollout("support").policy == resolved.document


def test_the_store_itself_keeps_any_policy_document_as_given(two_versions: SqlRegistry) -> None:
    # The store knows nothing of policies: validation is the loop's, in start_rollout.
    two_versions.start_rollout("support", 2, actor="t", policy={"anything": ["goes"]})
    assert two_versions.get_rollout("support").policy == {"anything": ["goes"]}


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_start_without_a_reason_is_refused(two_versions: SqlRegistry, reason: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        start_rollout(two_versions, "support", 2, actor="t", reason=reason)
    assert str(refused.value) == "a reason is required to start a rollout"
    assert two_versions.history("support") == []


JUDGE_REQUIRED: dict[str, Any] = {
    "signals": [
        {"name": "json_valid", "kind": "proportion", "harmful": "decrease"},
        {"name": "judge", "kind": "mean", "harmful": "decrease", "must_have_data": True},
    ],
    "rules": [
        {"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"},
        {"signal": "judge", "type": "relative", "margin": 0.05, "action": "pause"},
    ],
}


def test_a_policy_that_must_have_data_no_one_produces_is_refused(two_versions: SqlRegistry) -> None:
    with pytest.raises(InvalidInputError) as refused:
        start_rollout(two_versions, "support", 2, policy=JUDGE_REQUIRED, actor="t", reason="r")
    assert str(refused.value) == (
        "the policy must have data from signal 'judge' (must_have_data), but no one produces it: no "
        "report for prompt 'support' has ever carried prompt_canary.score.judge, so no step could "
        "become ready. Turn it on in the application (docs/checks.md), or start without "
        "must_have_data on it: its rules still judge it once its data arrives"
    )
    assert two_versions.get_route("support").state == "idle"
    assert two_versions.history("support") == []
    with pytest.raises(NotFoundError, match="unknown prompt 'nope'"):
        start_rollout(two_versions, "nope", 2, policy=JUDGE_REQUIRED, actor="t", reason="r")


def test_a_first_rollout_starts_with_the_default_policy(two_versions: SqlRegistry) -> None:
    # Nothing was ever reported for the prompt: the default policy requires no signal's data.
    assert not any(signal.must_have_data for signal in DEFAULT_POLICY.signals)
    route = start_rollout(two_versions, "support", 2, actor="t", reason="first canary")
    assert route.state == "ramping"


def test_a_signal_reported_in_an_earlier_rollout_may_be_required(
    two_versions: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    first = start_rollout(two_versions, "support", 2, policy=JSON_RULE, actor="t", reason="r")
    assert first.rollout_id is not None
    report = Report(
        rollout_id=first.rollout_id,
        window_seconds=60,
        stable={"prompt_canary.check.json_valid": {1_800_000_000: ProportionStats(n=10, successes=10)}},
        canary={"prompt_canary.score.judge": {1_800_000_000: MeanStats.of([0.8, 0.9])}},
    )
    loop_store.record_report(report, source="app")
    assert loop_store.reported_signals("support") == {
        "prompt_canary.check.json_valid",
        "prompt_canary.score.judge",
    }
    two_versions.transition("support", Action.ROLLBACK, actor="t", reason="r")
    route = start_rollout(two_versions, "support", 2, policy=JUDGE_REQUIRED, actor="t", reason="judge is on")
    assert route.state == "ramping"
