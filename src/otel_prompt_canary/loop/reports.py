"""Reports: statistics of a rollout sent by whoever watches its traffic, and what became of each.

A report (:class:`otel_prompt_canary.analysis.Report`, ``schemas/report.schema.json`` on the wire)
carries increments of mergeable statistics per cohort, signal attribute and time window. The store
adds each report into the rollout's totals, one row per (rollout, window size, cohort, attribute,
window start), exactly (integer sums, any order). A report with an id is counted once: a repeated
id is a ``duplicate`` and adds nothing.

A signal attribute keeps the kind its prefix says (:data:`otel_prompt_canary.names.SIGNAL_KINDS`):
checks are proportions, scores and token usage are means; :func:`check_kinds` refuses a report that
says otherwise.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from otel_prompt_canary.analysis.stats import Report
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX, signal_kind

__all__ = [
    "MAX_ATTRIBUTE_LENGTH",
    "ReportOutcome",
    "ReportReceipt",
    "attribute_of",
    "check_kinds",
]

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


def attribute_of(signal: str, value: bool | float) -> str:
    """The span attribute a signal's sample counts under: a bool is a check, a number a score.

    A full attribute name (``prompt_canary.*``, ``gen_ai.*``) is taken as it is.
    """
    if signal.startswith(("prompt_canary.", "gen_ai.")):
        return signal
    return (CHECK_PREFIX if isinstance(value, bool) else SCORE_PREFIX) + signal


def check_kinds(report: Report, *, where: str = "body") -> None:
    """Refuse statistics whose kind contradicts their attribute's prefix (``InvalidInputError``)."""
    for cohort in ("stable", "canary"):
        for attribute, series in getattr(report, cohort).items():
            expected = signal_kind(attribute)
            wrong = [s.kind for s in series.values() if expected is not None and s.kind != expected]
            if wrong:
                raise InvalidInputError(
                    f"{where}.{cohort}: {attribute!r} holds {wrong[0]} statistics, but its prefix makes it "
                    f"a {expected} signal"
                )
