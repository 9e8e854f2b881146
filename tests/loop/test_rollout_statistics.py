"""``rollout_snapshot``: a rollout's totals, kept by every report, equal to summing its windows.

Runs on SQLite and on a real PostgreSQL (``store_target``). The reference is the sum the judge used
to compute itself: :meth:`Report.snapshot` over :meth:`rollout_reports`.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from otel_prompt_canary.analysis import MeanStats, ProportionStats, Report, Snapshot
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop import ReportOutcome, SqlLoopStore
from otel_prompt_canary.registry import open_store
from otel_prompt_canary.registry import schema as t
from tests.loop.factories import CHECK, T0, as_written_by, support_rollout

SCORE = "prompt_canary.score.judge"


def _reference(store: SqlLoopStore, rollout_id: str, since: float | None = None) -> Snapshot:
    total = Snapshot()
    for report in store.rollout_reports(rollout_id):
        total = total.merge(report.snapshot(since=since))
    return total


def _proportion(draw: st.DrawFn) -> ProportionStats:
    n = draw(st.integers(1, 10_000))
    return ProportionStats(n=n, successes=draw(st.integers(0, n)))


def _mean(draw: st.DrawFn) -> MeanStats:
    # Sums as large as the quantized scores of big values make them: beyond 64 bits, and negative.
    n = draw(st.integers(1, 1_000))
    total = draw(st.integers(-(10**25), 10**25))
    return MeanStats(n=n, sum=total, sum_sq=-(-total * total // n) + draw(st.integers(0, 10**20)))


@st.composite
def _reports(draw: st.DrawFn, rollout_id: str) -> list[Report]:
    reports = []
    for _ in range(draw(st.integers(1, 6))):
        size = draw(st.sampled_from([1, 10, 60]))
        starts = draw(st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True))
        cohorts = {}
        for cohort in ("stable", "canary"):
            cohorts[cohort] = {
                CHECK: {T0 + i * size: _proportion(draw) for i in starts},
                SCORE: {T0 + i * size: _mean(draw) for i in starts},
            }
        reports.append(Report(rollout_id=rollout_id, window_seconds=size, **cohorts))
    return reports


def test_the_totals_and_any_step_equal_the_windows_summed(loop_store: SqlLoopStore) -> None:
    rollout_id = support_rollout(loop_store.registry)

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(reports=_reports(rollout_id), since=st.integers(-5, 2000))
    def check(reports: list[Report], since: int) -> None:
        for report in reports:
            loop_store.record_report(report, source="test")
        total = _reference(loop_store, rollout_id)
        assert loop_store.rollout_snapshot(rollout_id) == total
        for start in (T0 + since, T0 + since + 0.5, None):
            found = loop_store.rollout_snapshot(rollout_id, since=start)
            assert found == _reference(loop_store, rollout_id, start)
        step = _reference(loop_store, rollout_id, T0 + since)
        assert loop_store.rollout_evidence(rollout_id, since=T0 + since) == (total, step)

    check()


def test_an_unknown_rollout_has_empty_totals_and_a_step_needs_a_finite_start(
    loop_store: SqlLoopStore,
) -> None:
    assert loop_store.rollout_snapshot("nope") == Snapshot()
    assert loop_store.rollout_evidence("nope", since=0) == (Snapshot(), Snapshot())
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidInputError, match="since must be a finite time"):
            loop_store.rollout_snapshot("nope", since=bad)


def test_a_report_mixing_kinds_changes_no_total(loop_store: SqlLoopStore) -> None:
    rollout_id = support_rollout(loop_store.registry)
    loop_store.record_report(
        Report(
            rollout_id=rollout_id, window_seconds=60, canary={CHECK: {T0: ProportionStats(n=5, successes=4)}}
        ),
        source="test",
    )
    before = loop_store.rollout_snapshot(rollout_id)
    wrong = Report(rollout_id=rollout_id, window_seconds=60, canary={CHECK: {T0 + 60: MeanStats.of([0.5])}})
    with pytest.raises(InvalidInputError, match="holds proportion statistics"):
        loop_store.record_report(wrong, source="test")
    assert loop_store.rollout_snapshot(rollout_id) == before == _reference(loop_store, rollout_id)


# About SQLite only: its sum() refuses a total beyond 64 bits (PostgreSQL sums numeric exactly).
@pytest.mark.parametrize("store_backend", ["sqlite"])
def test_sqlite_adds_sums_that_overflow_64_bits_exactly(loop_store: SqlLoopStore) -> None:
    # Each window's sums fit SQLite's integers; their total does not, so SQLite's sum() refuses.
    big = 3 * 10**8  # its square has 17 digits
    rollout_id = support_rollout(loop_store.registry)
    windows = {T0 + i: MeanStats(n=1, sum=big, sum_sq=big * big) for i in range(200)}
    loop_store.record_report(
        Report(rollout_id=rollout_id, window_seconds=1, canary={SCORE: windows}), source="t"
    )
    step = loop_store.rollout_snapshot(rollout_id, since=T0 + 50)
    assert step.canary[SCORE] == MeanStats(n=150, sum=150 * big, sum_sq=150 * big * big)
    assert step == _reference(loop_store, rollout_id, T0 + 50)


def test_the_migration_fills_the_totals_of_existing_statistics(store_target: str) -> None:
    with open_store(store_target) as registry:
        store = SqlLoopStore(registry)
        rollout_id = support_rollout(registry)
        store.record_report(
            Report(
                rollout_id=rollout_id,
                window_seconds=60,
                stable={
                    CHECK: {
                        T0: ProportionStats(n=10, successes=9),
                        T0 + 60: ProportionStats(n=7, successes=7),
                    }
                },
                canary={SCORE: {T0: MeanStats(n=2, sum=10**30, sum_sq=10**60)}},
            ),
            source="test",
        )
        expected = store.rollout_snapshot(rollout_id)
        as_written_by(registry, 2)  # as a store written by the release before totals is
    with open_store(store_target) as registry:
        assert SqlLoopStore(registry).rollout_snapshot(rollout_id) == expected
        assert expected.stable[CHECK] == ProportionStats(n=17, successes=16)
        assert expected.canary[SCORE] == MeanStats(n=2, sum=10**30, sum_sq=10**60)
        with registry.database.engine.connect() as conn:
            version = conn.execute(text("SELECT version FROM schema_version")).scalar()
            indexes = {index["name"] for index in inspect(conn).get_indexes("rollout_stats")}
        assert version == t.SCHEMA_VERSION
        assert "rollout_stats_by_start" in indexes


def test_the_migration_to_origins_keeps_receipts_and_leaves_rollouts_unowned(store_target: str) -> None:
    with open_store(store_target) as registry:
        rollout_id = support_rollout(registry)
        report = Report(
            rollout_id=rollout_id, window_seconds=60, canary={CHECK: {T0: ProportionStats(n=4, successes=3)}}
        )
        SqlLoopStore(registry).record_report(report, source="old-gateway", report_id="pcr_" + "1" * 32)
        as_written_by(registry, 3)  # as the release before origins wrote it
        with registry.database.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("report_receipts")}
        assert columns == {"report_id", "rollout_id", "source", "received_at"}
    with open_store(store_target) as registry:
        store = SqlLoopStore(registry)
        with registry.database.engine.connect() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == t.SCHEMA_VERSION
            (receipt,) = conn.execute(text("SELECT report_id, origin, outcome FROM report_receipts"))
        assert tuple(receipt) == ("pcr_" + "1" * 32, None, "merged")  # it was counted
        # Its retry is still a duplicate; no rollout has an origin until a report says one.
        again = store.record_report(report, source="old-gateway", report_id="pcr_" + "1" * 32)
        assert again.outcome == ReportOutcome.DUPLICATE
        assert store.report_origin(rollout_id) is None
        claimed = store.record_report(report, source="gw", report_id="pcr_" + "2" * 32, origin="collector")
        ignored = store.record_report(report, source="app", report_id="pcr_" + "3" * 32, origin="application")
        assert (claimed.outcome, ignored.outcome) == (ReportOutcome.MERGED, ReportOutcome.IGNORED)
        assert store.rollout_snapshot(rollout_id).canary[CHECK] == ProportionStats(n=8, successes=6)
