"""The normal-mixture confidence sequence against hand-computed values and its basic properties."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import pytest

from otel_prompt_canary.analysis import (
    Direction,
    MeanStats,
    ProportionStats,
    cohort_moments,
    compare_to_stable,
    compare_to_threshold,
    confidence_radius,
    log_mixture_ratio,
    mixture_rho2,
    mixture_test,
)
from otel_prompt_canary.analysis.sequential import proportion_moments
from otel_prompt_canary.errors import InvalidInputError

getcontext().prec = 50


def _regularised_variance(successes: int, n: int) -> Decimal:
    q = Decimal(successes + 1) / Decimal(n + 2)
    return q * (1 - q)


def test_rho_matches_the_closed_form() -> None:
    # (2 ln 20 + ln(1 + 2 ln 20)) / 500, by hand: (5.99146454710798 + 1.94469009... ) / 500
    assert mixture_rho2(0.05, 500) == pytest.approx(0.0158723092034751306, rel=1e-14)
    assert mixture_rho2(0.05, 1) == pytest.approx(7.93615460173756, rel=1e-13)
    with pytest.raises(InvalidInputError, match="alpha must be in"):
        mixture_rho2(0.0, 10)
    with pytest.raises(InvalidInputError, match="target_samples must be at least 1"):
        mixture_rho2(0.05, 0)


def test_relative_test_against_a_hand_computation() -> None:
    """Canary 90/100 valid against stable 990/1000, alpha 0.05, target 500 samples, margin 0."""
    result = compare_to_stable(
        ProportionStats(n=100, successes=90),
        ProportionStats(n=1000, successes=990),
        harmful=Direction.DECREASE,
        margin=0.0,
        alpha=0.05,
        rho2=mixture_rho2(0.05, 500),
    )
    assert result is not None
    # The same formulas in 50-digit decimal arithmetic, written out independently.
    log_inv_alpha = -Decimal("0.05").ln()
    rho2 = (2 * log_inv_alpha + (1 + 2 * log_inv_alpha).ln()) / 500
    variance = _regularised_variance(90, 100) / 100 + _regularised_variance(990, 1000) / 1000
    tau2 = rho2 * _regularised_variance(1080, 1100)  # pooled: 1080 of 1100
    ratio = (variance + tau2) / variance
    radius = (variance * (variance + tau2) / tau2 * (ratio.ln() + 2 * log_inv_alpha)).sqrt()
    difference = Decimal("0.9") - Decimal("0.99")
    statistic = tau2 * difference**2 / (2 * variance * (variance + tau2)) - ratio.ln() / 2

    assert result.estimate == pytest.approx(-0.09, rel=1e-14)
    assert result.variance == pytest.approx(float(variance), rel=1e-13)
    assert result.tau2 == pytest.approx(float(tau2), rel=1e-13)
    assert result.radius == pytest.approx(float(radius), rel=1e-13)
    assert result.bound == pytest.approx(float(difference + radius), rel=1e-13)
    assert result.statistic == pytest.approx(float(statistic), rel=1e-12)
    assert result.threshold == pytest.approx(math.log(20), rel=1e-15)
    # Pinned numbers (the decimal computation above, rounded): radius 0.1614, not proven yet.
    assert result.radius == pytest.approx(0.161415877117406, rel=1e-12)
    assert result.statistic == pytest.approx(0.839605528114039, rel=1e-12)
    assert result.limit == 0.0
    assert not result.breach


def test_absolute_test_against_a_hand_computation() -> None:
    """Canary 850/1000 valid against a 0.9 floor."""
    result = compare_to_threshold(
        ProportionStats(n=1000, successes=850),
        harmful=Direction.DECREASE,
        threshold=0.9,
        alpha=0.05,
        rho2=mixture_rho2(0.05, 500),
    )
    assert result is not None
    log_inv_alpha = -Decimal("0.05").ln()
    rho2 = (2 * log_inv_alpha + (1 + 2 * log_inv_alpha).ln()) / 500
    per_sample = _regularised_variance(850, 1000)
    variance = per_sample / 1000
    tau2 = rho2 * per_sample
    radius = (
        variance * (variance + tau2) / tau2 * (((variance + tau2) / variance).ln() + 2 * log_inv_alpha)
    ).sqrt()
    assert result.estimate == 0.85
    assert result.radius == pytest.approx(float(radius), rel=1e-13)
    assert result.bound == pytest.approx(float(Decimal("0.85") + radius), rel=1e-13)
    assert result.bound < 0.9
    assert result.breach
    assert result.statistic > result.threshold


def test_mean_moments_feed_the_test_exactly() -> None:
    canary = MeanStats.of([0.2, 0.4, 0.6, 0.8])
    moments = cohort_moments(canary)
    assert moments is not None
    assert moments.estimate == 0.5
    assert moments.variance == pytest.approx(0.2 / 3, rel=1e-15)  # sample variance, n - 1
    assert cohort_moments(MeanStats.of([0.3])) is None
    assert cohort_moments(ProportionStats()) is None
    p = proportion_moments(10, 10)
    assert (p.estimate, p.variance) == (1.0, (11 / 12) * (1 - 11 / 12))
    with pytest.raises(InvalidInputError):
        proportion_moments(0, 0)


def test_no_spread_means_no_decision() -> None:
    constant = MeanStats.of([0.5] * 40)
    kwargs = {"harmful": Direction.DECREASE, "alpha": 0.05, "rho2": 0.01}
    assert compare_to_stable(constant, constant, margin=0.0, **kwargs) is None  # type: ignore[arg-type]
    assert compare_to_threshold(constant, threshold=0.9, **kwargs) is None  # type: ignore[arg-type]
    assert confidence_radius(0.0, 0.1, 0.05) == math.inf
    assert mixture_test(0.1, 0.0, 1.0, limit=0.0, harmful=Direction.INCREASE, alpha=0.05, rho2=0.1) is None


@pytest.mark.parametrize("harmful", [Direction.DECREASE, Direction.INCREASE])
@pytest.mark.parametrize("estimate", [-0.3, -0.1, -0.02, 0.0, 0.02, 0.1, 0.3])
@pytest.mark.parametrize("variance", [1e-4, 1e-3, 1e-2])
def test_statistic_crosses_its_threshold_exactly_when_the_bound_crosses_the_limit(
    harmful: Direction, estimate: float, variance: float
) -> None:
    result = mixture_test(
        estimate,
        variance,
        0.05,
        limit=0.01 if harmful is Direction.INCREASE else -0.01,
        harmful=harmful,
        alpha=0.05,
        rho2=0.02,
    )
    assert result is not None
    assert result.breach == (result.statistic > result.threshold)
    if harmful is Direction.DECREASE:
        assert result.bound == pytest.approx(estimate + result.radius)
    else:
        assert result.bound == pytest.approx(estimate - result.radius)


def test_radius_shrinks_with_data_and_grows_with_confidence() -> None:
    radii = [confidence_radius(0.1 / n, 0.01 * 0.1, 0.05) for n in (10, 100, 1000, 10000)]
    assert radii == sorted(radii, reverse=True)
    assert confidence_radius(1e-3, 1e-3, 0.01) > confidence_radius(1e-3, 1e-3, 0.05)
    # Wider than the fixed-sample two-sided 95% interval at every sample size: the price of peeking.
    for n in (10, 100, 1000, 10000, 100000):
        assert confidence_radius(0.1 / n, 0.01 * 0.1, 0.05) > 1.96 * math.sqrt(0.1 / n)


def test_log_mixture_ratio_at_zero_distance() -> None:
    assert log_mixture_ratio(0.0, 1.0, 1.0) == pytest.approx(-0.5 * math.log(2))


def test_canary_variance_is_floored_at_the_pooled_variance() -> None:
    """A canary that has not shown any spread yet borrows the pooled variance."""
    canary = MeanStats.of([0.0] * 40)
    stable = MeanStats.of([1.0] * 20 + [0.0] * 980)
    result = compare_to_stable(canary, stable, harmful=Direction.DECREASE, margin=0.0, alpha=0.05, rho2=0.02)
    assert result is not None
    pooled = cohort_moments(canary.merge(stable))
    own = cohort_moments(stable)
    assert pooled is not None and own is not None
    assert result.variance == pytest.approx(pooled.variance / 40 + own.variance / 1000, rel=1e-15)
    assert not result.breach  # 0 of 40 against 2%: nothing is proven
