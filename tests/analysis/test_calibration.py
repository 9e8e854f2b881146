"""Statistical validation of the judge by simulation, with fixed seeds.

- A/A: canary identical to stable, **a look after every sample**, over 2,000 rollouts per canary
  share (1%, 5%, 20%, 50%), for a check (a proportion, 99% valid as in the seed's scenario) and for
  a bounded score (an LLM judge's five grades): false rollbacks stay at or below alpha, and a naive
  fixed-level test looked at as often does not.
- A/B: a prompt that breaks JSON for a class of queries (format validity 99% -> 94%) is caught with
  at least 95% power within a stated budget of canary samples, under the default policy.

**Monte-Carlo tolerance.** The seeds are fixed, so each run measures the same rates; what they
estimate carries sampling error: from 2,000 rollouts, a standard error of 0.1 to 0.45 points for
rates from 0.2% to 4%. Each A/A test asserts that the observed rate is at most alpha, and prints it
with its one-sided 95% upper confidence bound (Wilson's; ``pytest -s``). The checks' rates (0.1% to
1.8%) clear alpha by far; the score's (3% to 4%, upper bounds up to 4.8%) come close, as they should
for a nearly symmetric signal: the test spends its alpha. A different seed could measure the
50% score rate a little above 5% with a true rate below it. The rollouts are finite (1,000 to 2,000
canary samples) and longer ones add false alarms: simulated further (looks after every pair of
samples), the 50% score's rate grows from 4.4% at 1,000 canary samples to 4.8% at 2,000 and 5.0% at
4,000. That is the level the guarantee promises, reached as the rollout grows: the test spends all
of alpha on a signal close to normal, and far less on rare failures, whose skew it meets with the
canary's own variance.

**Looks after every sample, at the cost of a few looks.** Sample ``k`` goes to the canary when ``k``
is a multiple of ``1 / share``; between two canary samples come ``1 / share - 1`` stable ones, and the
judge looks after each. For the looks that follow one canary sample (the canary's counts fixed, the
stable's growing) a cheap necessary condition for a breach is checked once: the contrast's lower
bound over those looks plus ``sqrt(2 ln(1/alpha) V)``, a radius the test is never narrower than (its
likelihood ratio is at most ``exp(d^2 / 2V)``), with ``V`` a lower bound on the contrast's variance
over them. Where it cannot be excluded, every look is checked, first exactly on the floats and then
by the engine's own :func:`compare_to_stable`, what :class:`Judge` calls; one test checks that this
path decides exactly like :class:`Judge` itself.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from otel_prompt_canary.analysis import (
    DEFAULT_POLICY,
    MEAN_SCALE,
    Direction,
    Judge,
    MeanStats,
    ProportionStats,
    Snapshot,
    compare_to_stable,
    load_policy,
    mixture_test,
)
from otel_prompt_canary.analysis.sequential import proportion_moments

pytestmark = pytest.mark.slow

ALPHA = 0.05
LOG_INV = math.log(1 / ALPHA)
ROLLOUTS = 2000
#: Canary shares as "one sample in E goes to the canary".
SHARES = {"1%": 100, "5%": 20, "20%": 5, "50%": 2}
TARGET, WARMUP = 500, 30  # the policy defaults
JSON_VALID = "prompt_canary.check.json_valid"

ONE_RULE = load_policy(
    """
alpha: 0.05
signals: [{name: json_valid, kind: proportion, harmful: decrease}]
rules: [{signal: json_valid, type: relative, margin: 0.0, action: rollback, critical: true}]
"""
)


def _upper_bound(hits: int, n: int, z: float = 1.6448536269514722) -> float:
    """Wilson's one-sided 95% upper confidence bound of a rate ``hits / n``."""
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


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


def _regularised(n: int, f: int) -> float:
    """``q (1 - q)`` with ``q = (2 (n - f) + 1) / (2 n + 2)``: the judge's variance of ``n - f`` successes."""
    return (2 * (n - f) + 1) * (2 * f + 1) / ((2 * n + 2) * (2 * n + 2))


# -- proportions -------------------------------------------------------------------------------


def _proportion_rollout(
    rng: random.Random, every: int, canary_samples: int, p_fail: float, p_canary_fail: float | None = None
) -> bool:
    """One rollout of a check (A/A unless ``p_canary_fail`` differs), looked at after every sample:
    True on a breach. Sample ``k`` goes to the canary when ``k`` is a multiple of ``every``."""
    canary_failures = _failures(rng, p_fail if p_canary_fail is None else p_canary_fail, canary_samples)
    stable_failures = _failures(rng, p_fail, (canary_samples + 1) * (every - 1))
    fc = fs = 0  # canary failures so far; stable failures among the first ``a`` stable samples
    for nc in range(1, canary_samples + 1):
        while fc < len(canary_failures) and canary_failures[fc] <= nc:
            fc += 1
        # The looks after canary sample nc and after each stable sample up to the next one.
        a, b = nc * (every - 1), (nc + 1) * (every - 1)
        while fs < len(stable_failures) and stable_failures[fs] <= a:
            fs += 1
        if nc < WARMUP or b < WARMUP:
            continue
        fb = fs
        while fb < len(stable_failures) and stable_failures[fb] <= b:
            fb += 1
        lowest = fs / b - fc / nc  # the difference canary - stable is at least this
        # A lower bound of the stable part over the looks, ns in [a, b] with fs to fb failures.
        stable_part = max(0, 2 * (a - fb) + 1) * (2 * fs + 1) / ((2 * b + 2) * (2 * b + 2) * b)
        variance = _regularised(nc, fc) / nc + stable_part
        if lowest + math.sqrt(2 * LOG_INV * variance) >= 0:
            continue
        if any(
            _proportion_breach(nc, fc, ns, _count(stable_failures, ns)) for ns in range(max(a, WARMUP), b + 1)
        ):
            return True
    return False


def _count(positions: list[int], n: int) -> int:
    low, high = 0, len(positions)
    while low < high:  # bisect: positions are sorted
        mid = (low + high) // 2
        if positions[mid] <= n:
            low = mid + 1
        else:
            high = mid
    return low


def _proportion_breach(nc: int, fc: int, ns: int, fs: int) -> bool:
    vc, vs = _regularised(nc, fc), _regularised(ns, fs)
    difference = fs / ns - fc / nc
    if difference + math.sqrt(2 * LOG_INV * (vc / nc + vs / ns)) >= 0:
        return False
    test = compare_to_stable(
        ProportionStats.model_construct(n=nc, successes=nc - fc),
        ProportionStats.model_construct(n=ns, successes=ns - fs),
        harmful=Direction.DECREASE,
        margin=0.0,
        alpha=ALPHA,
        target_samples=TARGET,
    )
    return test is not None and test.breach


# -- a bounded score: five grades, 0 to 1 in quarters ---------------------------------------------

#: Each grade is the number of 1 bits among 4, each 1 with probability 3/4 (two random bits OR-ed):
#: P(1.0) = 0.32, P(0.75) = 0.42, P(0.5) = 0.21, P(0.25) = 0.05, P(0) = 0.004; mean 0.75.
_QUARTER = MEAN_SCALE // 4


@dataclass
class _Grades:
    """Grades of ``count`` samples, drawn at once: their sum and sum of squares, and each one."""

    bits: int
    count: int

    @classmethod
    def draw(cls, rng: random.Random, count: int) -> _Grades:
        width = 4 * count
        return cls(rng.getrandbits(width) | rng.getrandbits(width), count)

    def sums(self) -> tuple[int, int]:
        if self.count < 8:  # few grades: one by one is quicker
            grades = self.each()
            return sum(grades), sum(g * g for g in grades)
        # sum of g = popcount; sum of g^2 = popcount + 2 * (pairs of 1 bits within a grade).
        x, mask = self.bits, _nibble_mask(self.count)
        pairs = sum(((x >> i) & (x >> j) & mask).bit_count() for i in range(4) for j in range(i + 1, 4))
        total = x.bit_count()
        return total, total + 2 * pairs

    def each(self) -> list[int]:
        return [((self.bits >> (4 * i)) & 0xF).bit_count() for i in range(self.count)]


_MASKS: dict[int, int] = {}


def _nibble_mask(count: int) -> int:
    mask = _MASKS.get(count)
    if mask is None:
        mask = _MASKS[count] = int("0001" * count, 2) if count else 0
    return mask


def _score_aa(rng: random.Random, every: int, canary_samples: int) -> bool:
    """One A/A rollout of a five-grade score, looked at after every sample: True on a false breach."""
    canary = _Grades.draw(rng, canary_samples).each()
    sc = qc = 0  # canary sums, in grades (quarters)
    ss = qs = 0  # stable sums up to the current canary sample
    ns = 0
    for nc in range(1, canary_samples + 1):
        g = canary[nc - 1]
        sc, qc = sc + g, qc + g * g
        stretch = _Grades.draw(rng, every - 1) if every > 1 else None
        a = ns
        s_end, q_end = ss, qs
        if stretch is not None:
            s_more, q_more = stretch.sums()
            s_end, q_end = ss + s_more, qs + q_more
        b = a + every - 1
        if nc >= WARMUP and b >= WARMUP:
            # Over these looks the stable mean is at most s_end / a (grades are >= 0), the contrast's
            # variance at least the canary's own part.
            vc = (nc * qc - sc * sc) / (nc * (nc - 1) * 16)
            lowest = sc / (4 * nc) - s_end / (4 * max(a, 1))
            if lowest + math.sqrt(2 * LOG_INV * vc / nc) < 0 and _score_breaches(
                nc, sc, qc, a, ss, qs, [] if stretch is None else stretch.each()
            ):
                return True
        ns, ss, qs = b, s_end, q_end
    return False


def _score_breaches(nc: int, sc: int, qc: int, a: int, ss: int, qs: int, grades: list[int]) -> bool:
    """Whether any look after canary sample ``nc`` (stable at ``a``, then each of ``grades``) breaches."""
    canary = MeanStats.model_construct(n=nc, sum=sc * _QUARTER, sum_sq=qc * _QUARTER * _QUARTER)
    vc = (nc * qc - sc * sc) / (nc * (nc - 1) * 16)
    for ns, (s, q) in enumerate(_running(ss, qs, grades), start=a):
        if ns < WARMUP:
            continue
        vs = (ns * q - s * s) / (ns * (ns - 1) * 16)
        if sc / (4 * nc) - s / (4 * ns) + math.sqrt(2 * LOG_INV * (vc / nc + vs / ns)) >= 0:
            continue  # the floor only widens the radius: no breach at this look
        stable = MeanStats.model_construct(n=ns, sum=s * _QUARTER, sum_sq=q * _QUARTER * _QUARTER)
        test = compare_to_stable(
            canary, stable, harmful=Direction.DECREASE, margin=0.0, alpha=ALPHA, target_samples=TARGET
        )
        if test is not None and test.breach:
            return True
    return False


def _running(s: int, q: int, grades: list[int]) -> list[tuple[int, int]]:
    out = [(s, q)]
    for g in grades:
        s, q = s + g, q + g * g
        out.append((s, q))
    return out


# -- the A/A tests ---------------------------------------------------------------------------------


def _rate(name: str, seed: int, rollout: Callable[[random.Random], bool]) -> float:
    rng = random.Random(seed)
    hits = sum(rollout(random.Random(rng.getrandbits(64))) for _ in range(ROLLOUTS))
    upper = _upper_bound(hits, ROLLOUTS)
    print(
        f"\n{name}: {hits} false rollbacks in {ROLLOUTS} ({hits / ROLLOUTS:.2%}, 95% upper bound {upper:.2%})"
    )
    return hits / ROLLOUTS


@pytest.mark.parametrize("share", list(SHARES))
def test_aa_false_rollbacks_of_a_check_stay_below_alpha(share: str) -> None:
    """99% valid JSON on both sides; the canary gets 2,000 samples (and stable the rest of the traffic)."""
    every = SHARES[share]
    rate = _rate(
        f"A/A check, {share} canary",
        20260700 + every,
        lambda rng: _proportion_rollout(rng, every, canary_samples=2000, p_fail=0.01),
    )
    assert rate <= ALPHA


@pytest.mark.parametrize("share", list(SHARES))
def test_aa_false_rollbacks_of_a_bounded_score_stay_below_alpha(share: str) -> None:
    """A five-grade score in [0, 1] on both sides; the canary gets 1,000 samples."""
    every = SHARES[share]
    rate = _rate(
        f"A/A score, {share} canary",
        20260800 + every,
        lambda rng: _score_aa(rng, every, canary_samples=1000),
    )
    assert rate <= ALPHA


def test_a_naive_test_looked_at_as_often_does_not() -> None:
    """Why the judge is no fixed-level test: a one-sided 95% z-bound checked after every sample, on
    the same A/A rollouts of a check at 50%, breaches far more often than alpha."""
    z = 1.6448536269514722
    rng = random.Random(20260900)
    naive = 0
    for _ in range(500):
        draw = random.Random(rng.getrandbits(64))
        canary, stable = _failures(draw, 0.01, 2000), _failures(draw, 0.01, 2000)
        fc = fs = 0
        for n in range(WARMUP, 2001):
            fc, fs = _count(canary, n), _count(stable, n)
            variance = (_regularised(n, fc) + _regularised(n, fs)) / n
            if (fs - fc) / n + z * math.sqrt(variance) < 0:
                naive += 1
                break
    print(f"\nnaive repeated 95% bound: {naive / 500:.1%} false rollbacks")
    assert naive / 500 > 3 * ALPHA


def test_the_fast_path_decides_like_the_judge() -> None:
    """The simulation's shortcut and Judge.evaluate agree on whether a rollout breaches, rollout for
    rollout: A/A rollouts and regressions at a 5% canary, every sample looked at by the judge."""
    judge = Judge(ONE_RULE)
    rng = random.Random(20260901)
    every, samples = 20, 250
    outcomes = []
    for p_canary_fail in (0.01, 0.01, 0.01, 0.04, 0.06, 0.08):
        seed = rng.getrandbits(64)
        fast = _proportion_rollout(random.Random(seed), every, samples, 0.01, p_canary_fail)
        replay = random.Random(seed)
        canary = _failures(replay, p_canary_fail, samples)
        stable = _failures(replay, 0.01, (samples + 1) * (every - 1))
        slow = False
        for k in range(WARMUP * every, (samples + 1) * every):
            nc, ns = k // every, k - k // every
            evidence = Snapshot(
                stable={JSON_VALID: ProportionStats(n=ns, successes=ns - _count(stable, ns))},
                canary={JSON_VALID: ProportionStats(n=nc, successes=nc - _count(canary, nc))},
            )
            if judge.evaluate(evidence, step=0, elapsed_seconds=0).decision == "breach":
                slow = True
                break
        assert fast == slow, p_canary_fail
        outcomes.append(slow)
    assert True in outcomes and False in outcomes  # both paths were exercised


# -- other nulls and the power ----------------------------------------------------------------------


def test_aa_at_the_threshold_of_an_absolute_rule() -> None:
    """Canary validity exactly at the 95% floor (the hardest null): 1,000 rollouts of 5,000 canary
    samples, judged after every 10 samples; the floor is wrongly proven broken in at most 5%."""
    rng = random.Random(20240603)
    breaches = 0
    for _ in range(1000):
        failures = _failures(random.Random(rng.getrandbits(64)), 0.05, 5000)
        f = 0
        for n in range(WARMUP, 5001, 10):
            while f < len(failures) and failures[f] <= n:
                f += 1
            m = proportion_moments(n, n - f)
            if m.estimate + math.sqrt(2 * LOG_INV * m.variance / n) >= 0.95:
                continue
            result = mixture_test(
                m.estimate,
                m.variance / n,
                m.variance / TARGET,
                limit=0.95,
                harmful=Direction.DECREASE,
                alpha=ALPHA,
            )
            if result is not None and result.breach:
                breaches += 1
                break
    print(f"\nA/A at an absolute floor: false breaches {breaches / 1000:.2%} (alpha 5%)")
    assert _upper_bound(breaches, 1000) <= ALPHA


def test_aa_on_a_score_that_is_mostly_zero() -> None:
    """A score that is 1.0 in 2% of responses and 0 otherwise, harmful if it decreases, canary at
    10%: 1,000 A/A rollouts of 10,000 samples, judged after every 10 samples. Early canary samples
    often show no 1.0 at all (no spread): the floor on the canary's variance keeps that from passing
    for proof."""
    rng = random.Random(20240606)
    breaches = 0
    for _ in range(1000):
        draw = random.Random(rng.getrandbits(64))
        canary_ones, stable_ones = _failures(draw, 0.02, 1000), _failures(draw, 0.02, 9000)
        c = t = 0
        for seen in range(10, 10_001, 10):
            nc, ns = seen // 10, seen - seen // 10
            while c < len(canary_ones) and canary_ones[c] <= nc:
                c += 1
            while t < len(stable_ones) and stable_ones[t] <= ns:
                t += 1
            if nc < WARMUP:
                continue
            # Necessary condition first, with the variance the test uses (canary floored at pooled).
            n, ones = nc + ns, c + t
            pooled = (n * ones - ones * ones) / (n * (n - 1))
            vc = max((nc * c - c * c) / (nc * (nc - 1)), pooled)
            vs = (ns * t - t * t) / (ns * (ns - 1))
            if c / nc - t / ns + math.sqrt(2 * LOG_INV * (vc / nc + vs / ns)) >= 0.0:
                continue
            result = compare_to_stable(
                MeanStats.model_construct(n=nc, sum=c * MEAN_SCALE, sum_sq=c * MEAN_SCALE * MEAN_SCALE),
                MeanStats.model_construct(n=ns, sum=t * MEAN_SCALE, sum_sq=t * MEAN_SCALE * MEAN_SCALE),
                harmful=Direction.DECREASE,
                margin=0.0,
                alpha=ALPHA,
                target_samples=TARGET,
            )
            if result is not None and result.breach:
                breaches += 1
                break
    print(f"\nA/A on a score that is mostly 0: false breaches {breaches / 1000:.2%} (alpha 5%)")
    assert _upper_bound(breaches, 1000) <= ALPHA


def test_ab_broken_json_is_caught_within_budget() -> None:
    """Format validity 99% -> 94% under the default policy's json_valid rule (alpha 0.05 / 3,
    margin 0.01), canary at 10% of traffic, judged after every canary sample."""
    judge = Judge(DEFAULT_POLICY)
    rule = judge.policy.rules[0]
    assert rule.signal == "json_valid"
    alpha, log_inv = judge.rule_alpha, math.log(1 / judge.rule_alpha)
    rollouts, budget = 1000, 1000  # budget in canary samples
    rng = random.Random(20240602)
    detections = []
    for _ in range(rollouts):
        draw = random.Random(rng.getrandbits(64))
        canary, stable = _failures(draw, 0.06, budget), _failures(draw, 0.01, 9 * budget)
        found = None
        for nc in range(WARMUP, budget + 1):
            ns = 9 * nc
            fc, fs = _count(canary, nc), _count(stable, ns)
            variance = _regularised(nc, fc) / nc + _regularised(ns, fs) / ns
            if fs / ns - fc / nc + math.sqrt(2 * log_inv * variance) >= -rule.tolerance:
                continue
            test = compare_to_stable(
                ProportionStats.model_construct(n=nc, successes=nc - fc),
                ProportionStats.model_construct(n=ns, successes=ns - fs),
                harmful=Direction.DECREASE,
                margin=rule.tolerance,
                alpha=alpha,
                target_samples=judge.policy.statistics.target_samples,
            )
            if test is not None and test.breach:
                found = nc
                break
        detections.append(found)
    caught = sorted(d for d in detections if d is not None)
    power = len(caught) / rollouts
    median = statistics.median(caught)
    print(
        f"\nA/B 99% -> 94%: power {power:.1%} within {budget} canary samples; canary samples to "
        f"detection: median {median:g}, 95th percentile {caught[int(0.95 * len(caught)) - 1]}"
    )
    assert power >= 0.95
    assert median <= 400
