"""Live statistics: what a prompt's stable version does when no rollout is running, and which model answers.

Calls routed while a prompt has no active rollout carry no rollout id; applications and the Collector
processor report them all the same, as **live reports**: the report format of rollouts
(``schemas/report.schema.json``) with the reserved rollout id ``live:<version>`` (the stable
version that served them) and every statistic in the ``stable`` cohort. A live report is stored by
(prompt, version, window size, signal attribute, window start), exactly as a rollout's, once per
report id, and a prompt version counts the live reports of one origin: the first that reported (the
same rule as rollouts, :mod:`otel_prompt_canary.loop.reports`). A control plane older than live
reports answers them ``ignored`` (unknown rollout): nothing breaks.

Reports may also carry ``response_models``, the ``gen_ai.response.model`` of the calls per cohort
and window; those of live reports and of the stable cohort of rollouts are kept per prompt version
(when first and last seen, how many calls), for the drift monitor's model watch.

:meth:`LiveStatistics.stable_windows` reads back what the drift monitor judges: every window of a
version's stable traffic, live or inside a rollout whose stable version it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, and_, select

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report, merge_stats
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.loop.reports import MAX_ATTRIBUTE_LENGTH, ReportOrigin, ReportOutcome, ReportReceipt
from otel_prompt_canary.loop.stats_rows import stats_of, stats_values
from otel_prompt_canary.names import LIVE_ROLLOUT_PREFIX
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import MAX_INTEGER, check_integer, check_storable
from otel_prompt_canary.registry.database import aware, utc_now
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = [
    "LIVE_PREFIX",
    "LiveStatistics",
    "ResponseModel",
    "ResponseModels",
    "StableWindow",
    "live_rollout_id",
    "live_version",
]

#: The rollout id of a live report is this prefix and the stable version: ``live:3``.
LIVE_PREFIX: Final = LIVE_ROLLOUT_PREFIX
#: Longest response model name kept.
MAX_MODEL_LENGTH: Final = 256

Stats = ProportionStats | MeanStats
#: Calls per response model and window start: ``{"gpt-4o-2024-08-06": {1795752000: 412}}``.
ResponseModels = Mapping[str, Mapping[int, int]]
#: One stored window of a version's stable traffic: (window start, window size, attribute, statistics).
StableWindow = tuple[int, int, str, Stats]


def live_rollout_id(version: int) -> str:
    """The reserved rollout id of ``version``'s live reports."""
    return f"{LIVE_PREFIX}{version}"


def live_version(rollout_id: str) -> int | None:
    """The version a live report's rollout id names; None when it is not a live id.

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for ``live:`` followed by anything
    but a version number.
    """
    if not rollout_id.startswith(LIVE_PREFIX):
        return None
    text = rollout_id.removeprefix(LIVE_PREFIX)
    if not text.isascii() or not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise InvalidInputError(
            f"rollout_id {rollout_id!r}: a live report's rollout id is 'live:<version>', the stable "
            "version that served its calls (a number from 1)"
        )
    return int(text)


class ResponseModel(BaseModel):
    """A model that answered a prompt version's stable traffic (``gen_ai.response.model``)."""

    model_config = ConfigDict(frozen=True)

    model: str
    calls: int = Field(ge=0, description="Calls it answered, as reported")
    first_window: int = Field(description="Start (Unix seconds) of the first window it was seen in")
    first_seen_at: datetime = Field(description="When the report that first named it arrived")
    last_window: int
    accepted: bool = Field(description="Expected: the snapshot's model, learnt, or acknowledged")


class LiveStatistics:
    """The live statistics and response models of the prompts of ``registry``, in its database."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def record_live_report(
        self,
        report: Report,
        *,
        prompt: str,
        source: str,
        report_id: str | None = None,
        origin: ReportOrigin | str | None = None,
        models: ResponseModels | None = None,
    ) -> ReportReceipt:
        """Add a live report (rollout id ``live:<version>``) to the version's live statistics, once
        per ``report_id``; a report of the origin that does not own the version is ``ignored``.

        Refused whole (:class:`~otel_prompt_canary.errors.InvalidInputError`) when it has canary
        statistics or a malformed id; an unknown prompt raises
        :class:`~otel_prompt_canary.errors.NotFoundError`; an unknown version is ``ignored``.
        """
        version = live_version(report.rollout_id)
        if version is None:
            raise InvalidInputError(
                f"rollout_id {report.rollout_id!r} is not a live report's ('live:<version>')"
            )
        if report.canary:
            raise InvalidInputError(
                "a live report has no canary cohort: its calls were served the stable version, with no "
                "rollout"
            )
        validate_prompt_name(prompt)
        if not source or len(source) > 256:
            raise InvalidInputError("a report's source must be 1-256 characters")
        check_storable(source, "source")
        try:
            known = None if origin is None else ReportOrigin(origin)
        except ValueError:
            raise InvalidInputError(
                f"unknown report origin {origin!r}: use 'application' or 'collector'"
            ) from None
        entries = _entries(report)
        seen = _model_entries(models or {})
        return self.registry.database.write(
            lambda conn: self._record(conn, report, entries, seen, prompt, version, source, report_id, known),
            contended=f"could not store a live report of {prompt}@{version}: too many concurrent reports",
        )

    def _record(
        self,
        conn: Connection,
        report: Report,
        entries: list[tuple[str, int, Stats]],
        models: list[tuple[str, int, int]],
        prompt: str,
        version: int,
        source: str,
        report_id: str | None,
        origin: ReportOrigin | None,
    ) -> ReportReceipt:
        rollout_id = report.rollout_id
        if not self.registry.prompt_exists(conn, prompt):
            raise NotFoundError(f"unknown prompt {prompt!r}")
        exists = conn.execute(
            select(t.versions.c.version).where(t.versions.c.name == prompt, t.versions.c.version == version)
        ).first()
        if exists is None:
            reason = f"unknown version {version} of prompt {prompt!r}: the live report was not stored"
            return ReportReceipt(
                report_id=report_id, rollout_id=rollout_id, outcome=ReportOutcome.IGNORED, reason=reason
            )
        o = t.live_origins.c
        key = (o.prompt == prompt) & (o.version == version)
        found = conn.execute(select(t.live_origins).where(key).with_for_update()).mappings().first()
        owner: dict[str, Any] | None = None if found is None else dict(found)
        if report_id is not None:
            done = conn.execute(
                select(t.live_receipts.c.received_at, t.live_receipts.c.outcome).where(
                    t.live_receipts.c.report_id == report_id
                )
            ).first()
            if done is not None:
                outcome = (
                    ReportOutcome.IGNORED
                    if done.outcome == ReportOutcome.IGNORED
                    else ReportOutcome.DUPLICATE
                )
                return ReportReceipt(
                    report_id=report_id,
                    rollout_id=rollout_id,
                    outcome=outcome,
                    reason=f"report {report_id} was decided at {aware(done.received_at)}",
                    counted_origin=None if owner is None else ReportOrigin(owner["origin"]),
                )
        if owner is None and origin is not None:
            conn.execute(
                t.live_origins.insert().values(
                    prompt=prompt,
                    version=version,
                    origin=origin.value,
                    first_source=source,
                    claimed_at=utc_now(),
                )
            )
            owner = {
                "origin": origin.value,
                "first_source": source,
                "ignored_reports": 0,
                "ignored_samples": 0,
            }
        counted = None if owner is None else ReportOrigin(owner["origin"])
        samples = sum(stats.n for *_, stats in entries)
        ignored = origin is not None and counted is not None and origin is not counted
        if report_id is not None:
            outcome = ReportOutcome.IGNORED if ignored else ReportOutcome.MERGED
            conn.execute(
                t.live_receipts.insert().values(
                    report_id=report_id,
                    prompt=prompt,
                    version=version,
                    source=source,
                    received_at=utc_now(),
                    origin=None if origin is None else origin.value,
                    outcome=outcome.value,
                )
            )
        if ignored:
            assert owner is not None and counted is not None
            conn.execute(
                t.live_origins.update()
                .where(key)
                .values(
                    ignored_reports=min(owner["ignored_reports"] + 1, MAX_INTEGER),
                    ignored_samples=min(owner["ignored_samples"] + samples, MAX_INTEGER),
                )
            )
            reason = (
                f"not counted: the live statistics of {prompt}@{version} count the reports of origin "
                f"{counted.value!r} (the first came from {owner['first_source']!r}), and this report covers "
                "the same calls: report each call by one path"
            )
            return ReportReceipt(
                report_id=report_id,
                rollout_id=rollout_id,
                outcome=ReportOutcome.IGNORED,
                reason=reason,
                counted_origin=counted,
            )
        _add_windows(conn, prompt, version, report.window_seconds, entries)
        _add_models(conn, prompt, version, models)
        return ReportReceipt(
            report_id=report_id,
            rollout_id=rollout_id,
            outcome=ReportOutcome.MERGED,
            reason=f"added {samples} samples to the live statistics of {prompt}@{version}",
            samples=samples,
            counted_origin=counted,
        )

    def record_response_models(self, prompt: str, version: int, models: ResponseModels) -> None:
        """Count the response models of ``version``'s stable traffic inside a rollout (its stable cohort)."""
        seen = _model_entries(models)
        if not seen:
            return
        validate_prompt_name(prompt)
        self.registry.database.write(
            lambda conn: _add_models(conn, prompt, version, seen),
            contended=f"could not store the response models of {prompt}@{version}: too many writers",
        )

    def response_models(self, prompt: str, version: int) -> list[ResponseModel]:
        """The models that answered ``version``'s stable traffic, first seen first."""
        m = t.response_models.c
        query = (
            select(t.response_models)
            .where(m.prompt == prompt, m.version == version)
            .order_by(m.first_window, m.model)
        )
        with self.registry.database.read() as conn:
            rows = list(conn.execute(query).mappings())
        return [
            ResponseModel(
                model=row["model"],
                calls=row["n"],
                first_window=row["first_window"],
                first_seen_at=aware(row["first_seen_at"]) or utc_now(),
                last_window=row["last_window"],
                accepted=bool(row["accepted"]),
            )
            for row in rows
        ]

    def accept_models(self, conn: Connection, prompt: str, version: int, models: list[str]) -> None:
        """Mark ``models`` expected for ``version`` (inside the caller's transaction)."""
        if models:
            m = t.response_models.c
            conn.execute(
                t.response_models.update()
                .where(m.prompt == prompt, m.version == version, m.model.in_(models))
                .values(accepted=True)
            )

    def stable_windows(self, prompt: str, version: int, *, since: int, until: int) -> list[StableWindow]:
        """Every stored window of ``version``'s stable traffic starting in ``[since, until)``: its live
        windows and the stable cohort's windows of the rollouts it was the stable version of."""
        live = t.live_stats.c
        stats = t.rollout_stats.c
        rollouts = t.rollouts.c
        live_query = select(t.live_stats).where(
            live.prompt == prompt,
            live.version == version,
            live.window_start >= since,
            live.window_start < until,
        )
        rollout_query = (
            select(t.rollout_stats)
            .join(t.rollouts, rollouts.rollout_id == stats.rollout_id)
            .where(
                and_(
                    rollouts.prompt == prompt,
                    rollouts.baseline_version == version,
                    stats.cohort == "stable",
                    stats.window_start >= since,
                    stats.window_start < until,
                )
            )
        )
        with self.registry.database.read() as conn:
            rows = [*conn.execute(live_query).mappings(), *conn.execute(rollout_query).mappings()]
        return [(row["window_start"], row["window_seconds"], row["attribute"], stats_of(row)) for row in rows]


def _entries(report: Report) -> list[tuple[str, int, Stats]]:
    entries = [
        (attribute, start, stats)
        for attribute, series in report.stable.items()
        for start, stats in series.items()
    ]
    for attribute, start, _ in entries:
        if not attribute or len(attribute) > MAX_ATTRIBUTE_LENGTH:
            raise InvalidInputError(f"a signal attribute is not 1-{MAX_ATTRIBUTE_LENGTH} characters")
        check_storable(attribute, "signal attribute")
        check_integer(start, "window start")
    return entries


def _model_entries(models: ResponseModels) -> list[tuple[str, int, int]]:
    """``(model, window start, calls)``, validated; calls of 0 are left out."""
    out = []
    for model, windows in models.items():
        if not model or len(model) > MAX_MODEL_LENGTH:
            raise InvalidInputError(f"a response model name is not 1-{MAX_MODEL_LENGTH} characters")
        check_storable(model, "response model")
        for start, calls in windows.items():
            check_integer(start, "window start")
            if calls < 0 or calls > MAX_INTEGER:
                raise InvalidInputError(f"response model {model!r}: {calls} calls is not a count")
            if calls:
                out.append((model, start, calls))
    return out


def _add_windows(
    conn: Connection, prompt: str, version: int, size: int, entries: list[tuple[str, int, Stats]]
) -> None:
    if not entries:
        return
    s = t.live_stats.c
    starts = [start for _, start, _ in entries]
    this = (s.prompt == prompt) & (s.version == version) & (s.window_seconds == size)
    stored = {
        (row["attribute"], row["window_start"]): stats_of(row)
        for row in conn.execute(
            select(t.live_stats).where(this, s.window_start.between(min(starts), max(starts)))
        ).mappings()
    }
    for attribute, start, stats in entries:
        before = stored.get((attribute, start))
        if before is not None and before.kind != stats.kind:
            raise InvalidInputError(
                f"stable signal {attribute!r} of {prompt}@{version} holds {before.kind} statistics; "
                f"cannot add {stats.kind} statistics to it"
            )
        total = stats if before is None else merge_stats(before, stats)
        stored[(attribute, start)] = total
        values = stats_values(total)
        if before is None:
            conn.execute(
                t.live_stats.insert().values(
                    prompt=prompt,
                    version=version,
                    window_seconds=size,
                    attribute=attribute,
                    window_start=start,
                    **values,
                )
            )
        else:
            where = this & (s.attribute == attribute) & (s.window_start == start)
            conn.execute(t.live_stats.update().where(where).values(**values))


def _add_models(conn: Connection, prompt: str, version: int, models: list[tuple[str, int, int]]) -> None:
    m = t.response_models.c
    totals: dict[str, tuple[int, int, int]] = {}
    for model, start, calls in models:
        first, last, n = totals.get(model, (start, start, 0))
        totals[model] = (min(first, start), max(last, start), n + calls)
    for model, (first, last, n) in totals.items():
        key = (m.prompt == prompt) & (m.version == version) & (m.model == model)
        row = conn.execute(select(m.first_window, m.last_window, m.n).where(key).with_for_update()).first()
        if row is None:
            conn.execute(
                t.response_models.insert().values(
                    prompt=prompt,
                    version=version,
                    model=model,
                    first_window=first,
                    first_seen_at=utc_now(),
                    last_window=last,
                    n=min(n, MAX_INTEGER),
                    accepted=False,
                )
            )
        else:
            conn.execute(
                t.response_models.update()
                .where(key)
                .values(
                    first_window=min(row.first_window, first),
                    last_window=max(row.last_window, last),
                    n=min(row.n + n, MAX_INTEGER),
                )
            )
