"""The registry's SQL schema and its migrations (SQLAlchemy Core; SQLite and PostgreSQL).

The schema is versioned: ``schema_version`` holds one row with the number of the last migration
applied. Opening a store applies the missing migrations in one transaction each, so a process killed
mid-upgrade leaves the previous consistent version behind. Versions and audit records are append-only,
enforced by the database itself (triggers), so that no code path, ours or an operator's, can mutate
them. The alert log is append-only too, and since version 5 its records of alerts that changed
nothing (duplicates, ignored and recorded alerts) may be deleted once old (retention, see
:mod:`otel_prompt_canary.loop.retention`); an applied alert's record, like the audit record of the
transition it made, can never be changed or deleted. Since version 7, neither can an acknowledged
drift alert (its acknowledgement is the audit of a person's decision).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    inspect,
    select,
    text,
)

from otel_prompt_canary.errors import RegistryUnavailableError
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "alert_keys",
    "alert_log",
    "audit",
    "console_sessions",
    "datasets",
    "drift_alerts",
    "drift_monitors",
    "drift_signals",
    "eval_runs",
    "live_origins",
    "live_receipts",
    "live_stats",
    "metadata",
    "migrate",
    "prompts",
    "report_receipts",
    "response_models",
    "reviews",
    "rollout_origins",
    "rollout_stats",
    "rollout_stats_by_start",
    "rollout_totals",
    "rollouts",
    "routes",
    "versions",
]

metadata = MetaData()

_DEFAULT_ENVIRONMENT = text(f"'{DEFAULT_ENVIRONMENT}'")

# BigInteger autoincrement needs a variant on SQLite, where only INTEGER PRIMARY KEY autoincrements.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

prompts = Table(
    "prompts",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

versions = Table(
    "prompt_versions",
    metadata,
    Column("name", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(80), nullable=False),
    Column("body", JSON, nullable=False),  # the PromptVersion as JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("name", "version"),
    UniqueConstraint("name", "content_hash", name="uq_prompt_versions_content"),
)

# One routing flag per environment and prompt (one environment, the default, before version 8).
routes = Table(
    "routes",
    metadata,
    Column("environment", String(32), primary_key=True, server_default=_DEFAULT_ENVIRONMENT),
    Column("prompt", String(128), ForeignKey("prompts.name"), primary_key=True),
    Column("stable_version", Integer, nullable=False),
    Column("canary_version", Integer),
    Column("canary_weight_bp", Integer, nullable=False),
    Column("rollout_id", String(64)),
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("revision", BigInteger, nullable=False),
    Column("ramp", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("rollout_id", String(64), primary_key=True),
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("baseline_version", Integer, nullable=False),
    Column("ramp", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("started_by", String(256), nullable=False),
    Column("policy", JSON),
    Column("environment", String(32), nullable=False, server_default=_DEFAULT_ENVIRONMENT),
    ForeignKeyConstraint(
        ["prompt", "candidate_version"], ["prompt_versions.name", "prompt_versions.version"]
    ),
    Index("ix_rollouts_prompt_started", "prompt", "started_at"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("rollout_id", String(64)),
    Column("action", String(16), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", JSON),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("from_revision", BigInteger),
    Column("to_revision", BigInteger, nullable=False),
    Column("stable_version", Integer, nullable=False),
    Column("canary_version", Integer),
    Column("canary_weight_bp", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("environment", String(32), nullable=False, server_default=_DEFAULT_ENVIRONMENT),
    # The principal of the credential that asked (None for the controller and records before v8).
    Column("principal", String(256)),
    Index("ix_audit_prompt_id", "prompt", "id"),
)

# -- version 2: closing the loop (alerts and reports) ----------------------------------------------

# Every alert received and what became of it (applied, duplicate, ignored, recorded). Append-only.
alert_log = Table(
    "alert_log",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(32), nullable=False),
    Column("alert_key", String(256), nullable=False),
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("rollout_id", String(256)),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("audit_id", BigInteger),
    Column("alert", JSON),
    Index("ix_alert_log_prompt_id", "prompt", "id"),
)

# One row per de-duplication key decided: the first decision of an alert wins. Since version 5,
# ``rollout_id`` is the rollout the alert was bound to (a key is kept while that rollout is active)
# and ``expires_at`` ends the window of a key that names no time (null: the key holds until pruned).
alert_keys = Table(
    "alert_keys",
    metadata,
    Column("alert_key", String(256), primary_key=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("log_id", BigInteger),
    Column("rollout_id", String(256)),
    Column("expires_at", DateTime(timezone=True)),
    Index("ix_alert_keys_decided", "decided_at"),
)

# Report ids already decided: a repeated report adds nothing. ``origin`` and ``outcome`` since
# version 4: a report of the origin that does not own its rollout is ``ignored`` (counted nowhere),
# and a retry of it is ignored again without being counted twice among the ignored.
report_receipts = Table(
    "report_receipts",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("rollout_id", String(64), ForeignKey("rollouts.rollout_id"), nullable=False),
    Column("source", String(256), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("origin", String(16)),
    Column("outcome", String(16), nullable=False, server_default="merged"),
    Index("ix_report_receipts_received", "received_at"),
)

# Merged statistics of each rollout, per window size, cohort, signal attribute and window start.
# Sums of scores may exceed 64 bits: they are decimal strings, added in Python.
rollout_stats = Table(
    "rollout_stats",
    metadata,
    Column("rollout_id", String(64), ForeignKey("rollouts.rollout_id"), nullable=False),
    Column("window_seconds", Integer, nullable=False),
    Column("cohort", String(8), nullable=False),
    Column("attribute", String(256), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("successes", BigInteger),
    Column("sum", Text),
    Column("sum_sq", Text),
    PrimaryKeyConstraint("rollout_id", "window_seconds", "cohort", "attribute", "window_start"),
)

# What the rollout controller reads of a ramp step: the windows of one rollout from a start on.
rollout_stats_by_start = Index(
    "rollout_stats_by_start", rollout_stats.c.rollout_id, rollout_stats.c.window_start
)

# Each rollout's statistics summed over all its windows, kept by every report in the same
# transaction as its windows, so that judging a rollout reads one row per cohort and attribute.
rollout_totals = Table(
    "rollout_totals",
    metadata,
    Column("rollout_id", String(64), ForeignKey("rollouts.rollout_id"), nullable=False),
    Column("cohort", String(8), nullable=False),
    Column("attribute", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("successes", BigInteger),
    Column("sum", Text),
    Column("sum_sq", Text),
    PrimaryKeyConstraint("rollout_id", "cohort", "attribute"),
)

# -- version 4: one origin per rollout ---------------------------------------------------------------

# The origin (application or collector) whose reports a rollout counts: the first that reported,
# written in the transaction of that report. The other origin's reports are counted here, not in
# the statistics, so that a person sees that both paths report the same calls.
rollout_origins = Table(
    "rollout_origins",
    metadata,
    Column("rollout_id", String(64), ForeignKey("rollouts.rollout_id"), primary_key=True),
    Column("origin", String(16), nullable=False),
    Column("first_source", String(256), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("ignored_reports", BigInteger, nullable=False, server_default="0"),
    Column("ignored_samples", BigInteger, nullable=False, server_default="0"),
    Column("last_ignored_source", String(256)),
    Column("last_ignored_at", DateTime(timezone=True)),
)

# -- version 6: drift monitoring of the live stable version (issue 14) --------------------------------

# Statistics of the calls each prompt version served with no active rollout ("live" reports, whose
# reserved rollout id is ``live:<version>``), per window size, signal attribute and window start.
live_stats = Table(
    "live_stats",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("window_seconds", Integer, nullable=False),
    Column("attribute", String(256), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("successes", BigInteger),
    Column("sum", Text),
    Column("sum_sq", Text),
    PrimaryKeyConstraint("prompt", "version", "window_seconds", "attribute", "window_start"),
    Index("ix_live_stats_start", "prompt", "version", "window_start"),
)

# The origin whose live reports count for a prompt version (the first that reported), as for rollouts.
live_origins = Table(
    "live_origins",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("first_source", String(256), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("ignored_reports", BigInteger, nullable=False, server_default="0"),
    Column("ignored_samples", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("prompt", "version"),
)

# Live report ids already decided: a repeated live report adds nothing.
live_receipts = Table(
    "live_receipts",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("prompt", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", String(256), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("origin", String(16)),
    Column("outcome", String(16), nullable=False),
    Index("ix_live_receipts_received", "received_at"),
)

# gen_ai.response.model answering each prompt version's stable traffic (live reports and the stable
# cohort of rollouts): when first and last seen, how often, and whether it is expected.
response_models = Table(
    "response_models",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("model", String(256), nullable=False),
    Column("first_window", BigInteger, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_window", BigInteger, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("accepted", Boolean, nullable=False, server_default=false()),
    PrimaryKeyConstraint("prompt", "version", "model"),
)

# The drift monitor of each prompt: the live stable version it watches, since when (Unix seconds),
# a pinned baseline period if a person chose one, and the last window it judged.
drift_monitors = Table(
    "drift_monitors",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("live_since", BigInteger, nullable=False),
    Column("pinned_from", BigInteger),
    Column("pinned_until", BigInteger),
    Column("pinned_by", String(256)),
    Column("pinned_reason", Text),
    Column("cursor", BigInteger),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Each watched signal of a prompt's live stable version: its baseline and its change detector.
drift_signals = Table(
    "drift_signals",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("attribute", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("baseline_from", BigInteger, nullable=False),
    Column("baseline", JSON),
    Column("state", JSON),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("prompt", "attribute"),
)

# Drift alerts: a detection on a signal or a response model, once per subject and baseline epoch,
# and its acknowledgement (who, when, why), which re-baselines.
drift_alerts = Table(
    "drift_alerts",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", JSON),
    Column("notified_at", DateTime(timezone=True)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(256)),
    Column("acknowledge_reason", Text),
    Column("resolved_notified_at", DateTime(timezone=True)),
    UniqueConstraint("prompt", "version", "subject_kind", "subject", "epoch", name="uq_drift_alerts_subject"),
    Index("ix_drift_alerts_prompt_id", "prompt", "id"),
)

# -- version 6 (evaluations): golden-set datasets and evaluation runs -------------------------------

# Each version of a prompt's golden-set dataset, content-addressed like prompt versions: pushing the
# same cases again stores nothing. Immutable (evaluation runs name the version they ran).
datasets = Table(
    "datasets",
    metadata,
    Column("prompt", String(128), ForeignKey("prompts.name"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(80), nullable=False),
    Column("body", JSON, nullable=False),  # the Dataset as JSON
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("prompt", "name", "version"),
    UniqueConstraint("prompt", "name", "content_hash", name="uq_datasets_content"),
)

# Each evaluation run of a prompt version on a dataset version: its counts, for lists and the gate,
# and the whole run (every case's outcome) as JSON.
eval_runs = Table(
    "eval_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("prompt", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("dataset", String(128), nullable=False),
    Column("dataset_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("cases", Integer, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("model", String(256)),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("body", JSON, nullable=False),  # the EvalRun as JSON
    ForeignKeyConstraint(["prompt", "version"], ["prompt_versions.name", "prompt_versions.version"]),
    ForeignKeyConstraint(
        ["prompt", "dataset", "dataset_version"], ["datasets.prompt", "datasets.name", "datasets.version"]
    ),
    Index("ix_eval_runs_version", "prompt", "version", "finished_at"),
)

# -- version 8: environments, principals and reviews -------------------------------------------------

# Reviews of a prompt version: an approval or a request for changes, by a principal. Append-only.
reviews = Table(
    "reviews",
    metadata,
    Column("id", _BigId, primary_key=True, autoincrement=True),
    Column("prompt", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("verdict", String(16), nullable=False),  # approve | request_changes
    Column("principal", String(256), nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["prompt", "version"], ["prompt_versions.name", "prompt_versions.version"]),
    Index("ix_reviews_prompt_version_id", "prompt", "version", "id"),
)

# -- version 9: the console's signed-in sessions ----------------------------------------------------

# One row per console session signed in: the cookie carries only the (signed) session id, whose
# SHA-256 is the key here, so the table never holds what a browser presents. Signing out sets
# ended_at; rows ended or expired are deleted (console_sessions.ConsoleSessions.prune).
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 (hex) of the session id
    Column("credential", String(64)),  # keyed fingerprint of the credential; NULL: signed in without
    Column("principal", String(256), nullable=False),
    Column("roles", String(256), nullable=False),  # comma-separated
    Column("environments", Text),  # comma-separated; NULL: every environment
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Index("ix_console_sessions_expires", "expires_at"),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

_APPEND_ONLY = ("prompt_versions", "audit")


def _v1(conn: Connection) -> None:
    """Tables, plus triggers that make versions and audit records append-only."""
    metadata.create_all(conn, tables=[prompts, versions, routes, rollouts, audit])
    if conn.dialect.name == "sqlite":
        for table in _APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                        f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                    )
                )
    elif conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE FUNCTION prompt_canary_immutable() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
            )
        )
        for table in _APPEND_ONLY:
            conn.execute(
                text(
                    f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION prompt_canary_immutable()"
                )
            )


def _v2(conn: Connection) -> None:
    """The alert log (append-only), alert de-duplication keys, report receipts and rollout statistics."""
    metadata.create_all(conn, tables=[alert_log, alert_keys, report_receipts, rollout_stats])
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER alert_log_no_{op.lower()} BEFORE {op} ON alert_log "
                    "BEGIN SELECT RAISE(ABORT, 'alert_log rows are immutable'); END"
                )
            )
    elif conn.dialect.name == "postgresql":
        # prompt_canary_immutable() exists since version 1.
        conn.execute(
            text(
                "CREATE TRIGGER alert_log_immutable BEFORE UPDATE OR DELETE ON alert_log "
                "FOR EACH ROW EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )


def _v3(conn: Connection) -> None:
    """Rollout totals, filled from the statistics already stored, and the index of windows by start."""
    rollout_stats_by_start.create(conn, checkfirst=True)
    metadata.create_all(conn, tables=[rollout_totals])
    s = rollout_stats.c
    key = (s.rollout_id, s.cohort, s.attribute)
    # Checks: exact integer sums in SQL.
    proportions = select(*key, func.sum(s.n), func.sum(s.successes)).where(s.kind == "proportion")
    totals = [
        (*where, {"kind": "proportion", "n": int(n), "successes": int(successes)})
        for *where, n, successes in conn.execute(proportions.group_by(*key))
    ]
    # Scores: decimal strings, possibly beyond 64 bits, added as Python integers, row by row.
    means: dict[tuple[str, str, str], list[int]] = {}
    scores = select(*key, s.n, s.sum, s.sum_sq).where(s.kind == "mean")
    for rollout_id, cohort, attribute, n, total, total_sq in conn.execute(
        scores, execution_options={"stream_results": True}
    ):
        acc = means.setdefault((rollout_id, cohort, attribute), [0, 0, 0])
        acc[0] += n
        acc[1] += int(total)
        acc[2] += int(total_sq)
    totals += [
        (*where, {"kind": "mean", "n": n, "sum": str(total), "sum_sq": str(total_sq)})
        for where, (n, total, total_sq) in means.items()
    ]
    for rollout_id, cohort, attribute, values in totals:
        conn.execute(
            rollout_totals.insert().values(
                rollout_id=rollout_id, cohort=cohort, attribute=attribute, **values
            )
        )


def _v4(conn: Connection) -> None:
    """Each report's origin and outcome, and each rollout's owning origin (none yet for any)."""
    # Version 2 creates report_receipts from the current table definition: a store created since
    # has the columns already, one upgraded from version 1, 2 or 3 has not.
    present = {column["name"] for column in inspect(conn).get_columns("report_receipts")}
    if "origin" not in present:
        conn.execute(text("ALTER TABLE report_receipts ADD COLUMN origin VARCHAR(16)"))
    if "outcome" not in present:
        # Every receipt before this version is of a counted report.
        conn.execute(
            text("ALTER TABLE report_receipts ADD COLUMN outcome VARCHAR(16) NOT NULL DEFAULT 'merged'")
        )
    metadata.create_all(conn, tables=[rollout_origins])


def _v5(conn: Connection) -> None:
    """Retention: what each alert key is bound to and when it expires, the indexes pruning reads,
    and an alert log whose records of alerts that changed nothing may be deleted."""
    # Version 2 creates alert_keys and report_receipts from the current definitions (columns and
    # indexes): a store created since has them already, one upgraded from an older version has not.
    inspector = inspect(conn)
    present = {column["name"] for column in inspector.get_columns("alert_keys")}
    if "rollout_id" not in present:
        conn.execute(text("ALTER TABLE alert_keys ADD COLUMN rollout_id VARCHAR(256)"))
        stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        conn.execute(text(f"ALTER TABLE alert_keys ADD COLUMN expires_at {stamp}"))
        # Every key decided so far names the rollout its alert was bound to in the log.
        conn.execute(
            text(
                "UPDATE alert_keys SET rollout_id = "
                "(SELECT alert_log.rollout_id FROM alert_log WHERE alert_log.id = alert_keys.log_id)"
            )
        )
    for table in (alert_keys, report_receipts):
        existing = {index["name"] for index in inspect(conn).get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in existing:
                index.create(conn)
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER IF EXISTS alert_log_no_delete"))
        conn.execute(text("DROP TRIGGER IF EXISTS alert_log_keep_applied"))
        conn.execute(
            text(
                "CREATE TRIGGER alert_log_keep_applied BEFORE DELETE ON alert_log "
                "WHEN OLD.outcome = 'applied' "
                "BEGIN SELECT RAISE(ABORT, 'applied alert_log rows are immutable'); END"
            )
        )
    elif conn.dialect.name == "postgresql":
        for trigger in ("alert_log_immutable", "alert_log_no_update", "alert_log_keep_applied"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON alert_log"))
        conn.execute(
            text(
                "CREATE TRIGGER alert_log_no_update BEFORE UPDATE ON alert_log "
                "FOR EACH ROW EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER alert_log_keep_applied BEFORE DELETE ON alert_log "
                "FOR EACH ROW WHEN (OLD.outcome = 'applied') EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )


def _immutable_rows(conn: Connection, table: str) -> None:
    """Triggers that refuse any UPDATE or DELETE of ``table``'s rows (as version 1 does for versions)."""
    if conn.dialect.name == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(
                text(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
                )
            )
    elif conn.dialect.name == "postgresql":
        # prompt_canary_immutable() exists since version 1.
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )


def _v6(conn: Connection) -> None:
    """Drift monitoring: live statistics and their receipts and origins, response models, and each
    prompt's drift monitor, signal detectors and alerts. Evaluations: golden-set datasets
    (immutable) and evaluation runs."""
    metadata.create_all(
        conn,
        tables=[
            live_stats,
            live_origins,
            live_receipts,
            response_models,
            drift_monitors,
            drift_signals,
            drift_alerts,
            datasets,
            eval_runs,
        ],
    )
    _immutable_rows(conn, "datasets")


def _v7(conn: Connection) -> None:
    """Retention of drift alerts: an acknowledged alert records who, when and why, so the database
    refuses to delete it or to change its acknowledgement (others may be pruned once old)."""
    changed = ("acknowledged_at", "acknowledged_by", "acknowledge_reason")
    if conn.dialect.name == "sqlite":
        conn.execute(
            text(
                "CREATE TRIGGER drift_alerts_keep_acknowledged BEFORE DELETE ON drift_alerts "
                "WHEN OLD.acknowledged_at IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'acknowledged drift_alerts rows are immutable'); END"
            )
        )
        differs = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in changed)
        conn.execute(
            text(
                "CREATE TRIGGER drift_alerts_acknowledged_once BEFORE UPDATE ON drift_alerts "
                f"WHEN OLD.acknowledged_at IS NOT NULL AND ({differs}) "
                "BEGIN SELECT RAISE(ABORT, 'acknowledged drift_alerts rows are immutable'); END"
            )
        )
    elif conn.dialect.name == "postgresql":
        # prompt_canary_immutable() exists since version 1.
        conn.execute(
            text(
                "CREATE TRIGGER drift_alerts_keep_acknowledged BEFORE DELETE ON drift_alerts "
                "FOR EACH ROW WHEN (OLD.acknowledged_at IS NOT NULL) "
                "EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )
        differs = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in changed)
        conn.execute(
            text(
                "CREATE TRIGGER drift_alerts_acknowledged_once BEFORE UPDATE ON drift_alerts "
                f"FOR EACH ROW WHEN (OLD.acknowledged_at IS NOT NULL AND ({differs})) "
                "EXECUTE FUNCTION prompt_canary_immutable()"
            )
        )


def _v8(conn: Connection) -> None:
    """Environments: each routing flag, rollout and audit record belongs to one (every existing one
    to the default environment); audit records name the principal that asked; reviews of versions."""
    inspector = inspect(conn)
    # Version 1 creates routes, rollouts and audit from the current definitions: a store created
    # since has the columns already, one upgraded from an older version has not.
    if "environment" not in {column["name"] for column in inspector.get_columns("routes")}:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text(
                    "ALTER TABLE routes ADD COLUMN environment VARCHAR(32) NOT NULL "
                    f"DEFAULT '{DEFAULT_ENVIRONMENT}'"
                )
            )
            conn.execute(text("ALTER TABLE routes DROP CONSTRAINT routes_pkey"))
            conn.execute(text("ALTER TABLE routes ADD PRIMARY KEY (environment, prompt)"))
        else:
            # SQLite cannot change a primary key: the table is rebuilt under its name.
            conn.execute(text("ALTER TABLE routes RENAME TO routes_before_v8"))
            metadata.create_all(conn, tables=[routes])
            kept = ", ".join(c.name for c in routes.columns if c.name != "environment")
            conn.execute(
                text(
                    f"INSERT INTO routes (environment, {kept}) "
                    f"SELECT '{DEFAULT_ENVIRONMENT}', {kept} FROM routes_before_v8"
                )
            )
            conn.execute(text("DROP TABLE routes_before_v8"))
    for table, columns in (
        ("rollouts", {"environment": f"VARCHAR(32) NOT NULL DEFAULT '{DEFAULT_ENVIRONMENT}'"}),
        (
            "audit",
            {
                "environment": f"VARCHAR(32) NOT NULL DEFAULT '{DEFAULT_ENVIRONMENT}'",
                "principal": "VARCHAR(256)",
            },
        ),
    ):
        present = {column["name"] for column in inspector.get_columns(table)}
        for name, definition in columns.items():
            if name not in present:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {definition}"))
    metadata.create_all(conn, tables=[reviews])
    _immutable_rows(conn, "reviews")


def _v9(conn: Connection) -> None:
    """The console's sessions, kept by the control plane so that signing out ends one on every replica."""
    metadata.create_all(conn, tables=[console_sessions])


#: Migration ``i`` (0-based) brings the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9)
SCHEMA_VERSION = len(MIGRATIONS)


def _lock(conn: Connection) -> None:
    # PostgreSQL: serialise migrations across processes (SQLite's BEGIN IMMEDIATE already does).
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(7226405161)"))


def migrate(engine: Engine) -> None:
    """Bring the schema behind ``engine`` to :data:`SCHEMA_VERSION`, one transaction per migration."""
    with engine.begin() as conn:
        _lock(conn)
        metadata.create_all(conn, tables=[schema_version])
        current = conn.execute(select(schema_version.c.version)).scalar()
        if current is None:
            conn.execute(schema_version.insert().values(version=0))
            current = 0
    if current > SCHEMA_VERSION:
        raise RegistryUnavailableError(
            f"the registry schema is at version {current}, newer than this release supports "
            f"({SCHEMA_VERSION}); upgrade otel-prompt-canary"
        )
    for number in range(current, SCHEMA_VERSION):
        with engine.begin() as conn:
            _lock(conn)
            # Another process may have migrated meanwhile: re-read under the lock.
            if conn.execute(select(schema_version.c.version)).scalar_one() != number:
                continue
            MIGRATIONS[number](conn)
            conn.execute(schema_version.update().values(version=number + 1))
