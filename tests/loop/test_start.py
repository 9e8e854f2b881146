"""Starting a rollout: the policy is resolved and validated before the registry writes anything."""

from __future__ import annotations

from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop import resolve_rollout_policy, start_rollout
from otel_prompt_canary.registry import PromptSpec, SqlRegistry

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
        start_rollout(two_versions, "support", 2, policy=policy, actor="t")
    assert two_versions.get_route("support").state == "idle"
    assert two_versions.history("support") == []


def test_the_policy_is_stored_in_full_with_the_ramp_it_walks(two_versions: SqlRegistry) -> None:
    route = start_rollout(two_versions, "support", 2, policy=JSON_RULE, ramp="10,100", actor="ana")
    assert route.ramp == (10.0, 100.0)
    stored = two_versions.get_rollout("support").policy
    assert stored == resolve_rollout_policy(JSON_RULE, "10,100").document
    assert stored is not None and stored["ramp"]["steps"] == [10.0, 100.0]  # type: ignore[index]
    (start,) = two_versions.history("support")
    assert start.evidence == {"policy": stored}


def test_a_resolved_policy_starts_as_it_is_and_takes_no_second_ramp(two_versions: SqlRegistry) -> None:
    resolved = resolve_rollout_policy(JSON_RULE, "5,100")
    with pytest.raises(InvalidInputError, match="not with a resolved policy"):
        start_rollout(two_versions, "support", 2, policy=resolved, ramp="5,100", actor="t")
    assert two_versions.history("support") == []
    route = start_rollout(two_versions, "support", 2, policy=resolved, actor="t")
    assert route.ramp == (5.0, 100.0)
    assert two_versions.get_rollout("support").policy == resolved.document


def test_the_store_itself_keeps_any_policy_document_as_given(two_versions: SqlRegistry) -> None:
    # The store knows nothing of policies: validation is the loop's, in start_rollout.
    two_versions.start_rollout("support", 2, actor="t", policy={"anything": ["goes"]})
    assert two_versions.get_rollout("support").policy == {"anything": ["goes"]}
