"""Samples counted in process, turned into reports: how one process feeds its own rollout controller.

:class:`Observations` counts samples as they happen (one check outcome or score of one cohort) into
windowed, mergeable statistics, and hands them over as :class:`~otel_prompt_canary.analysis.Report`
objects when drained: exactly what an application or the Collector would have reported (it counts with
:class:`~otel_prompt_canary.samples.SampleCounts`, as in-app reports do).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.reports import attribute_of
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX
from otel_prompt_canary.samples import SampleCounts, quantize, window_start

__all__ = ["Observations"]


class Observations:
    """Samples counted per (rollout, cohort, attribute, window); thread-safe."""

    def __init__(self, *, window_seconds: int = 1, clock: Callable[[], float] = time.time) -> None:
        if window_seconds < 1:
            raise InvalidInputError(f"window_seconds must be at least 1, got {window_seconds}")
        self.window_seconds = window_seconds
        self._clock = clock
        self._counts = SampleCounts()

    def observe(
        self, rollout_id: str, cohort: str, signal: str, value: bool | float, *, at: float | None = None
    ) -> None:
        """Count one sample: ``value`` of ``signal`` in ``cohort`` (``stable`` or ``canary``).

        A bool is a check (``json_valid`` counts under ``prompt_canary.check.json_valid``), a number
        a score (``prompt_canary.score.<signal>``); a full attribute name is taken as is.
        """
        if cohort not in ("stable", "canary"):
            raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")
        attribute = attribute_of(signal, value)
        if attribute.startswith(CHECK_PREFIX) and not isinstance(value, bool):
            raise InvalidInputError(f"{attribute} is a check: its samples are True or False")
        if attribute.startswith(SCORE_PREFIX) and isinstance(value, bool):
            raise InvalidInputError(f"{attribute} is a score: its samples are numbers")
        mean = not isinstance(value, bool)
        q = quantize(value) if mean else int(value)
        start = window_start(self._clock() if at is None else at, self.window_seconds)
        if self._counts.add(rollout_id, cohort, start, ((attribute, mean, q),)):
            raise InvalidInputError(f"{attribute} mixes checks and scores in rollout {rollout_id}")

    def drain(self) -> list[Report]:
        """The samples counted since the last drain, as one report per rollout; the count restarts."""
        reports: dict[str, dict[str, dict[str, dict[int, ProportionStats | MeanStats]]]] = {}
        for (rollout_id, cohort, attribute, start), (
            mean,
            n,
            total,
            total_sq,
        ) in self._counts.drain().items():
            stats: ProportionStats | MeanStats = (
                MeanStats(n=n, sum=total, sum_sq=total_sq) if mean else ProportionStats(n=n, successes=total)
            )
            cohorts = reports.setdefault(rollout_id, {"stable": {}, "canary": {}})
            cohorts[cohort].setdefault(attribute, {})[start] = stats
        return [
            Report(
                rollout_id=rollout_id,
                window_seconds=self.window_seconds,
                stable=cohorts["stable"],
                canary=cohorts["canary"],
            )
            for rollout_id, cohorts in reports.items()
        ]
