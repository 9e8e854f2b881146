"""Mergeable sufficient statistics of the signals, per rollout, cohort, signal and time window.

Every process that sees LLM calls (an application, a Collector gateway, the control plane) keeps
partial statistics and ships them as JSON; merging partials gives exactly the statistics of all the
samples, whatever the order and grouping (merge is associative and commutative, with no rounding):

- :class:`ProportionStats` of a boolean check: ``n`` samples, ``successes`` of them True.
- :class:`MeanStats` of a numeric score: ``n`` samples, ``sum`` and ``sum_sq`` of the values in
  millionths. Each value is rounded once to a multiple of 10^-6 (``round half to even`` of
  ``value * 1e6`` computed in float64) and summed as an integer, so sums never lose precision and
  merges are exact. Sums can exceed 64 bits: JSON carries them as decimal strings. (The rounding,
  :func:`quantize`, and :func:`window_start` live in :mod:`otel_prompt_canary.samples`, which the
  application side counts with too.)

JSON forms (field names are a public contract shared with the Collector processor)::

    {"kind": "proportion", "n": 200, "successes": 197}
    {"kind": "mean", "n": 3, "sum": "2100000", "sum_sq": "1550000000000"}

A :class:`Snapshot` holds the totals the judge reads: per cohort (``stable``, ``canary``), per signal
attribute (``prompt_canary.check.json_valid``...). A :class:`Report` is what processes exchange
(``/v1/reports``): the same, split into time windows keyed by their start in Unix seconds, so a
caller can total any range of windows, such as the current ramp step::

    {"rollout_id": "r-42", "window_seconds": 60,
     "stable": {"prompt_canary.check.json_valid": {"1700000040": {"kind": "proportion", ...}}},
     "canary": {...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.samples import MAX_SCORE_MAGNITUDE, MEAN_SCALE, quantize, window_start

__all__ = [
    "MAX_SCORE_MAGNITUDE",
    "MEAN_SCALE",
    "Cohort",
    "MeanStats",
    "ProportionStats",
    "Report",
    "Snapshot",
    "Stats",
    "empty_stats",
    "merge_stats",
    "quantize",
    "window_start",
]

Cohort = Literal["stable", "canary"]

#: An integer that JSON carries as a decimal string (it may not fit in 64 bits).
BigInt = Annotated[int, PlainSerializer(str, return_type=str, when_used="json")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProportionStats(_Frozen):
    """Outcomes of a boolean check: ``n`` samples, ``successes`` of them True."""

    kind: Literal["proportion"] = "proportion"
    n: int = Field(0, ge=0)
    successes: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.successes > self.n:
            raise ValueError(f"successes ({self.successes}) cannot exceed n ({self.n})")
        return self

    @classmethod
    def of(cls, outcomes: Iterable[bool]) -> ProportionStats:
        """Statistics of ``outcomes``."""
        n = successes = 0
        for outcome in outcomes:
            n += 1
            successes += bool(outcome)
        return cls(n=n, successes=successes)

    def add(self, outcome: bool) -> ProportionStats:
        """These statistics plus one outcome."""
        return ProportionStats(n=self.n + 1, successes=self.successes + bool(outcome))

    def merge(self, other: ProportionStats) -> ProportionStats:
        """Statistics of both sample sets."""
        if not isinstance(other, ProportionStats):
            raise InvalidInputError(f"cannot merge proportion statistics with {other.kind} ones")
        return ProportionStats(n=self.n + other.n, successes=self.successes + other.successes)

    @property
    def estimate(self) -> float | None:
        """The proportion of True, or None without samples."""
        return self.successes / self.n if self.n else None


class MeanStats(_Frozen):
    """Values of a numeric score: ``n`` samples, their ``sum`` and ``sum_sq`` in millionths.

    ``sum`` is the sum of the quantized values ``q = quantize(x)``, ``sum_sq`` the sum of ``q**2``
    (so in units of 10^-12). Build them with :meth:`of` or :meth:`add`.
    """

    kind: Literal["mean"] = "mean"
    n: int = Field(0, ge=0)
    sum: BigInt = 0
    sum_sq: BigInt = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.n == 0 and (self.sum or self.sum_sq):
            raise ValueError("sum and sum_sq must be 0 when n is 0")
        # Cauchy-Schwarz: n * sum(q^2) >= (sum q)^2 holds for every real set of values.
        if self.n * self.sum_sq < self.sum * self.sum:
            raise ValueError("inconsistent moments: n * sum_sq must be at least sum ** 2")
        return self

    @classmethod
    def of(cls, values: Iterable[float]) -> MeanStats:
        """Statistics of ``values``."""
        n = total = total_sq = 0
        for value in values:
            q = quantize(value)
            n += 1
            total += q
            total_sq += q * q
        return cls(n=n, sum=total, sum_sq=total_sq)

    def add(self, value: float) -> MeanStats:
        """These statistics plus one value."""
        q = quantize(value)
        return MeanStats(n=self.n + 1, sum=self.sum + q, sum_sq=self.sum_sq + q * q)

    def merge(self, other: MeanStats) -> MeanStats:
        """Statistics of both sample sets."""
        if not isinstance(other, MeanStats):
            raise InvalidInputError(f"cannot merge mean statistics with {other.kind} ones")
        return MeanStats(n=self.n + other.n, sum=self.sum + other.sum, sum_sq=self.sum_sq + other.sum_sq)

    @property
    def estimate(self) -> float | None:
        """The mean value (correctly rounded from the exact sums), or None without samples."""
        return self.sum / (self.n * MEAN_SCALE) if self.n else None

    @property
    def variance(self) -> float | None:
        """The sample variance (divisor n - 1), exact then rounded once; None below 2 samples."""
        if self.n < 2:
            return None
        return (self.n * self.sum_sq - self.sum * self.sum) / (
            self.n * (self.n - 1) * MEAN_SCALE * MEAN_SCALE
        )


Stats = Annotated[ProportionStats | MeanStats, Field(discriminator="kind")]


def empty_stats(kind: str) -> ProportionStats | MeanStats:
    """Statistics of no samples of ``kind`` (``proportion`` or ``mean``)."""
    if kind == "proportion":
        return ProportionStats()
    if kind == "mean":
        return MeanStats()
    raise InvalidInputError(f"unknown statistics kind {kind!r}: use 'proportion' or 'mean'")


def merge_stats(
    a: ProportionStats | MeanStats, b: ProportionStats | MeanStats
) -> ProportionStats | MeanStats:
    """Statistics of both sample sets; both must be of the same kind."""
    if isinstance(a, ProportionStats) and isinstance(b, ProportionStats):
        return a.merge(b)
    if isinstance(a, MeanStats) and isinstance(b, MeanStats):
        return a.merge(b)
    raise InvalidInputError(f"cannot merge {a.kind} statistics with {b.kind} statistics")


def _merge_maps(
    a: Mapping[str, ProportionStats | MeanStats],
    b: Mapping[str, ProportionStats | MeanStats],
    where: str,
) -> dict[str, ProportionStats | MeanStats]:
    merged = dict(a)
    for key, stats in b.items():
        mine = merged.get(key)
        if mine is None:
            merged[key] = stats
        elif mine.kind != stats.kind:
            raise InvalidInputError(
                f"{where} {key!r}: cannot merge {mine.kind} statistics with {stats.kind} statistics"
            )
        else:
            merged[key] = merge_stats(mine, stats)
    return merged


class Snapshot(_Frozen):
    """Total statistics per cohort and signal attribute: what the judge reads."""

    stable: dict[str, Stats] = Field(default_factory=dict)
    canary: dict[str, Stats] = Field(default_factory=dict)

    def cohort(self, cohort: Cohort) -> Mapping[str, ProportionStats | MeanStats]:
        """The statistics of one cohort, by signal attribute."""
        if cohort == "stable":
            return self.stable
        if cohort == "canary":
            return self.canary
        raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")

    def merge(self, other: Snapshot) -> Snapshot:
        """Totals of both snapshots."""
        return Snapshot(
            stable=_merge_maps(self.stable, other.stable, "stable signal"),
            canary=_merge_maps(self.canary, other.canary, "canary signal"),
        )

    def add(self, cohort: Cohort, attribute: str, stats: ProportionStats | MeanStats) -> Snapshot:
        """This snapshot with ``stats`` merged into ``cohort``'s ``attribute``."""
        part = {attribute: stats}
        if cohort == "stable":
            return self.merge(Snapshot(stable=part))
        if cohort == "canary":
            return self.merge(Snapshot(canary=part))
        raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")


Series = dict[int, Stats]


class Report(_Frozen):
    """Windowed statistics of one rollout, per cohort, per signal attribute, per window start.

    ``window_seconds`` is the window size (0: one window keyed 0 for all time). Reports of the same
    rollout and window size merge exactly, in any order.
    """

    rollout_id: str = Field(min_length=1)
    window_seconds: int = Field(0, ge=0)
    stable: dict[str, Series] = Field(default_factory=dict)
    canary: dict[str, Series] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for cohort in ("stable", "canary"):
            series_map: dict[str, Series] = getattr(self, cohort)
            for attribute, series in series_map.items():
                kinds = {stats.kind for stats in series.values()}
                if len(kinds) > 1:
                    raise ValueError(f"{cohort} signal {attribute!r} mixes proportion and mean statistics")
                for start in series:
                    if self.window_seconds == 0 and start != 0:
                        raise ValueError(
                            f"{cohort} signal {attribute!r}: window {start} given but windows are "
                            "off (window_seconds 0 uses the single window 0)"
                        )
                    if self.window_seconds and start % self.window_seconds:
                        raise ValueError(
                            f"{cohort} signal {attribute!r}: window {start} is not a multiple of "
                            f"window_seconds {self.window_seconds}"
                        )
        return self

    def merge(self, other: Report) -> Report:
        """Statistics of both reports; they must share rollout id and window size."""
        if other.rollout_id != self.rollout_id:
            raise InvalidInputError(
                f"cannot merge reports of rollouts {self.rollout_id!r} and {other.rollout_id!r}"
            )
        if other.window_seconds != self.window_seconds:
            raise InvalidInputError(
                f"cannot merge reports with windows of {self.window_seconds} s and {other.window_seconds} s"
            )
        return Report(
            rollout_id=self.rollout_id,
            window_seconds=self.window_seconds,
            stable=_merge_series(self.stable, other.stable, "stable"),
            canary=_merge_series(self.canary, other.canary, "canary"),
        )

    def record(
        self,
        cohort: Cohort,
        attribute: str,
        stats: ProportionStats | MeanStats,
        *,
        at: float,
    ) -> Report:
        """This report with ``stats`` merged into the window holding time ``at`` (Unix seconds)."""
        if cohort not in ("stable", "canary"):
            raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")
        part: dict[str, Series] = {attribute: {window_start(at, self.window_seconds): stats}}
        empty: dict[str, Series] = {}
        other = Report(
            rollout_id=self.rollout_id,
            window_seconds=self.window_seconds,
            stable=part if cohort == "stable" else empty,
            canary=part if cohort == "canary" else empty,
        )
        return self.merge(other)

    def snapshot(self, *, since: float | None = None, until: float | None = None) -> Snapshot:
        """Totals over the windows that start at or after ``since`` and before ``until``.

        A window is counted whole or not at all, by its start: pass the start of the current ramp
        step as ``since`` to count the step's samples (a window straddling the step start is left
        out, which only delays readiness by at most one window).
        """

        def keep(start: int) -> bool:
            return (since is None or start >= since) and (until is None or start < until)

        def totals(series_map: Mapping[str, Series]) -> dict[str, ProportionStats | MeanStats]:
            out: dict[str, ProportionStats | MeanStats] = {}
            for attribute, series in series_map.items():
                for start in sorted(series):
                    if keep(start):
                        mine = out.get(attribute)
                        stats = series[start]
                        out[attribute] = stats if mine is None else merge_stats(mine, stats)
            return out

        return Snapshot(stable=totals(self.stable), canary=totals(self.canary))


def _merge_series(a: Mapping[str, Series], b: Mapping[str, Series], cohort: str) -> dict[str, Series]:
    merged = {attribute: dict(series) for attribute, series in a.items()}
    for attribute, series in b.items():
        mine = merged.setdefault(attribute, {})
        kinds = {s.kind for s in mine.values()} | {s.kind for s in series.values()}
        if len(kinds) > 1:
            raise InvalidInputError(
                f"{cohort} signal {attribute!r}: cannot merge proportion statistics with mean ones"
            )
        for start, stats in series.items():
            current = mine.get(start)
            mine[start] = stats if current is None else merge_stats(current, stats)
    return merged
