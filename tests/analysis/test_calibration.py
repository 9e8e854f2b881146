"""Statistical validation of the judge by simulation, with fixed seeds.

- A/A: canary identical to stable, judged after every 10 samples over long rollouts: false breaches
  stay below alpha (a naive fixed-level test checked the same way does not).
- A/B: a prompt that breaks JSON for a class of queries (format validity 99% -> 94%) is caught with
  at least 95% power within a stated budget of canary samples, under the default policy.

The loops call the engine's own tests (:func:`compare_to_stable`, :func:`mixture_test`: what
:class:`Judge` calls) whenever a cheap necessary condition for a breach holds, and one test checks
that this fast path decides exactly like :class:`Judge` itself.
"""

from __future__ import annotations

import math
import random
import statistics

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY,
    MEAN_SCALE,
    Direction,
    Judge,
    MeanStats,
    ProportionStats,
    Snapshot,
    compare_to_stable,
    confidence_radius,
    load_policy,
    mixture_test,
)
from otel_prompt_canary.analysis.sequential import proportion_moments

SCALE2 = MEAN_SCALE * MEAN_SCALE
CHECK_EVERY = 10  # samples (both cohorts together) between two evaluations
JSON_VALID = "prompt_canary.check.json_valid"

ONE_RULE = load_policy(
    """
alpha: 0.05
signals: [{name: json_valid, kind: proportion, harmful: decrease}]
rules: [{signal: json_valid, type: relative, margin: 0.0, action: rollback, critical: true}]
"""
)


def _failures(rng: random.Random, p_fail: float, n: int) -> list[int]:
    """Sorted positions (1-based) of the failures among ``n`` Bernoulli trials, by geometric gaps."""
    positions: list[int] = []
    log_keep = math.log1p(-p_fail)
    position = 0
    while True:
        position += int(math.log(1.0 - rng.random()) / log_keep) + 1
        if position > n:
            return positions
        positions.append(position)


def _first_breach(
    rng: random.Random,
    judge: Judge,
    *,
    p_stable: float,
    p_canary: float,
    canary_every: int,
    total: int,
    naive: bool = False,
) -> int | None:
    """Canary samples at the first breach of the policy's single json_valid rule, or None.

    Sample ``k`` (1-based) goes to the canary when ``k % canary_every == 0``; outcomes are i.i.d.
    With ``naive``, the rule is instead a fixed one-sided 95% z-bound checked just as often.
    """
    rule = judge.policy.rules[0]
    limit = -rule.tolerance
    alpha, rho2 = judge.rule_alpha, judge.rho2
    warmup = judge.policy.statistics.warmup_samples
    prefilter = math.sqrt(2.0 * -math.log(alpha))  # the radius is always wider than this * sd
    z_naive = 1.6448536269514722
    n_canary_max = total // canary_every
    canary_failures = _failures(rng, 1 - p_canary, n_canary_max)
    stable_failures = _failures(rng, 1 - p_stable, total - n_canary_max)
    fc = fs = 0
    for seen in range(CHECK_EVERY, total + 1, CHECK_EVERY):
        nc = seen // canary_every
        ns = seen - nc
        while fc < len(canary_failures) and canary_failures[fc] <= nc:
            fc += 1
        while fs < len(stable_failures) and stable_failures[fs] <= ns:
            fs += 1
        if nc < warmup or ns < warmup:
            continue
        qc, qs = (nc - fc + 1) / (nc + 2), (ns - fs + 1) / (ns + 2)
        difference = (nc - fc) / nc - (ns - fs) / ns
        variance = qc * (1.0 - qc) / nc + qs * (1.0 - qs) / ns
        if naive:
            if difference + z_naive * math.sqrt(variance) < limit:
                return nc
            continue
        if difference + prefilter * math.sqrt(variance) >= limit:
            continue  # cannot be a breach: skip the full computation
        # Tighter necessary condition: the radius grows with the variance, and the test floors the
        # canary's variance, so the radius at this (unfloored) variance is a lower bound.
        qp = (nc + ns - fc - fs + 1) / (nc + ns + 2)
        if difference + confidence_radius(variance, rho2 * qp * (1.0 - qp), alpha) >= limit:
            continue
        # The engine's own path (statistics built unvalidated: they are valid by construction).
        result = compare_to_stable(
            ProportionStats.model_construct(n=nc, successes=nc - fc),
            ProportionStats.model_construct(n=ns, successes=ns - fs),
            harmful=Direction.DECREASE,
            margin=rule.tolerance,
            alpha=alpha,
            rho2=rho2,
        )
        if result is not None and result.breach:
            return nc
    return None


def test_aa_false_rollbacks_stay_below_alpha_and_naive_peeking_does_not() -> None:
    """2,000 A/A rollouts of 10,000 samples (50% canary), judged after every 10 samples."""
    judge = Judge(ONE_RULE)  # a single rule gets the whole alpha = 0.05
    rollouts, total = 2000, 10_000
    rng = random.Random(20240601)
    seeds = [rng.getrandbits(64) for _ in range(rollouts)]
    false_rollbacks = naive = 0
    for seed in seeds:
        kwargs = {"p_stable": 0.99, "p_canary": 0.99, "canary_every": 2, "total": total}
        false_rollbacks += _first_breach(random.Random(seed), judge, **kwargs) is not None  # type: ignore[arg-type]
        naive += _first_breach(random.Random(seed), judge, naive=True, **kwargs) is not None  # type: ignore[arg-type]
    rate, naive_rate = false_rollbacks / rollouts, naive / rollouts
    print(
        f"\nA/A 50% canary: false rollbacks {rate:.2%} (alpha 5%); naive repeated 95% test {naive_rate:.1%}"
    )
    assert rate <= 0.05
    assert naive_rate > 3 * 0.05  # why the judge does not use a repeated fixed-level test


def test_aa_false_rollbacks_at_a_small_canary_share() -> None:
    """2,000 A/A rollouts of 20,000 samples with 5% canary (1,000 canary samples each)."""
    judge = Judge(ONE_RULE)
    rng = random.Random(20240611)
    false_rollbacks = sum(
        _first_breach(
            random.Random(rng.getrandbits(64)),
            judge,
            p_stable=0.99,
            p_canary=0.99,
            canary_every=20,
            total=20_000,
        )
        is not None
        for _ in range(2000)
    )
    print(f"\nA/A 5% canary: false rollbacks {false_rollbacks / 2000:.2%} (alpha 5%)")
    assert false_rollbacks / 2000 <= 0.05


def test_ab_broken_json_is_caught_within_budget() -> None:
    """Format validity 99% -> 94% under the default policy's json_valid rule (alpha 0.05 / 3,
    margin 0.01), canary at 10% of traffic, judged after every 10 samples (every canary sample)."""
    judge = Judge(DEFAULT_POLICY)
    assert judge.policy.rules[0].signal == "json_valid"
    rollouts, budget = 1000, 1000  # budget in canary samples
    rng = random.Random(20240602)
    detections = [
        _first_breach(
            random.Random(rng.getrandbits(64)),
            judge,
            p_stable=0.99,
            p_canary=0.94,
            canary_every=10,
            total=budget * 10,
        )
        for _ in range(rollouts)
    ]
    caught = sorted(d for d in detections if d is not None)
    power = len(caught) / rollouts
    median = statistics.median(caught)
    print(
        f"\nA/B 99% -> 94%: power {power:.1%} within {budget} canary samples; canary samples to "
        f"detection: median {median:g}, 95th percentile {caught[int(0.95 * len(caught)) - 1]}"
    )
    assert power >= 0.95
    assert median <= 600


def test_aa_at_the_threshold_of_an_absolute_rule() -> None:
    """Canary validity exactly at the 95% floor (the hardest null): 1,000 rollouts of 5,000 canary
    samples, judged after every 10 samples; the floor is wrongly proven broken in at most 5%."""
    policy = load_policy(
        """
alpha: 0.05
signals: [{name: json_valid, kind: proportion, harmful: decrease}]
rules: [{signal: json_valid, type: absolute, threshold: 0.95, action: rollback, critical: true}]
"""
    )
    judge = Judge(policy)
    alpha, rho2, warmup = judge.rule_alpha, judge.rho2, policy.statistics.warmup_samples
    prefilter = math.sqrt(2.0 * -math.log(alpha))
    rng = random.Random(20240603)
    breaches = 0
    for _ in range(1000):
        failures = _failures(random.Random(rng.getrandbits(64)), 0.05, 5000)
        f = 0
        for n in range(CHECK_EVERY, 5001, CHECK_EVERY):
            while f < len(failures) and failures[f] <= n:
                f += 1
            if n < warmup:
                continue
            q = (n - f + 1) / (n + 2)
            if (n - f) / n + prefilter * math.sqrt(q * (1 - q) / n) >= 0.95:
                continue
            m = proportion_moments(n, n - f)
            result = mixture_test(
                m.estimate,
                m.variance / n,
                m.variance,
                limit=0.95,
                harmful=Direction.DECREASE,
                alpha=alpha,
                rho2=rho2,
            )
            if result is not None and result.breach:
                breaches += 1
                break
    print(f"\nA/A at an absolute floor: false breaches {breaches / 1000:.2%} (alpha 5%)")
    assert breaches / 1000 <= 0.05


def test_aa_on_a_skewed_judge_score() -> None:
    """A 1-5 judge score mapped to [0, 1], mostly 1.0: 500 A/A rollouts of 4,000 samples (50%
    canary), mean rule with margin 0, judged after every 10 samples."""
    policy = load_policy(
        """
alpha: 0.05
signals: [{name: judge, kind: mean, harmful: decrease}]
rules: [{signal: judge, type: relative, margin: 0.0, action: pause, critical: true}]
"""
    )
    judge = Judge(policy)
    alpha, rho2, warmup = judge.rule_alpha, judge.rho2, policy.statistics.warmup_samples
    levels = [0, 250_000, 500_000, 750_000, 1_000_000]  # in millionths, as MeanStats stores them
    weights = [0.03, 0.04, 0.08, 0.25, 0.60]
    prefilter = math.sqrt(2.0 * -math.log(alpha))
    rng = random.Random(20240604)
    breaches = 0
    for _ in range(500):
        draw = random.Random(rng.getrandbits(64)).choices(levels, weights, k=4000)
        n = [0, 0]
        s = [0, 0]
        q = [0, 0]
        for k, value in enumerate(draw, start=1):
            cohort = k % 2  # 1: canary, 0: stable
            n[cohort] += 1
            s[cohort] += value
            q[cohort] += value * value
            if k % CHECK_EVERY or min(n) < warmup:
                continue
            # Necessary condition first (the radius is always wider than prefilter * sd).
            mean = [s[i] / (n[i] * MEAN_SCALE) for i in (0, 1)]
            var = [(n[i] * q[i] - s[i] * s[i]) / (n[i] * (n[i] - 1) * SCALE2) for i in (0, 1)]
            difference = mean[1] - mean[0]
            if difference + prefilter * math.sqrt(var[1] / n[1] + var[0] / n[0]) >= 0.0:
                continue
            # The engine's own path from the exact moments (built unvalidated: they are valid).
            stable = MeanStats.model_construct(n=n[0], sum=s[0], sum_sq=q[0])
            canary = MeanStats.model_construct(n=n[1], sum=s[1], sum_sq=q[1])
            result = compare_to_stable(
                canary, stable, harmful=Direction.DECREASE, margin=0.0, alpha=alpha, rho2=rho2
            )
            if result is not None and result.breach:
                breaches += 1
                break
    print(f"\nA/A on a skewed judge score: false breaches {breaches / 500:.2%} (alpha 5%)")
    assert breaches / 500 <= 0.05


def test_aa_on_a_score_that_is_mostly_zero() -> None:
    """A score that is 1.0 in 2% of responses and 0 otherwise, harmful if it decreases, canary at
    10%: 1,000 A/A rollouts of 10,000 samples. Early canary samples often show no 1.0 at all (no
    spread): the floor on the canary's variance keeps that from passing for proof."""
    policy = load_policy(
        """
alpha: 0.05
signals: [{name: cited_source, kind: mean, harmful: decrease}]
rules: [{signal: cited_source, type: relative, margin: 0.0, action: pause, critical: true}]
"""
    )
    judge = Judge(policy)
    alpha, rho2, warmup = judge.rule_alpha, judge.rho2, policy.statistics.warmup_samples
    prefilter = math.sqrt(2.0 * -math.log(alpha))
    rng = random.Random(20240606)
    breaches = 0
    for _ in range(1000):
        draw = random.Random(rng.getrandbits(64))
        canary_ones, stable_ones = _failures(draw, 0.02, 1000), _failures(draw, 0.02, 9000)
        c = t = 0
        for seen in range(CHECK_EVERY, 10_001, CHECK_EVERY):
            nc, ns = seen // 10, seen - seen // 10
            while c < len(canary_ones) and canary_ones[c] <= nc:
                c += 1
            while t < len(stable_ones) and stable_ones[t] <= ns:
                t += 1
            if nc < warmup:
                continue
            # Necessary condition first, with the variance the test uses (canary floored at pooled).
            n, ones = nc + ns, c + t
            pooled = (n * ones - ones * ones) / (n * (n - 1))
            vc = max((nc * c - c * c) / (nc * (nc - 1)), pooled)
            vs = (ns * t - t * t) / (ns * (ns - 1))
            if c / nc - t / ns + prefilter * math.sqrt(vc / nc + vs / ns) >= 0.0:
                continue
            result = compare_to_stable(
                MeanStats.model_construct(n=nc, sum=c * MEAN_SCALE, sum_sq=c * SCALE2),
                MeanStats.model_construct(n=ns, sum=t * MEAN_SCALE, sum_sq=t * SCALE2),
                harmful=Direction.DECREASE,
                margin=0.0,
                alpha=alpha,
                rho2=rho2,
            )
            if result is not None and result.breach:
                breaches += 1
                break
    print(f"\nA/A on a score that is mostly 0: false breaches {breaches / 1000:.2%} (alpha 5%)")
    assert breaches / 1000 <= 0.05


def test_fast_path_decides_like_the_judge() -> None:
    """The simulation's shortcut and Judge.evaluate agree on the first breach, sample for sample."""
    judge = Judge(DEFAULT_POLICY)
    rng = random.Random(20240605)
    for _ in range(12):
        seed = rng.getrandbits(64)
        fast = _first_breach(
            random.Random(seed), judge, p_stable=0.99, p_canary=0.94, canary_every=10, total=8000
        )
        # Replay the same outcomes through the judge itself.
        replay = random.Random(seed)
        canary_failures = set(_failures(replay, 1 - 0.94, 800))
        stable_failures = set(_failures(replay, 1 - 0.99, 7200))
        slow = None
        for seen in range(CHECK_EVERY, 8001, CHECK_EVERY):
            nc = seen // 10
            ns = seen - nc
            evidence = Snapshot(
                stable={
                    JSON_VALID: ProportionStats(
                        n=ns, successes=ns - sum(1 for f in stable_failures if f <= ns)
                    )
                },
                canary={
                    JSON_VALID: ProportionStats(
                        n=nc, successes=nc - sum(1 for f in canary_failures if f <= nc)
                    )
                },
            )
            if nc < 30:
                continue
            verdict = judge.evaluate(evidence, step=1, elapsed_seconds=0)
            if verdict.decision == "breach":
                slow = nc
                break
        assert fast == slow
