"""Retention of what drift monitoring and evaluations store, on SQLite and PostgreSQL.

Live windows go after ``live_windows`` but those drift monitoring still needs (a signal's baseline
while it is the baseline, a pinned period, what is not judged yet), and so do the stable cohort's
windows of an ended rollout; response models of versions no longer stable and live receipts go;
drift alerts no one acknowledged go once their version is no longer live, and an acknowledged one
stays (the database refuses otherwise); evaluation runs go but those the gate and the comparisons
read.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from otel_prompt_canary.analysis.drift import DriftConfig
from otel_prompt_canary.analysis.stats import ProportionStats, Report
from otel_prompt_canary.evals import SqlEvalStore
from otel_prompt_canary.evals.baselines import baseline_run, newest_run
from otel_prompt_canary.evals.datasets import Case, Dataset, DatasetSpec
from otel_prompt_canary.evals.results import CaseResult, EvalRun
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.retention import DEFAULT_RETENTION, Retention, prune
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import utc_now
from tests.drift.factories import CHECK, drift_alert_row, push_bot
from tests.loop.factories import as_written_by

HOUR = 3600
DAY = 86_400
#: Hourly detector windows: 60 days of live traffic are 1,440 windows, judged in one tick.
HOURLY = DriftConfig(window_seconds=HOUR, baseline_seconds=DAY, baseline_samples=1000, settle_seconds=30)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_the_new_names_and_their_defaults() -> None:
    assert str(DEFAULT_RETENTION) == (
        "dedup_ids=1d,untimed_alerts=1h,alert_log=30d,report_windows=30d,live_windows=30d,"
        "drift_alerts=30d,eval_runs=30d"
    )
    retention = Retention.parse("eval_runs=forever,live_windows=90d")
    assert (retention.eval_runs, retention.live_windows, retention.drift_alerts) == (
        None,
        timedelta(days=90),
        timedelta(days=30),
    )


class _Live:
    """A watched prompt with hourly live windows from ``start``, and its monitor on a clock."""

    def __init__(self, registry: SqlRegistry, prompt: str = "bot") -> None:
        self.registry = registry
        self.prompt = prompt
        push_bot(registry, name=prompt)
        self.start = math.ceil(time.time() / HOUR) * HOUR + HOUR  # after the version went live
        self.now = float(self.start)
        self.monitor = DriftMonitor(registry, HOURLY, clock=lambda: self.now)

    def windows(self, first_day: int, days: int) -> None:
        starts = range(self.start + first_day * DAY, self.start + (first_day + days) * DAY, HOUR)
        report = Report(
            rollout_id="live:1",
            window_seconds=HOUR,
            stable={CHECK: {w: ProportionStats(n=100, successes=99) for w in starts}},
        )
        self.monitor.live.record_live_report(report, prompt=self.prompt, source="test", origin="application")

    def judge_until(self, day: float) -> None:
        self.now = self.start + day * DAY + HOUR + 60
        self.monitor.tick()

    def stored(self) -> set[int]:
        """The days (from the start, in hours / 24) of the live windows stored."""
        s = t.live_stats.c
        with self.registry.database.read() as conn:
            starts = conn.execute(select(s.window_start).where(s.prompt == self.prompt)).scalars()
            return {start - self.start for start in starts}


def _hours(first_day: float, last_day: float) -> set[int]:
    """Window offsets (seconds from the start) of the hours in ``[first_day, last_day)``."""
    return set(range(int(first_day * DAY), int(last_day * DAY), HOUR))


def test_live_windows_are_kept_while_they_are_a_baseline(registry: SqlRegistry) -> None:
    live = _Live(registry)
    live.windows(0, 60)
    live.judge_until(60)
    (signal,) = live.monitor.prompt_status("bot").signals
    assert (signal.status, signal.baseline_from) == ("watching", _at(live.start))
    everything = _hours(0, 60)
    assert live.stored() == everything

    # Ten days kept: the baseline (the first day, with a day's margin for the detector's window)
    # outlives them; what is newer than ten days is kept by age.
    pruned = prune(registry, Retention.parse("live_windows=10d"), now=_at(live.start + 15 * DAY))
    kept = _hours(0, 2 - 1 / 24) | _hours(5, 60)
    assert live.stored() == kept
    assert pruned.live_windows == len(everything - kept)

    # A person pins days 10-11 as the baseline: the first day is no longer the baseline, so it goes.
    live.monitor.pin_baseline(
        "bot",
        start=_at(live.start + 10 * DAY),
        end=_at(live.start + 11 * DAY),
        actor="ana",
        reason="the quiet week",
    )
    live.judge_until(60)
    (signal,) = live.monitor.prompt_status("bot").signals
    assert (signal.status, signal.baseline_from) == ("watching", _at(live.start + 10 * DAY))
    prune(registry, now=_at(live.start + 60 * DAY))
    assert live.stored() == _hours(10, 12 - 1 / 24) | _hours(30, 60)


def test_windows_not_judged_yet_are_kept_however_old(registry: SqlRegistry) -> None:
    live = _Live(registry)
    live.windows(0, 1)
    live.judge_until(1)  # the baseline fills with the first day; nothing after it is judged
    live.windows(1, 59)
    assert prune(registry, now=_at(live.start + 60 * DAY)).live_windows == 0
    live.judge_until(60)
    prune(registry, now=_at(live.start + 60 * DAY))
    assert live.stored() == _hours(0, 2 - 1 / 24) | _hours(30, 60)
    # With drift monitoring off (no monitor), nothing is kept but by age.
    with registry.database.transaction() as conn:
        conn.execute(t.drift_signals.delete())
        conn.execute(t.drift_monitors.delete())
    prune(registry, now=_at(live.start + 60 * DAY))
    assert live.stored() == _hours(30, 60)


def test_an_ended_rollout_keeps_only_the_stable_windows_of_a_baseline(registry: SqlRegistry) -> None:
    live = _Live(registry)
    push_bot(registry, text="Hello")
    rollout_id = registry.start_rollout("bot", 2, actor="ana", reason="try v2").rollout_id
    assert rollout_id is not None
    in_baseline = _hours(0, 1)
    later = _hours(20, 21)
    cohort = {CHECK: {live.start + w: ProportionStats(n=100, successes=99) for w in in_baseline | later}}
    store = SqlLoopStore(registry)
    store.record_report(
        Report(rollout_id=rollout_id, window_seconds=HOUR, stable=cohort, canary=cohort), source="gw"
    )
    registry.transition("bot", Action.ROLLBACK, actor="ana", reason="enough")
    live.windows(0, 60)
    live.judge_until(60)  # the rollout's stable windows are part of version 1's baseline day

    pruned = prune(registry, now=_at(live.start + 60 * DAY))
    s = t.rollout_stats.c
    with registry.database.read() as conn:
        left = set(conn.execute(select(s.cohort, s.window_start).where(s.rollout_id == rollout_id)))
    assert left == {("stable", live.start + w) for w in in_baseline}
    assert pruned.report_windows == len(in_baseline) + 2 * len(later)


def test_response_models_of_versions_no_longer_stable_and_old_live_receipts_go(registry: SqlRegistry) -> None:
    live = _Live(registry)
    push_bot(registry, text="Hello")
    old = {"sim-1": {live.start: 10}}
    live.monitor.live.record_response_models("bot", 1, old)
    live.monitor.live.record_response_models("bot", 2, old)  # seen when version 2 was stable
    live.monitor.live.record_response_models("bot", 2, {"sim-2": {live.start + 50 * DAY: 3}})
    report = Report(rollout_id="live:1", window_seconds=HOUR, stable={})
    live.monitor.live.record_live_report(report, prompt="bot", source="app", report_id="pcr_" + "1" * 32)

    pruned = prune(registry, now=_at(live.start + 60 * DAY))
    assert (pruned.response_models, pruned.live_receipts) == (1, 1)
    assert [m.model for m in live.monitor.live.response_models("bot", 1)] == ["sim-1"]  # stable: kept
    assert [m.model for m in live.monitor.live.response_models("bot", 2)] == ["sim-2"]  # seen lately
    # A receipt is kept for dedup_ids: within it, nothing more goes.
    live.monitor.live.record_live_report(report, prompt="bot", source="app", report_id="pcr_" + "2" * 32)
    assert prune(registry).live_receipts == 0


def test_drift_alerts_no_one_acknowledged_go_once_their_version_is_replaced(registry: SqlRegistry) -> None:
    push_bot(registry)
    push_bot(registry, text="Hello")  # version 2, not live: version 1 is stable
    rows = [
        drift_alert_row("bot", 2, "moot", days_ago=40, acknowledged=False),
        drift_alert_row("bot", 2, "audited", days_ago=40, acknowledged=True),
        drift_alert_row("bot", 1, "live", days_ago=40, acknowledged=False),
        drift_alert_row("bot", 2, "recent", days_ago=10, acknowledged=False),
    ]
    with registry.database.transaction() as conn:
        conn.execute(t.drift_alerts.insert(), rows)
    monitor = DriftMonitor(registry)
    assert prune(registry).drift_alerts == 1
    left = {a.subject: a for a in monitor.list_alerts()}
    assert set(left) == {"audited", "live", "recent"}
    audited = left["audited"]
    # An acknowledged alert is the record of a person's decision: the database keeps it as it is.
    a = t.drift_alerts.c
    for statement in (
        t.drift_alerts.delete().where(a.id == audited.id),
        t.drift_alerts.update().where(a.id == audited.id).values(acknowledged_by="mallory"),
        t.drift_alerts.update().where(a.id == audited.id).values(acknowledged_at=None),
    ):
        with pytest.raises(DBAPIError, match="immutable"), registry.database.transaction() as conn:
            conn.execute(statement)
    monitor.mark_notified(audited.id, resolved=True)  # its delivery may still be recorded
    assert monitor.get_alert(audited.id).acknowledged_by == "ana"
    assert prune(registry, Retention.parse("drift_alerts=1h")).drift_alerts == 1  # "recent"


def test_the_migration_protects_acknowledged_drift_alerts(store_target: str) -> None:
    with open_store(store_target) as registry:
        push_bot(registry)
        with registry.database.transaction() as conn:
            conn.execute(
                t.drift_alerts.insert(), [drift_alert_row("bot", 1, "x", days_ago=1, acknowledged=True)]
            )
        as_written_by(registry, 6)  # as the release before retention of drift alerts wrote it
    with open_store(store_target) as registry:
        with registry.database.read() as conn:
            assert conn.execute(text("SELECT version FROM schema_version")).scalar() == t.SCHEMA_VERSION
        with pytest.raises(DBAPIError, match="immutable"), registry.database.transaction() as conn:
            conn.execute(t.drift_alerts.delete())


# -- evaluation runs ----------------------------------------------------------------------------


def _run(
    golden: Dataset,
    number: int,
    version: int,
    *,
    days_ago: float,
    status: str = "complete",
    source: str = "manual",
) -> EvalRun:
    """A run of ``bot@version`` on ``golden`` (two cases), finished ``days_ago``."""
    finished = utc_now() - timedelta(days=days_ago)
    cases = [CaseResult(case_id=case, status="passed") for case in ("a", "b")]
    return EvalRun(
        run_id=f"{number:016x}",
        prompt="bot",
        version=version,
        dataset="golden",
        dataset_version=1,
        dataset_hash=golden.content_hash,
        provider="openai",
        status=status,  # type: ignore[arg-type]
        source=source,  # type: ignore[arg-type]
        actor="ana",
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
        cases=tuple(cases if status == "complete" else cases[:1]),
    )


def test_evaluation_runs_go_but_those_the_gate_and_comparisons_read(registry: SqlRegistry) -> None:
    push_bot(registry)
    push_bot(registry, text="Hello")
    evals = SqlEvalStore(registry)
    cases = (Case(id="a", variables={"x": "1"}), Case(id="b", variables={"x": "2"}))
    golden = evals.push_dataset(DatasetSpec(name="golden", prompt="bot", cases=cases)).dataset
    runs = {
        "first": _run(golden, 1, 1, days_ago=100),  # version 1's eval baseline on golden@1
        "rerun": _run(golden, 2, 1, days_ago=90),
        "pinned": _run(golden, 3, 1, days_ago=85),  # version 3 pins it (below)
        "failed": _run(golden, 4, 1, days_ago=80, status="incomplete"),
        "probe": _run(golden, 5, 1, days_ago=50, source="probe"),  # version 1's newest complete run
        "recent": _run(golden, 6, 1, days_ago=5, status="incomplete"),
        "candidate": _run(golden, 7, 2, days_ago=60),  # version 2's first and newest
        "candidate-failed": _run(golden, 8, 2, days_ago=40, status="incomplete"),
    }
    for run in runs.values():
        evals.record_run(run)
    spec = {
        "name": "bot",
        "template": "Hi {{ x }}!",
        "environment": {"eval_baseline_id": runs["pinned"].run_id},
    }
    registry.push(PromptSpec.model_validate(spec))

    assert prune(registry).eval_runs == 3
    left = {run.run_id for run in evals.list_runs("bot", limit=100)}
    kept = ("first", "pinned", "probe", "recent", "candidate")
    assert left == {runs[name].run_id for name in kept}
    # The gate and the comparisons read the same runs as before.
    version_1 = registry.get_version("bot", 1)
    assert baseline_run(evals, version_1, golden, stable_version=1) == runs["first"]
    assert newest_run(evals, "bot", 1, golden) == runs["probe"]
    assert newest_run(evals, "bot", 2, golden) == runs["candidate"]
    assert baseline_run(evals, registry.get_version("bot", 3), golden, stable_version=1) == runs["pinned"]
    with registry.database.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.eval_runs)).scalar() == len(kept)
    assert prune(registry, Retention.parse("eval_runs=1h")).eval_runs == 1  # "recent"
