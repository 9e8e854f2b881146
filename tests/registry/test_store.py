"""The store suite: runs on SQLite and on a real PostgreSQL (see ``store_target`` in conftest)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from otel_prompt_canary.errors import (
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    RevisionMismatchError,
    TooLargeError,
)
from otel_prompt_canary.registry import (
    Action,
    PromptSpec,
    RolloutState,
    SqlRegistry,
    open_store,
)
from otel_prompt_canary.registry.schema import SCHEMA_VERSION


def spec(text_: str = "You are a support agent. Answer in JSON.", **kw: object) -> PromptSpec:
    return PromptSpec.model_validate({"name": "support", "template": text_, **kw})


def run_together(count: int, race: Callable[[int], object]) -> None:
    """Run ``race(0)`` ... ``race(count - 1)`` on threads of their own and wait for all of them."""
    threads = [threading.Thread(target=race, args=(i,)) for i in range(count)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def two_versions(reg: SqlRegistry) -> None:
    reg.push(spec())
    reg.push(spec("You are a friendly support agent. Answer in JSON."))


# -- versions ------------------------------------------------------------------------------------


def test_first_push_creates_version_one_and_a_stable_route(registry: SqlRegistry) -> None:
    result = registry.push(spec(), author="ana")
    assert result.created
    assert result.version.version == 1
    assert result.version.author == "ana"
    route = registry.get_route("support")
    assert (route.stable_version, route.state, route.revision) == (1, RolloutState.IDLE, 1)
    assert route.canary_version is None and route.canary_weight_bp == 0


def test_identical_content_returns_the_existing_version(registry: SqlRegistry) -> None:
    first = registry.push(spec(commit_message="one"))
    again = registry.push(spec(commit_message="another message, same content"))
    assert not again.created
    assert again.version == first.version
    assert [v.version for v in registry.list_versions("support")] == [1]


def test_any_behavioural_change_makes_a_new_version(registry: SqlRegistry) -> None:
    registry.push(spec())
    assert registry.push(spec(config={"temperature": 0.3})).version.version == 2
    assert registry.push(spec(model="gpt-x")).version.version == 3
    assert registry.push(spec(environment={"rag_index_id": "idx-7"})).version.version == 4
    assert registry.push(spec(tools=[{"name": "lookup"}])).version.version == 5
    hashes = {v.content_hash for v in registry.list_versions("support")}
    assert len(hashes) == 5


def test_concurrent_pushes_of_one_content_store_one_version(registry: SqlRegistry) -> None:
    results = []

    def push() -> None:
        results.append(registry.push(spec("Concurrent content.")))

    threads = [threading.Thread(target=push) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(r.created for r in results) == 1
    assert {r.version.version for r in results} == {1}


def test_concurrent_pushes_of_distinct_content_number_versions_densely(registry: SqlRegistry) -> None:
    def push(i: int) -> None:
        registry.push(spec(f"Variant {i}."))

    threads = [threading.Thread(target=push, args=(i,)) for i in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert [v.version for v in registry.list_versions("support")] == list(range(1, 13))


def test_versions_are_immutable_in_the_database(registry: SqlRegistry) -> None:
    registry.push(spec())
    engine = registry.database.engine
    for statement in ("UPDATE prompt_versions SET content_hash = 'x'", "DELETE FROM prompt_versions"):
        with pytest.raises(SQLAlchemyError, match="immutable"), engine.begin() as conn:
            conn.execute(text(statement))
    assert registry.get_version("support", 1).content_hash.startswith("sha256:")


def test_audit_records_are_append_only(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.start_rollout("support", 2, actor="ana")
    with pytest.raises(SQLAlchemyError, match="immutable"), registry.database.engine.begin() as conn:
        conn.execute(text("UPDATE audit SET reason = 'rewritten'"))
    with pytest.raises(SQLAlchemyError, match="immutable"), registry.database.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit"))
    assert len(registry.history("support")) == 1


def test_no_public_method_mutates_a_version(registry: SqlRegistry) -> None:
    public = {name for name in dir(registry) if not name.startswith("_")}
    assert not {n for n in public if any(w in n for w in ("update", "delete", "edit", "set_", "remove"))}


def test_template_over_the_limit_is_refused_without_a_write(store_target: str) -> None:
    reg = open_store(store_target, max_template_bytes=64)
    try:
        with pytest.raises(TooLargeError, match="over the limit of 64"):
            reg.push(spec("x" * 65))
        assert reg.list_prompts() == []
    finally:
        reg.close()


def test_unknown_prompts_and_versions(registry: SqlRegistry) -> None:
    with pytest.raises(NotFoundError, match="unknown prompt 'nope'"):
        registry.get_version("nope")
    registry.push(spec())
    with pytest.raises(NotFoundError, match="has no version 9"):
        registry.get_version("support", 9)
    with pytest.raises(NotFoundError):
        registry.get_route("nope")
    with pytest.raises(NotFoundError):
        registry.history("nope")
    with pytest.raises(NotFoundError, match="never had a rollout"):
        registry.get_rollout("support")


@pytest.mark.parametrize("name", ["", " ", "a b", "-lead", "x" * 129, "slash/name", "é"])
def test_invalid_names_are_refused(registry: SqlRegistry, name: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid prompt name"):
        registry.get_version(name)


def test_latest_version_and_listing(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.push(PromptSpec(name="billing", messages=[{"role": "system", "content": "Bill."}]))
    assert registry.get_version("support").version == 2
    summaries = registry.list_prompts()
    assert [(s.name, s.latest_version, s.versions) for s in summaries] == [
        ("billing", 1, 1),
        ("support", 2, 2),
    ]
    assert [r.prompt for r in registry.list_routes()] == ["billing", "support"]


def test_diff_between_stored_versions(registry: SqlRegistry) -> None:
    two_versions(registry)
    d = registry.diff("support", 1, 2)
    assert d.blast_radius == "system"
    assert "-You are a support agent" in d.template_diff
    assert "+You are a friendly support agent" in d.template_diff


# -- rollouts ------------------------------------------------------------------------------------


def test_full_ramp_to_promotion(registry: SqlRegistry) -> None:
    two_versions(registry)
    route = registry.start_rollout("support", 2, actor="ana", reason="new tone")
    assert (route.state, route.canary_version, route.canary_weight_bp, route.step) == ("ramping", 2, 100, 0)
    weights = [route.canary_weight_bp]
    for _ in range(4):
        route = registry.transition("support", Action.ADVANCE, actor="ctl", reason="healthy")
        weights.append(route.canary_weight_bp)
    assert weights == [100, 500, 2000, 5000, 10000]
    with pytest.raises(IllegalTransitionError, match="last ramp step"):
        registry.transition("support", Action.ADVANCE, actor="ctl", reason="again")
    route = registry.transition("support", Action.PROMOTE, actor="ctl", reason="done")
    assert (route.state, route.stable_version, route.canary_version, route.canary_weight_bp) == (
        "promoted",
        2,
        None,
        0,
    )
    rollout = registry.get_rollout("support")
    assert rollout.state == "promoted" and rollout.ended_at is not None and rollout.baseline_version == 1
    assert [r.to_revision for r in registry.history("support")] == [2, 3, 4, 5, 6, 7]


# Each state reached from a fresh prompt with two versions, by these actions.
REACH = {
    "idle": [],
    "ramping": ["start"],
    "paused": ["start", "pause"],
    "promoted": ["start", "promote"],
    "rolled_back": ["start", "rollback"],
}
LEGAL = {
    "idle": {"start"},
    "ramping": {"advance", "pause", "promote", "rollback"},
    "paused": {"resume", "promote", "rollback"},
    "promoted": {"start", "revert"},
    "rolled_back": {"start"},
}
TARGET = {
    "start": "ramping",
    "advance": "ramping",
    "pause": "paused",
    "resume": "ramping",
    "promote": "promoted",
    "rollback": "rolled_back",
    "revert": "rolled_back",
}


def _act(reg: SqlRegistry, action: str) -> object:
    if action == "start":
        stable = reg.get_route("support").stable_version
        return reg.start_rollout("support", 1 if stable == 2 else 2, actor="t", reason="r")
    return reg.transition("support", Action(action), actor="t", reason="r")


@pytest.mark.parametrize("state", list(REACH))
@pytest.mark.parametrize("action", [a.value for a in Action])
def test_every_transition_is_legal_or_refused(registry: SqlRegistry, state: str, action: str) -> None:
    two_versions(registry)
    for step in REACH[state]:
        _act(registry, step)
    before = registry.get_route("support")
    audit_before = len(registry.history("support"))
    assert before.state == state
    if action in LEGAL[state]:
        after = _act(registry, action)
        assert getattr(after, "state") == TARGET[action]  # noqa: B009
        assert getattr(after, "revision") == before.revision + 1  # noqa: B009
        assert len(registry.history("support")) == audit_before + 1
    else:
        with pytest.raises(IllegalTransitionError):
            _act(registry, action)
        assert registry.get_route("support") == before
        assert len(registry.history("support")) == audit_before


def test_revert_routes_everyone_back_to_the_promoted_rollouts_baseline(registry: SqlRegistry) -> None:
    two_versions(registry)
    started = registry.start_rollout("support", 2, actor="ana", reason="new tone")
    promoted = registry.transition("support", Action.PROMOTE, actor="ctl", reason="healthy")
    back = registry.transition("support", Action.REVERT, actor="oncall", reason="complaints after 100%")
    assert (back.state, back.stable_version, back.canary_version, back.canary_weight_bp) == (
        "rolled_back",
        1,
        None,
        0,
    )
    # The promoted rollout is the one rolled back: routers that saw it promoted now see it rolled back.
    assert (back.rollout_id, back.revision) == (started.rollout_id, promoted.revision + 1)
    assert registry.get_rollout("support").state == "rolled_back"
    record = registry.history("support")[-1]
    assert (record.action, record.actor, record.reason) == ("revert", "oncall", "complaints after 100%")
    assert (record.from_state, record.to_state, record.from_revision, record.to_revision) == (
        "promoted",
        "rolled_back",
        promoted.revision,
        back.revision,
    )
    assert (record.stable_version, record.canary_version) == (1, None)
    assert record.evidence == {"from_version": 2, "to_version": 1}
    # A reverted candidate comes back only through a new rollout.
    again = registry.start_rollout("support", 2, actor="ana", reason="fixed")
    assert again.rollout_id != started.rollout_id and again.stable_version == 1


def test_revert_to_a_named_version_keeps_the_callers_evidence(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.push(spec("You are a terse support agent. Answer in JSON."))
    for version in (2, 3):
        registry.start_rollout("support", version, actor="t", reason="r")
        registry.transition("support", Action.PROMOTE, actor="t", reason="r")
    assert registry.get_rollout("support").baseline_version == 2
    back = registry.transition(
        "support", Action.REVERT, actor="t", reason="both were bad", evidence={"ticket": 42}, to_version=1
    )
    assert (back.state, back.stable_version) == ("rolled_back", 1)
    assert registry.history("support")[-1].evidence == {
        "from_version": 3,
        "to_version": 1,
        "evidence": {"ticket": 42},
    }


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            "idle",
            "its rollout is idle (revision 1); revert is allowed from: promoted "
            "(no rollout was ever promoted)",
        ),
        (
            "ramping",
            "its rollout is ramping (revision 2); revert is allowed from: promoted "
            "(an active rollout is undone with rollback)",
        ),
        (
            "paused",
            "its rollout is paused (revision 3); revert is allowed from: promoted "
            "(an active rollout is undone with rollback)",
        ),
        (
            "rolled_back",
            "its rollout is rolled_back (revision 3); revert is allowed from: promoted "
            "(there is no promotion to undo; start a rollout to change the stable version)",
        ),
    ],
)
def test_revert_is_refused_where_there_is_no_promotion_to_undo(
    registry: SqlRegistry, state: str, message: str
) -> None:
    two_versions(registry)
    for step in REACH[state]:
        _act(registry, step)
    before = registry.get_route("support")
    with pytest.raises(IllegalTransitionError) as refused:
        # The state is checked first: a version that does not exist changes nothing to the answer.
        registry.transition("support", Action.REVERT, actor="t", reason="r", to_version=9)
    assert str(refused.value) == "cannot revert prompt 'support': " + message
    assert registry.get_route("support") == before
    assert len(registry.history("support")) == len(REACH[state])


def test_revert_validates_its_version_before_writing(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.start_rollout("support", 2, actor="t", reason="r")
    promoted = registry.transition("support", Action.PROMOTE, actor="t", reason="r")
    with pytest.raises(NotFoundError, match=r"^prompt 'support' has no version 9$"):
        registry.transition("support", Action.REVERT, actor="t", reason="r", to_version=9)
    with pytest.raises(InvalidInputError, match=r"^version 2 of 'support' is already the stable version"):
        registry.transition("support", Action.REVERT, actor="t", reason="r", to_version=2)
    with pytest.raises(InvalidInputError, match="reason is required to revert"):
        registry.transition("support", Action.REVERT, actor="t", reason=" ")
    with pytest.raises(RevisionMismatchError):
        registry.transition("support", Action.REVERT, actor="t", reason="r", expected_revision=1)
    assert registry.get_route("support") == promoted
    assert len(registry.history("support")) == 2


def test_a_version_to_go_back_to_is_for_revert_only(registry: SqlRegistry) -> None:
    two_versions(registry)
    route = registry.start_rollout("support", 2, actor="t", reason="r")
    with pytest.raises(InvalidInputError, match="applies to revert only, not to rollback"):
        registry.transition("support", Action.ROLLBACK, actor="t", reason="r", to_version=1)
    assert registry.get_route("support") == route


def test_concurrent_revert_and_start_apply_exactly_one(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.push(spec("You are a terse support agent. Answer in JSON."))
    registry.start_rollout("support", 2, actor="t", reason="r")
    promoted = registry.transition("support", Action.PROMOTE, actor="t", reason="r")
    barrier = threading.Barrier(20)
    outcomes: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                registry.transition(
                    "support",
                    Action.REVERT,
                    actor=f"w{i}",
                    reason="race",
                    expected_revision=promoted.revision,
                )
                outcomes.append("revert")
            else:
                registry.start_rollout(
                    "support", 3, actor=f"w{i}", reason="race", expected_revision=promoted.revision
                )
                outcomes.append("start")
        except RevisionMismatchError:
            outcomes.append("refused")

    run_together(20, race)
    counts = Counter(outcomes)
    assert counts["refused"] == 19 and counts["start"] + counts["revert"] == 1
    history = registry.history("support")
    assert [h.action for h in history] == ["start", "promote", "start" if counts["start"] else "revert"]
    route = registry.get_route("support")
    assert route.revision == promoted.revision + 1
    if counts["start"]:
        assert (route.state, route.stable_version, route.canary_version) == ("ramping", 2, 3)
    else:
        assert (route.state, route.stable_version, route.canary_version) == ("rolled_back", 1, None)


def test_without_a_revision_a_start_that_lost_to_a_revert_starts_from_the_reverted_state(
    registry: SqlRegistry,
) -> None:
    # Without compare-and-set the loser re-reads and re-validates: a revert after a start is refused
    # (the rollout is active), a start after a revert starts against the version reverted to.
    two_versions(registry)
    registry.push(spec("You are a terse support agent. Answer in JSON."))
    registry.start_rollout("support", 2, actor="t", reason="r")
    registry.transition("support", Action.PROMOTE, actor="t", reason="r")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def revert() -> None:
        barrier.wait()
        try:
            registry.transition("support", Action.REVERT, actor="a", reason="race")
            outcomes["revert"] = "applied"
        except IllegalTransitionError:
            outcomes["revert"] = "refused"

    def start() -> None:
        barrier.wait()
        registry.start_rollout("support", 3, actor="b", reason="race")
        outcomes["start"] = "applied"

    run_together(2, lambda i: (revert, start)[i]())
    history = registry.history("support")
    assert [(h.from_revision, h.to_revision) for h in history] == [(1, 2), (2, 3), (3, 4)] + (
        [(4, 5)] if outcomes["revert"] == "applied" else []
    )
    route = registry.get_route("support")
    assert (route.state, route.canary_version) == ("ramping", 3)
    assert route.stable_version == (1 if history[2].action == "revert" else 2)


def test_pause_holds_weight_and_resume_continues(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.start_rollout("support", 2, actor="t", ramp=(10, 100))
    paused = registry.transition("support", Action.PAUSE, actor="t", reason="look")
    assert (paused.state, paused.canary_weight_bp) == ("paused", 1000)
    resumed = registry.transition("support", Action.RESUME, actor="t", reason="fine")
    assert (resumed.state, resumed.step, resumed.canary_weight_bp) == ("ramping", 0, 1000)


def test_rolled_back_candidate_needs_a_new_rollout(registry: SqlRegistry) -> None:
    two_versions(registry)
    first = registry.start_rollout("support", 2, actor="t")
    back = registry.transition("support", Action.ROLLBACK, actor="t", reason="json broke")
    assert (back.canary_version, back.canary_weight_bp, back.rollout_id) == (None, 0, first.rollout_id)
    for action in (Action.RESUME, Action.ADVANCE, Action.PROMOTE):
        with pytest.raises(IllegalTransitionError):
            registry.transition("support", action, actor="t", reason="sneak it back")
    again = registry.start_rollout("support", 2, actor="t", reason="fixed upstream")
    assert again.rollout_id != first.rollout_id
    assert registry.get_rollout("support", first.rollout_id).state == "rolled_back"


def test_start_validates_before_writing(registry: SqlRegistry) -> None:
    two_versions(registry)
    before = registry.get_route("support")
    with pytest.raises(InvalidInputError, match="already the stable version"):
        registry.start_rollout("support", 1, actor="t")
    with pytest.raises(NotFoundError, match="no version 7"):
        registry.start_rollout("support", 7, actor="t")
    for ramp in ((5, 1, 100), (0, 100), (50, 101), (10, 50), ()):
        with pytest.raises(InvalidInputError, match="invalid ramp"):
            registry.start_rollout("support", 2, actor="t", ramp=ramp)
    with pytest.raises(InvalidInputError, match="actor"):
        registry.start_rollout("support", 2, actor=" ")
    assert registry.get_route("support") == before
    assert registry.history("support") == []


def test_compare_and_set_on_revision(registry: SqlRegistry) -> None:
    two_versions(registry)
    route = registry.start_rollout("support", 2, actor="t", expected_revision=1)
    with pytest.raises(RevisionMismatchError, match="revision 2, not 1"):
        registry.transition("support", Action.PAUSE, actor="t", reason="r", expected_revision=1)
    assert registry.get_route("support") == route
    registry.transition("support", Action.PAUSE, actor="t", reason="r", expected_revision=2)


def test_transition_bound_to_a_rollout_id(registry: SqlRegistry) -> None:
    two_versions(registry)
    route = registry.start_rollout("support", 2, actor="t")
    with pytest.raises(ConflictError, match="not the current rollout"):
        registry.transition("support", Action.ROLLBACK, actor="t", reason="r", rollout_id="old")
    registry.transition("support", Action.ROLLBACK, actor="t", reason="r", rollout_id=route.rollout_id)


def test_reason_is_required(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.start_rollout("support", 2, actor="t")
    with pytest.raises(InvalidInputError, match="reason is required"):
        registry.transition("support", Action.ROLLBACK, actor="t", reason="  ")


def test_audit_records_carry_actor_reason_and_evidence(registry: SqlRegistry) -> None:
    two_versions(registry)
    policy = {
        "signals": [{"name": "json_valid", "kind": "proportion", "harmful": "decrease"}],
        "rules": [{"signal": "json_valid", "type": "relative", "margin": 0.01, "action": "rollback"}],
    }
    registry.start_rollout("support", 2, actor="ana", reason="try v2", policy=policy)
    evidence = {"rule": "json_valid", "canary": {"n": 400, "rate": 0.93}, "bound": 0.951}
    registry.transition("support", Action.ROLLBACK, actor="judge", reason="format breach", evidence=evidence)
    start, rollback = registry.history("support")
    assert (start.action, start.actor, start.reason, start.from_state, start.to_state) == (
        "start",
        "ana",
        "try v2",
        "idle",
        "ramping",
    )
    assert start.evidence == {"policy": policy}
    assert (rollback.action, rollback.actor, rollback.evidence) == ("rollback", "judge", evidence)
    assert (rollback.from_revision, rollback.to_revision) == (2, 3)
    assert registry.history("support", limit=1) == [rollback]


def test_racing_rollback_against_promote_applies_exactly_one(registry: SqlRegistry) -> None:
    two_versions(registry)
    registry.start_rollout("support", 2, actor="t")
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def race(i: int) -> None:
        action = Action.ROLLBACK if i % 2 else Action.PROMOTE
        barrier.wait()
        try:
            registry.transition("support", action, actor=f"w{i}", reason="race")
            outcomes.append(f"applied:{action}")
        except IllegalTransitionError:
            outcomes.append("refused")

    run_together(50, race)
    counts = Counter(outcomes)
    applied = [o for o in counts if o.startswith("applied")]
    assert len(applied) == 1 and counts[applied[0]] == 1
    assert counts["refused"] == 49
    history = registry.history("support")
    assert [h.action for h in history] == ["start", applied[0].split(":")[1]]
    route = registry.get_route("support")
    assert route.revision == 3
    assert route.state == ("promoted" if "promote" in applied[0] else "rolled_back")


def test_state_survives_reopening(store_target: str) -> None:
    reg = open_store(store_target)
    two_versions(reg)
    route = reg.start_rollout("support", 2, actor="t")
    reg.close()
    again = open_store(store_target)
    try:
        assert again.get_route("support") == route
        with again.database.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    finally:
        again.close()


def test_a_newer_schema_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    from otel_prompt_canary.errors import RegistryUnavailableError

    path = Path(str(tmp_path)) / "r.db"
    open_store(path).close()
    reg = open_store(path)
    with reg.database.engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 999"))
    reg.close()
    with pytest.raises(RegistryUnavailableError, match="newer than this release"):
        open_store(path)


def test_unsupported_targets_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unsupported registry"):
        open_store("mysql://db/x")
