"""Paired tests of two runs on the same cases: exact McNemar for pass/fail, Wilcoxon for scores.

Both are one-sided: the p-value is the chance, if the candidate were no worse than the baseline,
of seeing it at least this much worse. Golden sets are small, so the pass/fail test is exact (a
binomial tail on the discordant pairs); the signed-rank test is exact up to
:data:`EXACT_RANKS` non-zero differences (ties in absolute value share their mean rank) and a
normal approximation, with tie and continuity corrections, beyond.

    mcnemar_exact(worse=6, better=0)            # 0.015625: six cases broke, none improved
    wilcoxon_signed_rank([-0.5, -0.4, -0.6])    # 0.125: three scores fell
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

__all__ = ["EXACT_RANKS", "mcnemar_exact", "wilcoxon_signed_rank"]

#: Up to this many non-zero differences, the signed-rank test counts every sign assignment.
EXACT_RANKS: Final = 60
#: Differences smaller than this are ties (no change).
_ZERO: Final = 1e-12


def mcnemar_exact(worse: int, better: int) -> float:
    """One-sided exact McNemar p-value: ``worse`` pairs passed before and fail now, ``better`` the
    reverse; P(X >= worse) for X ~ Binomial(worse + better, 1/2)."""
    if worse < 0 or better < 0:
        raise ValueError("counts of discordant pairs are not negative")
    n = worse + better
    if worse == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(worse, n + 1))
    return min(1.0, tail / (1 << n))


def _doubled_ranks(values: Sequence[float]) -> list[int]:
    """Twice the mid-ranks of ``values`` (ties share the mean of their ranks): whole numbers."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] - values[order[start]] <= _ZERO:
            end += 1
        doubled = (start + 1) + (end + 1)  # twice the mean of ranks start+1 .. end+1
        for i in range(start, end + 1):
            ranks[order[i]] = doubled
        start = end + 1
    return ranks


def wilcoxon_signed_rank(differences: Sequence[float]) -> float:
    """One-sided p-value that the paired ``differences`` (candidate minus baseline) are not shifted
    below zero: small when the candidate's scores are lower. Zero differences are dropped."""
    nonzero = [d for d in differences if abs(d) > _ZERO]
    n = len(nonzero)
    if n == 0:
        return 1.0
    ranks = _doubled_ranks([abs(d) for d in nonzero])
    positive = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    if n <= EXACT_RANKS:
        # ways[s]: sign assignments whose positive doubled ranks sum to s.
        ways = [0] * (sum(ranks) + 1)
        ways[0] = 1
        for rank in ranks:
            for total in range(len(ways) - 1, rank - 1, -1):
                ways[total] += ways[total - rank]
        return min(1.0, sum(ways[: positive + 1]) / (1 << n))
    # Each doubled rank counts with probability 1/2: mean sum/2, variance sum of squares/4 (ties
    # included, since their mid-ranks are what is summed).
    mean = sum(ranks) / 2
    sd = math.sqrt(sum(r * r for r in ranks)) / 2
    z = (positive - mean + 1) / sd  # +1: continuity, half a rank in doubled-rank units
    return min(1.0, 0.5 * math.erfc(-z / math.sqrt(2)))
