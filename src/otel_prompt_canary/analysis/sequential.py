r"""The anytime-valid test: a normal mixture centred on a regression, for the canary or its gap to stable.

Checking a fixed-sample test (a z-test at 95%, say) after every new sample inflates false alarms: over
a long rollout, chance fluctuations cross any fixed threshold sooner or later, and repeated checks
find them. A *confidence sequence* is instead valid at every sample size at once: with probability at
least ``1 - alpha`` it contains the true value at all times simultaneously, so the judge may look after
every sample and stop at the first breach without inflating false rollbacks.

Each rule is a mixture sequential probability ratio test (Robbins 1970; Howard, Ramdas, McAuliffe and
Sekhon 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of Statistics
49(2)) in its asymptotic form: the contrast's estimate with its estimated variance, as in the
asymptotic confidence sequences of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2021,
arXiv:2103.06476) and the mSPRT of Johari, Koomen, Pekelis and Walsh (2017, "Peeking at A/B tests").
What makes it sharp is *where the mixture puts its weight*: on harmful shifts around the regression
the test is tuned to prove, not symmetrically around no change. With all its weight on one shift the
test is Wald's SPRT, the fastest test of that shift; the spread keeps it finding every regression,
smaller or larger, eventually. Every quantity below is a closed form in ``+ - * / sqrt ln`` so that
other implementations (the Go Collector processor, Prometheus rules) reproduce it operation for
operation.

**Per cohort** (from :mod:`otel_prompt_canary.analysis.stats`), with ``n`` samples:

- proportion with ``s`` successes: estimate ``p = s / n``; variance ``v = q * (1 - q)`` with
  ``q = (2 s + 1) / (2 n + 2)``, that is ``(s + 1/2) / (n + 1)``: half a pseudo-success and half a
  pseudo-failure (the mean of Jeffreys' ``Beta(1/2, 1/2)`` posterior) keep the variance away from 0
  while every sample so far agrees, and overstate a rare outcome's variance half as much as whole
  pseudo-counts (Agresti and Caffo 2000) would: with 1% failures, 250 samples and 2.5 failures, by
  19% instead of 38%, and the test then needs proportionally fewer samples;
- mean with integer moments ``S, Q`` in millionths (``n >= 2``): estimate ``S / (n * 10^6)``;
  variance ``(n*Q - S^2) / (n*(n-1)*10^12)``, computed exactly and rounded once.

**Pooled variance** ``v_pooled``: the same per-cohort formula applied to both cohorts' statistics
merged (``s`` and ``n``, or ``S``, ``Q`` and ``n``, added up).

**Contrast** ``D``, its variance ``V``, and ``T``, the variance it would have with ``target_samples``
(``N``) samples in each compared cohort:

- relative rule with a ``margin``: ``D = p_canary - p_stable``; with ``u = max(v_canary, v_pooled)``,
  ``V = u / n_canary + v_stable / n_stable`` and ``T = (u + v_stable) / N``. The canary's variance is
  floored at the pooled one: early in a rollout the canary has few samples, and a signal whose values
  are rarely far from typical (a score that is mostly 0) shows no spread in them yet; the floor is
  exact when the cohorts agree and only conservative when they do not;
- relative rule with a ``ratio`` (count data: failures or events per call): ``b`` is the rate of bad
  outcomes, ``1 - p`` for a proportion harmful when it decreases, ``p`` for one harmful when it
  increases, the mean for a score counting events per call (harmful when it increases);
  ``D = b_canary - ratio * b_stable``; with ``u = max(v_canary, ratio * v_pooled)`` (under the null,
  counts in the canary vary ``ratio`` times as much as stable's), ``V = u / n_canary + ratio^2 *
  v_stable / n_stable`` and ``T = (u + ratio^2 * v_stable) / N``; the rule's limit is 0 and its
  harmful direction is ``increase``. This is the rate-ratio test of count data in Lindon, Sanden and
  Shirikian (2022), "Rapid Regression Detection in Software Deployments through Sequential Testing"
  (KDD '22), on the rates' normal approximation: their exact conditional test needs a fixed traffic
  split, and a ramp changes it;
- absolute rule: ``D = p_canary``, ``V = v_canary / n_canary``, ``T = v_canary / N``.

Whatever the ramp does to the traffic split, the score ``(limit - D) / V`` is, in the information
``1 / V``, a Brownian motion with drift (its increments are independent): the canonical joint
distribution of group-sequential tests. Each rule's test is a mixture of its likelihood ratios.

**Mixture.** With ``a`` the rule's share of alpha and ``L = ln(1/a)``, the harmful shift ``delta`` (how
far the true contrast lies past the tested value on the harmful side) is mixed over a normal
distribution of centre ``m`` and standard deviation ``m / 4``::

    m^2 = 2 L T,     t2 = m^2 / 16

``m`` is the shift whose SPRT has its lowest boundary when each cohort has ``N`` samples: the
regression the test proves fastest around ``target_samples``.

**Statistic.** For a tested value at distance ``d`` from ``D`` on the harmful side, the mixture
likelihood ratio is, in closed form::

    ln Lambda(d) = (t2 d^2 + 2 m d V - m^2 V) / (2 V (V + t2)) - ln((V + t2) / V) / 2

For every tested value, ``Lambda`` is a non-negative martingale of mean 1 while the truth is at that
value, so by Ville's inequality it ever reaches ``1 / a`` with probability at most ``a``: the values
where ``Lambda < 1 / a`` form a ``(1 - a)`` confidence sequence.

**Radius**: its end on the harmful side lies at ``d = r``, the positive root of
``ln Lambda(d) = L``, a quadratic ``t2 d^2 + 2 m V d - K = 0``::

    K = m^2 V + V (V + t2) (2 L + ln((V + t2) / V))
    r = (sqrt(V^2 + K / 16) - V) * 16 / m

(``K >= 2 L V^2``, so the subtraction loses at most a few bits.)

**Decision** against the rule's ``limit`` (``-margin``/``+margin`` for a relative rule whose harmful
direction is decrease/increase, ``0`` for a ratio rule, ``threshold`` for an absolute rule):

- harmful ``decrease``: ``bound = D + r`` (upper bound); breach iff ``bound < limit``;
- harmful ``increase``: ``bound = D - r`` (lower bound); breach iff ``bound > limit``.

The verdict's ``statistic`` is ``ln Lambda`` at the limit with the estimate clipped to the harmful
side of it, ``d = max(0, limit - D)`` (decrease) or ``max(0, D - limit)`` (increase); it exceeds
``ln(1/a)`` exactly when the bound crosses the limit. The guarantee is asymptotic (a normal
approximation with estimated variances), hence the policy's ``warmup_samples`` before any breach;
the test suite measures the false-breach rate by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from otel_prompt_canary.analysis.policy import Direction
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, merge_stats
from otel_prompt_canary.errors import InvalidInputError

__all__ = [
    "MIXTURE_SPREAD",
    "CohortMoments",
    "SequentialTest",
    "cohort_moments",
    "compare_rates",
    "compare_to_stable",
    "compare_to_threshold",
    "confidence_radius",
    "log_mixture_ratio",
    "mixture_centre",
    "mixture_test",
    "proportion_moments",
]

#: The mixture's standard deviation as a share of its centre: all weight on the centre would be
#: Wald's SPRT, blind to regressions below half of it; a quarter keeps every regression provable.
MIXTURE_SPREAD: Final = 0.25


@dataclass(frozen=True, slots=True)
class CohortMoments:
    """What the test uses of one cohort: sample count, estimate and per-sample variance."""

    n: int
    estimate: float
    variance: float


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """The outcome of one sequential test of a contrast against a rule's limit.

    ``target_variance`` is the contrast's variance at ``target_samples`` samples per cohort and
    ``centre`` the harmful shift the mixture is centred on (see the module docstring).
    """

    estimate: float
    variance: float
    target_variance: float
    centre: float
    limit: float
    radius: float
    bound: float
    statistic: float
    threshold: float
    breach: bool


def proportion_moments(n: int, successes: int) -> CohortMoments:
    """Moments of a proportion: ``s / n`` and the regularised variance ``q (1 - q)``."""
    if n < 1:
        raise InvalidInputError("a proportion needs at least one sample")
    # Exact integers, one correctly rounded division: what Go and Prometheus compute too.
    q = (2 * successes + 1) / (2 * n + 2)
    return CohortMoments(n=n, estimate=successes / n, variance=q * (1.0 - q))


def cohort_moments(stats: ProportionStats | MeanStats) -> CohortMoments | None:
    """Moments of ``stats``, or None when there are too few samples (0, or 1 for a mean)."""
    if isinstance(stats, ProportionStats):
        return proportion_moments(stats.n, stats.successes) if stats.n else None
    estimate, variance = stats.estimate, stats.variance
    if estimate is None or variance is None:
        return None
    return CohortMoments(n=stats.n, estimate=estimate, variance=variance)


def _log_inverse(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
    return -math.log(alpha)


def _per_target(variance: float, target_samples: int) -> float:
    """A per-sample variance as the variance of an estimate from ``target_samples`` samples."""
    if target_samples < 1:
        raise InvalidInputError(f"target_samples must be at least 1, got {target_samples}")
    return variance / target_samples


def mixture_centre(alpha: float, target_variance: float) -> float:
    """The harmful shift the mixture is centred on: ``sqrt(2 ln(1/alpha) * target_variance)``."""
    return math.sqrt(2.0 * _log_inverse(alpha) * target_variance)


def confidence_radius(variance: float, target_variance: float, alpha: float) -> float:
    """Distance from the estimate to the confidence sequence's end on the harmful side.

    ``variance`` is the contrast's variance now, ``target_variance`` at ``target_samples``; +inf
    when either is not positive (see the module docstring).
    """
    log_inv = _log_inverse(alpha)
    if not (variance > 0 and target_variance > 0):
        return math.inf
    m2 = 2.0 * log_inv * target_variance
    t2 = MIXTURE_SPREAD * MIXTURE_SPREAD * m2
    k = m2 * variance + variance * (variance + t2) * (2.0 * log_inv + math.log((variance + t2) / variance))
    spread2 = MIXTURE_SPREAD * MIXTURE_SPREAD
    return (math.sqrt(variance * variance + spread2 * k) - variance) / (spread2 * math.sqrt(m2))


def log_mixture_ratio(distance: float, variance: float, target_variance: float, alpha: float) -> float:
    """``ln Lambda`` for a tested value ``distance`` past the estimate on the harmful side."""
    m2 = 2.0 * _log_inverse(alpha) * target_variance
    t2 = MIXTURE_SPREAD * MIXTURE_SPREAD * m2
    numerator = t2 * distance * distance + 2.0 * math.sqrt(m2) * distance * variance - m2 * variance
    return numerator / (2.0 * variance * (variance + t2)) - 0.5 * math.log((variance + t2) / variance)


def mixture_test(
    estimate: float,
    variance: float,
    target_variance: float,
    *,
    limit: float,
    harmful: Direction,
    alpha: float,
) -> SequentialTest | None:
    """Test whether the contrast ``estimate`` (variance ``variance``) is proven past ``limit``.

    ``target_variance`` is the contrast's variance at ``target_samples`` samples per cohort: it
    centres the mixture. Returns None when no spread has been observed yet (``variance`` or
    ``target_variance`` is 0): nothing can be proven then.
    """
    if not (variance > 0 and target_variance > 0):
        return None
    radius = confidence_radius(variance, target_variance, alpha)
    if harmful is Direction.DECREASE:
        bound = estimate + radius
        breach = bound < limit
        distance = max(0.0, limit - estimate)
    else:
        bound = estimate - radius
        breach = bound > limit
        distance = max(0.0, estimate - limit)
    return SequentialTest(
        estimate=estimate,
        variance=variance,
        target_variance=target_variance,
        centre=mixture_centre(alpha, target_variance),
        limit=limit,
        radius=radius,
        bound=bound,
        statistic=log_mixture_ratio(distance, variance, target_variance, alpha),
        threshold=_log_inverse(alpha),
        breach=breach,
    )


def _both(
    canary: ProportionStats | MeanStats, stable: ProportionStats | MeanStats
) -> tuple[CohortMoments, CohortMoments, CohortMoments] | None:
    c, s = cohort_moments(canary), cohort_moments(stable)
    pooled = cohort_moments(merge_stats(canary, stable))
    if c is None or s is None or pooled is None:
        return None
    return c, s, pooled


def compare_to_stable(
    canary: ProportionStats | MeanStats,
    stable: ProportionStats | MeanStats,
    *,
    harmful: Direction,
    margin: float,
    alpha: float,
    target_samples: int,
) -> SequentialTest | None:
    """Is the canary proven worse than stable by more than ``margin``? None without enough data."""
    moments = _both(canary, stable)
    if moments is None:
        return None
    c, s, pooled = moments
    floored = max(c.variance, pooled.variance)
    return mixture_test(
        c.estimate - s.estimate,
        floored / c.n + s.variance / s.n,
        _per_target(floored + s.variance, target_samples),
        limit=-margin if harmful is Direction.DECREASE else margin,
        harmful=harmful,
        alpha=alpha,
    )


def _bad_rate(stats: ProportionStats | MeanStats, moments: CohortMoments, harmful: Direction) -> float:
    """The rate of bad outcomes a ratio rule compares: failures (or True outcomes) or events per call."""
    if isinstance(stats, ProportionStats):
        return 1.0 - moments.estimate if harmful is Direction.DECREASE else moments.estimate
    if harmful is Direction.DECREASE:
        raise InvalidInputError(
            "a ratio rule compares rates of bad outcomes: a score it judges must count events per "
            "call and be harmful when it increases"
        )
    return moments.estimate


def compare_rates(
    canary: ProportionStats | MeanStats,
    stable: ProportionStats | MeanStats,
    *,
    harmful: Direction,
    ratio: float,
    alpha: float,
    target_samples: int,
) -> SequentialTest | None:
    """Is the canary's rate of bad outcomes proven above ``ratio`` times stable's? None without data.

    ``harmful`` is the signal's: for a proportion harmful when it decreases, the bad outcomes are its
    failures. The test's contrast is ``rate_canary - ratio * rate_stable``, harmful when it increases
    past 0.
    """
    if not (math.isfinite(ratio) and ratio > 0):
        raise InvalidInputError(f"ratio must be a positive number, got {ratio}")
    moments = _both(canary, stable)
    if moments is None:
        return None
    c, s, pooled = moments
    floored = max(c.variance, ratio * pooled.variance)
    stable_part = ratio * ratio * s.variance
    return mixture_test(
        _bad_rate(canary, c, harmful) - ratio * _bad_rate(stable, s, harmful),
        floored / c.n + stable_part / s.n,
        _per_target(floored + stable_part, target_samples),
        limit=0.0,
        harmful=Direction.INCREASE,
        alpha=alpha,
    )


def compare_to_threshold(
    canary: ProportionStats | MeanStats,
    *,
    harmful: Direction,
    threshold: float,
    alpha: float,
    target_samples: int,
) -> SequentialTest | None:
    """Is the canary proven on the harmful side of ``threshold``? None without enough data."""
    c = cohort_moments(canary)
    if c is None:
        return None
    return mixture_test(
        c.estimate,
        c.variance / c.n,
        _per_target(c.variance, target_samples),
        limit=threshold,
        harmful=harmful,
        alpha=alpha,
    )
