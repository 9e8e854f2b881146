"""Drift detector benchmark: how soon a step change is caught, and how often nothing raises an alarm.

A check passing 99% of the time is called at a steady rate (``--rate``, 1,000 calls an hour by
default) in the detector's one-minute windows, after the default one-day baseline
(:mod:`otel_prompt_canary.analysis.drift_simulation`). Measured, with the detector's default settings
(``alpha`` 0.01 per signal per 30 days):

- **detection delay** of a step down of 1, 2 and 5 percentage points one day after the baseline:
  median and 90th percentile, in samples and in hours, from the first changed call to the end of the
  alarming window, and how many runs caught it within ``--days``;
- **A/A false alarms**: runs of 30 days with no change that raised an alarm, against the configured
  ``alpha``.

The baseline, measured in the same run on the same simulated calls: an hourly fixed-sample test (a
one-sided z-test of each hour against the baseline's value, Bonferroni-corrected over the hours of
the horizon so that its false-alarm guarantee is the detector's), the valid test one would write
without sequential machinery. ``ratio_over_hourly`` is the detector's median delay over the hourly
test's (below 1: sooner).

Under ``eval_run``, the ``eval run`` throughput of :mod:`bench_eval` (cases per second at
concurrency 1, 8 and 32 against the local simulated LLM, and the cost per case over the raw SDK
call), on a golden set of ``--eval-cases`` cases (0 leaves it out).

It prints figures and never asserts. ``--json`` prints one JSON object as the last line. Run:
``.venv/bin/python benchmarks/bench_drift.py [--json] [--runs N] [--aa-runs N] [--eval-cases N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from statistics import NormalDist
from typing import Any

import bench_eval  # this folder: the eval run figures
from otel_prompt_canary.analysis.drift import Baseline, DriftConfig
from otel_prompt_canary.analysis.drift_simulation import check_windows, simulate

PASS_RATE = 0.99
DROPS = (0.01, 0.02, 0.05)
DAY = 86_400


def _hourly_test(
    config: DriftConfig,
    rng: random.Random,
    *,
    days: float,
    rate: float,
    changed_rate: float | None,
    change_after: float | None,
) -> float | None:
    """End (seconds) of the first hour the Bonferroni hourly z-test proves below the baseline, or None."""
    windows = check_windows(
        rng,
        days=days,
        calls_per_hour=rate,
        window_seconds=3600,
        pass_rate=PASS_RATE,
        changed_rate=changed_rate,
        change_after_seconds=change_after,
    )
    baseline_hours = math.ceil(config.baseline_seconds / 3600)
    n0 = sum(n for _, n, _ in windows[:baseline_hours])
    p0 = sum(s for _, _, s in windows[:baseline_hours]) / n0
    hours = config.horizon_seconds / 3600
    # Half of alpha for the detector's part, as the SR detector spends it, split over the horizon's hours.
    z = NormalDist().inv_cdf(1 - config.alpha / 2 / hours)
    variance = max(p0 * (1 - p0), 1e-9)
    for start, n, passed in windows[baseline_hours:]:
        if n and (passed / n - p0) / math.sqrt(variance * (1 / n + 1 / n0)) < -z:
            return float(start + 3600)
    return None


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _steps(config: DriftConfig, runs: int, days: float, rate: float, seed: int) -> list[dict[str, Any]]:
    change_after = config.baseline_seconds + DAY
    out = []
    for drop in DROPS:
        delays_h, delays_n, hourly_h = [], [], []
        for run in range(runs):
            found = simulate(
                config,
                random.Random(seed + run),
                pass_rate=PASS_RATE,
                changed_rate=PASS_RATE - drop,
                change_after_seconds=change_after,
                days=days,
                calls_per_hour=rate,
            )
            if found.delay_seconds is not None and found.delay_samples is not None:
                delays_h.append(found.delay_seconds / 3600)
                delays_n.append(found.delay_samples)
            hourly = _hourly_test(
                config,
                random.Random(seed + run),
                days=days,
                rate=rate,
                changed_rate=PASS_RATE - drop,
                change_after=change_after,
            )
            if hourly is not None and hourly > change_after:
                hourly_h.append((hourly - change_after) / 3600)
        median = statistics.median(delays_h) if delays_h else None
        hourly_median = statistics.median(hourly_h) if hourly_h else None
        out.append(
            {
                "drop_points": round(drop * 100),
                "from": PASS_RATE,
                "to": round(PASS_RATE - drop, 4),
                "runs": runs,
                "detected": len(delays_h),
                "median_delay_samples": statistics.median(delays_n) if delays_n else None,
                "p90_delay_samples": _quantile([float(n) for n in delays_n], 0.9),
                "median_delay_hours": median,
                "p90_delay_hours": _quantile(delays_h, 0.9),
                "hourly_detected": len(hourly_h),
                "hourly_median_delay_hours": hourly_median,
                "ratio_over_hourly": median / hourly_median if median and hourly_median else None,
            }
        )
    return out


def _aa(config: DriftConfig, runs: int, days: float, rate: float, seed: int) -> dict[str, Any]:
    alarms = hourly_alarms = windows = 0
    for run in range(runs):
        found = simulate(
            config, random.Random(seed + run), pass_rate=PASS_RATE, days=days, calls_per_hour=rate
        )
        assert isinstance(found.baseline, Baseline)
        alarms += found.false_alarm
        windows += found.windows_judged
        hourly = _hourly_test(
            config, random.Random(seed + run), days=days, rate=rate, changed_rate=None, change_after=None
        )
        hourly_alarms += hourly is not None
    return {
        "days": days,
        "runs": runs,
        "windows_judged": windows,
        "false_alarms": alarms,
        "false_alarm_rate": alarms / runs,
        "configured_alpha": config.alpha,
        "hourly_false_alarms": hourly_alarms,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per step size (default 20)")
    parser.add_argument("--days", type=float, default=10, help="days simulated per step run (default 10)")
    parser.add_argument("--aa-runs", type=int, default=100, help="A/A runs (default 100)")
    parser.add_argument("--aa-days", type=float, default=30, help="days per A/A run (default 30)")
    parser.add_argument("--rate", type=float, default=1000, help="calls per hour (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument(
        "--eval-cases", type=int, default=32, help="cases of the eval run throughput (0: none; default 32)"
    )
    args = parser.parse_args(argv)

    config = DriftConfig()
    began = time.perf_counter()
    steps = _steps(config, args.runs, args.days, args.rate, args.seed)
    aa = _aa(config, args.aa_runs, args.aa_days, args.rate, args.seed + 10_000)
    figures: dict[str, Any] = {
        "settings": config.describe(),
        "threshold": config.threshold,
        "calls_per_hour": args.rate,
        "steps": steps,
        "aa": aa,
        "seconds": time.perf_counter() - began,
        "python": platform.python_version(),
    }
    print(f"drift detector ({config.describe()}), {args.rate:g} calls/hour, check at {PASS_RATE:.0%}")
    for step in steps:
        hours = step["median_delay_hours"]
        shown = "-" if hours is None else f"{hours:.2f} h ({step['median_delay_samples']:.0f} samples)"
        hourly = step["hourly_median_delay_hours"]
        ratio = step["ratio_over_hourly"]
        hourly_text = "-" if hourly is None else f"{hourly:.2f} h"
        print(
            f"  -{step['drop_points']} points: caught {step['detected']}/{step['runs']}, median delay "
            f"{shown}; hourly z-test {hourly_text}" + ("" if ratio is None else f", ratio {ratio:.2f}")
        )
    print(
        f"  A/A: {aa['false_alarms']} false alarms in {aa['runs']} runs of {aa['days']:g} days "
        f"(configured alpha {aa['configured_alpha']:g}); hourly z-test {aa['hourly_false_alarms']}"
    )
    print(f"  {figures['seconds']:.1f} s")
    if args.eval_cases > 0:
        figures["eval_run"] = bench_eval.measure(cases=args.eval_cases, rounds=1, latency=0.02)
        for concurrency, row in figures["eval_run"]["concurrency"].items():
            print(
                f"eval run, concurrency {concurrency:>2}: {row['eval_cases_per_s']} cases/s, raw SDK "
                f"{row['raw_calls_per_s']} calls/s, overhead {row['overhead_ms_per_case']} ms/case"
            )
    if args.json:
        print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
