"""Controller benchmark: what judging one rollout costs as the rollout ages, against a full read.

Every tick (once a second by default), the rollout controller judges each active rollout on all of
its statistics and on those of the current ramp step. A rollout's statistics are stored per window
(60 seconds from the Collector processor), so an old rollout has many: a week is 10,080 windows per
signal and cohort. This benchmark fills an SQLite store with rollouts of several ages (four
signals, three checks and a score, in both cohorts; the current ramp step is the last hour) and
times,
in the same run:

- ``assess``: :func:`otel_prompt_canary.loop.assess`, the controller's whole
  judgement of one rollout (totals kept by the store, the step's windows summed in SQL);
- the baseline ``full_read``: what judging read before the store kept totals, every window of the
  rollout read back (``rollout_reports``) and summed in Python, for all windows and for the step;
- ``report``: storing one typical report (one window, every signal, both cohorts).

It prints the figures and never asserts. ``growth`` is the time at the oldest age over the time at
the youngest: about 1 for a cost that does not grow with the rollout's age. ``--json`` prints one
JSON object with every figure as the last line. Run:
``.venv/bin/python benchmarks/bench_controller.py [--json] [--hours 1,24,168] [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from otel_prompt_canary.analysis import MeanStats, ProportionStats, Report, Snapshot
from otel_prompt_canary.loop import SqlLoopStore, assess, start_rollout
from otel_prompt_canary.registry import PromptSpec, open_store

WINDOW = 60
CHECKS = ("json_valid", "refusal", "truncation")
SCORE = "judge"
#: Windows per stored report while filling: large reports fill the store fastest.
FILL_BATCH = 720
#: The current ramp step's windows: its last hour.
STEP_WINDOWS = 60


def _cohort(starts: range) -> dict[str, dict[int, ProportionStats | MeanStats]]:
    stats: dict[str, dict[int, ProportionStats | MeanStats]] = {
        f"prompt_canary.check.{name}": {s: ProportionStats(n=50, successes=49) for s in starts}
        for name in CHECKS
    }
    stats[f"prompt_canary.score.{SCORE}"] = {
        s: MeanStats(n=12, sum=9_600_000, sum_sq=7_800_000_000_000) for s in starts
    }
    return stats


def _report(rollout_id: str, starts: range) -> Report:
    return Report(
        rollout_id=rollout_id, window_seconds=WINDOW, stable=_cohort(starts), canary=_cohort(starts)
    )


def _one_window(rollout_id: str, start: int) -> Report:
    """A typical report: one window, every signal, both cohorts."""
    return _report(rollout_id, range(start, start + WINDOW, WINDOW))


def _full_read(store: SqlLoopStore, rollout_id: str, since: float) -> tuple[Snapshot, Snapshot]:
    """The baseline: every window read back and summed in Python, for the rollout and its step."""
    reports = store.rollout_reports(rollout_id)
    total, step = Snapshot(), Snapshot()
    for report in reports:
        total = total.merge(report.snapshot())
        step = step.merge(report.snapshot(since=since))
    return total, step


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _measure(hours: float, repeat: int) -> dict[str, Any]:
    windows = max(1, round(hours * 3600 / WINDOW))
    with (
        tempfile.TemporaryDirectory(prefix="bench-controller-") as root,
        open_store(Path(root) / "r.db") as registry,
    ):
        store = SqlLoopStore(registry)
        registry.push(PromptSpec(name="support", template="Answer {{ q }}."))
        registry.push(PromptSpec(name="support", template="Answer {{ q }} in JSON."))
        route = start_rollout(registry, "support", 2, policy=None, actor="bench", reason="bench")
        rollout_id = route.rollout_id
        assert rollout_id is not None
        # The rollout's windows end an hour into its current step: the controller reads all of
        # them for the totals, and the step's hour for readiness, as in a rollout's last step.
        since = assess(registry, store, route).step_started_at.timestamp()
        step = -(-int(since) // WINDOW) * WINDOW
        end = step + min(windows, STEP_WINDOWS) * WINDOW
        first = end - windows * WINDOW
        filled = time.perf_counter()
        for start in range(first, end, FILL_BATCH * WINDOW):
            batch = range(start, min(end, start + FILL_BATCH * WINDOW), WINDOW)
            store.record_report(_report(rollout_id, batch), source="bench")
        fill_s = time.perf_counter() - filled

        assess_ms = _median_ms(lambda: assess(registry, store, route), repeat)
        snapshot_ms = _median_ms(
            lambda: (store.rollout_snapshot(rollout_id), store.rollout_snapshot(rollout_id, since=since)),
            repeat,
        )
        full_ms = _median_ms(lambda: _full_read(store, rollout_id, since), max(1, repeat // 2))
        # Both ways must find the same totals, or the comparison means nothing.
        assert _full_read(store, rollout_id, since) == (
            store.rollout_snapshot(rollout_id),
            store.rollout_snapshot(rollout_id, since=since),
        )
        after = iter(range(end, end + 1000 * WINDOW, WINDOW))
        report_ms = _median_ms(
            lambda: store.record_report(_one_window(rollout_id, next(after)), source="b"), repeat
        )
    rows = windows * 2 * (len(CHECKS) + 1)
    return {
        "hours": hours,
        "windows": windows,
        "rows": rows,
        "fill_s": round(fill_s, 2),
        "assess_ms": round(assess_ms, 3),
        "snapshots_ms": round(snapshot_ms, 3),
        "full_read_ms": round(full_ms, 3),
        "full_read_over_snapshots": round(full_ms / snapshot_ms, 2),
        "report_ms": round(report_ms, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", default="1,24,168", help="rollout ages to measure, comma-separated")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per figure")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON line")
    args = parser.parse_args(argv)
    ages = sorted(float(h) for h in args.hours.split(","))
    results = [_measure(hours, args.repeat) for hours in ages]
    young, old = results[0], results[-1]
    figures = {
        "python": platform.python_version(),
        "window_seconds": WINDOW,
        "signals": len(CHECKS) + 1,
        "ages": results,
        "growth_assess": round(old["assess_ms"] / young["assess_ms"], 2),
        "growth_full_read": round(old["full_read_ms"] / young["full_read_ms"], 2),
        "growth_report": round(old["report_ms"] / young["report_ms"], 2),
    }
    header = ("age", "rows", "assess", "snapshots", "full read", "ratio", "report")
    print("".join(f"{h:>{w}}" for h, w in zip(header, (8, 9, 11, 11, 11, 8, 10), strict=True)))
    for r in results:
        print(
            f"{r['hours']:>7g}h {r['rows']:>8} {r['assess_ms']:>8.2f}ms {r['snapshots_ms']:>8.2f}ms "
            f"{r['full_read_ms']:>8.1f}ms {r['full_read_over_snapshots']:>6.1f}x {r['report_ms']:>7.2f}ms"
        )
    print(
        f"growth from {young['hours']:g}h to {old['hours']:g}h: assess {figures['growth_assess']}x, "
        f"full read {figures['growth_full_read']}x, one report {figures['growth_report']}x"
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
