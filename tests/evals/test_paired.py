"""The paired tests of two runs: the exact McNemar test and the Wilcoxon signed-rank test, checked
against counting every outcome by brute force, and the normal approximation against the exact test."""

from __future__ import annotations

import itertools
import math
import random

import pytest

import otel_prompt_canary.evals.paired as paired
from otel_prompt_canary.evals.paired import mcnemar_exact, wilcoxon_signed_rank


@pytest.mark.parametrize(
    ("worse", "better", "expected"),
    [(0, 0, 1.0), (0, 5, 1.0), (4, 0, 1 / 16), (6, 0, 1 / 64), (3, 1, 5 / 16), (5, 5, 638 / 1024)],
)
def test_mcnemar_is_the_binomial_tail_of_the_discordant_pairs(
    worse: int, better: int, expected: float
) -> None:
    assert mcnemar_exact(worse, better) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_stays_exact_for_large_counts() -> None:
    # 5000 discordant pairs, 2600 worse: z = 2.83, one-sided p ~ 0.0024; float overflow would give nan.
    p = mcnemar_exact(2600, 2400)
    assert 0.0020 < p < 0.0028


def _brute_force(differences: list[float]) -> float:
    """P(W+ <= observed) by enumerating every sign assignment of the mid-ranks."""
    nonzero = [d for d in differences if d != 0]
    magnitudes = sorted(abs(d) for d in nonzero)
    ranks = {
        m: sum(i + 1 for i, x in enumerate(magnitudes) if x == m) / magnitudes.count(m) for m in magnitudes
    }
    observed = sum(ranks[abs(d)] for d in nonzero if d > 0)
    outcomes = [
        sum(ranks[abs(d)] for d, s in zip(nonzero, signs, strict=True) if s)
        for signs in itertools.product((0, 1), repeat=len(nonzero))
    ]
    return sum(1 for w in outcomes if w <= observed + 1e-9) / len(outcomes)


@pytest.mark.parametrize("seed", range(8))
def test_wilcoxon_exact_matches_counting_every_sign_assignment(seed: int) -> None:
    draw = random.Random(seed)
    differences = [draw.choice([-0.4, -0.2, 0.0, 0.2, 0.4, -0.1, 0.3]) for _ in range(draw.randint(1, 12))]
    assert wilcoxon_signed_rank(differences) == pytest.approx(_brute_force(differences), rel=1e-12)


def test_wilcoxon_of_scores_that_all_fell() -> None:
    assert wilcoxon_signed_rank([-0.5, -0.4, -0.6]) == 1 / 8
    assert wilcoxon_signed_rank([0.0, 0.0]) == 1.0
    assert wilcoxon_signed_rank([0.1, 0.2, 0.3]) == 1.0


def test_the_normal_approximation_agrees_with_the_exact_test_where_they_meet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draw = random.Random(7)
    for shift in (-0.3, -0.1, 0.0, 0.2):
        differences = [round(draw.gauss(shift, 1.0), 2) for _ in range(paired.EXACT_RANKS)]
        exact = wilcoxon_signed_rank(differences)
        monkeypatch.setattr(paired, "EXACT_RANKS", 0)
        approximate = wilcoxon_signed_rank(differences)
        monkeypatch.setattr(paired, "EXACT_RANKS", 60)
        assert math.isclose(approximate, exact, abs_tol=0.01), (shift, exact, approximate)
