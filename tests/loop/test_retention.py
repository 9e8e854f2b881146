"""Retention: what the store prunes and what it keeps forever, on SQLite and PostgreSQL.

De-duplication ids live for their retention (the keys of a still active rollout's alerts for as long
as it runs), an alert without a start time de-duplicates for a window instead of for ever, records
of alerts that changed nothing and the windows of ended rollouts are pruned, and an applied alert's
record, like the audit trail, can be neither changed nor deleted. With 100,000 alerts the storage
per alert is bounded, and pruning lets the next 100,000 reuse the same space.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Connection, String, Table, case, cast, literal, select, text
from sqlalchemy.exc import DBAPIError

from otel_prompt_canary.analysis.stats import ProportionStats, Report
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop import AlertNotice, AlertOutcome, SqlLoopStore
from otel_prompt_canary.loop.alert_log import MAX_LOGGED_ALERT_BYTES, key_row, log_row
from otel_prompt_canary.loop.retention import DEFAULT_RETENTION, Pruner, Retention, prune
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.service.receivers.labels import PrometheusAlert, notice_of
from tests.loop.factories import CHECK, T0, as_written_by, support_rollout
from tests.support.waiting import eventually

DAY = timedelta(days=1)


def _notice(key: str, *, action: str = "rollback", prompt: str = "support", **extra: Any) -> AlertNotice:
    return AlertNotice(
        source="alertmanager",
        key=key,
        prompt=prompt,
        action=action,
        actor="alertmanager",
        reason="r",
        **extra,
    )


def _later(days: float) -> datetime:
    return utc_now() + timedelta(days=days)


def test_the_default_retention_and_how_it_is_written() -> None:
    assert str(DEFAULT_RETENTION).startswith(
        "dedup_ids=1d,untimed_alerts=1h,alert_log=30d,report_windows=30d,"
    )
    retention = Retention.parse("alert_log=forever, dedup_ids=36h")
    assert (retention.alert_log, retention.dedup_ids, retention.report_windows) == (None, 1.5 * DAY, 30 * DAY)
    assert Retention.parse(str(retention)) == retention
    assert Retention.parse("") == DEFAULT_RETENTION


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dedup_ids=10m", "dedup_ids must be at least 1h"),
        ("alert_log=soon", "invalid retention alert_log='soon': give a duration"),
        ("alert_log=0s", "invalid retention alert_log='0s'"),
        ("logs=30d", "invalid retention 'logs=30d': write NAME=DURATION"),
        ("alert_log=1d,alert_log=2d", "alert_log is given twice"),
    ],
)
def test_a_retention_that_cannot_work_is_refused(spec: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Retention.parse(spec)


def test_keys_are_pruned_after_their_retention_unless_their_rollout_still_runs(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    rollout_id = support_rollout(registry)
    registry.push(PromptSpec(name="idle", template="x"))
    paused = store.receive_alert(_notice("am:pause", action="pause"))
    ignored = store.receive_alert(_notice("am:idle", prompt="idle"))
    assert (paused.outcome, paused.rollout_id, ignored.outcome) == ("applied", rollout_id, "ignored")
    # Within the retention nothing is pruned, and a repeat is a duplicate.
    assert prune(registry, now=_later(0.5)).alert_keys == 0
    pruned = prune(registry, now=_later(2))
    assert (pruned.alert_keys, pruned.alert_log) == (1, 0)
    # The key of the paused, still active rollout is kept: after a person resumes it, a repeat of
    # the alert stays a duplicate and does not pause it again.
    registry.transition("support", Action.RESUME, actor="ana", reason="looked: fine")
    again = store.receive_alert(_notice("am:pause", action="pause"))
    assert (again.outcome, again.rollout_id) == ("duplicate", rollout_id)
    assert registry.get_route("support").state == "ramping"
    # The other key is gone: a repeat is decided again (and, asking for nothing possible, ignored).
    assert store.receive_alert(_notice("am:idle", prompt="idle")).outcome == "ignored"
    # Once the rollout has ended its keys go too.
    registry.transition("support", Action.ROLLBACK, actor="ana", reason="enough")
    assert prune(registry, now=_later(2)).alert_keys == 2


def test_an_alert_that_names_no_time_is_a_duplicate_only_within_its_window(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    support_rollout(registry)
    untimed = _notice("am:0f1e:-:firing", dedup_window_seconds=3600)
    assert store.receive_alert(untimed).outcome == "applied"
    assert registry.get_route("support").state == "rolled_back"
    registry.start_rollout("support", 2, actor="ana", reason="second try")
    # Within the window, the same alert is a duplicate of the first: it does not act on this rollout.
    assert store.receive_alert(untimed).outcome == "duplicate"
    assert registry.get_route("support").state == "ramping"
    with registry.database.engine.begin() as conn:  # an hour passes for the key
        conn.execute(t.alert_keys.update().values(expires_at=utc_now() - timedelta(seconds=1)))
    # After it, the alert is decided again: it rolls the rollout now running back, not never.
    record = store.receive_alert(untimed)
    assert (record.outcome, record.rollout_id) == ("applied", registry.get_route("support").rollout_id)
    assert registry.get_route("support").state == "rolled_back"
    # An expired window is pruned whatever the retention of ids.
    with registry.database.engine.begin() as conn:
        conn.execute(t.alert_keys.update().values(expires_at=utc_now() - timedelta(seconds=1)))
    assert prune(registry, Retention.parse("dedup_ids=forever")).alert_keys == 1


def test_the_alert_log_keeps_applied_records_and_prunes_the_rest(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    support_rollout(registry)
    applied = store.receive_alert(_notice("am:1"))
    store.receive_alert(_notice("am:1"))  # a duplicate
    store.receive_alert(_notice("am:2"))  # ignored: the rollout has ended
    assert prune(registry, now=_later(29)).alert_log == 0
    assert prune(registry, now=_later(31)).alert_log == 2
    (kept,) = store.list_alerts()
    assert (kept.id, kept.outcome) == (applied.id, "applied")
    # The audit trail and the applied record are immutable: the database itself refuses.
    for statement in (
        "DELETE FROM alert_log",
        "UPDATE alert_log SET reason = 'x'",
        "DELETE FROM audit",
        "UPDATE audit SET reason = 'x'",
    ):
        with pytest.raises(DBAPIError, match="immutable"), registry.database.engine.begin() as conn:
            conn.execute(text(statement))
    assert [r.action for r in registry.history("support")] == [Action.START, Action.ROLLBACK]


def test_a_duplicate_keeps_no_copy_and_a_huge_alert_keeps_its_digest(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    registry.push(PromptSpec(name="support", template="x"))
    big = {"annotations": {"description": "x" * (2 * MAX_LOGGED_ALERT_BYTES)}}
    first = store.receive_alert(_notice("am:big", alert=big))
    repeat = store.receive_alert(_notice("am:big", alert=big))
    assert first.alert == store.list_alerts()[0].alert
    assert isinstance(first.alert, dict) and set(first.alert) == {"omitted", "sha256"}
    assert f"over the alert log's limit of {MAX_LOGGED_ALERT_BYTES}" in str(first.alert["omitted"])
    assert (repeat.outcome, repeat.alert) == ("duplicate", None)


def test_report_windows_of_ended_rollouts_are_pruned_and_their_totals_kept(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    ended = support_rollout(registry)
    windows = {T0 + 60 * i: ProportionStats(n=10, successes=9) for i in range(50)}
    store.record_report(
        Report(rollout_id=ended, window_seconds=60, canary={CHECK: windows}),
        source="gw",
        report_id="pcr_" + "1" * 32,
    )
    totals = store.rollout_snapshot(ended)
    registry.transition("support", Action.PROMOTE, actor="ana", reason="fine")
    registry.push(PromptSpec(name="support", template="Answer {{ q }} briefly."))
    running = registry.start_rollout("support", 3, actor="ana", reason="next").rollout_id
    assert running is not None
    store.record_report(Report(rollout_id=running, window_seconds=60, canary={CHECK: windows}), source="gw")

    early = prune(registry, now=_later(29))  # the report's id is past its day, its windows are not
    assert (early.report_windows, early.report_receipts) == (0, 1)
    assert prune(registry, now=_later(31)).report_windows == 50
    assert store.rollout_reports(ended) == []
    assert store.rollout_snapshot(ended) == totals  # what judged it is still there
    assert store.rollout_snapshot(ended).canary[CHECK] == ProportionStats(n=500, successes=450)
    assert len(store.rollout_reports(running)[0].canary[CHECK]) == 50  # a running rollout keeps its own


def test_the_migration_binds_existing_keys_to_their_rollout(store_target: str) -> None:
    with open_store(store_target) as registry:
        store = SqlLoopStore(registry)
        rollout_id = support_rollout(registry)
        store.receive_alert(_notice("am:old", action="pause"))
        as_written_by(registry, 4)  # as the release before retention wrote it
    with open_store(store_target) as registry:
        with registry.database.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == t.SCHEMA_VERSION
            (row,) = conn.execute(text("SELECT alert_key, rollout_id, expires_at FROM alert_keys"))
        assert tuple(row) == ("am:old", rollout_id, None)
        store = SqlLoopStore(registry)
        assert store.receive_alert(_notice("am:old", action="pause")).outcome == "duplicate"
        assert prune(registry, now=_later(2)).alert_keys == 0  # its rollout is still active
        store.receive_alert(_notice("am:other", action="alert"))
        assert prune(registry, now=_later(31)).alert_log == 2  # the duplicate and the recorded alert
        with pytest.raises(DBAPIError, match="immutable"), registry.database.engine.begin() as conn:
            conn.execute(text("DELETE FROM alert_log"))


def test_the_pruner_prunes_in_the_background(registry: SqlRegistry) -> None:
    store = SqlLoopStore(registry)
    registry.push(PromptSpec(name="support", template="x"))
    store.receive_alert(_notice("am:1", dedup_window_seconds=3600))
    with registry.database.engine.begin() as conn:
        conn.execute(t.alert_keys.update().values(expires_at=utc_now() - timedelta(seconds=1)))
    pruner = Pruner(registry, interval_seconds=0.05, first_after_seconds=0).start()
    try:

        def keys() -> int:
            with registry.database.engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM alert_keys")).scalar_one())

        eventually(lambda: keys() == 0, what="the expired key pruned")
    finally:
        pruner.stop()


# -- storage per alert -------------------------------------------------------------------------

ALERTS = 100_000
DISTINCT = 20_000  # each alert repeated five times: Alertmanager's repeats, retries, replicas
#: Bytes per alert, the tables' indexes included: measured about 650 on SQLite and 550 on
#: PostgreSQL for this mix; the bound leaves room for either engine's page layout.
BYTES_PER_ALERT = 1000


def _alertmanager_notice() -> AlertNotice:
    """A notice as the Alertmanager receiver makes it from an ordinary alert (about 700 bytes)."""
    alert = PrometheusAlert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "CanaryJsonValidity", "prompt": "support", "action": "rollback"},
            "annotations": {
                "summary": "canary JSON validity below stable for support",
                "description": "The canary cohort's JSON validity is 93.1% against 99.2% for stable over 5m.",
            },
            "startsAt": "2026-11-27T04:21:08Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=canary_json_validity&g0.tab=1",
            "fingerprint": "0f1e2d3c4b5a6978",
        }
    )
    context = {"receiver": "prompt-canary", "group_key": "{}:{}", "external_url": "http://am.internal:9093"}
    return notice_of("alertmanager", alert, 0, context=context)


def _insert_alerts(conn: Connection, when: datetime) -> None:
    """Write what deciding :data:`ALERTS` alerts of :data:`DISTINCT` keys writes, in two statements.

    One first decision and one duplicate are made by the alert log's own row functions
    (:func:`log_row`, :func:`key_row`); the database repeats them, each with its own key, so that
    100,000 alerts take a second, not a minute of round trips.
    """
    base = _alertmanager_notice()
    first = log_row(
        base,
        received_at=when,
        rollout_id=None,
        outcome=AlertOutcome.IGNORED,
        reason="no rollout",
        audit_id=None,
    )
    repeat = log_row(
        base,
        received_at=when,
        rollout_id=None,
        outcome=AlertOutcome.DUPLICATE,
        reason="duplicate of alert #1",
        audit_id=None,
    )
    key = key_row(base, decided_at=when, rollout_id=None, outcome="ignored", log_id=None)
    n = select(literal(1).label("i")).cte("n", recursive=True)
    n = n.union_all(select(n.c.i + 1).where(n.c.i < ALERTS))
    # A key of the same length as the receiver's: <source>:<fingerprint>:<startsAt>:<status>.
    numbered = (
        literal("alertmanager:0f1e2d3c")
        + cast(1_000_000_000 + n.c.i % DISTINCT, String)
        + literal(":2026-11-27T04:21:08+00:00:firing")
    )

    def value(table: Table, name: str, first_value: object, repeat_value: object) -> ColumnElement[Any]:
        column = table.c[name]
        if name == "alert_key":
            return numbered.label(name)
        if first_value == repeat_value:
            return literal(first_value, column.type).label(name)
        return case(
            (n.c.i <= DISTINCT, literal(first_value, column.type)), else_=literal(repeat_value, column.type)
        ).label(name)

    log_columns = [value(t.alert_log, c, first[c], repeat[c]) for c in first]
    conn.execute(t.alert_log.insert().from_select(list(first), select(*log_columns)))
    key_columns = [value(t.alert_keys, c, key[c], key[c]) for c in key]
    conn.execute(t.alert_keys.insert().from_select(list(key), select(*key_columns).where(n.c.i <= DISTINCT)))


def _bytes_used(registry: SqlRegistry) -> int:
    """The bytes the alert tables hold (SQLite: the pages in use, freed pages aside)."""
    with registry.database.engine.connect() as conn:
        if registry.database.dialect == "postgresql":
            size = "pg_total_relation_size('alert_log') + pg_total_relation_size('alert_keys')"
            return int(conn.execute(text(f"SELECT {size}")).scalar_one())
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        free = conn.execute(text("PRAGMA freelist_count")).scalar_one()
        return int((pages - free) * conn.execute(text("PRAGMA page_size")).scalar_one())


def test_storage_per_alert_is_bounded_and_pruning_reuses_it(registry: SqlRegistry) -> None:
    registry.push(PromptSpec(name="support", template="x"))
    empty = _bytes_used(registry)
    sizes = []
    for _ in range(3):
        with registry.database.engine.begin() as conn:
            _insert_alerts(conn, utc_now() - 60 * DAY)
        sizes.append(_bytes_used(registry))
        pruned = prune(registry)  # all 60 days old: past every retention
        assert (pruned.alert_keys, pruned.alert_log) == (DISTINCT, ALERTS)
    assert (sizes[0] - empty) / ALERTS < BYTES_PER_ALERT
    # Each 100,000 take the space the ones before left: SQLite reuses freed pages at once;
    # PostgreSQL reuses the tables' space at once and its indexes' from the second round on (a
    # VACUUM recycles the index pages the VACUUM before it emptied), so the size stops growing.
    # An autovacuum run in between can shift PostgreSQL's recycling by a round: the third batch
    # must take less than half the space a batch takes in new pages, not exactly none.
    assert sizes[2] - sizes[1] < (sizes[0] - empty) / 2, sizes
