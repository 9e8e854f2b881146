r"""The anytime-valid test: a normal-mixture confidence sequence for the canary, or for its gap to stable.

Checking a fixed-sample test (a z-test at 95%, say) after every new sample inflates false alarms: over
a long rollout, chance fluctuations cross any fixed threshold sooner or later, and repeated checks
find them. A *confidence sequence* is instead valid at every sample size at once: with probability at
least ``1 - alpha`` it contains the true value at all times simultaneously, so the judge may look after
every sample and stop at the first breach without inflating false rollbacks.

We use the normal-mixture (Robbins) boundary in its asymptotic form, the asymptotic confidence
sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas (2021), "Time-uniform central limit theory
and asymptotic confidence sequences" (arXiv:2103.06476); applied to the difference of two
means it is the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and Walsh
(2017), "Peeking at A/B tests" (KDD '17). Every quantity below is a closed form in ``+ - * / sqrt log``
so that other implementations (the Go Collector processor) reproduce it operation for operation.

**Per cohort** (from :mod:`otel_prompt_canary.analysis.stats`), with ``n`` samples:

- proportion with ``s`` successes: estimate ``p = s / n``; variance ``v = q * (1 - q)`` with
  ``q = (s + 1) / (n + 2)`` (one pseudo-success and one pseudo-failure keep the variance away from 0
  when every sample so far agrees);
- mean with integer moments ``S, Q`` in millionths (``n >= 2``): estimate ``S / (n * 10^6)``;
  variance ``(n*Q - S^2) / (n*(n-1)*10^12)``, computed exactly and rounded once.

**Pooled variance** ``v_pooled``: the same per-cohort formula applied to both cohorts' statistics
merged (``s`` and ``n``, or ``S``, ``Q`` and ``n``, added up).

**Contrast** ``D`` and its variance ``V``:

- relative rule: ``D = p_canary - p_stable``,
  ``V = max(v_canary, v_pooled) / n_canary + v_stable / n_stable``. The canary's variance is floored
  at the pooled one: early in a rollout the canary has few samples, and a signal whose values are
  rarely far from typical (a score that is mostly 0) shows no spread in them yet; the floor is exact
  when the cohorts agree and only conservative when they do not;
- absolute rule: ``D = p_canary``, ``V = v_canary / n_canary``.

**Mixture.** ``tau2 = rho2 * w`` where ``w`` is a per-sample variance setting the scale: ``v_pooled``
for a relative rule, ``v_canary`` for an absolute rule;
``rho2 = (2*ln(1/alpha) + ln(1 + 2*ln(1/alpha))) / target_samples`` makes the bound tightest near
``target_samples`` canary samples (Waudby-Smith et al. 2021, their choice of rho).

**Radius** of the ``(1 - alpha)`` confidence sequence of the true contrast::

    r = sqrt( (V * (V + tau2) / tau2) * (ln((V + tau2) / V) + 2*ln(1/alpha)) )

This is the boundary where the mixture likelihood ratio
``Lambda(theta) = sqrt(V / (V + tau2)) * exp(tau2 * (D - theta)^2 / (2*V*(V + tau2)))``
reaches ``1/alpha`` (Robbins 1970; Howard, Ramdas, McAuliffe and Sekhon 2021, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2)). The two-sided radius
is used for a one-sided decision, which is conservative.

**Decision** against the rule's ``limit`` (``-margin``/``+margin`` for a relative rule whose harmful
direction is decrease/increase, ``threshold`` for an absolute rule):

- harmful ``decrease``: ``bound = D + r`` (upper bound); breach iff ``bound < limit``;
- harmful ``increase``: ``bound = D - r`` (lower bound); breach iff ``bound > limit``.

**Statistic**: ``ln Lambda(limit)`` with the estimate clipped to the harmful side of the limit,
``d = max(0, limit - D)`` (decrease) or ``max(0, D - limit)`` (increase)::

    statistic = tau2 * d * d / (2 * V * (V + tau2)) - 0.5 * ln((V + tau2) / V)

It exceeds ``ln(1/alpha)`` exactly when the bound crosses the limit. The guarantee is asymptotic (a
normal approximation with estimated variances), hence the policy's ``warmup_samples`` before any
breach; the test suite measures the false-breach rate by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from otel_prompt_canary.analysis.policy import Direction
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, merge_stats
from otel_prompt_canary.errors import InvalidInputError

__all__ = [
    "CohortMoments",
    "SequentialTest",
    "cohort_moments",
    "compare_to_stable",
    "compare_to_threshold",
    "confidence_radius",
    "log_mixture_ratio",
    "mixture_rho2",
    "mixture_test",
    "proportion_moments",
]


@dataclass(frozen=True, slots=True)
class CohortMoments:
    """What the test uses of one cohort: sample count, estimate and per-sample variance."""

    n: int
    estimate: float
    variance: float


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """The outcome of one sequential test of a contrast against a rule's limit."""

    estimate: float
    variance: float
    tau2: float
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
    q = (successes + 1) / (n + 2)
    return CohortMoments(n=n, estimate=successes / n, variance=q * (1.0 - q))


def cohort_moments(stats: ProportionStats | MeanStats) -> CohortMoments | None:
    """Moments of ``stats``, or None when there are too few samples (0, or 1 for a mean)."""
    if isinstance(stats, ProportionStats):
        return proportion_moments(stats.n, stats.successes) if stats.n else None
    estimate, variance = stats.estimate, stats.variance
    if estimate is None or variance is None:
        return None
    return CohortMoments(n=stats.n, estimate=estimate, variance=variance)


def mixture_rho2(alpha: float, target_samples: int) -> float:
    """The mixture parameter making the bound tightest near ``target_samples`` samples."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
    if target_samples < 1:
        raise InvalidInputError(f"target_samples must be at least 1, got {target_samples}")
    log_inv = -math.log(alpha)
    return (2.0 * log_inv + math.log(1.0 + 2.0 * log_inv)) / target_samples


def confidence_radius(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the (1 - alpha) normal-mixture confidence sequence (see the module docstring)."""
    if not (variance > 0 and tau2 > 0):
        return math.inf
    ratio = (variance + tau2) / variance
    return math.sqrt((variance * (variance + tau2) / tau2) * (math.log(ratio) - 2.0 * math.log(alpha)))


def log_mixture_ratio(distance: float, variance: float, tau2: float) -> float:
    """``ln Lambda`` for an estimate ``distance`` away from the tested value."""
    ratio = (variance + tau2) / variance
    return tau2 * distance * distance / (2.0 * variance * (variance + tau2)) - 0.5 * math.log(ratio)


def mixture_test(
    estimate: float,
    variance: float,
    scale: float,
    *,
    limit: float,
    harmful: Direction,
    alpha: float,
    rho2: float,
) -> SequentialTest | None:
    """Test whether the contrast ``estimate`` (variance ``variance``) is proven past ``limit``.

    ``scale`` is the per-sample variance that sets the mixture (``tau2 = rho2 * scale``). Returns None
    when no spread has been observed yet (``variance`` or ``scale`` is 0): nothing can be proven then.
    """
    tau2 = rho2 * scale
    if not (variance > 0 and tau2 > 0):
        return None
    radius = confidence_radius(variance, tau2, alpha)
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
        tau2=tau2,
        limit=limit,
        radius=radius,
        bound=bound,
        statistic=log_mixture_ratio(distance, variance, tau2),
        threshold=-math.log(alpha),
        breach=breach,
    )


def compare_to_stable(
    canary: ProportionStats | MeanStats,
    stable: ProportionStats | MeanStats,
    *,
    harmful: Direction,
    margin: float,
    alpha: float,
    rho2: float,
) -> SequentialTest | None:
    """Is the canary proven worse than stable by more than ``margin``? None without enough data."""
    c, s = cohort_moments(canary), cohort_moments(stable)
    pooled = cohort_moments(merge_stats(canary, stable))
    if c is None or s is None or pooled is None:
        return None
    limit = -margin if harmful is Direction.DECREASE else margin
    return mixture_test(
        c.estimate - s.estimate,
        max(c.variance, pooled.variance) / c.n + s.variance / s.n,
        pooled.variance,
        limit=limit,
        harmful=harmful,
        alpha=alpha,
        rho2=rho2,
    )


def compare_to_threshold(
    canary: ProportionStats | MeanStats,
    *,
    harmful: Direction,
    threshold: float,
    alpha: float,
    rho2: float,
) -> SequentialTest | None:
    """Is the canary proven on the harmful side of ``threshold``? None without enough data."""
    c = cohort_moments(canary)
    if c is None:
        return None
    return mixture_test(
        c.estimate,
        c.variance / c.n,
        c.variance,
        limit=threshold,
        harmful=harmful,
        alpha=alpha,
        rho2=rho2,
    )
