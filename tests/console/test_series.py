"""The rollout page's series: the windows of a rollout summed by the database into the chart's
buckets (exact counts, each bucket's interval), and the weight steps of its audit trail."""

from __future__ import annotations

import math
import time

from otel_prompt_canary.analysis.stats import MEAN_SCALE, MeanStats, ProportionStats, Report
from otel_prompt_canary.loop.store import SqlLoopStore
from otel_prompt_canary.registry.models import Action, PromptSpec
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.console.charts import RuleLimit, signal_chart, weight_chart
from otel_prompt_canary.service.console.series import signal_series, weight_steps

CHECK = "prompt_canary.check.json_valid"
SCORE = "prompt_canary.score.judge"


def rollout_of(registry: SqlRegistry) -> str:
    registry.push(PromptSpec(name="greeter", template="Hi {{ n }}."))
    registry.push(PromptSpec(name="greeter", template="Hello {{ n }}."))
    route = registry.start_rollout("greeter", 2, actor="test", reason="try")
    assert route.rollout_id is not None
    return route.rollout_id


def test_windows_are_summed_into_buckets_exactly(registry: SqlRegistry) -> None:
    rollout_id = rollout_of(registry)
    store = SqlLoopStore(registry)
    start = 1_700_000_000 // 60 * 60
    # 8 one-minute windows; the canary's check passes 9 of 10 times in the first 4, 5 of 10 after.
    canary = {CHECK: {start + 60 * i: ProportionStats(n=10, successes=9 if i < 4 else 5) for i in range(8)}}
    stable = {CHECK: {start + 60 * i: ProportionStats(n=100, successes=99) for i in range(8)}}
    store.record_report(
        Report(rollout_id=rollout_id, window_seconds=60, stable=stable, canary=canary), source="t"
    )
    scores = {
        SCORE: {
            start + 60 * i: MeanStats(
                n=2, sum=(i + 1) * MEAN_SCALE, sum_sq=2 * ((i + 1) * MEAN_SCALE // 2) ** 2
            )
            for i in range(8)
        }
    }
    store.record_report(
        Report(rollout_id=rollout_id, window_seconds=60, stable={}, canary=scores), source="t"
    )

    series = {s.attribute: s for s in signal_series(registry, rollout_id, points=2)}
    check = series[CHECK]
    assert check.kind == "proportion"
    assert check.bucket_seconds == 240  # 8 minutes in at most 2 buckets, whole minutes
    assert [(p.start, p.n) for p in check.canary] == [(start, 40), (start + 240, 40)]
    assert [p.estimate for p in check.canary] == [0.9, 0.5]
    assert [p.estimate for p in check.stable] == [0.99, 0.99]
    for point in check.canary:
        assert point.low < point.estimate < point.high
        assert point.low >= 0 and point.high <= 1
    score = series[SCORE]
    assert score.kind == "mean" and score.stable == ()
    # Each window's two values are both (i + 1) / 2: the means of the buckets are 1.25 and 3.25.
    assert [round(p.estimate, 9) for p in score.canary] == [1.25, 3.25]
    assert [p.n for p in score.canary] == [8, 8]


def test_a_week_of_minutes_is_one_bucket_per_chart_point(registry: SqlRegistry) -> None:
    rollout_id = rollout_of(registry)
    store = SqlLoopStore(registry)
    start = int(time.time()) // 60 * 60 - 7 * 86_400
    minutes = 7 * 24 * 60
    for day in range(7):
        first = start + day * 86_400
        windows = {first + 60 * i: ProportionStats(n=5, successes=5) for i in range(24 * 60)}
        store.record_report(
            Report(
                rollout_id=rollout_id, window_seconds=60, stable={CHECK: windows}, canary={CHECK: windows}
            ),
            source="bench",
        )
    [series] = signal_series(registry, rollout_id, points=120)
    assert len(series.canary) <= 120 and len(series.stable) <= 120
    assert series.bucket_seconds == math.ceil(minutes * 60 / 120 / 60) * 60
    assert sum(p.n for p in series.canary) == 5 * minutes  # every sample in one bucket or another


def test_a_rollout_without_statistics_has_no_series(registry: SqlRegistry) -> None:
    assert signal_series(registry, rollout_of(registry)) == []


def test_the_weight_follows_the_rollouts_transitions_only(registry: SqlRegistry) -> None:
    rollout_id = rollout_of(registry)
    registry.transition("greeter", Action.ADVANCE, actor="omar", reason="ok")
    registry.transition("greeter", Action.ROLLBACK, actor="rita", reason="bad")
    steps = weight_steps(registry.history("greeter"), rollout_id)
    assert [(s.action, s.weight_bp, s.actor) for s in steps] == [
        ("start", 100, "test"),
        ("advance", 500, "omar"),
        ("rollback", 0, "rita"),
    ]
    assert weight_steps(registry.history("greeter"), "another") == []
    svg = weight_chart(steps, steps[-1].at)
    assert svg.count("<circle") == 3 and "advance by omar: 5%" in svg


def test_a_signal_chart_escapes_what_it_shows(registry: SqlRegistry) -> None:
    rollout_id = rollout_of(registry)
    attribute = "prompt_canary.check.<b>x</b>"
    windows = {1_700_000_040: ProportionStats(n=10, successes=5)}
    SqlLoopStore(registry).record_report(
        Report(
            rollout_id=rollout_id, window_seconds=60, stable={attribute: windows}, canary={attribute: windows}
        ),
        source="t",
    )
    [series] = signal_series(registry, rollout_id)
    svg = signal_chart(series, [RuleLimit(rule_id="r<1>", threshold=0.9)])
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "r&lt;1&gt;" in svg


def test_a_signal_chart_of_one_bucket_shows_both_cohorts_and_the_limit(registry: SqlRegistry) -> None:
    """A young rollout has one bucket: no line or band can show it, its dots and whiskers do."""
    rollout_id = rollout_of(registry)
    attribute = "prompt_canary.check.json_valid"
    SqlLoopStore(registry).record_report(
        Report(
            rollout_id=rollout_id,
            window_seconds=60,
            stable={attribute: {1_700_000_040: ProportionStats(n=200, successes=198)}},
            canary={attribute: {1_700_000_040: ProportionStats(n=20, successes=17)}},
        ),
        source="t",
    )
    [series] = signal_series(registry, rollout_id)
    svg = signal_chart(series, [RuleLimit(rule_id="json.relative", offset=-0.01)])
    assert svg.count('class="dot stable"') == 1 and svg.count('class="dot canary"') == 1
    assert svg.count('class="whisker stable"') == 1 and svg.count('class="whisker canary"') == 1
    assert "canary " in svg and "0.85 (95%" in svg and "n=20)" in svg
    limit = svg.split('<path class="limit" d="')[1].split('"')[0]
    assert limit.startswith("M") and "H" in limit  # drawn across the bucket
