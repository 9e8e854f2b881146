"""Each rollout's statistics in SQL: reports added window by window, and totals kept beside them.

A report adds its increments into one row per (rollout, window size, cohort, attribute, window
start) and into the rollout's totals (one row per cohort and attribute), in one transaction, so
that the two always agree and judging a rollout reads its totals, not all its windows. Sums are
exact: counts are integers, and the means' sums (quantized scores, possibly beyond 64 bits) are
stored as decimal strings and added as Python integers or PostgreSQL ``numeric``.

A report of a known origin (application or collector) counts only if its rollout counts that
origin's reports: the first origin that reports for a rollout owns it (a row written in the same
transaction as that report), and a report of the other origin is ``ignored``, its receipt and the
rollout's count of ignored reports written together. Reports of one rollout are decided one at a
time (its row is locked), so two origins reporting first at once cannot both own it. The first
ignored report of a rollout is logged as a warning, once for the whole fleet of replicas.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Numeric,
    bindparam,
    case,
    cast,
    false,
    func,
    select,
    true,
)

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report, Snapshot, merge_stats
from otel_prompt_canary.errors import InvalidInputError, NotFoundError, RegistryUnavailableError
from otel_prompt_canary.loop.reports import (
    MAX_ATTRIBUTE_LENGTH,
    ReportOrigin,
    ReportOutcome,
    ReportReceipt,
    RolloutOrigin,
)
from otel_prompt_canary.loop.stats_rows import stats_of, stats_values
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import MAX_INTEGER, check_integer, check_storable, shown
from otel_prompt_canary.registry.database import Database, aware, utc_now
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["RolloutStatistics"]

Stats = ProportionStats | MeanStats
#: One increment of a report: (cohort, attribute, window start, statistics).
_Entry = tuple[str, str, int, Stats]

log = logging.getLogger("otel_prompt_canary.loop.reports")


class RolloutStatistics:
    """The statistics reported for the rollouts of ``registry``, in its database."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    @property
    def _db(self) -> Database:
        return self.registry.database

    def reported_signals(self, prompt: str) -> frozenset[str]:
        """The signal attributes any rollout of ``prompt`` has had samples of, in either cohort.

        What "someone produces this signal" means when a rollout starts (see
        :mod:`otel_prompt_canary.loop.start`): read from the totals, one row per rollout, cohort and
        attribute.
        """
        totals, rollouts = t.rollout_totals, t.rollouts
        query = (
            select(totals.c.attribute)
            .distinct()
            .join(rollouts, rollouts.c.rollout_id == totals.c.rollout_id)
            .where(rollouts.c.prompt == validate_prompt_name(prompt), totals.c.n > 0)
        )
        with self._db.read() as conn:
            return frozenset(conn.execute(query).scalars())

    def record_report(
        self,
        report: Report,
        *,
        source: str,
        prompt: str | None = None,
        report_id: str | None = None,
        origin: ReportOrigin | str | None = None,
    ) -> ReportReceipt:
        """Add ``report`` into its rollout's statistics, exactly; once per ``report_id``.

        With ``prompt``, the rollout must be one of that prompt's
        (:class:`~otel_prompt_canary.errors.InvalidInputError` otherwise; an unknown prompt raises
        :class:`~otel_prompt_canary.errors.NotFoundError`). A report of an unknown rollout is
        ``ignored``: nothing is stored. Statistics of one cohort and attribute keep one kind
        (proportion or mean) across all reports: a report mixing them is refused whole.

        With ``origin``, the report counts only if the rollout counts that origin's reports (the
        first origin to report owns the rollout); otherwise it is ``ignored`` and counted among the
        rollout's ignored reports (:meth:`report_origin`). Without one (an older sender, user
        feedback) it counts whatever the rollout's origin.
        """
        if prompt is not None:
            validate_prompt_name(prompt)
        if not source or len(source) > 256:
            raise InvalidInputError("a report's source must be 1-256 characters")
        check_storable(source, "source")
        if report_id is not None:
            check_storable(report_id, "report_id")
        try:
            known = None if origin is None else ReportOrigin(origin)
        except ValueError:
            raise InvalidInputError(
                f"unknown report origin {origin!r}: use 'application' or 'collector'"
            ) from None
        entries = _entries(report)
        receipt, first_ignored = self._db.write(
            lambda conn: self._record(
                conn, report, entries, source=source, prompt=prompt, report_id=report_id, origin=known
            ),
            contended=f"could not store a report of rollout {report.rollout_id}: too many concurrent reports",
        )
        if first_ignored:
            # Once per rollout, fleet-wide: the transaction that counted the first ignored report.
            log.warning("ignored a report from %r: %s", source, receipt.reason)
        return receipt

    def report_origin(self, rollout_id: str) -> RolloutOrigin | None:
        """Whose reports ``rollout_id`` counts and what of the other origin was ignored; None until
        a report with an origin has arrived."""
        with self._db.read() as conn:
            return _origin_of(conn, rollout_id)

    def _record(
        self,
        conn: Connection,
        report: Report,
        entries: list[_Entry],
        *,
        source: str,
        prompt: str | None,
        report_id: str | None,
        origin: ReportOrigin | None,
    ) -> tuple[ReportReceipt, bool]:
        rollout_id = report.rollout_id
        if prompt is not None and not self.registry.prompt_exists(conn, prompt):
            raise NotFoundError(f"unknown prompt {prompt!r}")
        # Lock the rollout's row: reports of one rollout are added one at a time, so that concurrent
        # read-modify-writes of its statistics never lose an increment, and two origins reporting
        # first at once never both own it (PostgreSQL; SQLite's write lock already serialises them).
        owner = conn.execute(
            select(t.rollouts.c.prompt).where(t.rollouts.c.rollout_id == rollout_id).with_for_update()
        ).scalar()
        if owner is None:
            reason = f"unknown rollout {rollout_id!r}: the report was not stored"
            receipt = ReportReceipt(
                report_id=report_id, rollout_id=rollout_id, outcome=ReportOutcome.IGNORED, reason=reason
            )
            return receipt, False
        if prompt is not None and owner != prompt:
            raise InvalidInputError(f"rollout {rollout_id} is a rollout of {owner!r}, not of {prompt!r}")
        receipts = t.report_receipts
        if report_id is not None:
            seen = conn.execute(
                select(receipts.c.received_at, receipts.c.outcome).where(receipts.c.report_id == report_id)
            ).first()
            if seen is not None:
                return self._repeated(conn, rollout_id, report_id, seen.received_at, seen.outcome), False
        counted = _origin_of(conn, rollout_id)
        if counted is None and origin is not None:
            counted = _claim(conn, rollout_id, origin, source)
        samples = sum(stats.n for *_, stats in entries)
        ignored = origin is not None and counted is not None and origin is not counted.origin
        if report_id is not None:
            conn.execute(
                receipts.insert().values(
                    report_id=report_id,
                    rollout_id=rollout_id,
                    source=source,
                    received_at=utc_now(),
                    origin=None if origin is None else origin.value,
                    outcome=(ReportOutcome.IGNORED if ignored else ReportOutcome.MERGED).value,
                )
            )
        counted_origin = None if counted is None else counted.origin
        if ignored:
            assert counted is not None
            first = _count_ignored(conn, rollout_id, source, samples)
            receipt = ReportReceipt(
                report_id=report_id,
                rollout_id=rollout_id,
                outcome=ReportOutcome.IGNORED,
                reason=counted.ignored_reason(rollout_id),
                counted_origin=counted_origin,
            )
            return receipt, first
        _add_to_totals(conn, rollout_id, entries)
        _add_to_windows(conn, rollout_id, report.window_seconds, entries)
        receipt = ReportReceipt(
            report_id=report_id,
            rollout_id=rollout_id,
            outcome=ReportOutcome.MERGED,
            reason=f"added {samples} samples to rollout {rollout_id}",
            samples=samples,
            counted_origin=counted_origin,
        )
        return receipt, False

    @staticmethod
    def _repeated(
        conn: Connection, rollout_id: str, report_id: str, received_at: datetime, outcome: str
    ) -> ReportReceipt:
        """The receipt of a report id decided before: a retry adds nothing, and says what it was."""
        counted = _origin_of(conn, rollout_id)
        counted_origin = None if counted is None else counted.origin
        when = aware(received_at)
        if outcome == ReportOutcome.IGNORED and counted is not None:
            reason = f"report {report_id} was ignored at {when}; {counted.ignored_reason(rollout_id)}"
            return ReportReceipt(
                report_id=report_id,
                rollout_id=rollout_id,
                outcome=ReportOutcome.IGNORED,
                reason=reason,
                counted_origin=counted_origin,
            )
        return ReportReceipt(
            report_id=report_id,
            rollout_id=rollout_id,
            outcome=ReportOutcome.DUPLICATE,
            reason=f"report {report_id} was counted at {when}",
            counted_origin=counted_origin,
        )

    def rollout_reports(self, rollout_id: str) -> list[Report]:
        """Everything reported for ``rollout_id``, merged: one report per window size, smallest first."""
        s = t.rollout_stats.c
        with self._db.read() as conn:
            rows = list(conn.execute(select(t.rollout_stats).where(s.rollout_id == rollout_id)).mappings())
        grouped: dict[int, dict[str, dict[str, dict[int, Stats]]]] = {}
        for row in rows:
            cohorts = grouped.setdefault(row["window_seconds"], {"stable": {}, "canary": {}})
            cohorts[row["cohort"]].setdefault(row["attribute"], {})[row["window_start"]] = stats_of(row)
        return [
            Report(rollout_id=rollout_id, window_seconds=size, stable=c["stable"], canary=c["canary"])
            for size, c in sorted(grouped.items())
        ]

    def rollout_snapshot(self, rollout_id: str, *, since: float | None = None) -> Snapshot:
        """Totals of ``rollout_id``'s statistics over every window size, summed by the database.

        Counts the windows that start at or after ``since`` (all of them by default), whole, as
        :meth:`Report.snapshot <otel_prompt_canary.analysis.Report.snapshot>` does over
        :meth:`rollout_reports`, with the same result, at a cost that does not grow with the
        rollout's age: the totals of all windows are kept by every report, and the windows from
        ``since`` on are found by an index and summed in SQL. Sums stay exact: PostgreSQL adds the
        means' arbitrary-precision sums as ``numeric``; SQLite, whose integers are 64-bit, adds
        those of up to 18 characters and leaves longer ones (and a total that would overflow) to
        Python.
        """
        if since is None:
            with self._db.read() as conn:
                return _totals(conn, rollout_id)
        return self.rollout_evidence(rollout_id, since=since)[1]

    def rollout_evidence(self, rollout_id: str, *, since: float) -> tuple[Snapshot, Snapshot]:
        """:meth:`rollout_snapshot` of all windows and of those from ``since`` on, in one read.

        What the rollout controller judges a rollout and its current step on: read together, the
        step never holds a sample the totals lack.
        """
        if not math.isfinite(since):
            raise InvalidInputError(f"since must be a finite time in seconds, got {since}")
        s = t.rollout_stats.c
        where = [s.rollout_id == rollout_id, s.window_start >= math.ceil(since)]
        if self._db.dialect == "postgresql":
            with self._db.read() as conn:
                return _totals(conn, rollout_id), _step(conn, rollout_id, where, fits=true(), exact=Numeric)
        # 18 characters: at most 17 digits and a sign, so every such value and its cast fit int64.
        fits = (func.length(s.sum) <= 18) & (func.length(s.sum_sq) <= 18)
        try:
            with self._db.read() as conn:
                return _totals(conn, rollout_id), _step(conn, rollout_id, where, fits=fits, exact=BigInteger)
        except RegistryUnavailableError as exc:
            # SQLite's sum() refuses to overflow rather than lose digits: add them all in Python.
            if "integer overflow" not in str(exc.__cause__):
                raise
            with self._db.read() as conn:
                return _totals(conn, rollout_id), _step(
                    conn, rollout_id, where, fits=false(), exact=BigInteger
                )


def _origin_of(conn: Connection, rollout_id: str) -> RolloutOrigin | None:
    row = conn.execute(select(t.rollout_origins).where(t.rollout_origins.c.rollout_id == rollout_id)).first()
    if row is None:
        return None
    origin = ReportOrigin(row.origin)
    since = aware(row.claimed_at)
    assert since is not None  # the column is NOT NULL
    return RolloutOrigin(
        origin=origin,
        first_source=row.first_source,
        since=since,
        ignored_origin=origin.other,
        ignored_reports=row.ignored_reports,
        ignored_samples=row.ignored_samples,
        last_ignored_source=row.last_ignored_source,
        last_ignored_at=aware(row.last_ignored_at),
    )


def _claim(conn: Connection, rollout_id: str, origin: ReportOrigin, source: str) -> RolloutOrigin:
    """Make ``origin`` the owner of ``rollout_id`` (the caller holds the rollout's lock and found none).

    Should a writer that does not hold the lock insert first, the primary key refuses this insert
    and the whole write is run again, and then finds the owner.
    """
    now = utc_now()
    conn.execute(
        t.rollout_origins.insert().values(
            rollout_id=rollout_id, origin=origin.value, first_source=source, claimed_at=now
        )
    )
    return RolloutOrigin(origin=origin, first_source=source, since=now, ignored_origin=origin.other)


def _count_ignored(conn: Connection, rollout_id: str, source: str, samples: int) -> bool:
    """Count one ignored report of ``rollout_id``; True when it is the rollout's first.

    The caller holds the rollout's lock. The counts stop at the store's largest integer: they only
    tell a person that reports are ignored.
    """
    o = t.rollout_origins.c
    reports, ignored = conn.execute(
        select(o.ignored_reports, o.ignored_samples).where(o.rollout_id == rollout_id)
    ).one()
    conn.execute(
        t.rollout_origins.update()
        .where(o.rollout_id == rollout_id)
        .values(
            ignored_reports=min(reports + 1, MAX_INTEGER),
            ignored_samples=min(ignored + samples, MAX_INTEGER),
            last_ignored_source=source,
            last_ignored_at=utc_now(),
        )
    )
    return bool(reports == 0)


def _entries(report: Report) -> list[_Entry]:
    entries = [
        (cohort, attribute, start, stats)
        for cohort in ("stable", "canary")
        for attribute, series in getattr(report, cohort).items()
        for start, stats in series.items()
    ]
    for _, attribute, start, _ in entries:
        if not attribute or len(attribute) > MAX_ATTRIBUTE_LENGTH:
            raise InvalidInputError(
                f"signal attribute {shown(attribute[:40])}... is not 1-{MAX_ATTRIBUTE_LENGTH} characters"
            )
        check_storable(attribute, "signal attribute")
        check_integer(start, "window start")
    return entries


def _add_to_totals(conn: Connection, rollout_id: str, entries: list[_Entry]) -> None:
    """Add ``entries`` into the rollout's totals, touching only the rows they change."""
    tot = t.rollout_totals.c
    totals = {
        (row["cohort"], row["attribute"]): stats_of(row)
        for row in conn.execute(select(t.rollout_totals).where(tot.rollout_id == rollout_id)).mappings()
    }
    known, touched = set(totals), set()
    for cohort, attribute, _, stats in entries:
        total = totals.get((cohort, attribute))
        if total is not None and total.kind != stats.kind:
            raise InvalidInputError(
                f"{cohort} signal {attribute!r} of rollout {rollout_id} holds {total.kind} statistics; "
                f"cannot add {stats.kind} statistics to it"
            )
        totals[(cohort, attribute)] = stats if total is None else merge_stats(total, stats)
        touched.add((cohort, attribute))
    for cohort, attribute in touched:
        values = stats_values(totals[(cohort, attribute)])
        if (cohort, attribute) not in known:
            conn.execute(
                t.rollout_totals.insert().values(
                    rollout_id=rollout_id, cohort=cohort, attribute=attribute, **values
                )
            )
        else:
            key = (tot.rollout_id == rollout_id) & (tot.cohort == cohort) & (tot.attribute == attribute)
            conn.execute(t.rollout_totals.update().where(key).values(**values))


def _add_to_windows(conn: Connection, rollout_id: str, window_seconds: int, entries: list[_Entry]) -> None:
    """Add ``entries`` into their windows: read in one query (by the index on rollout and start) and
    written in two batches, so that a report costs a few statements, not two per window."""
    if not entries:
        return
    s = t.rollout_stats.c
    starts = [start for _, _, start, _ in entries]
    this_size = (s.rollout_id == rollout_id) & (s.window_seconds == window_seconds)
    stored = {
        (row["cohort"], row["attribute"], row["window_start"]): stats_of(row)
        for row in conn.execute(
            select(t.rollout_stats).where(this_size, s.window_start.between(min(starts), max(starts)))
        ).mappings()
    }
    inserts, updates = [], []
    for cohort, attribute, start, stats in entries:
        before = stored.get((cohort, attribute, start))
        values = stats_values(stats if before is None else merge_stats(before, stats))
        if before is None:
            inserts.append(
                {"rollout_id": rollout_id, "window_seconds": window_seconds, "cohort": cohort,
                 "attribute": attribute, "window_start": start, **values}
            )  # fmt: skip
        else:
            updates.append({"w_cohort": cohort, "w_attribute": attribute, "w_start": start, **values})
    if inserts:
        conn.execute(t.rollout_stats.insert(), inserts)
    if updates:
        window = (
            this_size
            & (s.cohort == bindparam("w_cohort"))
            & (s.attribute == bindparam("w_attribute"))
            & (s.window_start == bindparam("w_start"))
        )
        conn.execute(t.rollout_stats.update().where(window), updates)


def _totals(conn: Connection, rollout_id: str) -> Snapshot:
    rows = conn.execute(
        select(t.rollout_totals).where(t.rollout_totals.c.rollout_id == rollout_id)
    ).mappings()
    cohorts: dict[str, dict[str, Stats]] = {"stable": {}, "canary": {}}
    for row in rows:
        cohorts[row["cohort"]][row["attribute"]] = stats_of(row)
    return Snapshot(stable=cohorts["stable"], canary=cohorts["canary"])


def _step(
    conn: Connection,
    rollout_id: str,
    where: list[ColumnElement[bool]],
    *,
    fits: ColumnElement[bool],
    exact: type[Numeric[Any]] | type[BigInteger],
) -> Snapshot:
    """The windows ``where`` selects, summed in SQL as ``exact``, but for the means' sums not ``fits``."""
    s = t.rollout_stats.c

    def summed(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.sum(case((fits, cast(column, exact)), else_=None))

    totals = select(
        s.cohort, s.attribute, s.kind, func.sum(s.n), func.sum(s.successes), summed(s.sum), summed(s.sum_sq)
    ).where(*where)
    rest = select(s.cohort, s.attribute, s.sum, s.sum_sq).where(s.kind == "mean", ~fits, *where)
    rows = list(conn.execute(totals.group_by(s.cohort, s.attribute, s.kind)))
    extra: dict[tuple[str, str], tuple[int, int]] = {}
    for cohort, attribute, total, total_sq in conn.execute(rest):
        before = extra.get((cohort, attribute), (0, 0))
        extra[(cohort, attribute)] = (before[0] + int(total), before[1] + int(total_sq))
    cohorts: dict[str, dict[str, Stats]] = {"stable": {}, "canary": {}}
    for cohort, attribute, kind, n, successes, total, total_sq in rows:
        if attribute in cohorts[cohort]:
            raise InvalidInputError(f"{attribute} mixes checks and scores in rollout {rollout_id}")
        if kind == "proportion":
            cohorts[cohort][attribute] = ProportionStats(n=int(n), successes=int(successes))
        else:
            more, more_sq = extra.get((cohort, attribute), (0, 0))
            cohorts[cohort][attribute] = MeanStats(
                n=int(n), sum=int(total or 0) + more, sum_sq=int(total_sq or 0) + more_sq
            )
    return Snapshot(stable=cohorts["stable"], canary=cohorts["canary"])
