"""The centred normal-mixture test against hand-computed values and its basic properties."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import pytest

from otel_prompt_canary.analysis import (
    Direction,
    MeanStats,
    ProportionStats,
    cohort_moments,
    compare_rates,
    compare_to_stable,
    compare_to_threshold,
    confidence_radius,
    log_mixture_ratio,
    mixture_centre,
    mixture_test,
)
from otel_prompt_canary.analysis.sequential import MIXTURE_SPREAD, proportion_moments
from otel_prompt_canary.errors import InvalidInputError

getcontext().prec = 50


def _regularised_variance(successes: int, n: int) -> Decimal:
    q = (Decimal(successes) + Decimal("0.5")) / Decimal(n + 1)  # Jeffreys: half a pseudo-count each
    return q * (1 - q)


def _bound_by_hand(
    estimate: Decimal, variance: Decimal, target: Decimal, alpha: str
) -> tuple[Decimal, Decimal]:
    """The radius and the statistic at it, in 50-digit decimals, from the textbook root of the quadratic
    ``t2 d^2 + 2 m V d - K = 0`` (the engine uses the rationalised form)."""
    log_inv = -Decimal(alpha).ln()
    m2 = 2 * log_inv * target
    t2 = Decimal(MIXTURE_SPREAD) ** 2 * m2
    m = m2.sqrt()
    ratio = (variance + t2) / variance
    k = m2 * variance + variance * (variance + t2) * (2 * log_inv + ratio.ln())
    radius = (-m * variance + (m2 * variance * variance + t2 * k).sqrt()) / t2
    statistic = (t2 * radius**2 + 2 * m * radius * variance - m2 * variance) / (
        2 * variance * (variance + t2)
    ) - ratio.ln() / 2
    return radius, statistic


def test_the_mixture_is_centred_on_the_shift_an_sprt_proves_fastest_at_the_target() -> None:
    # sqrt(2 ln 60 * 1e-4), by hand: sqrt(8.18868912...e-4)
    assert mixture_centre(0.05 / 3, 1e-4) == pytest.approx(0.02861588566590977, rel=1e-14)
    with pytest.raises(InvalidInputError, match="alpha must be in"):
        mixture_centre(0.0, 1e-4)
    with pytest.raises(InvalidInputError, match="target_samples must be at least 1"):
        compare_to_threshold(
            ProportionStats(n=10, successes=5),
            harmful=Direction.DECREASE,
            threshold=0.9,
            alpha=0.05,
            target_samples=0,
        )


def test_relative_test_against_a_hand_computation() -> None:
    """Canary 90/100 valid against stable 990/1000, alpha 0.05, target 500 samples, margin 0."""
    result = compare_to_stable(
        ProportionStats(n=100, successes=90),
        ProportionStats(n=1000, successes=990),
        harmful=Direction.DECREASE,
        margin=0.0,
        alpha=0.05,
        target_samples=500,
    )
    assert result is not None
    # The canary's variance (90 of 100) is above the pooled one (1080 of 1100): no floor.
    canary, stable = _regularised_variance(90, 100), _regularised_variance(990, 1000)
    variance = canary / 100 + stable / 1000
    target = (canary + stable) / 500
    difference = Decimal("0.9") - Decimal("0.99")
    radius, statistic_at_radius = _bound_by_hand(difference, variance, target, "0.05")

    assert result.estimate == pytest.approx(-0.09, rel=1e-14)
    assert result.variance == pytest.approx(float(variance), rel=1e-13)
    assert result.target_variance == pytest.approx(float(target), rel=1e-13)
    assert result.radius == pytest.approx(float(radius), rel=1e-12)
    assert result.bound == pytest.approx(float(difference + radius), rel=1e-12)
    assert float(statistic_at_radius) == pytest.approx(math.log(20), rel=1e-12)
    assert result.threshold == pytest.approx(math.log(20), rel=1e-15)
    # Pinned numbers (the decimal computation above, rounded): radius 0.0949, not proven yet.
    assert result.radius == pytest.approx(0.09493058513860733, rel=1e-12)
    assert result.limit == 0.0
    assert not result.breach
    assert result.statistic < result.threshold


def test_absolute_test_against_a_hand_computation() -> None:
    """Canary 850/1000 valid against a 0.9 floor."""
    result = compare_to_threshold(
        ProportionStats(n=1000, successes=850),
        harmful=Direction.DECREASE,
        threshold=0.9,
        alpha=0.05,
        target_samples=500,
    )
    assert result is not None
    per_sample = _regularised_variance(850, 1000)
    radius, _ = _bound_by_hand(Decimal("0.85"), per_sample / 1000, per_sample / 500, "0.05")
    assert result.estimate == 0.85
    assert result.radius == pytest.approx(float(radius), rel=1e-12)
    assert result.bound == pytest.approx(float(Decimal("0.85") + radius), rel=1e-12)
    assert result.bound < 0.9
    assert result.breach
    assert result.statistic > result.threshold


def test_ratio_test_against_a_hand_computation() -> None:
    """Refusals per call: 20 of 400 on the canary, 40 of 4000 on stable; is it more than twice?"""
    result = compare_rates(
        ProportionStats(n=400, successes=380),
        ProportionStats(n=4000, successes=3960),
        harmful=Direction.DECREASE,
        ratio=2.0,
        alpha=0.05,
        target_samples=500,
    )
    assert result is not None
    canary, stable = _regularised_variance(380, 400), _regularised_variance(3960, 4000)
    pooled = _regularised_variance(4340, 4400)
    floored = max(canary, 2 * pooled)  # under the null the canary's counts vary twice as much
    variance = floored / 400 + 4 * stable / 4000
    target = (floored + 4 * stable) / 500
    excess = Decimal("0.05") - 2 * Decimal("0.01")
    radius, _ = _bound_by_hand(excess, variance, target, "0.05")
    assert result.estimate == pytest.approx(0.03, rel=1e-12)
    assert result.variance == pytest.approx(float(variance), rel=1e-13)
    assert result.target_variance == pytest.approx(float(target), rel=1e-13)
    assert result.limit == 0.0
    assert result.bound == pytest.approx(float(excess - radius), rel=1e-10)
    assert result.breach  # 5% against 1%: proven above twice


def test_a_ratio_of_one_is_the_margin_of_zero_seen_from_the_failures() -> None:
    canary, stable = ProportionStats(n=300, successes=282), ProportionStats(n=3000, successes=2970)
    kwargs = {"harmful": Direction.DECREASE, "alpha": 0.05, "target_samples": 500}
    margin = compare_to_stable(canary, stable, margin=0.0, **kwargs)  # type: ignore[arg-type]
    rates = compare_rates(canary, stable, ratio=1.0, **kwargs)  # type: ignore[arg-type]
    assert margin is not None and rates is not None
    assert rates.estimate == pytest.approx(-margin.estimate, rel=1e-14)
    assert rates.radius == pytest.approx(margin.radius, rel=1e-14)
    assert rates.bound == pytest.approx(-margin.bound, rel=1e-13)
    assert rates.breach == margin.breach


def test_ratio_rules_compare_bad_outcomes_only() -> None:
    scores = MeanStats.of([0.0, 1.0, 2.0, 0.0]), MeanStats.of([0.0, 1.0, 0.0, 0.0])
    counted = compare_rates(*scores, harmful=Direction.INCREASE, ratio=1.5, alpha=0.05, target_samples=10)
    assert counted is not None and counted.estimate == pytest.approx(0.75 - 1.5 * 0.25)
    with pytest.raises(InvalidInputError, match="must count events per call"):
        compare_rates(*scores, harmful=Direction.DECREASE, ratio=1.5, alpha=0.05, target_samples=10)
    with pytest.raises(InvalidInputError, match="ratio must be a positive number"):
        compare_rates(*scores, harmful=Direction.INCREASE, ratio=0.0, alpha=0.05, target_samples=10)


def test_mean_moments_feed_the_test_exactly() -> None:
    canary = MeanStats.of([0.2, 0.4, 0.6, 0.8])
    moments = cohort_moments(canary)
    assert moments is not None
    assert moments.estimate == 0.5
    assert moments.variance == pytest.approx(0.2 / 3, rel=1e-15)  # sample variance, n - 1
    assert cohort_moments(MeanStats.of([0.3])) is None
    assert cohort_moments(ProportionStats()) is None
    p = proportion_moments(10, 10)
    assert (p.estimate, p.variance) == (1.0, (21 / 22) * (1 - 21 / 22))
    with pytest.raises(InvalidInputError):
        proportion_moments(0, 0)


def test_no_spread_means_no_decision() -> None:
    constant = MeanStats.of([0.5] * 40)
    kwargs = {"harmful": Direction.DECREASE, "alpha": 0.05, "target_samples": 500}
    assert compare_to_stable(constant, constant, margin=0.0, **kwargs) is None  # type: ignore[arg-type]
    assert compare_to_threshold(constant, threshold=0.9, **kwargs) is None  # type: ignore[arg-type]
    assert confidence_radius(0.0, 0.1, 0.05) == math.inf
    assert confidence_radius(0.1, 0.0, 0.05) == math.inf
    assert mixture_test(0.1, 0.0, 1.0, limit=0.0, harmful=Direction.INCREASE, alpha=0.05) is None


@pytest.mark.parametrize("harmful", [Direction.DECREASE, Direction.INCREASE])
@pytest.mark.parametrize("estimate", [-0.3, -0.1, -0.02, 0.0, 0.02, 0.1, 0.3])
@pytest.mark.parametrize("variance", [1e-4, 1e-3, 1e-2])
def test_statistic_crosses_its_threshold_exactly_when_the_bound_crosses_the_limit(
    harmful: Direction, estimate: float, variance: float
) -> None:
    result = mixture_test(
        estimate,
        variance,
        2e-3,
        limit=0.01 if harmful is Direction.INCREASE else -0.01,
        harmful=harmful,
        alpha=0.05,
    )
    assert result is not None
    assert result.breach == (result.statistic > result.threshold)
    if harmful is Direction.DECREASE:
        assert result.bound == pytest.approx(estimate + result.radius)
    else:
        assert result.bound == pytest.approx(estimate - result.radius)
    # At the radius itself the mixture likelihood ratio is exactly 1 / alpha.
    assert log_mixture_ratio(result.radius, variance, 2e-3, 0.05) == pytest.approx(math.log(20), rel=1e-12)


def test_radius_shrinks_with_data_and_grows_with_confidence() -> None:
    per_sample, target = 0.1, 0.1 / 500
    radii = [confidence_radius(per_sample / n, target, 0.05) for n in (10, 100, 1000, 10000, 10**6)]
    assert radii == sorted(radii, reverse=True)
    assert confidence_radius(1e-3, 1e-3, 0.01) > confidence_radius(1e-3, 1e-3, 0.05)
    for n in (2, 10, 100, 500, 1000, 10000, 10**6):
        variance = per_sample / n
        # Never narrower than sqrt(2 ln(1/alpha) V): the likelihood ratio is at most exp(d^2 / 2V).
        # The simulations' fast paths rely on it.
        assert confidence_radius(variance, target, 0.05) > math.sqrt(2 * math.log(20) * variance)
        # Wider than the fixed-sample one-sided 95% bound at every sample size: the price of peeking.
        assert confidence_radius(variance, target, 0.05) > 1.6448536269514722 * math.sqrt(variance)


def test_the_bound_is_tightest_near_target_samples() -> None:
    """In standard errors, the radius is smallest close to the target: where the test is tuned."""
    per_sample, target_samples = 0.05, 400
    sizes = [round(target_samples * 2 ** (k / 4)) for k in range(-16, 17)]
    widths = {
        n: confidence_radius(per_sample / n, per_sample / target_samples, 0.05) / math.sqrt(per_sample / n)
        for n in sizes
    }
    tightest = min(widths, key=widths.__getitem__)
    assert target_samples / 2 <= tightest <= 2 * target_samples
    assert widths[tightest] < 2.6  # about 1.6 times the fixed-sample 1.645 (the old test's was 3.03)


def test_log_mixture_ratio_at_zero_distance() -> None:
    # Only the centre's penalty and the spread's are left: -m^2 / (2 (V + t2)) - ln((V + t2) / V) / 2.
    m2 = 2 * math.log(20) * 1.0
    t2 = MIXTURE_SPREAD**2 * m2
    want = -m2 / (2 * (1.0 + t2)) - 0.5 * math.log(1.0 + t2)
    assert log_mixture_ratio(0.0, 1.0, 1.0, 0.05) == pytest.approx(want, rel=1e-14)


def test_canary_variance_is_floored_at_the_pooled_variance() -> None:
    """A canary that has not shown any spread yet borrows the pooled variance."""
    canary = MeanStats.of([0.0] * 40)
    stable = MeanStats.of([1.0] * 20 + [0.0] * 980)
    result = compare_to_stable(
        canary, stable, harmful=Direction.DECREASE, margin=0.0, alpha=0.05, target_samples=500
    )
    assert result is not None
    pooled = cohort_moments(canary.merge(stable))
    own = cohort_moments(stable)
    assert pooled is not None and own is not None
    assert result.variance == pytest.approx(pooled.variance / 40 + own.variance / 1000, rel=1e-15)
    assert result.target_variance == pytest.approx((pooled.variance + own.variance) / 500, rel=1e-15)
    assert not result.breach  # 0 of 40 against 2%: nothing is proven
