"""The drift detector on simulated traffic: its baseline, its false-alarm rate, its detection of a step.

The A/A run is the issue's horizon: 30 days of one-minute windows at 1,000 calls an hour, a check
that passes 99% of the time, with the rate of false alarms compared to the configured ``alpha``
(the chance, per signal and horizon, of any false alarm).
"""

from __future__ import annotations

import json
import math
import random

import pytest

from otel_prompt_canary.analysis.drift import (
    Baseline,
    DetectorState,
    DriftConfig,
    alternatives,
    judge,
    make_baseline,
)
from otel_prompt_canary.analysis.drift_simulation import check_windows, simulate
from otel_prompt_canary.analysis.policy import Direction
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats
from otel_prompt_canary.errors import InvalidInputError

DAY = 86_400


def test_the_settings_read_and_describe_durations() -> None:
    config = DriftConfig.parse(
        "alpha=0.02, horizon=7d, window=5m, baseline=6h, baseline_samples=500, settle=45s"
    )
    assert config == DriftConfig(
        alpha=0.02,
        horizon_seconds=7 * DAY,
        window_seconds=300,
        baseline_seconds=6 * 3600,
        baseline_samples=500,
        settle_seconds=45,
    )
    assert DriftConfig.parse(config.describe()) == config
    # ln A with A = 2 T / alpha: T windows in the horizon.
    assert config.threshold == pytest.approx(math.log(2 * (7 * DAY / 300) / 0.02))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("alpha=2", "alpha"),
        ("sensitivity=high", "sensitivity"),
        ("window", "window"),
        ("horizon=soon", "horizon"),
        ("baseline_samples=3", "baseline_samples"),
        ("horizon=30s,window=1m", "horizon"),
    ],
)
def test_bad_settings_are_refused_naming_the_part(text: str, names: str) -> None:
    with pytest.raises(InvalidInputError, match=names):
        DriftConfig.parse(text)


def test_a_baseline_with_too_few_samples_gives_no_verdict_and_says_so() -> None:
    config = DriftConfig(baseline_seconds=3600, baseline_samples=1000)
    few = make_baseline(
        ProportionStats(n=400, successes=396),
        harmful=[Direction.DECREASE],
        first_window=0,
        last_window=7200,
        config=config,
    )
    assert few == "no verdict: the baseline holds 400 samples, fewer than the 1000 needed"
    short = make_baseline(
        ProportionStats(n=5000, successes=4950),
        harmful=[Direction.DECREASE],
        first_window=0,
        last_window=600,
        config=config,
    )
    assert isinstance(short, str) and "spans 660 s, shorter than the 3600 s needed" in short
    flat = make_baseline(
        MeanStats.of([3.0] * 2000),
        harmful=[Direction.INCREASE],
        first_window=0,
        last_window=7200,
        config=config,
    )
    assert flat == "no verdict: the baseline shows no spread (every sample has the same value)"


def test_the_baseline_edge_lies_on_the_safe_side_by_the_estimate_uncertainty() -> None:
    config = DriftConfig(alpha=0.01, baseline_seconds=0, baseline_samples=1000)
    baseline = make_baseline(
        ProportionStats(n=10_000, successes=9_900),
        harmful=[Direction.DECREASE],
        first_window=0,
        last_window=60,
        config=config,
    )
    assert isinstance(baseline, Baseline)
    assert baseline.estimate == 0.99
    # One-sided at alpha / 2: z = 2.576, with the regularised variance q (1 - q).
    q = 19_801 / 20_002  # (s + 1/2) / (n + 1)
    assert baseline.margin == pytest.approx(2.5758 * math.sqrt(q * (1 - q) / 10_000), rel=1e-4)
    assert baseline.edge(Direction.DECREASE) == pytest.approx(0.99 - baseline.margin)
    # A check is watched for a drop, at every shift of the grid, in standard deviations.
    options = alternatives(baseline, config)
    assert [o.direction for o in options] == [Direction.DECREASE] * len(config.shifts)
    assert [o.value for o in options] == sorted((o.value for o in options), reverse=True)


def _baseline(config: DriftConfig, p: float = 0.99, n: int = 24_000) -> Baseline:
    made = make_baseline(
        ProportionStats(n=n, successes=round(p * n)),
        harmful=[Direction.DECREASE],
        first_window=0,
        last_window=DAY - 60,
        config=config,
    )
    assert isinstance(made, Baseline)
    return made


def test_a_drop_of_the_seeds_size_is_detected_with_when_it_started() -> None:
    config = DriftConfig()
    baseline = _baseline(config)
    windows = check_windows(
        random.Random(11),
        days=2,
        calls_per_hour=1000,
        window_seconds=60,
        pass_rate=0.99,
        changed_rate=0.94,
        change_after_seconds=DAY,
    )
    state, detection = judge(DetectorState.start(baseline, config), baseline, windows, config=config)
    assert detection is not None
    assert detection.direction is Direction.DECREASE
    assert detection.window_start >= DAY  # nothing before the change
    assert detection.statistic >= config.threshold
    # The CUSUM's excursion began near the change, and the value since then is the new one.
    assert DAY - 3600 <= detection.change_start <= detection.window_start
    assert detection.estimate_since_change is not None and detection.estimate_since_change < 0.97
    assert state.last_window == detection.window_start


def test_judging_in_pieces_carries_the_state_through_json() -> None:
    config = DriftConfig()
    baseline = _baseline(config)
    windows = check_windows(
        random.Random(5),
        days=1,
        calls_per_hour=1000,
        window_seconds=60,
        pass_rate=0.99,
        changed_rate=0.96,
        change_after_seconds=12 * 3600,
    )
    whole, found = judge(DetectorState.start(baseline, config), baseline, windows, config=config)
    state = DetectorState.start(baseline, config)
    pieces = None
    for first in range(0, len(windows), 97):
        state = DetectorState.from_json(json.loads(json.dumps(state.to_json())))
        state, pieces = judge(state, baseline, windows[first : first + 97], config=config)
        if pieces is not None:
            break
    assert found is not None and pieces == found
    assert state.windows == whole.windows and state.samples == whole.samples


def test_a_score_without_a_known_direction_is_watched_both_ways() -> None:
    config = DriftConfig(baseline_seconds=0, baseline_samples=500)
    rng = random.Random(3)
    baseline = make_baseline(
        MeanStats.of(rng.gauss(30, 8) for _ in range(2000)),
        harmful=[Direction.DECREASE, Direction.INCREASE],
        first_window=0,
        last_window=0,
        config=config,
    )
    assert isinstance(baseline, Baseline)
    windows = []
    for minute in range(1, 600):
        values = [rng.gauss(30 if minute < 100 else 36, 8) for _ in range(17)]
        windows.append((minute * 60, 17, sum(values)))
    _, detection = judge(DetectorState.start(baseline, config), baseline, windows, config=config)
    assert detection is not None and detection.direction is Direction.INCREASE
    assert detection.window_start >= 100 * 60


def test_windows_out_of_order_and_a_foreign_state_are_refused() -> None:
    config = DriftConfig()
    baseline = _baseline(config)
    state = DetectorState.start(baseline, config)
    with pytest.raises(InvalidInputError, match="in order"):
        judge(state, baseline, [(120, 17, 17.0), (60, 17, 17.0)], config=config)
    with pytest.raises(InvalidInputError, match="does not match"):
        judge(DetectorState.start(baseline, DriftConfig(shifts=(0.1,))), baseline, [], config=config)
    with pytest.raises(InvalidInputError, match="not a drift detector state"):
        DetectorState.from_json({"log_sr": [0.0]})


def test_a_collapse_in_one_huge_window_alarms_and_its_state_stays_json() -> None:
    config = DriftConfig(baseline_seconds=0)
    baseline = _baseline(config, p=0.9999, n=100_000)
    state, detection = judge(
        DetectorState.start(baseline, config), baseline, [(60, 50_000, 0.0)], config=config
    )
    assert detection is not None and math.isfinite(detection.statistic)
    json.dumps(state.to_json(), allow_nan=False)  # what the store keeps


@pytest.mark.slow
def test_aa_over_thirty_days_at_a_thousand_calls_an_hour_stays_under_the_configured_rate() -> None:
    """A check at 99% that never changes, 30 days at 1,000 calls/hour in one-minute windows, after a
    one-day baseline: false alarms at most ``alpha`` of the runs (here 0.1 per signal and horizon)."""
    config = DriftConfig(alpha=0.1)
    runs = 100
    alarms = 0
    for seed in range(runs):
        run = simulate(config, random.Random(1000 + seed), pass_rate=0.99, days=30, calls_per_hour=1000)
        assert isinstance(run.baseline, Baseline)
        assert run.windows_judged > 28 * 24 * 60  # every minute after the one-day baseline was judged
        alarms += run.false_alarm
    assert alarms <= config.alpha * runs, f"{alarms} false alarms in {runs} runs of 30 days"
