"""What closing the loop stores besides the registry: the alert log and each rollout's statistics.

:class:`LoopStore` is the interface the rollout controller, the alert receivers and the report
endpoint use; :class:`SqlLoopStore` implements it in the database of an
:class:`~otel_prompt_canary.registry.sql.SqlRegistry` (same engine, same transaction rules), so that
an alert's rollback and its log record commit together::

    registry = open_store(".prompt-canary/registry.db")
    store = SqlLoopStore(registry)
    store.record_report(report, source="my-app", origin="application")
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from otel_prompt_canary.analysis.stats import Report, Snapshot
from otel_prompt_canary.loop.alert_log import AlertLog
from otel_prompt_canary.loop.alerts import AlertNotice, AlertRecord
from otel_prompt_canary.loop.reports import ReportOrigin, ReportReceipt, RolloutOrigin
from otel_prompt_canary.loop.rollout_statistics import RolloutStatistics
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["LoopStore", "SqlLoopStore"]


@runtime_checkable
class LoopStore(Protocol):
    """Alerts and reports: what the loop stores next to the registry's prompts and routing flags."""

    def receive_alert(self, notice: AlertNotice) -> AlertRecord:
        """Decide an alert once per key and record the decision (see :mod:`~.loop.alerts`)."""
        ...

    def list_alerts(
        self,
        prompt: str | None = None,
        *,
        rollout_id: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[AlertRecord]:
        """The alert log, oldest first (the newest ``limit`` records when given; with ``before``,
        only records whose id is smaller)."""
        ...

    def record_report(
        self,
        report: Report,
        *,
        source: str,
        prompt: str | None = None,
        report_id: str | None = None,
        origin: ReportOrigin | str | None = None,
    ) -> ReportReceipt:
        """Add a report into its rollout's statistics, once per ``report_id``; a report of the
        ``origin`` that does not own its rollout is ignored (see :mod:`~.loop.reports`)."""
        ...

    def report_origin(self, rollout_id: str) -> RolloutOrigin | None:
        """Whose reports a rollout counts, and what of the other origin it ignored."""
        ...

    def rollout_reports(self, rollout_id: str) -> list[Report]:
        """Everything reported for a rollout, merged: one report per window size."""
        ...

    def rollout_snapshot(self, rollout_id: str, *, since: float | None = None) -> Snapshot:
        """A rollout's totals over the windows starting at or after ``since`` (all by default)."""
        ...

    def rollout_evidence(self, rollout_id: str, *, since: float) -> tuple[Snapshot, Snapshot]:
        """A rollout's totals over all windows and over those from ``since`` on, read together."""
        ...

    def reported_signals(self, prompt: str) -> frozenset[str]:
        """The signal attributes any rollout of ``prompt`` has had samples of, in either cohort."""
        ...


class SqlLoopStore(AlertLog, RolloutStatistics):
    """A :class:`LoopStore` in the database of ``registry``; safe to share between threads."""

    def __init__(self, registry: SqlRegistry) -> None:
        super().__init__(registry)

    def __repr__(self) -> str:
        return f"SqlLoopStore({self.registry.url!r})"
