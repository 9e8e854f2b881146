"""Reports: statistics of a rollout sent by whoever watches its traffic, and what became of each.

A report (:class:`otel_prompt_canary.analysis.Report`, ``schemas/report.schema.json`` on the wire)
carries increments of mergeable statistics per cohort, signal attribute and time window. The store
adds each report into the rollout's totals, one row per (rollout, window size, cohort, attribute,
window start), exactly (integer sums, any order). A report with an id is counted once: a repeated
id is a ``duplicate`` and adds nothing.

Two paths report the same calls: the applications themselves (in-app reports) and the Collector's
``promptcanary`` processor. A report says which it comes from (its :class:`ReportOrigin`), and a
rollout counts the reports of **one origin**: the first origin that reports for a rollout owns it,
and the other origin's reports are acknowledged as ``ignored`` and counted apart
(:class:`RolloutOrigin`), since adding both would count every call twice and halve the variance
the sequential test sees. A report without an origin (from a sender older than the field) is
counted as before; so is user feedback posted to ``/v1/feedback``, which neither path carries.

A signal attribute keeps the kind its prefix says (:data:`otel_prompt_canary.names.SIGNAL_KINDS`):
checks are proportions, scores and token usage are means; :func:`check_kinds` refuses a report that
says otherwise.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from otel_prompt_canary.analysis.stats import Report
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX, signal_kind

__all__ = [
    "MAX_ATTRIBUTE_LENGTH",
    "ReportOrigin",
    "ReportOutcome",
    "ReportReceipt",
    "RolloutOrigin",
    "attribute_of",
    "check_kinds",
]

#: Longest signal attribute stored (the report schema's limit).
MAX_ATTRIBUTE_LENGTH = 256

# How to stop sending the reports of each origin, as receipts and ``rollout status`` say it.
_TURN_OFF_IN_APP_REPORTS = (
    "turn in-app reporting off in the applications (OTEL_PROMPT_CANARY_REPORT_INTERVAL=0)"
)
_STOP_COLLECTOR_REPORTS = "stop posting the Collector processor's reports to this control plane"


class ReportOrigin(StrEnum):
    """Which path a report comes from: ``application`` (in-app reports, and a controller's own
    observations in process) or ``collector`` (the Collector's ``promptcanary`` processor)."""

    APPLICATION = "application"
    COLLECTOR = "collector"

    @property
    def other(self) -> ReportOrigin:
        """The other path, whose reports of the same calls a rollout owned by this one ignores."""
        return ReportOrigin.COLLECTOR if self is ReportOrigin.APPLICATION else ReportOrigin.APPLICATION


class ReportOutcome(StrEnum):
    """``merged``: added to the rollout's totals; ``duplicate``: this id was counted before;
    ``ignored``: nothing counted, because the rollout is unknown or its reports come from the other
    origin (the receipt's reason says which)."""

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
    counted_origin: ReportOrigin | None = Field(
        None,
        description="The origin whose reports count for the rollout (the first that reported); null "
        "while none has, or for an unknown rollout",
    )


class RolloutOrigin(BaseModel):
    """Where a rollout's statistics come from: the origin that owns it, and what of the other was ignored."""

    # Read back by the CLI from control planes of any release: fields it does not know are skipped.
    model_config = ConfigDict(frozen=True)

    origin: ReportOrigin = Field(description="Whose reports count: the first origin that reported")
    first_source: str = Field(description="The source of the first report of that origin")
    since: datetime = Field(description="When that first report arrived")
    ignored_origin: ReportOrigin = Field(description="The other origin, whose reports are not counted")
    ignored_reports: int = Field(0, ge=0, description="Reports of the other origin acknowledged, not counted")
    ignored_samples: int = Field(0, ge=0, description="The samples those reports held")
    last_ignored_source: str | None = Field(None, description="The source of the latest ignored report")
    last_ignored_at: datetime | None = Field(None, description="When the latest ignored report arrived")

    def remedy(self) -> str:
        """How to stop sending the reports this rollout ignores (those of :attr:`ignored_origin`)."""
        if self.ignored_origin is ReportOrigin.APPLICATION:
            return _TURN_OFF_IN_APP_REPORTS
        return _STOP_COLLECTOR_REPORTS

    def ignored_reason(self, rollout_id: str) -> str:
        """Why a report of :attr:`ignored_origin` is not counted, and how to stop sending it."""
        this = "in-app report" if self.ignored_origin is ReportOrigin.APPLICATION else "Collector report"
        switch = (
            _STOP_COLLECTOR_REPORTS if self.origin is ReportOrigin.COLLECTOR else _TURN_OFF_IN_APP_REPORTS
        )
        return (
            f"not counted: rollout {rollout_id} counts the reports of origin {self.origin.value!r} (the "
            f"first came from {self.first_source!r} at {self.since.isoformat(timespec='seconds')}), and "
            f"this {this} (origin {self.ignored_origin.value!r}) covers the same calls: counting both "
            f"would count every call twice. Report each call by one path: {self.remedy()}; or, to count "
            f"the {self.ignored_origin.value!r} reports instead, {switch} (a rollout keeps the origin "
            "that reported first, so that applies from the next rollout)"
        )


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
