"""Test data of the loop suite: a policy whose ramp the rollout controller walks in seconds, a
rollout to report statistics of, samples to feed a controller, and a store put back as an older
release wrote it. The ``store`` fixture (two versions of ``greeter``) is in conftest.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from otel_prompt_canary.loop import RolloutController, start_rollout
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.registry import schema as t

__all__ = ["CHECK", "FAST_RAMP_POLICY", "T0", "as_written_by", "feed", "start", "support_rollout"]

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


def as_written_by(registry: SqlRegistry, version: int) -> None:
    """Undo the migrations after schema ``version``: the store is then as that release wrote it."""
    postgres = registry.database.dialect == "postgresql"
    with registry.database.engine.begin() as conn:
        if version < 9:
            t.console_sessions.drop(conn)
        if version < 8:
            t.reviews.drop(conn)
            _one_environment(conn, postgres)
        if version < 7:
            on = " ON drift_alerts" if postgres else ""
            for trigger in ("drift_alerts_keep_acknowledged", "drift_alerts_acknowledged_once"):
                conn.execute(text(f"DROP TRIGGER {trigger}{on}"))
        if version < 6:
            later = [
                t.live_stats, t.live_origins, t.live_receipts, t.response_models, t.drift_monitors,
                t.drift_signals, t.drift_alerts, t.datasets, t.eval_runs,
            ]  # fmt: skip
            t.metadata.drop_all(conn, tables=later)
        if version < 5:
            conn.execute(text("DROP INDEX ix_alert_keys_decided"))
            conn.execute(text("DROP INDEX ix_report_receipts_received"))
            conn.execute(text("ALTER TABLE alert_keys DROP COLUMN expires_at"))
            conn.execute(text("ALTER TABLE alert_keys DROP COLUMN rollout_id"))
            if postgres:
                conn.execute(text("DROP TRIGGER alert_log_no_update ON alert_log"))
                conn.execute(text("DROP TRIGGER alert_log_keep_applied ON alert_log"))
                conn.execute(
                    text(
                        "CREATE TRIGGER alert_log_immutable BEFORE UPDATE OR DELETE ON alert_log "
                        "FOR EACH ROW EXECUTE FUNCTION prompt_canary_immutable()"
                    )
                )
            else:
                conn.execute(text("DROP TRIGGER alert_log_keep_applied"))
                conn.execute(
                    text(
                        "CREATE TRIGGER alert_log_no_delete BEFORE DELETE ON alert_log "
                        "BEGIN SELECT RAISE(ABORT, 'alert_log rows are immutable'); END"
                    )
                )
        if version < 4:
            conn.execute(text("DROP TABLE rollout_origins"))
            conn.execute(text("ALTER TABLE report_receipts DROP COLUMN outcome"))
            conn.execute(text("ALTER TABLE report_receipts DROP COLUMN origin"))
        if version < 3:
            conn.execute(text("DROP TABLE rollout_totals"))
            conn.execute(text("DROP INDEX rollout_stats_by_start"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": version})


#: The routing flags as releases before environments kept them: one per prompt.
_ROUTES_V7 = """CREATE TABLE routes_v7 (
    prompt VARCHAR(128) NOT NULL PRIMARY KEY REFERENCES prompts (name),
    stable_version INTEGER NOT NULL,
    canary_version INTEGER,
    canary_weight_bp INTEGER NOT NULL,
    rollout_id VARCHAR(64),
    state VARCHAR(16) NOT NULL,
    step INTEGER NOT NULL,
    revision BIGINT NOT NULL,
    ramp JSON NOT NULL,
    updated_at DATETIME NOT NULL
)"""


def _one_environment(conn: Connection, postgres: bool) -> None:
    """Undo environments: the default environment's flags only, keyed by prompt, and no
    environment or principal on rollouts and audit records."""
    others = "DELETE FROM routes WHERE environment <> :default"
    conn.execute(text(others), {"default": DEFAULT_ENVIRONMENT})
    if postgres:
        conn.execute(text("ALTER TABLE routes DROP CONSTRAINT routes_pkey"))
        conn.execute(text("ALTER TABLE routes DROP COLUMN environment"))
        conn.execute(text("ALTER TABLE routes ADD PRIMARY KEY (prompt)"))
    else:
        conn.execute(text(_ROUTES_V7))
        kept = ", ".join(c.name for c in t.routes.columns if c.name != "environment")
        conn.execute(text(f"INSERT INTO routes_v7 ({kept}) SELECT {kept} FROM routes"))
        conn.execute(text("DROP TABLE routes"))
        conn.execute(text("ALTER TABLE routes_v7 RENAME TO routes"))
    conn.execute(text("ALTER TABLE rollouts DROP COLUMN environment"))
    conn.execute(text("ALTER TABLE audit DROP COLUMN environment"))
    conn.execute(text("ALTER TABLE audit DROP COLUMN principal"))


def start(store: SqlRegistry, policy: dict[str, Any] | None = FAST_RAMP_POLICY) -> str:
    """Start a rollout of ``greeter`` version 2 under ``policy``; its id."""
    route = start_rollout(store, "greeter", 2, policy=policy, actor="ana", reason="try")
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
