"""Per-rollout statistics received as reports, and the receipt of each report.

Reports (:class:`otel_prompt_canary.analysis.Report`) carry increments of mergeable statistics per
cohort, signal attribute and time window. The store adds each report into the rollout's totals, one
row per (rollout, window size, cohort, attribute, window start), exactly (integer sums, any order).
A report with an id is counted once: a repeated id is a ``duplicate`` and adds nothing.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_ATTRIBUTE_LENGTH", "ReportOutcome", "ReportReceipt"]

#: Longest signal attribute stored (the report schema's limit).
MAX_ATTRIBUTE_LENGTH = 256


class ReportOutcome(StrEnum):
    """``merged``: added to the rollout's totals; ``duplicate``: this id was counted before;
    ``ignored``: the rollout is unknown, nothing was stored."""

    MERGED = "merged"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class ReportReceipt(BaseModel):
    """What became of one report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_id: str | None
    rollout_id: str
    outcome: ReportOutcome
    reason: str = Field(description="Why, for people")
    samples: int = Field(0, description="Samples the report added (sum of n over its statistics)")
