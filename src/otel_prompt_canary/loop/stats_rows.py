"""Merged statistics as rows: one encoding for a rollout's windows and for the live windows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Stats
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry.bounds import MAX_INTEGER

__all__ = ["stats_of", "stats_values"]


def stats_of(row: RowMapping) -> Stats:
    """The statistics a row of merged statistics holds (sums are stored as text: they outgrow 64 bits)."""
    if row["kind"] == "proportion":
        return ProportionStats(n=row["n"], successes=row["successes"])
    return MeanStats(n=row["n"], sum=int(row["sum"]), sum_sq=int(row["sum_sq"]))


def stats_values(stats: Stats) -> dict[str, Any]:
    """The columns of a row holding ``stats``; refused whole when a count outgrows the store."""
    if stats.n > MAX_INTEGER:
        raise InvalidInputError(
            f"the report would take a count to {stats.n}, beyond the store's largest integer "
            f"({MAX_INTEGER}): nothing was stored"
        )
    if isinstance(stats, ProportionStats):
        return {"kind": stats.kind, "n": stats.n, "successes": stats.successes, "sum": None, "sum_sq": None}
    return {
        "kind": stats.kind,
        "n": stats.n,
        "successes": None,
        "sum": str(stats.sum),
        "sum_sq": str(stats.sum_sq),
    }
