"""The registry's SQL schema and its migrations (SQLAlchemy Core; SQLite and PostgreSQL).

The schema is versioned: ``schema_version`` holds one row with the number of the last migration
applied. Opening a store applies the missing migrations in one transaction each, so a process killed
mid-upgrade leaves the previous consistent version behind. Versions and audit records are append-only,
enforced by the database itself (triggers), so that no code path, ours or an operator's, can mutate
them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
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
    func,
    inspect,
    select,
    text,
)

from otel_prompt_canary.errors import RegistryUnavailableError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "alert_keys",
    "alert_log",
    "audit",
    "metadata",
    "migrate",
    "prompts",
    "report_receipts",
    "rollout_origins",
    "rollout_stats",
    "rollout_stats_by_start",
    "rollout_totals",
    "rollouts",
    "routes",
    "versions",
]

metadata = MetaData()

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

routes = Table(
    "routes",
    metadata,
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

# One row per de-duplication key ever decided: the first decision of an alert wins.
alert_keys = Table(
    "alert_keys",
    metadata,
    Column("alert_key", String(256), primary_key=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("log_id", BigInteger),
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


#: Migration ``i`` (0-based) brings the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3, _v4)
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
