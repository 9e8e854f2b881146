"""One origin per rollout: the first path that reports a rollout's calls owns it; the other's reports
are acknowledged, counted apart, and never added to its statistics.

On SQLite and on a real PostgreSQL (``loop_store``): who owns a rollout is decided in the
transaction of its first report, under the rollout's lock, so that two origins reporting first at
once cannot both own it.
"""

from __future__ import annotations

import logging
import threading
import uuid

import pytest

from otel_prompt_canary.analysis import MeanStats, ProportionStats, Report, Snapshot
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.feedback import FeedbackKey, feedback_signal
from otel_prompt_canary.loop import ReportOrigin, ReportOutcome, RolloutController, SqlLoopStore
from otel_prompt_canary.loop.feedback import feedback_id, record_feedback
from tests.loop.factories import CHECK, T0, support_rollout
from tests.registry.test_store import run_together


def _report(rollout_id: str, n: int = 10, successes: int = 9) -> Report:
    stats = {CHECK: {T0: ProportionStats(n=n, successes=successes)}}
    return Report(rollout_id=rollout_id, window_seconds=60, stable=stats, canary=stats)


def _id() -> str:
    return "pcr_" + uuid.uuid4().hex


def _counted(store: SqlLoopStore, rollout_id: str) -> int:
    stats = store.rollout_snapshot(rollout_id).canary.get(CHECK)
    return 0 if stats is None else stats.n


@pytest.mark.parametrize("owner", list(ReportOrigin))
def test_the_first_origin_owns_the_rollout_and_the_others_reports_count_nothing(
    loop_store: SqlLoopStore, owner: ReportOrigin
) -> None:
    rollout_id = support_rollout(loop_store.registry)
    assert loop_store.report_origin(rollout_id) is None
    first = loop_store.record_report(_report(rollout_id), source="first", report_id=_id(), origin=owner)
    assert (first.outcome, first.samples, first.counted_origin) == (ReportOutcome.MERGED, 20, owner)
    counted = loop_store.rollout_snapshot(rollout_id)

    other_id = _id()
    other = loop_store.record_report(
        _report(rollout_id, n=40, successes=1), source="other", report_id=other_id, origin=owner.other
    )
    assert (other.outcome, other.samples, other.counted_origin) == (ReportOutcome.IGNORED, 0, owner)
    assert f"rollout {rollout_id} counts the reports of origin {owner.value!r}" in other.reason
    assert "would count every call twice" in other.reason
    assert "OTEL_PROMPT_CANARY_REPORT_INTERVAL=0" in other.reason
    assert loop_store.rollout_snapshot(rollout_id) == counted  # nothing of it was added

    # A retry of the ignored report is ignored again, and counted once among the ignored.
    again = loop_store.record_report(
        _report(rollout_id, n=40, successes=1), source="other", report_id=other_id, origin=owner.other
    )
    assert again.outcome == ReportOutcome.IGNORED and f"report {other_id} was ignored at" in again.reason
    # The owner's reports go on counting; so does a report that names no origin (an older sender).
    more = loop_store.record_report(_report(rollout_id), source="first", report_id=_id(), origin=owner)
    legacy = loop_store.record_report(_report(rollout_id), source="old", report_id=_id())
    assert more.outcome == legacy.outcome == ReportOutcome.MERGED
    assert legacy.counted_origin is owner
    assert _counted(loop_store, rollout_id) == 30

    origin = loop_store.report_origin(rollout_id)
    assert origin is not None
    assert (origin.origin, origin.first_source, origin.ignored_origin) == (owner, "first", owner.other)
    assert (origin.ignored_reports, origin.ignored_samples, origin.last_ignored_source) == (1, 80, "other")
    assert origin.last_ignored_at is not None and origin.last_ignored_at >= origin.since
    assert origin.remedy() in other.reason


def test_the_first_ignored_report_is_logged_once_persupport_rollout(
    loop_store: SqlLoopStore, caplog: pytest.LogCaptureFixture
) -> None:
    rollout_id = support_rollout(loop_store.registry)
    caplog.set_level(logging.WARNING, logger="otel_prompt_canary.loop")
    loop_store.record_report(_report(rollout_id), source="gw", report_id=_id(), origin="collector")
    for _ in range(3):
        loop_store.record_report(_report(rollout_id), source="app:1", report_id=_id(), origin="application")
    warnings = [r.getMessage() for r in caplog.records if r.name == "otel_prompt_canary.loop.reports"]
    assert len(warnings) == 1
    assert warnings[0].startswith("ignored a report from 'app:1': not counted: rollout ")
    assert loop_store.report_origin(rollout_id).ignored_reports == 3  # type: ignore[union-attr]


def test_an_unknown_origin_is_refused_and_changes_nothing(loop_store: SqlLoopStore) -> None:
    rollout_id = support_rollout(loop_store.registry)
    with pytest.raises(InvalidInputError, match="unknown report origin 'agent'"):
        loop_store.record_report(_report(rollout_id), source="x", origin="agent")
    assert loop_store.report_origin(rollout_id) is None
    assert loop_store.rollout_snapshot(rollout_id) == Snapshot()


def test_a_refused_first_report_claims_nothing(loop_store: SqlLoopStore) -> None:
    rollout_id = support_rollout(loop_store.registry)
    loop_store.record_report(_report(rollout_id), source="old", report_id=_id())  # proportions, no origin
    clash = Report(rollout_id=rollout_id, window_seconds=60, canary={CHECK: {T0 + 60: MeanStats.of([0.5])}})
    with pytest.raises(InvalidInputError, match="holds proportion statistics"):
        loop_store.record_report(clash, source="gw", report_id=_id(), origin="collector")
    assert loop_store.report_origin(rollout_id) is None  # the claim was part of the refused write


def test_concurrent_first_reports_of_both_origins_make_exactly_one_owner(loop_store: SqlLoopStore) -> None:
    rollout_id = support_rollout(loop_store.registry)
    senders = 12
    barrier = threading.Barrier(senders)
    outcomes: dict[ReportOrigin, list[ReportOutcome]] = {origin: [] for origin in ReportOrigin}

    def report(i: int) -> None:
        origin = list(ReportOrigin)[i % 2]
        barrier.wait()
        receipt = loop_store.record_report(
            _report(rollout_id, n=1, successes=1), source=f"s{i}", report_id=_id(), origin=origin
        )
        outcomes[origin].append(receipt.outcome)

    run_together(senders, report)
    found = loop_store.report_origin(rollout_id)
    assert found is not None
    owner, other = found.origin, found.ignored_origin
    assert outcomes[owner] == [ReportOutcome.MERGED] * (senders // 2)
    assert outcomes[other] == [ReportOutcome.IGNORED] * (senders // 2)
    assert (found.ignored_reports, found.ignored_samples) == (senders // 2, senders)
    assert _counted(loop_store, rollout_id) == senders // 2  # the owner's reports, each once


def test_feedback_counts_whatever_the_rollouts_origin(loop_store: SqlLoopStore) -> None:
    # /v1/feedback is neither path's: neither the Collector nor in-app reports carry it.
    registry = loop_store.registry
    rollout_id = support_rollout(registry)
    loop_store.record_report(_report(rollout_id), source="gw", report_id=_id(), origin="collector")
    key = FeedbackKey(prompt="support", version=2, cohort="canary", rollout_id=rollout_id, issued_at=T0)
    signal = feedback_signal(False, "thumbs_up")
    receipt = record_feedback(registry, loop_store, key, signal, feedback_id=feedback_id("k", "thumbs_up"))
    assert receipt.outcome == ReportOutcome.MERGED
    assert loop_store.rollout_snapshot(rollout_id).canary["prompt_canary.check.thumbs_up"].n == 1
    assert loop_store.report_origin(rollout_id).ignored_reports == 0  # type: ignore[union-attr]


def test_the_controllers_own_observations_are_the_applications(loop_store: SqlLoopStore) -> None:
    registry = loop_store.registry
    rollout_id = support_rollout(registry)
    loop_store.record_report(_report(rollout_id), source="gw", report_id=_id(), origin="collector")
    controller = RolloutController(registry, loop_store)
    controller.observe(rollout_id, "canary", "json_valid", True, at=T0)
    controller.flush()
    assert _counted(loop_store, rollout_id) == 10  # the Collector's only
    found = loop_store.report_origin(rollout_id)
    assert found is not None and (found.ignored_reports, found.last_ignored_source) == (1, "in-process")
