"""A store written before environments (schema version 7) opens into version 8 with everything kept:
every routing flag, rollout and audit record belongs to the default environment."""

from __future__ import annotations

from sqlalchemy import inspect, select

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import Action, PromptSpec, RolloutState, SqlRegistry, open_store
from otel_prompt_canary.registry import schema as t
from tests.loop.factories import as_written_by


def _columns(registry: SqlRegistry, table: str) -> set[str]:
    with registry.database.engine.connect() as conn:
        return {column["name"] for column in inspect(conn).get_columns(table)}


def test_a_store_of_schema_7_keeps_everything_in_the_default_environment(
    registry: SqlRegistry, store_target: str
) -> None:
    for name in ("greeter", "support"):
        registry.push(PromptSpec(name=name, template=f"{name} one"))
        registry.push(PromptSpec(name=name, template=f"{name} two"))
    registry.start_rollout("greeter", 2, actor="ana", reason="try")
    registry.transition("greeter", Action.PROMOTE, actor="ana", reason="good")
    registry.start_rollout("support", 2, actor="bob", reason="try")
    routes_before = registry.list_routes()
    rollout_before = registry.get_rollout("support")
    history_before = registry.history("greeter")

    as_written_by(registry, 7)
    # What release 7 wrote: one flag per prompt, and no environment, principal or review anywhere.
    assert "environment" not in _columns(registry, "routes")
    assert "environment" not in _columns(registry, "rollouts")
    assert not {"environment", "principal"} & _columns(registry, "audit")
    with registry.database.engine.connect() as conn:
        assert not inspect(conn).has_table("reviews")
        assert conn.execute(select(t.schema_version.c.version)).scalar() == 7
    registry.close()

    with open_store(store_target) as reopened:
        with reopened.database.engine.connect() as conn:
            assert conn.execute(select(t.schema_version.c.version)).scalar() == t.SCHEMA_VERSION
            assert inspect(conn).has_table("reviews")
        assert reopened.list_routes() == routes_before
        assert all(route.environment == DEFAULT_ENVIRONMENT for route in reopened.list_routes())
        assert reopened.get_rollout("support") == rollout_before
        assert rollout_before.environment == DEFAULT_ENVIRONMENT
        history = reopened.history("greeter")
        assert history == history_before
        assert {(r.environment, r.principal) for r in history} == {(DEFAULT_ENVIRONMENT, None)}
        # The migrated flags move on, and a new environment starts from them.
        after = reopened.transition("support", Action.ROLLBACK, actor="bob", reason="bad")
        assert (after.state, after.revision) == (RolloutState.ROLLED_BACK, routes_before[1].revision + 1)
        staging = reopened.get_route("greeter", environment="staging")
        assert (staging.stable_version, staging.state) == (2, RolloutState.IDLE)
        started = reopened.start_rollout("greeter", 1, actor="ana", environment="staging")
        assert started.environment == "staging"
        assert reopened.get_route("greeter").state is RolloutState.PROMOTED
