"""Samples counted into mergeable statistics: the one rounding rule, window starts, a bounded counter.

Whoever counts samples (the rollout controller fed in process, an application's in-app reports)
counts them as the Collector processor does, so that all their statistics merge exactly:

- a check's sample is a bool: it adds 1 to ``n`` and its truth to ``successes``;
- a score's sample is a number ``x``: it adds 1 to ``n``, ``q = quantize(x)`` to ``sum`` and ``q * q``
  to ``sum_sq`` (:func:`quantize`: millionths, rounded half to even, computed in float64);
- a sample counts in the window that holds its time (:func:`window_start`).

:class:`SampleCounts` keeps those sums per (rollout, cohort, attribute, window start) until drained,
under one lock, optionally bounded. ``analysis.stats`` turns the sums into its statistics models.

This module imports nothing but :mod:`otel_prompt_canary.errors`: the pure ``analysis``, the ``loop``
and the application side's instrumentation all count with it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from typing import Final

from otel_prompt_canary.errors import InvalidInputError

__all__ = [
    "MAX_SCORE_MAGNITUDE",
    "MEAN_SCALE",
    "SampleCounts",
    "SeriesKey",
    "Sums",
    "quantize",
    "window_start",
]

#: Score values are stored as integers in units of 1 / MEAN_SCALE (millionths).
MEAN_SCALE: Final = 1_000_000
#: Largest accepted score magnitude; keeps a single quantized value within 64 bits.
MAX_SCORE_MAGNITUDE: Final = 1e12

#: (rollout id, cohort, signal attribute, window start) of one series of samples.
SeriesKey = tuple[str, str, str, int]
#: The sums of one series: (is a mean, n, successes or sum of q, sum of q squared (0 for a check)).
Sums = tuple[bool, int, int, int]


def quantize(value: float) -> int:
    """``value`` in millionths, rounded half to even: the integer a score adds to ``sum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"a score must be a number, got {value!r}")
    if not math.isfinite(value) or abs(value) > MAX_SCORE_MAGNITUDE:
        raise InvalidInputError(
            f"a score must be finite and at most {MAX_SCORE_MAGNITUDE:g} in magnitude, got {value!r}"
        )
    return round(float(value) * MEAN_SCALE)


def window_start(at: float, window_seconds: int) -> int:
    """Start (Unix seconds) of the window holding time ``at``; 0 when windows are off (size 0)."""
    if window_seconds == 0:
        return 0
    if not math.isfinite(at):
        raise InvalidInputError(f"a sample time must be finite, got {at!r}")
    return (math.floor(at) // window_seconds) * window_seconds


class SampleCounts:
    """Sums of samples per (rollout, cohort, attribute, window start), until :meth:`drain`; thread-safe.

    ``max_series`` (None: unbounded) caps the series held at once: a sample that would open one more
    series is dropped, and :meth:`add` says how many were.
    """

    __slots__ = ("_lock", "_series", "max_series")

    def __init__(self, *, max_series: int | None = None) -> None:
        if max_series is not None and max_series < 1:
            raise InvalidInputError(f"max_series must be at least 1, got {max_series}")
        self.max_series = max_series
        self._lock = threading.Lock()
        # key -> [is a mean (0 or 1), n, successes or sum, sum_sq]
        self._series: dict[SeriesKey, list[int]] = {}

    def add(self, rollout_id: str, cohort: str, start: int, samples: Iterable[tuple[str, bool, int]]) -> int:
        """Count ``samples`` of window ``start``: (attribute, is a mean, value), where a check's value
        is 0 or 1 and a score's is its :func:`quantize`. Returns how many were dropped: over
        ``max_series``, or of the other kind than the series' earlier samples."""
        dropped = 0
        limit = self.max_series
        with self._lock:
            series = self._series
            for attribute, mean, value in samples:
                key = (rollout_id, cohort, attribute, start)
                sums = series.get(key)
                if sums is None:
                    if limit is not None and len(series) >= limit:
                        dropped += 1
                        continue
                    sums = series[key] = [int(mean), 0, 0, 0]
                elif sums[0] != mean:
                    dropped += 1
                    continue
                sums[1] += 1
                sums[2] += value
                if mean:
                    sums[3] += value * value
        return dropped

    def drain(self) -> dict[SeriesKey, Sums]:
        """Every series counted since the last drain; the counts start again from nothing."""
        with self._lock:
            series, self._series = self._series, {}
        return {key: (bool(s[0]), s[1], s[2], s[3]) for key, s in series.items()}

    def __len__(self) -> int:
        return len(self._series)
