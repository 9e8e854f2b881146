r"""Drift: has a live prompt version's signal moved away from its own baseline? An anytime-valid detector.

A canary compares two cohorts at the same time; drift compares one version with its own past. After a
promotion the live stable version is watched for months, window after window, so the question is not
"is there a difference?" once, but "has something changed?" at every window, for ever. A test that
is valid at a fixed sample size, or even a confidence sequence (:mod:`.sequential`), would sooner or
later fire by chance over such a horizon. What stays controlled is the **false-alarm rate per unit of
time**, and the detector here bounds it.

**Baseline.** The first windows of the version (after its promotion, or a period a person pins) give,
per signal, an estimate ``m0`` and a per-sample variance ``v0`` (:func:`.sequential.cohort_moments`:
the regularised ``q (1 - q)`` of a proportion, the sample variance of a mean). The baseline is only
an estimate, so the detector tests against its conservative edge: ``b = m0 -/+ z * sqrt(v0 / n0)``
with ``z`` the one-sided normal quantile at ``alpha / 2`` (per harmful direction). Whatever the true
value ``m`` is, with probability at least ``1 - alpha / 2`` it lies on the safe side of ``b``. A
baseline with fewer than ``baseline_samples`` samples, shorter than ``baseline_seconds``, or a mean
without spread gives **no verdict**: :func:`make_baseline` says why.

**Detector: a mixture Shiryaev-Roberts e-detector.** Time is cut into windows of ``window_seconds``;
a window with samples is one step ``t``. For each alternative ``k`` (a shift of ``c_k`` baseline
standard deviations past ``b`` in a harmful direction; ``shifts`` gives the ``c_k``, each direction
equally weighted, weights ``w_k`` summing to 1), the window's likelihood ratio ``L_{k,t}`` is:

- proportion (``s`` successes of ``n``): ``p1 = b - c_k sqrt(v0)``,
  ``ln L = s ln(p1 / b) + (n - s) ln((1 - p1) / (1 - b))``, exact for Bernoulli samples;
- mean (window sum ``S`` of ``n`` values): ``d = +/- c_k sqrt(v0)``,
  ``ln L = d (S - n b) / v0 - n d^2 / (2 v0)``, the Gaussian ratio (asymptotic, as the canary judge).

Each alternative keeps the Shiryaev-Roberts statistic ``R_{k,t} = L_{k,t} (1 + R_{k,t-1})``,
``R_{k,0} = 0``, the sum over every possible change time of the likelihood ratio "changed then"
against "no change" (Shiryaev 1963, Roberts 1966). The detector alarms when the mixture
``M_t = sum_k w_k R_{k,t}`` reaches ``A``. This is the SR e-detector of Shin, Ramdas and Rinaldo (2024),
"E-detectors: a nonparametric framework for sequential change detection" (New England Journal of
Statistics in Data Science; arXiv:2203.03532), mixed over a grid of alternatives as they propose.

**Why the rate is controlled.** While nothing changes, every ``L_{k,t}`` has expectation at most 1
(exactly 1 at ``m = b``, less on the safe side of ``b``: the ratio is monotone), so
``E[M_t | past] <= M_{t-1} + 1``: ``M_t - t`` is a supermartingale and ``M`` a non-negative
sub-martingale up to that drift, with ``E[M_T] <= T``. Doob's maximal inequality gives, for any
horizon of ``T`` windows, ``P(max_{t <= T} M_t >= A) <= T / A``. With ``A = T / (alpha / 2)``, the
chance of a false alarm within ``horizon_seconds`` is at most ``alpha / 2`` from the detector, plus
``alpha / 2`` for a baseline edge on the wrong side: **at most ``alpha`` per signal per horizon**,
however often it is looked at, and the expected time to a false alarm (Lorden's ARL) is at least
``A`` windows (Pollak 1987). Windows without samples are not steps, so quiet nights cost nothing.
The threshold, in logs, is ``ln A = ln(2 T / alpha)``: 15.97 for the defaults (``alpha`` 0.01 over 30
days of one-minute windows).

**When and where.** Each alternative also keeps its CUSUM (Page 1954, ``C_t = L_t max(1, C_{t-1})``):
the window where its last excursion above 1 began estimates when the change started, and the samples
since then estimate the value now. A detection carries both, for the alternative whose ``R`` is the
largest.

Everything here is pure and serialisable (:class:`DetectorState` round-trips through JSON), so the
control plane stores a detector between windows and any replica carries on from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from otel_prompt_canary.analysis.policy import Direction, parse_duration
from otel_prompt_canary.analysis.sequential import cohort_moments
from otel_prompt_canary.analysis.stats import MEAN_SCALE, MeanStats, ProportionStats
from otel_prompt_canary.errors import InvalidInputError

__all__ = [
    "DEFAULT_SHIFTS",
    "Alternative",
    "Baseline",
    "Detection",
    "DetectorState",
    "DriftConfig",
    "alternatives",
    "judge",
    "make_baseline",
    "window_sums",
]

#: The alternatives' shifts, in baseline standard deviations: from a 0.5-point drop of a 99% check
#: (0.05 sd) to a collapse (1.6 sd), doubling in between.
DEFAULT_SHIFTS: Final[tuple[float, ...]] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)

#: ``ln R`` of "no evidence yet" (R = 0): far enough below 0 that ``ln(1 + R)`` is exactly 0.
_NO_EVIDENCE: Final = -1e9
#: The largest ``ln`` kept: one window's evidence beyond it alarms anyway, and ``e^700`` stays finite.
_MAX_LOG: Final = 700.0
#: The largest ``ln R`` or ``ln M`` kept (far past any threshold).
_MAX_EVIDENCE: Final = 1e6
#: Proportions closer than this to 0 or 1 make no alternative (their logarithms would blow up).
_EDGE: Final = 1e-9

_KEYS = {
    "alpha": "alpha",
    "horizon": "horizon_seconds",
    "window": "window_seconds",
    "baseline": "baseline_seconds",
    "baseline_samples": "baseline_samples",
    "settle": "settle_seconds",
}
_DURATIONS = frozenset({"horizon", "window", "baseline", "settle"})


class DriftConfig(BaseModel):
    """How the drift detector runs; every signal of every prompt uses the same.

    ``alpha`` bounds the chance that a signal that did not change raises an alarm within
    ``horizon_seconds`` (half for the baseline's uncertainty, half for the detector). Samples are
    judged in windows of ``window_seconds``, each once ``settle_seconds`` have passed after its end
    (reports arrive late). A baseline lasts at least ``baseline_seconds`` and holds at least
    ``baseline_samples`` samples before any verdict.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(0.01, gt=0, lt=1)
    horizon_seconds: float = Field(30 * 86_400.0, gt=0)
    window_seconds: int = Field(60, ge=1, le=86_400)
    # A day: the baseline sees a whole daily cycle of traffic, and is tight enough to tell a one-point drop.
    baseline_seconds: float = Field(86_400.0, ge=0)
    baseline_samples: int = Field(1000, ge=30)
    settle_seconds: float = Field(30.0, ge=0)
    shifts: tuple[float, ...] = Field(DEFAULT_SHIFTS, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if any(not (0 < c <= 10) for c in self.shifts):
            raise ValueError(f"shifts must be in (0, 10] standard deviations, got {list(self.shifts)}")
        if self.horizon_seconds < self.window_seconds:
            raise ValueError(
                f"the horizon ({self.horizon_seconds:g} s) must hold at least one window "
                f"({self.window_seconds} s)"
            )
        return self

    @property
    def horizon_windows(self) -> float:
        """Windows in the horizon: the ``T`` of the false-alarm bound."""
        return self.horizon_seconds / self.window_seconds

    @property
    def threshold(self) -> float:
        """``ln A``: the detector alarms when ``ln M_t`` reaches it; ``A = 2 T / alpha``."""
        return math.log(2.0 * self.horizon_windows / self.alpha)

    def describe(self) -> str:
        """The configuration in the words :meth:`parse` reads."""
        return (
            f"alpha={self.alpha:g},horizon={_seconds(self.horizon_seconds)},"
            f"window={_seconds(self.window_seconds)},baseline={_seconds(self.baseline_seconds)},"
            f"baseline_samples={self.baseline_samples},settle={_seconds(self.settle_seconds)}"
        )

    @classmethod
    def parse(cls, text: str) -> DriftConfig:
        """Read ``alpha=0.01,horizon=30d,window=1m,baseline=1h,baseline_samples=1000,settle=30s``.

        Any subset, in any order; durations are seconds or ``30s``, ``5m``, ``1h``, ``30d``. Raises
        :class:`~otel_prompt_canary.errors.InvalidInputError` naming the part that is wrong.
        """
        values: dict[str, float | int] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, raw = (s.strip() for s in part.partition("="))
            if not sep or name not in _KEYS:
                raise InvalidInputError(
                    f"invalid drift setting {part!r}: use NAME=VALUE with NAME one of {', '.join(_KEYS)}"
                )
            values[_KEYS[name]] = _value(name, raw)
        try:
            return cls.model_validate(values)
        except ValueError as exc:
            raise InvalidInputError(f"invalid drift settings {text!r}: {exc}") from None


def _value(name: str, raw: str) -> float | int:
    if name in _DURATIONS:
        seconds = parse_duration(raw) if not raw.replace(".", "", 1).isdigit() else float(raw)
        if seconds is None or not math.isfinite(seconds):
            raise InvalidInputError(f"invalid drift {name} {raw!r}: give seconds or a duration such as 30m")
        return int(seconds) if name == "window" and seconds == int(seconds) else seconds
    try:
        return int(raw) if name == "baseline_samples" else float(raw)
    except ValueError:
        raise InvalidInputError(f"invalid drift {name} {raw!r}: give a number") from None


def _seconds(value: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


class Baseline(BaseModel):
    """One signal's baseline: what the detector compares every later window with.

    ``estimate`` and ``variance`` (per sample) come from ``n`` samples in the windows from
    ``first_window`` to ``last_window``; ``margin`` is ``z * sqrt(variance / n)``, how far the
    conservative edge lies from the estimate on each harmful side.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["proportion", "mean"]
    n: int = Field(ge=1)
    estimate: float
    variance: float = Field(gt=0)
    margin: float = Field(ge=0)
    harmful: tuple[Direction, ...] = Field(min_length=1, max_length=2)
    first_window: int
    last_window: int

    def edge(self, direction: Direction) -> float:
        """The conservative edge of the baseline on the side ``direction`` moves to."""
        if direction is Direction.DECREASE:
            return self.estimate - self.margin
        return self.estimate + self.margin


@dataclass(frozen=True, slots=True)
class Alternative:
    """One alternative of the mixture: a move of ``shift`` standard deviations in ``direction``."""

    direction: Direction
    shift: float
    #: ``ln L`` of a window = ``a * successes + b * failures`` (proportion) or
    #: ``a * (sum - n * edge) - b * n`` (mean).
    a: float
    b: float
    #: The value the alternative stands for.
    value: float


def make_baseline(
    stats: ProportionStats | MeanStats,
    *,
    harmful: Iterable[Direction],
    first_window: int,
    last_window: int,
    config: DriftConfig,
) -> Baseline | str:
    """The baseline of ``stats`` (samples of the windows ``first_window``..``last_window``), or why
    there is none: too few samples, too short a period, or a mean without spread."""
    directions = tuple(dict.fromkeys(harmful))
    if not directions:
        raise InvalidInputError("a baseline needs at least one harmful direction")
    if stats.n < config.baseline_samples:
        return (
            f"no verdict: the baseline holds {stats.n} samples, fewer than the "
            f"{config.baseline_samples} needed"
        )
    span = last_window + config.window_seconds - first_window
    if span < config.baseline_seconds:
        return (
            f"no verdict: the baseline spans {span} s, shorter than the {config.baseline_seconds:g} s needed"
        )
    moments = cohort_moments(stats)
    if moments is None or not moments.variance > 0:
        return "no verdict: the baseline shows no spread (every sample has the same value)"
    # One-sided at alpha/2 per harmful side: the edge is on the wrong side of the truth at most that often.
    z = NormalDist().inv_cdf(1.0 - config.alpha / (2.0 * len(directions)))
    return Baseline(
        kind=stats.kind,
        n=stats.n,
        estimate=moments.estimate,
        variance=moments.variance,
        margin=z * math.sqrt(moments.variance / moments.n),
        harmful=directions,
        first_window=first_window,
        last_window=last_window,
    )


def alternatives(baseline: Baseline, config: DriftConfig) -> tuple[Alternative, ...]:
    """The mixture's alternatives for ``baseline``: every shift in every harmful direction.

    A proportion's alternative beyond 0 or 1 is left out; the others keep equal weights.
    """
    sd = math.sqrt(baseline.variance)
    out: list[Alternative] = []
    for direction in baseline.harmful:
        sign = -1.0 if direction is Direction.DECREASE else 1.0
        edge = baseline.edge(direction)
        for shift in config.shifts:
            moved = edge + sign * shift * sd
            if baseline.kind == "proportion":
                if not (_EDGE < edge < 1 - _EDGE and _EDGE < moved < 1 - _EDGE):
                    continue
                a = math.log(moved / edge)
                b = math.log((1.0 - moved) / (1.0 - edge))
            else:
                delta = moved - edge
                a = delta / baseline.variance
                b = delta * delta / (2.0 * baseline.variance)
            out.append(Alternative(direction=direction, shift=shift, a=a, b=b, value=moved))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DetectorState:
    """A detector between two windows: per alternative (in :func:`alternatives` order) its ``ln R``,
    its CUSUM ``ln C`` and that excursion's first window and samples; and what was judged so far.

    :meth:`to_json` and :meth:`from_json` carry it between ticks and replicas.
    """

    log_sr: tuple[float, ...]
    log_cusum: tuple[float, ...]
    since: tuple[int | None, ...]
    since_n: tuple[int, ...]
    since_total: tuple[float, ...]
    #: Windows with samples, samples, and their sum (successes of a proportion) judged since the baseline.
    windows: int = 0
    samples: int = 0
    total: float = 0.0
    last_window: int | None = None
    #: ``ln M`` after the last window judged.
    statistic: float = _NO_EVIDENCE

    @classmethod
    def start(cls, baseline: Baseline, config: DriftConfig) -> DetectorState:
        """The state before any window after ``baseline``."""
        k = len(alternatives(baseline, config))
        return cls(
            log_sr=(_NO_EVIDENCE,) * k,
            log_cusum=(_NO_EVIDENCE,) * k,
            since=(None,) * k,
            since_n=(0,) * k,
            since_total=(0.0,) * k,
        )

    @property
    def estimate(self) -> float | None:
        """The signal's value over every sample judged since the baseline."""
        return self.total / self.samples if self.samples else None

    def to_json(self) -> dict[str, JsonValue]:
        """The state as a JSON object."""
        return {
            "log_sr": list(self.log_sr),
            "log_cusum": list(self.log_cusum),
            "since": list(self.since),
            "since_n": list(self.since_n),
            "since_total": list(self.since_total),
            "windows": self.windows,
            "samples": self.samples,
            "total": self.total,
            "last_window": self.last_window,
            "statistic": self.statistic,
        }

    @classmethod
    def from_json(cls, data: object) -> DetectorState:
        """The state :meth:`to_json` wrote; InvalidInputError when it is not one."""
        try:
            state = _StateDocument.model_validate(data)
        except ValueError as exc:
            raise InvalidInputError(f"not a drift detector state: {exc}") from None
        lengths = {len(state.log_sr), len(state.log_cusum), len(state.since), len(state.since_n)}
        if len(lengths | {len(state.since_total)}) != 1:
            raise InvalidInputError("not a drift detector state: its tracks differ in length")
        return cls(
            log_sr=tuple(state.log_sr),
            log_cusum=tuple(state.log_cusum),
            since=tuple(state.since),
            since_n=tuple(state.since_n),
            since_total=tuple(state.since_total),
            windows=state.windows,
            samples=state.samples,
            total=state.total,
            last_window=state.last_window,
            statistic=state.statistic,
        )


class _StateDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    log_sr: list[float]
    log_cusum: list[float]
    since: list[int | None]
    since_n: list[int]
    since_total: list[float]
    windows: int = Field(ge=0)
    samples: int = Field(ge=0)
    total: float
    last_window: int | None
    statistic: float


@dataclass(frozen=True, slots=True)
class Detection:
    """An alarm: the window whose samples took ``ln M`` to the threshold, and what moved."""

    window_start: int
    statistic: float
    threshold: float
    direction: Direction
    shift: float
    #: Estimated start of the change (first window of the leading alternative's CUSUM excursion).
    change_start: int
    #: Samples since ``change_start`` and their value.
    samples_since_change: int
    estimate_since_change: float | None


def window_sums(stats: ProportionStats | MeanStats) -> tuple[int, float]:
    """What :func:`judge` reads of a window's statistics: ``n`` and the sum of the samples
    (successes of a proportion, values of a mean)."""
    if isinstance(stats, ProportionStats):
        return stats.n, float(stats.successes)
    return stats.n, stats.sum / MEAN_SCALE


def judge(
    state: DetectorState,
    baseline: Baseline,
    windows: Iterable[tuple[int, int, float]],
    *,
    config: DriftConfig,
) -> tuple[DetectorState, Detection | None]:
    """Judge windows ``(start, n, sum)`` in order of their start (:func:`window_sums` makes them).

    Returns the state after the last window judged and, when ``ln M`` reached
    :attr:`DriftConfig.threshold`, the :class:`Detection`; judging stops at the first one (the windows
    after it are left). A window without samples is skipped.
    """
    options = alternatives(baseline, config)
    k = len(options)
    if len(state.log_sr) != k:
        raise InvalidInputError("the detector's state does not match its baseline")
    # This loop runs once per window for months of windows: plain floats in R space (not logs), and
    # each window's likelihood ratios computed once per distinct (n, sum), which repeat a lot.
    proportion = baseline.kind == "proportion"
    a = [o.a for o in options]
    b = [o.b for o in options]
    edges = [baseline.edge(o.direction) for o in options]
    sr = [_exp(x) for x in state.log_sr]
    cusum = [_exp(x) for x in state.log_cusum]
    since, since_n, since_total = list(state.since), list(state.since_n), list(state.since_total)
    count, samples, grand, last = state.windows, state.samples, state.total, state.last_window
    limit = k * math.exp(config.threshold)  # sum_k R_k >= k A  <=>  M = sum_k R_k / k >= A
    ratios: dict[tuple[int, float], list[float]] = {}
    detection = None
    span = range(k)
    for start, n, total in windows:
        if last is not None and start <= last:
            raise InvalidInputError(f"windows must be judged in order: {start} comes after {last}")
        if n <= 0:
            continue
        last, count, samples, grand = start, count + 1, samples + n, grand + total
        if not k:  # a proportion stuck at 0 or 1: no alternative can be told apart
            continue
        ratio = ratios.get((n, total))
        if ratio is None:
            if proportion:
                logs = [a[i] * total + b[i] * (n - total) for i in span]
            else:
                logs = [a[i] * (total - n * edges[i]) - b[i] * n for i in span]
            ratio = ratios[(n, total)] = [math.exp(min(x, _MAX_LOG)) for x in logs]
        for i in span:
            # R_t = L_t (1 + R_{t-1}); C_t = L_t max(1, C_{t-1}), whose excursion above 1 began at since.
            sr[i] = ratio[i] * (1.0 + sr[i])
            if cusum[i] <= 1.0:
                cusum[i] = ratio[i]
                since[i], since_n[i], since_total[i] = start, n, total
            else:
                cusum[i] *= ratio[i]
                since_n[i] += n
                since_total[i] += total
        if sum(sr) >= limit:
            lead = max(span, key=sr.__getitem__)
            change_start = since[lead]
            assert change_start is not None
            detection = Detection(
                window_start=start,
                statistic=_log(sum(sr) / k),
                threshold=config.threshold,
                direction=options[lead].direction,
                shift=options[lead].shift,
                change_start=change_start,
                samples_since_change=since_n[lead],
                estimate_since_change=since_total[lead] / since_n[lead] if since_n[lead] else None,
            )
            break
    after = DetectorState(
        log_sr=tuple(_log(x) for x in sr),
        log_cusum=tuple(_log(x) for x in cusum),
        since=tuple(since),
        since_n=tuple(since_n),
        since_total=tuple(since_total),
        windows=count,
        samples=samples,
        total=grand,
        last_window=last,
        statistic=_log(sum(sr) / k) if k else _NO_EVIDENCE,
    )
    return after, detection


def _exp(x: float) -> float:
    return 0.0 if x <= _NO_EVIDENCE else math.exp(min(x, _MAX_LOG))


def _log(x: float) -> float:
    # Capped: overwhelming evidence can overflow R to infinity, which JSON (and the store) cannot hold.
    return min(math.log(x), _MAX_EVIDENCE) if x > 0 else _NO_EVIDENCE
