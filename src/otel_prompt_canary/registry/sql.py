"""The SQL registry: an SQLite file (the embedded default) or PostgreSQL, through SQLAlchemy 2.

Every write is one transaction: a push stores the version (and, for a new prompt, its routing flag);
a transition updates the routing flag with compare-and-set on ``revision``, updates the rollout and
appends its audit record, or does nothing at all. SQLite runs in WAL mode and takes the write lock at
``BEGIN`` (``BEGIN IMMEDIATE``), so concurrent writers queue instead of failing on lock upgrades.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import JsonValue
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Numeric,
    RowMapping,
    bindparam,
    case,
    cast,
    create_engine,
    event,
    false,
    func,
    select,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from otel_prompt_canary.analysis.policy import load_policy
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report, Snapshot, merge_stats
from otel_prompt_canary.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RegistryUnavailableError,
    RevisionMismatchError,
    TooLargeError,
)
from otel_prompt_canary.registry import rollout as machine
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.alerts import (
    AlertAction,
    AlertNotice,
    AlertOutcome,
    AlertRecord,
    AlertStatus,
)
from otel_prompt_canary.registry.alerts import decide as decide_alert
from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES, store_url
from otel_prompt_canary.registry.diff import PromptDiff, diff_versions
from otel_prompt_canary.registry.models import (
    Action,
    AuditRecord,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    Rollout,
    RolloutState,
    Route,
    parse_ramp,
    validate_prompt_name,
)
from otel_prompt_canary.registry.reports import MAX_ATTRIBUTE_LENGTH, ReportOutcome, ReportReceipt

__all__ = ["SqlRegistry", "open_store", "store_url"]

log = logging.getLogger(__name__)

# Concurrent pushes of one prompt race for the next version number; the loser retries.
_PUSH_ATTEMPTS = 8


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SqlRegistry:
    """A :class:`~otel_prompt_canary.registry.base.Registry` on an SQLite file or PostgreSQL.

    Create it with :func:`open_store`. Safe to share between threads.
    """

    def __init__(self, engine: Engine, *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES) -> None:
        self._engine = engine
        self.max_template_bytes = max_template_bytes

    def __repr__(self) -> str:
        return f"SqlRegistry({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise RegistryUnavailableError(f"registry store error: {exc.orig or exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn.execution_options(prompt_canary_read_only=True)
        except OperationalError as exc:
            raise RegistryUnavailableError(f"registry store error: {exc.orig or exc}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self._engine.dispose()

    def __enter__(self) -> SqlRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- prompts and versions -----------------------------------------------------------------

    def push(self, spec: PromptSpec, *, author: str | None = None) -> PushResult:
        """Store ``spec`` as a new version, or return the version with identical content."""
        size = spec.template_bytes()
        if size > self.max_template_bytes:
            raise TooLargeError(
                f"template of {spec.name!r} is {size} bytes, over the limit of {self.max_template_bytes}"
            )
        digest = spec.content_hash()
        for _ in range(_PUSH_ATTEMPTS):
            try:
                with self._tx() as conn:
                    existing = conn.execute(
                        select(t.versions.c.body).where(
                            t.versions.c.name == spec.name, t.versions.c.content_hash == digest
                        )
                    ).scalar()
                    if existing is not None:
                        return PushResult(version=PromptVersion.model_validate(existing), created=False)
                    latest = conn.execute(
                        select(func.max(t.versions.c.version)).where(t.versions.c.name == spec.name)
                    ).scalar()
                    now = _now()
                    version = PromptVersion.from_spec(
                        spec, version=(latest or 0) + 1, created_at=now, author=author
                    )
                    if latest is None:
                        conn.execute(t.prompts.insert().values(name=spec.name, created_at=now))
                    conn.execute(
                        t.versions.insert().values(
                            name=spec.name,
                            version=version.version,
                            content_hash=digest,
                            body=version.model_dump(mode="json"),
                            created_at=now,
                        )
                    )
                    if latest is None:
                        # The first version of a prompt is its stable version.
                        conn.execute(
                            t.routes.insert().values(
                                prompt=spec.name,
                                stable_version=version.version,
                                canary_version=None,
                                canary_weight_bp=0,
                                rollout_id=None,
                                state=RolloutState.IDLE.value,
                                step=0,
                                revision=1,
                                ramp=[],
                                updated_at=now,
                            )
                        )
                    return PushResult(version=version, created=True)
            except IntegrityError:
                continue  # lost the race for this version number (or the prompt row): read again
        raise ConflictError(f"could not store a version of {spec.name!r}: too much concurrent pushing")

    def list_prompts(self) -> list[PromptSummary]:
        """Every prompt with its newest version number and routing state, by name."""
        with self._read() as conn:
            counts = conn.execute(
                select(t.versions.c.name, func.max(t.versions.c.version), func.count())
                .group_by(t.versions.c.name)
                .order_by(t.versions.c.name)
            ).all()
            routes = {r.prompt: r for r in self._routes(conn)}
        return [
            PromptSummary(name=name, latest_version=latest, versions=n, route=routes[name])
            for name, latest, n in counts
        ]

    def list_versions(self, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first."""
        validate_prompt_name(name)
        with self._read() as conn:
            bodies = conn.execute(
                select(t.versions.c.body).where(t.versions.c.name == name).order_by(t.versions.c.version)
            ).scalars()
            result = [PromptVersion.model_validate(b) for b in bodies]
        if not result:
            raise NotFoundError(f"unknown prompt {name!r}")
        return result

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        """One version of ``name``; the newest when ``version`` is None."""
        validate_prompt_name(name)
        with self._read() as conn:
            return self._version(conn, name, version)

    def _version(self, conn: Connection, name: str, version: int | None) -> PromptVersion:
        query = select(t.versions.c.body).where(t.versions.c.name == name)
        if version is None:
            query = query.order_by(t.versions.c.version.desc()).limit(1)
        else:
            query = query.where(t.versions.c.version == version)
        body = conn.execute(query).scalar()
        if body is None:
            if version is None or not self._prompt_exists(conn, name):
                raise NotFoundError(f"unknown prompt {name!r}")
            raise NotFoundError(f"prompt {name!r} has no version {version}")
        return PromptVersion.model_validate(body)

    def _prompt_exists(self, conn: Connection, name: str) -> bool:
        return conn.execute(select(t.prompts.c.name).where(t.prompts.c.name == name)).first() is not None

    def diff(self, name: str, a: int, b: int) -> PromptDiff:
        """What changed from version ``a`` to version ``b`` of ``name``."""
        validate_prompt_name(name)
        with self._read() as conn:
            return diff_versions(self._version(conn, name, a), self._version(conn, name, b))

    # -- routing flag -------------------------------------------------------------------------

    @staticmethod
    def _route(row: RowMapping) -> Route:
        return Route(
            prompt=row["prompt"],
            stable_version=row["stable_version"],
            canary_version=row["canary_version"],
            canary_weight_bp=row["canary_weight_bp"],
            rollout_id=row["rollout_id"],
            state=RolloutState(row["state"]),
            step=row["step"],
            revision=row["revision"],
            ramp=tuple(row["ramp"] or ()),
            updated_at=_aware(row["updated_at"]),
        )

    def _routes(self, conn: Connection, name: str | None = None) -> list[Route]:
        query = select(t.routes).order_by(t.routes.c.prompt)
        if name is not None:
            query = query.where(t.routes.c.prompt == name)
        return [self._route(row) for row in conn.execute(query).mappings()]

    def _route_of(self, conn: Connection, name: str) -> Route:
        found = self._routes(conn, name)
        if not found:
            raise NotFoundError(f"unknown prompt {name!r}")
        return found[0]

    def get_route(self, name: str) -> Route:
        """The routing flag of ``name``."""
        validate_prompt_name(name)
        with self._read() as conn:
            return self._route_of(conn, name)

    def list_routes(self) -> list[Route]:
        """The routing flags of every prompt, by name."""
        with self._read() as conn:
            return self._routes(conn)

    def _write_route(self, conn: Connection, before: Route, after: Route) -> None:
        """Compare-and-set: update only if the row is still at ``before.revision``."""
        result = conn.execute(
            t.routes.update()
            .where(t.routes.c.prompt == before.prompt, t.routes.c.revision == before.revision)
            .values(
                stable_version=after.stable_version,
                canary_version=after.canary_version,
                canary_weight_bp=after.canary_weight_bp,
                rollout_id=after.rollout_id,
                state=after.state.value,
                step=after.step,
                revision=after.revision,
                ramp=list(after.ramp),
                updated_at=after.updated_at,
            )
        )
        if result.rowcount != 1:
            raise _Raced()

    def _audit(
        self,
        conn: Connection,
        before: Route | None,
        after: Route,
        action: Action,
        actor: str,
        reason: str,
        evidence: JsonValue,
    ) -> int:
        result = conn.execute(
            t.audit.insert().values(
                prompt=after.prompt,
                rollout_id=after.rollout_id,
                action=action.value,
                actor=actor,
                reason=reason,
                evidence=evidence,
                from_state=None if before is None else before.state.value,
                to_state=after.state.value,
                from_revision=None if before is None else before.revision,
                to_revision=after.revision,
                stable_version=after.stable_version,
                canary_version=after.canary_version,
                canary_weight_bp=after.canary_weight_bp,
                at=after.updated_at,
            )
        )
        return _inserted_id(result)

    def _cas(self, attempt: Any) -> Route:
        """Run ``attempt`` (a transaction) until it does not lose a compare-and-set race."""
        for _ in range(1000):
            try:
                result: Route = attempt()
                return result
            except _Raced:
                continue  # re-read: the transition may now be illegal, which the retry reports
        raise ConflictError("the routing flag kept changing under this write; try again")

    def start_rollout(
        self,
        name: str,
        version: int,
        *,
        ramp: tuple[float, ...] | None = None,
        actor: str,
        reason: str = "",
        policy: dict[str, JsonValue] | None = None,
        expected_revision: int | None = None,
    ) -> Route:
        """Start canarying ``version`` of ``name`` along ``ramp`` (default 1,5,20,50,100 percent).

        A ``policy`` must be one the judge can decide (:func:`otel_prompt_canary.analysis.load_policy`):
        anything else is refused here, never discovered by the controller at runtime. To derive the
        ramp from the policy, use :func:`otel_prompt_canary.service.rollout_policy.start_rollout_with_policy`.
        """
        validate_prompt_name(name)
        steps = parse_ramp(ramp)
        _check_actor(actor)
        if policy is not None:
            load_policy(policy)  # InvalidInputError naming every problem

        def attempt() -> Route:
            with self._tx() as conn:
                before = self._route_of(conn, name)
                _check_expected(before, expected_revision)
                self._version(conn, name, version)  # NotFoundError for an unknown version
                rollout_id = uuid.uuid4().hex[:16]
                after = machine.start(
                    before, candidate=version, ramp=steps, rollout_id=rollout_id, now=_now()
                )
                self._write_route(conn, before, after)
                conn.execute(
                    t.rollouts.insert().values(
                        rollout_id=rollout_id,
                        prompt=name,
                        candidate_version=version,
                        baseline_version=before.stable_version,
                        ramp=list(steps),
                        state=after.state.value,
                        step=after.step,
                        started_at=after.updated_at,
                        ended_at=None,
                        started_by=actor,
                        policy=policy,
                    )
                )
                self._audit(conn, before, after, Action.START, actor, reason, {"policy": policy})
                return after

        return self._cas(attempt)

    def transition(
        self,
        name: str,
        action: Action,
        *,
        actor: str,
        reason: str,
        evidence: JsonValue = None,
        expected_revision: int | None = None,
        rollout_id: str | None = None,
    ) -> Route:
        """Apply ``action`` to the rollout of ``name`` (see :class:`~.base.Registry`)."""
        validate_prompt_name(name)
        action = Action(action)
        _check_actor(actor)
        if not reason or not reason.strip():
            raise InvalidInputError(f"a reason is required to {action} a rollout")

        def attempt() -> Route:
            with self._tx() as conn:
                before = self._route_of(conn, name)
                _check_expected(before, expected_revision)
                if rollout_id is not None and rollout_id != before.rollout_id:
                    raise ConflictError(
                        f"rollout {rollout_id} is not the current rollout of {name!r} "
                        f"(current: {before.rollout_id or 'none'})"
                    )
                after = machine.apply(before, action, now=_now())
                self._write_route(conn, before, after)
                finished = after.state in (RolloutState.PROMOTED, RolloutState.ROLLED_BACK)
                conn.execute(
                    t.rollouts.update()
                    .where(t.rollouts.c.rollout_id == before.rollout_id)
                    .values(
                        state=after.state.value,
                        step=after.step,
                        ended_at=after.updated_at if finished else None,
                    )
                )
                self._audit(conn, before, after, action, actor, reason, evidence)
                return after

        return self._cas(attempt)

    @staticmethod
    def _rollout(row: RowMapping) -> Rollout:
        return Rollout(
            rollout_id=row["rollout_id"],
            prompt=row["prompt"],
            candidate_version=row["candidate_version"],
            baseline_version=row["baseline_version"],
            ramp=tuple(row["ramp"]),
            state=RolloutState(row["state"]),
            step=row["step"],
            started_at=_aware(row["started_at"]),
            ended_at=_aware(row["ended_at"]),
            started_by=row["started_by"],
            policy=row["policy"],
        )

    def get_rollout(self, name: str, rollout_id: str | None = None) -> Rollout:
        """The rollout ``rollout_id`` of ``name``, or its current (or last) rollout."""
        validate_prompt_name(name)
        with self._read() as conn:
            route = self._route_of(conn, name)
            wanted = rollout_id or route.rollout_id
            if wanted is None:
                raise NotFoundError(f"prompt {name!r} has never had a rollout")
            row = (
                conn.execute(
                    select(t.rollouts).where(t.rollouts.c.rollout_id == wanted, t.rollouts.c.prompt == name)
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"prompt {name!r} has no rollout {wanted!r}")
        return self._rollout(row)

    def history(self, name: str, *, limit: int | None = None) -> list[AuditRecord]:
        """The audit records of ``name``, oldest first (the newest ``limit`` ones when given)."""
        validate_prompt_name(name)
        with self._read() as conn:
            self._route_of(conn, name)
            query = select(t.audit).where(t.audit.c.prompt == name).order_by(t.audit.c.id.desc())
            if limit is not None:
                query = query.limit(limit)
            rows = list(conn.execute(query).mappings())
        rows.reverse()
        return [
            AuditRecord(
                id=r["id"],
                prompt=r["prompt"],
                rollout_id=r["rollout_id"],
                action=Action(r["action"]),
                actor=r["actor"],
                reason=r["reason"],
                evidence=r["evidence"],
                from_state=None if r["from_state"] is None else RolloutState(r["from_state"]),
                to_state=RolloutState(r["to_state"]),
                from_revision=r["from_revision"],
                to_revision=r["to_revision"],
                stable_version=r["stable_version"],
                canary_version=r["canary_version"],
                canary_weight_bp=r["canary_weight_bp"],
                at=_aware(r["at"]),
            )
            for r in rows
        ]

    # -- closing the loop: alerts -----------------------------------------------------------

    def receive_alert(self, notice: AlertNotice) -> AlertRecord:
        """Decide ``notice`` once per key and record the decision, in one transaction.

        The rules are in :mod:`otel_prompt_canary.registry.alerts`. The first alert with a given
        ``key`` is decided; every later one (a retry, a repeat, a concurrent copy) is recorded as a
        ``duplicate`` and changes nothing. An applied action is a transition like
        :meth:`transition`: compare-and-set on the revision, bound to the rollout, with an audit
        record whose evidence is the alert. Raises :class:`~otel_prompt_canary.errors.NotFoundError`
        for an unknown prompt, and then records nothing.
        """

        def attempt() -> AlertRecord:
            with self._tx() as conn:
                route = self._route_of(conn, notice.prompt)
                now = _now()
                prior = (
                    conn.execute(select(t.alert_keys).where(t.alert_keys.c.alert_key == notice.key))
                    .mappings()
                    .first()
                )
                if prior is not None:
                    first = conn.execute(
                        select(t.alert_log.c.rollout_id).where(t.alert_log.c.id == prior["log_id"])
                    ).scalar()
                    reason = (
                        f"duplicate of alert #{prior['log_id']}, which was {prior['outcome']}: "
                        "nothing changes"
                    )
                    return self._log_alert(conn, notice, now, first, AlertOutcome.DUPLICATE, reason, None)
                # Claim the key first: a concurrent copy waits here, then finds it taken.
                conn.execute(
                    t.alert_keys.insert().values(
                        alert_key=notice.key, decided_at=now, outcome="pending", log_id=None
                    )
                )
                bound = notice.rollout_id or route.rollout_id
                rollout = None if bound is None else self._rollout_of(conn, notice.prompt, bound)
                outcome, reason, action = decide_alert(notice, route, rollout)
                audit_id = None
                if action is not None:
                    after = machine.apply(route, action, now=now)
                    self._write_route(conn, route, after)
                    finished = after.state in (RolloutState.PROMOTED, RolloutState.ROLLED_BACK)
                    conn.execute(
                        t.rollouts.update()
                        .where(t.rollouts.c.rollout_id == route.rollout_id)
                        .values(
                            state=after.state.value,
                            step=after.step,
                            ended_at=after.updated_at if finished else None,
                        )
                    )
                    evidence: JsonValue = {
                        "source": notice.source,
                        "alert_key": notice.key,
                        "alert": notice.alert,
                    }
                    audit_id = self._audit(conn, route, after, action, notice.actor, notice.reason, evidence)
                record = self._log_alert(conn, notice, now, bound, outcome, reason, audit_id)
                conn.execute(
                    t.alert_keys.update()
                    .where(t.alert_keys.c.alert_key == notice.key)
                    .values(outcome=outcome.value, log_id=record.id)
                )
                return record

        for _ in range(100):
            try:
                return attempt()
            except (_Raced, IntegrityError):
                continue  # the flag moved, or a concurrent copy claimed the key: decide again
        raise ConflictError("the routing flag kept changing under this alert; try again")

    def _rollout_of(self, conn: Connection, prompt: str, rollout_id: str) -> Rollout | None:
        row = (
            conn.execute(
                select(t.rollouts).where(t.rollouts.c.rollout_id == rollout_id, t.rollouts.c.prompt == prompt)
            )
            .mappings()
            .first()
        )
        return None if row is None else self._rollout(row)

    def _log_alert(
        self,
        conn: Connection,
        notice: AlertNotice,
        now: datetime,
        rollout_id: str | None,
        outcome: AlertOutcome,
        reason: str,
        audit_id: int | None,
    ) -> AlertRecord:
        values: dict[str, Any] = {
            "received_at": now,
            "source": notice.source,
            "alert_key": notice.key,
            "prompt": notice.prompt,
            "rollout_id": rollout_id,
            "action": notice.action.value,
            "status": notice.status.value,
            "outcome": outcome.value,
            "summary": notice.reason,
            "reason": reason,
            "audit_id": audit_id,
            "alert": notice.alert,
        }
        result = conn.execute(t.alert_log.insert().values(**values))
        return self._alert_record({**values, "id": _inserted_id(result)})

    @staticmethod
    def _alert_record(row: RowMapping | dict[str, Any]) -> AlertRecord:
        return AlertRecord(
            id=row["id"],
            received_at=_aware(row["received_at"]),
            source=row["source"],
            key=row["alert_key"],
            prompt=row["prompt"],
            rollout_id=row["rollout_id"],
            action=AlertAction(row["action"]),
            status=AlertStatus(row["status"]),
            outcome=AlertOutcome(row["outcome"]),
            summary=row["summary"],
            reason=row["reason"],
            audit_id=row["audit_id"],
            alert=row["alert"],
        )

    def list_alerts(
        self, prompt: str | None = None, *, rollout_id: str | None = None, limit: int | None = None
    ) -> list[AlertRecord]:
        """The alert log, oldest first (the newest ``limit`` records when given).

        ``prompt`` and ``rollout_id`` narrow it; an unknown ``prompt`` raises
        :class:`~otel_prompt_canary.errors.NotFoundError`.
        """
        query = select(t.alert_log).order_by(t.alert_log.c.id.desc())
        with self._read() as conn:
            if prompt is not None:
                validate_prompt_name(prompt)
                self._route_of(conn, prompt)
                query = query.where(t.alert_log.c.prompt == prompt)
            if rollout_id is not None:
                query = query.where(t.alert_log.c.rollout_id == rollout_id)
            if limit is not None:
                query = query.limit(limit)
            rows = list(conn.execute(query).mappings())
        rows.reverse()
        return [self._alert_record(r) for r in rows]

    # -- closing the loop: reports ----------------------------------------------------------

    def record_report(
        self,
        report: Report,
        *,
        source: str,
        prompt: str | None = None,
        report_id: str | None = None,
    ) -> ReportReceipt:
        """Add ``report`` into its rollout's statistics, exactly; once per ``report_id``.

        With ``prompt``, the rollout must be one of that prompt's
        (:class:`~otel_prompt_canary.errors.InvalidInputError` otherwise; an unknown prompt raises
        :class:`~otel_prompt_canary.errors.NotFoundError`). A report of an unknown rollout is
        ``ignored``: nothing is stored. Statistics of one cohort and attribute keep one kind
        (proportion or mean) across all reports: a report mixing them is refused whole.
        """
        if prompt is not None:
            validate_prompt_name(prompt)
        if not source or len(source) > 256:
            raise InvalidInputError("a report's source must be 1-256 characters")
        entries = [
            (cohort, attribute, start, stats)
            for cohort in ("stable", "canary")
            for attribute, series in getattr(report, cohort).items()
            for start, stats in series.items()
        ]
        for _, attribute, _, _ in entries:
            if not attribute or len(attribute) > MAX_ATTRIBUTE_LENGTH:
                raise InvalidInputError(
                    f"signal attribute {attribute[:40]!r}... is not 1-{MAX_ATTRIBUTE_LENGTH} characters"
                )
        samples = sum(stats.n for *_, stats in entries)
        rollout_id = report.rollout_id

        def attempt() -> ReportReceipt:
            with self._tx() as conn:
                if prompt is not None and not self._prompt_exists(conn, prompt):
                    raise NotFoundError(f"unknown prompt {prompt!r}")
                # Lock the rollout's row: reports of one rollout are added one at a time, so that
                # concurrent read-modify-writes of its statistics never lose an increment
                # (PostgreSQL; SQLite's write lock already serialises them).
                owner = conn.execute(
                    select(t.rollouts.c.prompt).where(t.rollouts.c.rollout_id == rollout_id).with_for_update()
                ).scalar()
                if owner is None:
                    return ReportReceipt(
                        report_id=report_id,
                        rollout_id=rollout_id,
                        outcome=ReportOutcome.IGNORED,
                        reason=f"unknown rollout {rollout_id!r}: the report was not stored",
                    )
                if prompt is not None and owner != prompt:
                    raise InvalidInputError(
                        f"rollout {rollout_id} is a rollout of {owner!r}, not of {prompt!r}"
                    )
                if report_id is not None:
                    seen = conn.execute(
                        select(t.report_receipts.c.received_at).where(
                            t.report_receipts.c.report_id == report_id
                        )
                    ).scalar()
                    if seen is not None:
                        return ReportReceipt(
                            report_id=report_id,
                            rollout_id=rollout_id,
                            outcome=ReportOutcome.DUPLICATE,
                            reason=f"report {report_id} was counted at {seen}",
                        )
                    conn.execute(
                        t.report_receipts.insert().values(
                            report_id=report_id, rollout_id=rollout_id, source=source, received_at=_now()
                        )
                    )
                self._merge_stats(conn, rollout_id, report.window_seconds, entries)
                return ReportReceipt(
                    report_id=report_id,
                    rollout_id=rollout_id,
                    outcome=ReportOutcome.MERGED,
                    reason=f"added {samples} samples to rollout {rollout_id}",
                    samples=samples,
                )

        for _ in range(100):
            try:
                return attempt()
            except IntegrityError:
                continue  # a concurrent report created the same row or receipt: add again
        raise ConflictError(f"could not store a report of rollout {rollout_id}: too many concurrent reports")

    def _merge_stats(
        self,
        conn: Connection,
        rollout_id: str,
        window_seconds: int,
        entries: list[tuple[str, str, int, ProportionStats | MeanStats]],
    ) -> None:
        s, tot = t.rollout_stats.c, t.rollout_totals.c
        totals = {
            (row["cohort"], row["attribute"]): _stats_of(row)
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
        # The rollout's totals change in the same transaction as its windows: they always agree.
        for cohort, attribute in touched:
            values = _stats_values(totals[(cohort, attribute)])
            if (cohort, attribute) not in known:
                conn.execute(
                    t.rollout_totals.insert().values(
                        rollout_id=rollout_id, cohort=cohort, attribute=attribute, **values
                    )
                )
            else:
                key = (tot.rollout_id == rollout_id) & (tot.cohort == cohort) & (tot.attribute == attribute)
                conn.execute(t.rollout_totals.update().where(key).values(**values))
        if not entries:
            return
        # The report's windows, read in one query (by the index on rollout and start) and written
        # in two batches: a report costs a few statements, not two per window.
        starts = [start for _, _, start, _ in entries]
        this_size = (s.rollout_id == rollout_id) & (s.window_seconds == window_seconds)
        stored = {
            (row["cohort"], row["attribute"], row["window_start"]): _stats_of(row)
            for row in conn.execute(
                select(t.rollout_stats).where(this_size, s.window_start.between(min(starts), max(starts)))
            ).mappings()
        }
        inserts, updates = [], []
        for cohort, attribute, start, stats in entries:
            before = stored.get((cohort, attribute, start))
            values = _stats_values(stats if before is None else merge_stats(before, stats))
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

    def rollout_reports(self, rollout_id: str) -> list[Report]:
        """Everything reported for ``rollout_id``, merged: one report per window size, smallest first."""
        s = t.rollout_stats.c
        with self._read() as conn:
            rows = list(conn.execute(select(t.rollout_stats).where(s.rollout_id == rollout_id)).mappings())
        grouped: dict[int, dict[str, dict[str, dict[int, ProportionStats | MeanStats]]]] = {}
        for row in rows:
            cohorts = grouped.setdefault(row["window_seconds"], {"stable": {}, "canary": {}})
            cohorts[row["cohort"]].setdefault(row["attribute"], {})[row["window_start"]] = _stats_of(row)
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
            with self._read() as conn:
                return self._totals(conn, rollout_id)
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
        if self._engine.dialect.name == "postgresql":
            with self._read() as conn:
                return self._totals(conn, rollout_id), self._step(conn, rollout_id, where, fits=true())
        # 18 characters: at most 17 digits and a sign, so every such value and its cast fit int64.
        fits = (func.length(s.sum) <= 18) & (func.length(s.sum_sq) <= 18)
        try:
            with self._read() as conn:
                return self._totals(conn, rollout_id), self._step(conn, rollout_id, where, fits=fits)
        except RegistryUnavailableError as exc:
            # SQLite's sum() refuses to overflow rather than lose digits: add them all in Python.
            if "integer overflow" not in str(exc.__cause__):
                raise
            with self._read() as conn:
                return self._totals(conn, rollout_id), self._step(conn, rollout_id, where, fits=false())

    @staticmethod
    def _totals(conn: Connection, rollout_id: str) -> Snapshot:
        tot = t.rollout_totals.c
        rows = conn.execute(select(t.rollout_totals).where(tot.rollout_id == rollout_id)).mappings()
        cohorts: dict[str, dict[str, ProportionStats | MeanStats]] = {"stable": {}, "canary": {}}
        for row in rows:
            cohorts[row["cohort"]][row["attribute"]] = _stats_of(row)
        return Snapshot(stable=cohorts["stable"], canary=cohorts["canary"])

    def _step(
        self,
        conn: Connection,
        rollout_id: str,
        where: list[ColumnElement[bool]],
        *,
        fits: ColumnElement[bool],
    ) -> Snapshot:
        """The windows ``where`` selects, summed: in SQL, but for the means' sums of rows not ``fits``."""
        s = t.rollout_stats.c
        # numeric is exact in PostgreSQL; SQLite's integers hold what ``fits`` lets through.
        number = Numeric if self._engine.dialect.name == "postgresql" else BigInteger

        def summed(column: ColumnElement[Any]) -> ColumnElement[Any]:
            return func.sum(case((fits, cast(column, number)), else_=None))

        totals = select(
            s.cohort,
            s.attribute,
            s.kind,
            func.sum(s.n),
            func.sum(s.successes),
            summed(s.sum),
            summed(s.sum_sq),
        ).where(*where)
        rest = select(s.cohort, s.attribute, s.sum, s.sum_sq).where(s.kind == "mean", ~fits, *where)
        rows = list(conn.execute(totals.group_by(s.cohort, s.attribute, s.kind)))
        long_sums = list(conn.execute(rest))
        extra: dict[tuple[str, str], tuple[int, int]] = {}
        for cohort, attribute, total, total_sq in long_sums:
            before = extra.get((cohort, attribute), (0, 0))
            extra[(cohort, attribute)] = (before[0] + int(total), before[1] + int(total_sq))
        cohorts: dict[str, dict[str, ProportionStats | MeanStats]] = {"stable": {}, "canary": {}}
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


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row with an autoincrement key
    return int(key[0])


def _stats_of(row: RowMapping) -> ProportionStats | MeanStats:
    if row["kind"] == "proportion":
        return ProportionStats(n=row["n"], successes=row["successes"])
    return MeanStats(n=row["n"], sum=int(row["sum"]), sum_sq=int(row["sum_sq"]))


def _stats_values(stats: ProportionStats | MeanStats) -> dict[str, Any]:
    if isinstance(stats, ProportionStats):
        return {"kind": stats.kind, "n": stats.n, "successes": stats.successes, "sum": None, "sum_sq": None}
    return {
        "kind": stats.kind,
        "n": stats.n,
        "successes": None,
        "sum": str(stats.sum),
        "sum_sq": str(stats.sum_sq),
    }


class _Raced(Exception):
    """Internal: a compare-and-set found the row moved; the attempt is retried."""


def _check_expected(route: Route, expected_revision: int | None) -> None:
    if expected_revision is not None and expected_revision != route.revision:
        raise RevisionMismatchError(
            f"routing flag of {route.prompt!r} is at revision {route.revision}, "
            f"not {expected_revision}: it changed meanwhile; read it again"
        )


def _check_actor(actor: str) -> None:
    if not actor or not actor.strip() or len(actor) > 256:
        raise InvalidInputError("actor must be a non-empty name of at most 256 characters")


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: no deadlock-prone upgrade from a read lock
        # mid-transaction. Readers begin deferred, so they never wait for writers (WAL).
        if conn.get_execution_options().get("prompt_canary_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_store(
    target: str | os.PathLike[str], *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES
) -> SqlRegistry:
    """Open (creating or upgrading the schema as needed) the registry at a path or database URL.

    ``target`` is a file path or ``sqlite:///PATH`` (SQLite, the embedded default) or a
    ``postgresql://user:pass@host/db`` URL (needs the ``postgres`` extra).
    """
    url = store_url(target)
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        t.migrate(engine)
    except ModuleNotFoundError as exc:
        raise RegistryUnavailableError(
            f"cannot open {url.split('://')[0]} registry: {exc}; install otel-prompt-canary[postgres]"
        ) from exc
    except SQLAlchemyError as exc:
        raise RegistryUnavailableError(f"cannot open registry {target!s}: {exc}") from exc
    return SqlRegistry(engine, max_template_bytes=max_template_bytes)
