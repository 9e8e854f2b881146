"""Simulated traffic for the drift detector: how often it false-alarms, how soon it detects a change.

A check of pass rate ``pass_rate`` is called at a steady ``calls_per_hour`` for ``days``; at
``change_after_seconds`` (if any) the pass rate becomes ``changed_rate``. :func:`simulate` builds the
signal's baseline from the first windows, as the control plane does, then runs the detector
(:func:`~otel_prompt_canary.analysis.drift.judge`) over every later window and says whether and when
it alarmed. An A/A run (no change) measures false alarms; a step change measures the detection delay,
in samples and in time, from the first changed call. ``bench_drift.py`` and the test suite use it;
so can anyone checking the detector against their own traffic::

    run = simulate(DriftConfig(), random.Random(1), pass_rate=0.99, changed_rate=0.94,
                   change_after_seconds=86_400, days=3, calls_per_hour=1000)
    run.delay_seconds, run.delay_samples

Failures are drawn as geometric gaps between failing calls, so a month of calls costs a few thousand
random draws, not hundreds of thousands.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from otel_prompt_canary.analysis.drift import Baseline, DetectorState, DriftConfig, judge, make_baseline
from otel_prompt_canary.analysis.policy import Direction
from otel_prompt_canary.analysis.stats import ProportionStats
from otel_prompt_canary.errors import InvalidInputError

__all__ = ["SimulatedRun", "check_windows", "simulate"]


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    """What the detector did on one simulated stream.

    ``alarm_at`` is the start (seconds from the first call) of the window that raised the alarm, None
    without one. An alarm before the change (or in a run without change) is a false alarm. The
    delays count from the first changed call to the end of the alarming window.
    """

    baseline: Baseline | str
    alarm_at: float | None
    change_after_seconds: float | None
    windows_judged: int
    delay_seconds: float | None
    delay_samples: int | None

    @property
    def false_alarm(self) -> bool:
        """An alarm with no change before it."""
        if self.alarm_at is None:
            return False
        return self.change_after_seconds is None or self.alarm_at < self.change_after_seconds


def _failures(rng: random.Random, first: int, last: int, rate: float) -> list[int]:
    """Indexes in ``[first, last)`` of the calls that fail, each with probability ``rate``."""
    if rate <= 0 or first >= last:
        return []
    if rate >= 1:
        return list(range(first, last))
    log_keep = math.log1p(-rate)
    found: list[int] = []
    position = first - 1
    while True:
        # The gap to the next failure is geometric: the failures of independent calls.
        position += int(math.log(1.0 - rng.random()) / log_keep) + 1
        if position >= last:
            return found
        found.append(position)


def check_windows(
    rng: random.Random,
    *,
    days: float,
    calls_per_hour: float,
    window_seconds: int,
    pass_rate: float,
    changed_rate: float | None = None,
    change_after_seconds: float | None = None,
) -> list[tuple[int, int, float]]:
    """The windows ``(start, calls, passed)`` of a check called at a steady rate; starts in seconds from 0."""
    for name, rate in (("pass_rate", pass_rate), ("changed_rate", changed_rate)):
        if rate is not None and not 0 <= rate <= 1:
            raise InvalidInputError(f"{name} must be in [0, 1], got {rate}")
    if days <= 0 or calls_per_hour <= 0 or window_seconds < 1:
        raise InvalidInputError("days, calls_per_hour and window_seconds must be positive")
    spacing = 3600.0 / calls_per_hour
    total = int(days * 86_400 / spacing)
    change = total if change_after_seconds is None else min(total, math.ceil(change_after_seconds / spacing))
    failed = _failures(rng, 0, change, 1.0 - pass_rate)
    after = pass_rate if changed_rate is None else changed_rate
    failed += _failures(rng, change, total, 1.0 - after)

    def window_of(index: int) -> int:
        return int(index * spacing // window_seconds)

    def first_call(window: int) -> int:
        """The first call of ``window`` (``total`` when none), by the rounding ``window_of`` uses."""
        index = max(0, math.ceil(window * window_seconds / spacing) - 1)
        while index < total and window_of(index) < window:
            index += 1
        return min(index, total)

    windows = window_of(total - 1) + 1 if total else 0
    firsts = [first_call(w) for w in range(windows + 1)]
    calls = [firsts[w + 1] - firsts[w] for w in range(windows)]
    passed = [0.0] * windows
    for index in failed:
        passed[window_of(index)] -= 1
    return [(w * window_seconds, n, n + passed[w]) for w, n in enumerate(calls)]


def simulate(
    config: DriftConfig,
    rng: random.Random,
    *,
    pass_rate: float,
    days: float,
    calls_per_hour: float,
    changed_rate: float | None = None,
    change_after_seconds: float | None = None,
) -> SimulatedRun:
    """Baseline then detector over one simulated check; see the module docstring."""
    windows = check_windows(
        rng,
        days=days,
        calls_per_hour=calls_per_hour,
        window_seconds=config.window_seconds,
        pass_rate=pass_rate,
        changed_rate=changed_rate,
        change_after_seconds=change_after_seconds,
    )
    n = successes = 0
    baseline: Baseline | str = "no verdict: the stream ended before the baseline was complete"
    rest: list[tuple[int, int, float]] = []
    for index, (start, calls, passed) in enumerate(windows):
        n, successes = n + calls, successes + int(passed)
        made = make_baseline(
            ProportionStats(n=n, successes=successes),
            harmful=(Direction.DECREASE,),
            first_window=0,
            last_window=start,
            config=config,
        )
        if isinstance(made, Baseline):
            baseline, rest = made, windows[index + 1 :]
            break
        baseline = made
    if not isinstance(baseline, Baseline):
        return SimulatedRun(baseline, None, change_after_seconds, 0, None, None)
    state, detection = judge(DetectorState.start(baseline, config), baseline, rest, config=config)
    if detection is None:
        return SimulatedRun(baseline, None, change_after_seconds, state.windows, None, None)
    alarm_at = float(detection.window_start)
    delay_seconds = delay_samples = None
    if change_after_seconds is not None and alarm_at >= change_after_seconds:
        end = alarm_at + config.window_seconds
        delay_seconds = end - change_after_seconds
        spacing = 3600.0 / calls_per_hour
        delay_samples = int(end // spacing) - math.ceil(change_after_seconds / spacing)
    return SimulatedRun(baseline, alarm_at, change_after_seconds, state.windows, delay_seconds, delay_samples)
