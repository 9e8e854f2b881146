"""Two environments side by side in one store (SQLite and PostgreSQL): each has its own routing
flag of every prompt, with its own revisions, rollouts and audit trail."""

from __future__ import annotations

import pytest

from otel_prompt_canary.errors import InvalidInputError, NotFoundError, RevisionMismatchError
from otel_prompt_canary.loop import start_rollout
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import Action, PromptSpec, RolloutState, SqlRegistry

STAGING = "staging"


@pytest.fixture
def greeter(registry: SqlRegistry) -> SqlRegistry:
    """Three versions of ``greeter``; version 1 is stable everywhere."""
    for text in ("Hello {{ name }}.", "Hi {{ name }}!", "Good day, {{ name }}."):
        registry.push(PromptSpec(name="greeter", template=text))
    return registry


def test_an_environment_never_changed_follows_the_default_one(greeter: SqlRegistry) -> None:
    staging = greeter.get_route("greeter", environment=STAGING)
    production = greeter.get_route("greeter")
    assert production.environment == DEFAULT_ENVIRONMENT
    assert (staging.environment, staging.stable_version, staging.state) == (STAGING, 1, RolloutState.IDLE)
    assert staging.revision == production.revision
    assert [r.environment for r in greeter.list_routes(environment=STAGING)] == [STAGING]
    assert greeter.history("greeter", environment=STAGING) == []


def test_flags_revisions_and_audit_trails_are_independent(greeter: SqlRegistry) -> None:
    staged = greeter.start_rollout("greeter", 2, actor="ana", environment=STAGING, principal="ana")
    assert (staged.environment, staged.canary_version, staged.revision) == (STAGING, 2, 2)
    assert greeter.get_route("greeter").state is RolloutState.IDLE  # production untouched
    live = greeter.start_rollout("greeter", 3, actor="bob", principal="bob")
    assert (live.environment, live.canary_version, live.revision) == (DEFAULT_ENVIRONMENT, 3, 2)

    promoted = greeter.transition(
        "greeter", Action.PROMOTE, actor="ana", reason="good", environment=STAGING, principal="ana"
    )
    assert (promoted.stable_version, promoted.revision) == (2, 3)
    assert greeter.get_route("greeter").canary_version == 3  # still ramping in production

    staging_trail = greeter.history("greeter", environment=STAGING)
    assert [(r.action, r.environment, r.principal) for r in staging_trail] == [
        (Action.START, STAGING, "ana"),
        (Action.PROMOTE, STAGING, "ana"),
    ]
    assert [(r.action, r.principal) for r in greeter.history("greeter")] == [(Action.START, "bob")]
    assert greeter.get_rollout("greeter", environment=STAGING).environment == STAGING
    assert greeter.get_rollout("greeter").candidate_version == 3


def test_compare_and_set_is_per_environment(greeter: SqlRegistry) -> None:
    greeter.start_rollout("greeter", 2, actor="ana", environment=STAGING)  # staging at revision 2
    with pytest.raises(RevisionMismatchError, match="in staging is at revision 2, not 1"):
        greeter.transition(
            "greeter", Action.PAUSE, actor="ana", reason="x", environment=STAGING, expected_revision=1
        )
    # Production's flag is still at revision 1: the same expectation holds there.
    route = greeter.start_rollout("greeter", 2, actor="ana", expected_revision=1)
    assert route.revision == 2


def test_a_following_flag_whose_default_moved_is_written_from_the_new_one(greeter: SqlRegistry) -> None:
    seen = greeter.get_route("greeter", environment=STAGING)
    greeter.start_rollout("greeter", 2, actor="ana")
    greeter.transition("greeter", Action.PROMOTE, actor="ana", reason="ok")
    # The staging flag follows production: it moved too, and a start on the old revision is refused.
    assert greeter.get_route("greeter", environment=STAGING).stable_version == 2
    with pytest.raises(RevisionMismatchError):
        greeter.start_rollout("greeter", 3, actor="ana", environment=STAGING, expected_revision=seen.revision)
    assert greeter.history("greeter", environment=STAGING) == []


def test_promotion_takes_the_version_stable_in_the_previous_environment(greeter: SqlRegistry) -> None:
    greeter.start_rollout("greeter", 3, actor="ana", environment=STAGING)
    greeter.transition("greeter", Action.PROMOTE, actor="ana", reason="ok", environment=STAGING)
    route = start_rollout(
        greeter,
        "greeter",
        None,
        actor="ana",
        reason="ship it",
        from_environment=STAGING,
        environments=(STAGING, DEFAULT_ENVIRONMENT),
        principal="ana",
    )
    assert (route.environment, route.canary_version) == (DEFAULT_ENVIRONMENT, 3)
    record = greeter.history("greeter")[-1]
    assert record.principal == "ana"
    assert "promoted from staging, where version 3 is stable" in record.reason
    assert isinstance(record.evidence, dict)
    assert record.evidence["promotion"] == {"from_environment": STAGING, "version": 3, "revision": 3}


@pytest.mark.parametrize(
    ("environment", "from_environment", "message"),
    [
        (STAGING, DEFAULT_ENVIRONMENT, "staging is promoted into from no environment"),
        (DEFAULT_ENVIRONMENT, "qa", "unknown environment 'qa' to promote from"),
    ],
)
def test_promotion_out_of_order_is_refused_with_nothing_changed(
    greeter: SqlRegistry, environment: str, from_environment: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        start_rollout(
            greeter,
            "greeter",
            None,
            actor="ana",
            reason="x",
            environment=environment,
            from_environment=from_environment,
            environments=(STAGING, DEFAULT_ENVIRONMENT),
        )
    assert greeter.history("greeter") == [] and greeter.history("greeter", environment=STAGING) == []


def test_promoting_what_is_already_stable_is_refused(greeter: SqlRegistry) -> None:
    with pytest.raises(InvalidInputError, match="already stable in production: nothing to promote"):
        start_rollout(greeter, "greeter", None, actor="a", reason="x", from_environment=STAGING)
    with pytest.raises(InvalidInputError, match="not the version stable in staging"):
        start_rollout(greeter, "greeter", 2, actor="a", reason="x", from_environment=STAGING)
    assert greeter.history("greeter") == []


@pytest.mark.parametrize("name", ["Staging", "", "-x", "a" * 33, "prod uction"])
def test_a_name_no_environment_can_have_is_refused(greeter: SqlRegistry, name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid environment name"):
        greeter.start_rollout("greeter", 2, actor="ana", environment=name)
    with pytest.raises(InvalidInputError, match="invalid environment name"):
        greeter.list_routes(environment=name)
    assert greeter.history("greeter") == []


def test_an_unknown_prompt_is_unknown_in_every_environment(greeter: SqlRegistry) -> None:
    with pytest.raises(NotFoundError, match="unknown prompt 'nope'"):
        greeter.get_route("nope", environment=STAGING)
