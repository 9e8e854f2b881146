"""Mergeable statistics: exact, associative and commutative merges, and stable JSON forms."""

from __future__ import annotations

import json
import re
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_prompt_canary.analysis import (
    MEAN_SCALE,
    MeanStats,
    ProportionStats,
    Report,
    Snapshot,
    merge_stats,
    quantize,
    window_start,
)
from otel_prompt_canary.errors import InvalidInputError

outcomes = st.lists(st.booleans(), max_size=40)
values = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), max_size=30
)


def test_proportion_counts_and_estimate() -> None:
    stats = ProportionStats.of([True, True, False, True])
    assert (stats.n, stats.successes, stats.estimate) == (4, 3, 0.75)
    assert stats.add(False) == ProportionStats(n=5, successes=3)
    assert ProportionStats().estimate is None
    with pytest.raises(ValueError, match=r"successes \(3\) cannot exceed n \(2\)"):
        ProportionStats(n=2, successes=3)


def test_quantize_rounds_half_to_even_in_millionths() -> None:
    assert quantize(0.7) == 700_000
    assert quantize(-1.25) == -1_250_000
    assert quantize(2.5e-6) == 2  # 2.5 millionths: half to even
    assert quantize(3.5e-6) == 4
    assert quantize(12) == 12 * MEAN_SCALE
    for bad in (float("nan"), float("inf"), 2e12, True, "1"):
        with pytest.raises(InvalidInputError, match="a score must be"):
            quantize(bad)  # type: ignore[arg-type]


def test_mean_moments_are_exact() -> None:
    data = [0.5, 0.7, 0.9, 0.25]
    stats = MeanStats.of(data)
    assert stats == MeanStats(n=4, sum=2_350_000, sum_sq=1_612_500_000_000)
    assert stats.estimate == pytest.approx(statistics.fmean(data), abs=1e-15)
    assert stats.variance == pytest.approx(statistics.variance(data), rel=1e-12)
    assert MeanStats.of([1.0]).variance is None
    assert MeanStats().estimate is None
    assert stats.add(0.1) == MeanStats.of([*data, 0.1])


def test_mean_json_carries_sums_as_decimal_strings() -> None:
    stats = MeanStats.of([0.5, 0.7])
    assert json.loads(stats.model_dump_json()) == {
        "kind": "mean",
        "n": 2,
        "sum": "1200000",
        "sum_sq": "740000000000",
    }
    assert stats.model_dump()["sum"] == 1_200_000  # Python form keeps ints
    assert (
        MeanStats.model_validate({"kind": "mean", "n": 2, "sum": 1200000, "sum_sq": "740000000000"}) == stats
    )


def test_sums_beyond_64_bits_survive_json() -> None:
    big = MeanStats.of([9e11] * 30)
    assert big.sum_sq > 2**64
    assert MeanStats.model_validate_json(big.model_dump_json()) == big


def test_inconsistent_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="n \\* sum_sq must be at least sum \\*\\* 2"):
        MeanStats(n=2, sum=10, sum_sq=1)
    with pytest.raises(ValueError, match="must be 0 when n is 0"):
        MeanStats(n=0, sum=5, sum_sq=25)
    with pytest.raises(InvalidInputError, match="cannot merge proportion statistics with mean"):
        merge_stats(ProportionStats(), MeanStats())


@settings(database=None)
@given(outcomes, outcomes, outcomes)
def test_proportion_merge_is_exact_associative_and_commutative(
    a: list[bool], b: list[bool], c: list[bool]
) -> None:
    sa, sb, sc = ProportionStats.of(a), ProportionStats.of(b), ProportionStats.of(c)
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))
    assert sa.merge(sb).merge(sc) == ProportionStats.of(a + b + c)


@settings(database=None)
@given(values, values, values)
def test_mean_merge_is_exact_associative_and_commutative(
    a: list[float], b: list[float], c: list[float]
) -> None:
    sa, sb, sc = MeanStats.of(a), MeanStats.of(b), MeanStats.of(c)
    assert sa.merge(sb) == sb.merge(sa)
    assert sa.merge(sb).merge(sc) == sa.merge(sb.merge(sc))
    assert sa.merge(sb).merge(sc) == MeanStats.of(c + a + b)  # any order of the samples
    for stats in (sa, sb, sc):
        assert MeanStats.model_validate_json(stats.model_dump_json()) == stats


snapshots = st.builds(
    lambda j, s, r: Snapshot(
        stable={"prompt_canary.check.json_valid": ProportionStats.of(j)},
        canary={
            "prompt_canary.score.judge": MeanStats.of(s),
            "prompt_canary.check.refusal": ProportionStats.of(r),
        },
    ),
    outcomes,
    values,
    outcomes,
)


@settings(database=None)
@given(snapshots, snapshots, snapshots)
def test_snapshot_merge_is_associative_commutative_and_round_trips(
    a: Snapshot, b: Snapshot, c: Snapshot
) -> None:
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert Snapshot.model_validate_json(a.model_dump_json()) == a
    assert Snapshot().merge(a) == a


def test_snapshot_add_and_kind_conflicts() -> None:
    snap = Snapshot().add("canary", "prompt_canary.check.json_valid", ProportionStats(n=3, successes=2))
    snap = snap.add("canary", "prompt_canary.check.json_valid", ProportionStats(n=1, successes=1))
    assert snap.cohort("canary")["prompt_canary.check.json_valid"] == ProportionStats(n=4, successes=3)
    with pytest.raises(
        InvalidInputError,
        match=re.escape("canary signal 'prompt_canary.check.json_valid': cannot merge proportion"),
    ):
        snap.add("canary", "prompt_canary.check.json_valid", MeanStats.of([1.0]))
    with pytest.raises(InvalidInputError, match="unknown cohort 'blue'"):
        snap.add("blue", "x", ProportionStats())  # type: ignore[arg-type]


def test_window_start() -> None:
    assert window_start(1_700_000_059.9, 60) == 1_700_000_040
    assert window_start(1_700_000_100, 60) == 1_700_000_100
    assert window_start(123.0, 0) == 0


def test_report_windows_and_step_totals() -> None:
    report = Report(rollout_id="r-1", window_seconds=60)
    report = report.record(
        "canary", "prompt_canary.check.json_valid", ProportionStats(n=10, successes=9), at=100.0
    )
    report = report.record(
        "canary", "prompt_canary.check.json_valid", ProportionStats(n=5, successes=5), at=119.0
    )
    report = report.record(
        "canary", "prompt_canary.check.json_valid", ProportionStats(n=4, successes=1), at=130.0
    )
    report = report.record("stable", "prompt_canary.score.judge", MeanStats.of([0.5]), at=10.0)
    assert report.canary["prompt_canary.check.json_valid"] == {
        60: ProportionStats(n=15, successes=14),
        120: ProportionStats(n=4, successes=1),
    }
    total = report.snapshot()
    assert total.canary["prompt_canary.check.json_valid"] == ProportionStats(n=19, successes=15)
    assert total.stable["prompt_canary.score.judge"] == MeanStats.of([0.5])
    step = report.snapshot(since=120)
    assert step.canary == {"prompt_canary.check.json_valid": ProportionStats(n=4, successes=1)}
    assert step.stable == {}
    assert report.snapshot(until=120).canary["prompt_canary.check.json_valid"].n == 15


def test_report_json_form_is_stable() -> None:
    report = Report(rollout_id="r-1", window_seconds=60).record(
        "stable", "prompt_canary.score.judge", MeanStats.of([0.5, 1.0]), at=1_700_000_001
    )
    assert json.loads(report.model_dump_json()) == {
        "rollout_id": "r-1",
        "window_seconds": 60,
        "stable": {
            "prompt_canary.score.judge": {
                "1699999980": {"kind": "mean", "n": 2, "sum": "1500000", "sum_sq": "1250000000000"}
            }
        },
        "canary": {},
    }
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_report_validation_and_merge_errors() -> None:
    a = Report(rollout_id="r-1", window_seconds=60)
    with pytest.raises(InvalidInputError, match="cannot merge reports of rollouts 'r-1' and 'r-2'"):
        a.merge(Report(rollout_id="r-2", window_seconds=60))
    with pytest.raises(InvalidInputError, match="windows of 60 s and 30 s"):
        a.merge(Report(rollout_id="r-1", window_seconds=30))
    with pytest.raises(ValueError, match="window 90 is not a multiple of window_seconds 60"):
        Report.model_validate(
            {
                "rollout_id": "r",
                "window_seconds": 60,
                "canary": {"a": {"90": {"kind": "proportion", "n": 1, "successes": 1}}},
            }
        )
    with pytest.raises(ValueError, match="windows are off"):
        Report.model_validate(
            {"rollout_id": "r", "canary": {"a": {"60": {"kind": "proportion", "n": 1, "successes": 1}}}}
        )
    with pytest.raises(ValueError, match="mixes proportion and mean"):
        Report.model_validate(
            {
                "rollout_id": "r",
                "window_seconds": 60,
                "canary": {
                    "a": {
                        "60": {"kind": "proportion", "n": 1, "successes": 1},
                        "120": {"kind": "mean", "n": 1, "sum": "1", "sum_sq": "1"},
                    }
                },
            }
        )
    b = a.record("canary", "a", ProportionStats(n=1, successes=1), at=0)
    with pytest.raises(InvalidInputError, match="cannot merge proportion statistics with mean ones"):
        b.merge(a.record("canary", "a", MeanStats.of([1.0]), at=600))


records = st.lists(
    st.tuples(
        st.sampled_from(["stable", "canary"]),
        st.sampled_from(["prompt_canary.check.json_valid", "prompt_canary.check.refusal"]),
        st.integers(min_value=0, max_value=20),
        st.integers(min_value=0, max_value=20),
        st.floats(min_value=0, max_value=600, allow_nan=False),
    ),
    max_size=12,
)


def _report(items: list[tuple[str, str, int, int, float]]) -> Report:
    report = Report(rollout_id="r-9", window_seconds=60)
    for cohort, attribute, n, extra, at in items:
        stats = ProportionStats(n=n + extra, successes=n)
        report = report.record(cohort, attribute, stats, at=at)  # type: ignore[arg-type]
    return report


@settings(max_examples=60, database=None)
@given(records, records, records)
def test_report_merge_is_associative_commutative_and_exact(
    a: list[tuple[str, str, int, int, float]],
    b: list[tuple[str, str, int, int, float]],
    c: list[tuple[str, str, int, int, float]],
) -> None:
    ra, rb, rc = _report(a), _report(b), _report(c)
    assert ra.merge(rb) == rb.merge(ra)
    assert ra.merge(rb).merge(rc) == ra.merge(rb.merge(rc))
    assert ra.merge(rb).merge(rc) == _report(a + b + c)
    assert Report.model_validate_json(ra.model_dump_json()) == ra
