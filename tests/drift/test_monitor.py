"""The drift monitor on a real store: baselines, a step caught, a model change caught at its first
call, acknowledgements that re-baseline, pinned baselines, new versions and concurrent replicas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from otel_prompt_canary.analysis.stats import ProportionStats, Report
from otel_prompt_canary.errors import ConflictError, InvalidInputError, NotFoundError
from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import SignalStatus
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.registry.models import Action
from tests.drift.factories import CHECK, FAST, Clock, Feeder, push_bot


def _monitor(registry: SqlRegistry, clock: Clock) -> DriftMonitor:
    return DriftMonitor(registry, FAST, clock=clock)


def test_a_step_of_the_seeds_size_raises_one_alert_visible_everywhere(
    registry: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    push_bot(registry)
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock)
    assert feed.minutes(30, pass_rate=0.99) == []
    (signal,) = monitor.prompt_status("bot").signals
    assert signal.status is SignalStatus.BASELINING
    assert signal.reason.startswith("no verdict yet: the baseline holds")
    assert feed.minutes(40, pass_rate=0.99) == []
    (signal,) = monitor.prompt_status("bot").signals
    assert signal.status is SignalStatus.WATCHING and signal.baseline is not None
    assert signal.baseline.n >= FAST.baseline_samples

    changed_at = feed.window
    for _ in range(240):
        if feed.minute(pass_rate=0.94):
            break
    (alert,) = feed.raised
    assert (alert.prompt, alert.version, alert.subject_kind, alert.subject) == ("bot", 1, "signal", CHECK)
    assert alert.window_start.timestamp() >= changed_at
    assert "dropped from its baseline" in alert.summary
    evidence = alert.evidence
    assert isinstance(evidence, dict) and evidence["direction"] == "decrease"
    assert isinstance(evidence["statistic"], float) and evidence["statistic"] >= FAST.threshold

    status = monitor.prompt_status("bot")
    assert status.signals[0].status is SignalStatus.ALARM
    assert [a.id for a in status.alerts] == [alert.id]
    (logged,) = loop_store.list_alerts("bot")
    assert (logged.source, logged.action, logged.outcome) == ("drift", "alert", "recorded")
    assert registry.get_route("bot").state == "idle"  # an alert, not a rollback

    # The signal waits for a person: no second alert however long the drop lasts.
    assert feed.minutes(30, pass_rate=0.94) == []


def test_acknowledging_rebaselines_the_signal_and_is_recorded(
    registry: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    push_bot(registry)
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock, seed=2)
    feed.minutes(70, pass_rate=0.99)
    for _ in range(240):
        if feed.minute(pass_rate=0.90):
            break
    (alert,) = feed.raised

    with pytest.raises(InvalidInputError, match="say why"):
        monitor.acknowledge(alert.id, actor="ana", reason=" ")
    done = monitor.acknowledge(alert.id, actor="ana", reason="the provider's new model; accepted")
    assert (done.acknowledged_by, done.acknowledge_reason) == ("ana", "the provider's new model; accepted")
    with pytest.raises(ConflictError, match="acknowledged by ana"):
        monitor.acknowledge(alert.id, actor="bob", reason="again")
    with pytest.raises(NotFoundError):
        monitor.acknowledge(alert.id + 100, actor="bob", reason="which one")
    ack = loop_store.list_alerts("bot")[-1]
    assert (ack.source, ack.status, ack.outcome) == ("drift", "resolved", "recorded")
    assert ack.summary.startswith(f"ana acknowledged drift alert {alert.id} ({CHECK}, re-baselined from ")
    assert ack.summary.endswith(": the provider's new model; accepted")

    (signal,) = monitor.prompt_status("bot").signals
    assert (signal.status, signal.epoch) == (SignalStatus.BASELINING, 1)
    # The new normal is the baseline now: another hour at 90% raises nothing.
    assert feed.minutes(90, pass_rate=0.90) == []
    (signal,) = monitor.prompt_status("bot").signals
    assert signal.status is SignalStatus.WATCHING
    assert signal.baseline is not None and signal.baseline.estimate is not None
    assert signal.baseline.estimate < 0.95
    assert monitor.prompt_status("bot").alerts == []


def test_a_model_name_change_is_caught_at_its_first_call(registry: SqlRegistry) -> None:
    push_bot(registry, model="sim-1")
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock)
    assert feed.minutes(5, pass_rate=0.99, models={"sim-1": 17}) == []
    first_call = feed.window
    (alert,) = feed.minute(pass_rate=0.99, models={"sim-1": 16, "sim-1-turbo": 1})
    assert (alert.subject_kind, alert.subject) == ("model", "sim-1-turbo")
    assert alert.window_start.timestamp() == first_call
    assert "expected 'sim-1'" in alert.summary and "(1 calls so far)" in alert.summary
    assert feed.minutes(2, pass_rate=0.99, models={"sim-1-turbo": 17}) == []  # once

    monitor.acknowledge(alert.id, actor="ana", reason="rolled out by the provider")
    models = {m.model: m.accepted for m in monitor.prompt_status("bot").models}
    assert models == {"sim-1": True, "sim-1-turbo": True}


def test_the_first_dated_name_of_an_alias_is_learnt_and_the_next_one_alerts(registry: SqlRegistry) -> None:
    push_bot(registry, model="gpt-4o")
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock)
    assert feed.minutes(3, pass_rate=1.0, models={"gpt-4o-2024-08-06": 17}) == []
    (alert,) = feed.minute(pass_rate=1.0, models={"gpt-4o-2024-11-20": 17})
    assert alert.subject == "gpt-4o-2024-11-20"
    assert "expected 'gpt-4o' or 'gpt-4o-2024-08-06'" in alert.summary


def test_a_pinned_baseline_with_too_few_samples_gives_no_verdict_and_says_so(registry: SqlRegistry) -> None:
    push_bot(registry)
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock)
    start = feed.window
    for _ in range(30):
        feed.minute(pass_rate=0.99, calls=10)
    end = feed.window
    feed.minutes(3, pass_rate=0.99)

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    with pytest.raises(InvalidInputError, match="must be over"):
        monitor.pin_baseline("bot", start=at(start), end=at(int(clock.now) + 600), actor="ana", reason="r")
    with pytest.raises(InvalidInputError, match="before bot@1 went live"):
        monitor.pin_baseline("bot", start=at(start - 7 * 86_400), end=at(end), actor="ana", reason="r")
    status = monitor.pin_baseline(
        "bot", start=at(start), end=at(end), actor="ana", reason="a quiet half hour"
    )
    assert status.pinned is not None and status.pinned.by == "ana"
    monitor.tick()
    (signal,) = monitor.prompt_status("bot").signals
    assert signal.status is SignalStatus.NO_VERDICT
    assert (
        signal.reason
        == "no verdict: the baseline holds 300 samples, fewer than the 1000 needed (pinned period)"
    )
    assert feed.minutes(5, pass_rate=0.5) == []  # no verdict: nothing is judged


def test_a_pinned_period_becomes_the_baseline_and_is_judged_from_its_end(registry: SqlRegistry) -> None:
    push_bot(registry)
    clock = Clock()
    monitor = _monitor(registry, clock)
    feed = Feeder(monitor, clock)
    feed.minutes(10, pass_rate=0.99)
    start = feed.window
    feed.minutes(70, pass_rate=0.99)
    end = feed.window
    feed.minutes(60, pass_rate=0.85)
    monitor.pin_baseline(
        "bot",
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(end, UTC),
        actor="ana",
        reason="the good hour",
    )
    (alert,) = monitor.tick()  # the hour after the pinned period is judged at once
    assert alert.subject == CHECK and alert.epoch == 1
    assert alert.window_start.timestamp() >= end


def test_a_new_stable_version_is_watched_afresh_from_its_promotion(registry: SqlRegistry) -> None:
    push_bot(registry)
    push_bot(registry, text="Hello")
    clock = Clock()
    monitor = _monitor(registry, clock)
    Feeder(monitor, clock).minutes(3, pass_rate=0.99)
    assert monitor.prompt_status("bot").version == 1
    registry.start_rollout("bot", 2, actor="test", ramp=(100,))
    route = registry.transition("bot", Action.PROMOTE, actor="test", reason="healthy")
    promoted = registry.history("bot")[-1].at
    status = monitor.prompt_status("bot")
    assert (status.version, route.stable_version) == (2, 2)
    assert status.live_since == promoted.replace(microsecond=0)
    assert status.signals == [] and status.judged_until is None


def test_the_stable_cohort_of_a_rollout_feeds_the_baseline(
    registry: SqlRegistry, loop_store: SqlLoopStore
) -> None:
    push_bot(registry)
    push_bot(registry, text="Hello")
    clock = Clock()
    monitor = _monitor(registry, clock)
    route = registry.start_rollout("bot", 2, actor="test")
    assert route.rollout_id is not None
    window = int(clock.now // 60 * 60) + 60
    for minute in range(70):
        start = window + 60 * minute
        report = Report(
            rollout_id=route.rollout_id,
            window_seconds=60,
            stable={CHECK: {start: ProportionStats(n=17, successes=17)}},
            canary={CHECK: {start: ProportionStats(n=1, successes=1)}},
        )
        loop_store.record_report(report, source="test", origin="application")
    clock.now = window + 71 * 60 + 31
    monitor.tick()
    (signal,) = monitor.prompt_status("bot").signals
    assert signal.status is SignalStatus.WATCHING
    assert signal.baseline is not None and signal.baseline.n >= 1000 and signal.baseline.estimate == 1.0


def test_two_replicas_raise_an_alert_once(registry: SqlRegistry) -> None:
    push_bot(registry)
    clock = Clock()
    one, two = _monitor(registry, clock), _monitor(registry, clock)
    feed = Feeder(one, clock)
    feed.minutes(70, pass_rate=0.99)
    two.tick()
    for _ in range(240):
        if feed.minute(pass_rate=0.9) or two.tick():
            break
    assert len(one.list_alerts("bot")) == 1
    assert two.tick() == [] and one.tick() == []
