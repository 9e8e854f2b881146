"""The alert log in SQL: each alert decided once per key, its action applied, the decision recorded.

An applied alert is a flip of the routing flag (:meth:`SqlRegistry.flip
<otel_prompt_canary.registry.sql.SqlRegistry.flip>`) in the same transaction as its log record and
its de-duplication key, so that an alert and what it did commit together or not at all. The rules
of the decision are :func:`otel_prompt_canary.loop.alerts.decide`.

What one alert costs is bounded: a duplicate's record keeps no copy of the alert (the first
record of its key has it), and an alert whose JSON is over :data:`MAX_LOGGED_ALERT_BYTES` is
logged as its size and digest (an applied one stays whole in the audit record of its transition).
Keys and records of alerts that changed nothing are pruned after a retention
(:mod:`otel_prompt_canary.loop.retention`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import JsonValue
from sqlalchemy import Connection, RowMapping, delete, select

from otel_prompt_canary.loop.alerts import (
    AlertAction,
    AlertNotice,
    AlertOutcome,
    AlertRecord,
    AlertStatus,
    decide,
    out_of_scope,
)
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.registry.database import Raced, aware, inserted_id, newest_first, utc_now
from otel_prompt_canary.registry.models import canonical_json, validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["MAX_LOGGED_ALERT_BYTES", "AlertLog", "key_row", "log_row"]

#: The largest alert (its JSON, in bytes) the alert log keeps whole.
MAX_LOGGED_ALERT_BYTES: Final = 16 * 1024


class AlertLog:
    """Alerts received, decided and recorded in the database of ``registry``."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def receive_alert(self, notice: AlertNotice) -> AlertRecord:
        """Decide ``notice`` once per key and record the decision, in one transaction.

        The first alert with a given ``key`` is decided; every later one (a retry, a repeat, a
        concurrent copy) is recorded as a ``duplicate`` and changes nothing, until the key's
        window ends when the notice has one (``dedup_window_seconds``: an alert that names no
        time), or the key is pruned (:mod:`~otel_prompt_canary.loop.retention`). An applied action is a
        transition like :meth:`~otel_prompt_canary.registry.sql.SqlRegistry.transition`:
        compare-and-set on the revision, bound to the rollout, with an audit record whose evidence
        is the alert. Raises :class:`~otel_prompt_canary.errors.NotFoundError` for an unknown
        prompt, and then records nothing.
        """
        return self.registry.database.write(
            lambda conn: self._decide(conn, notice),
            contended="the routing flag kept changing under this alert; try again",
        )

    def _decide(self, conn: Connection, notice: AlertNotice) -> AlertRecord:
        route = self.registry.route_in(conn, notice.prompt, self._environment_of(conn, notice))
        now = utc_now()
        refused = out_of_scope(notice, route.environment)
        if refused is not None:
            # Logged without claiming the alert's key: the same alert from a sender that may act
            # there is still decided.
            bound = notice.rollout_id or route.rollout_id
            return _log(conn, notice, now, bound, AlertOutcome.IGNORED, refused, None)
        keys = t.alert_keys.c
        prior = conn.execute(select(t.alert_keys).where(keys.alert_key == notice.key)).mappings().first()
        expires_at = aware(prior["expires_at"]) if prior is not None else None
        if prior is not None and expires_at is not None and expires_at <= now:
            # The window of an alert that names no time has passed: decide it again. Only one of
            # concurrent copies removes this decision; the others run again and find the new one.
            gone = conn.execute(
                delete(t.alert_keys).where(
                    keys.alert_key == notice.key, keys.decided_at == prior["decided_at"]
                )
            )
            if gone.rowcount != 1:
                raise Raced()
            prior = None
        if prior is not None:
            reason = f"duplicate of alert #{prior['log_id']}, which was {prior['outcome']}: nothing changes"
            return _log(conn, notice, now, prior["rollout_id"], AlertOutcome.DUPLICATE, reason, None)
        bound = notice.rollout_id or route.rollout_id
        # Claim the key first: a concurrent copy waits here, then finds it taken (and runs again).
        conn.execute(
            t.alert_keys.insert().values(
                key_row(notice, decided_at=now, rollout_id=bound, outcome="pending", log_id=None)
            )
        )
        rollout = None if bound is None else self.registry.rollout_in(conn, notice.prompt, bound)
        outcome, reason, action = decide(notice, route, rollout)
        audit_id = None
        if action is not None:
            evidence: JsonValue = {"source": notice.source, "alert_key": notice.key, "alert": notice.alert}
            _, audit_id = self.registry.flip(
                conn,
                route,
                action,
                actor=notice.actor,
                reason=notice.reason,
                evidence=evidence,
                now=now,
                principal=notice.principal,
            )
        record = _log(conn, notice, now, bound, outcome, reason, audit_id)
        conn.execute(
            t.alert_keys.update()
            .where(t.alert_keys.c.alert_key == notice.key)
            .values(outcome=outcome.value, log_id=record.id)
        )
        return record

    def _environment_of(self, conn: Connection, notice: AlertNotice) -> str:
        """The environment ``notice`` is about: its rollout's, when it names one that exists; else
        the one it names; else the default environment."""
        if notice.rollout_id is not None:
            named = self.registry.rollout_in(conn, notice.prompt, notice.rollout_id)
            if named is not None:
                return named.environment
        return notice.environment or DEFAULT_ENVIRONMENT

    def list_alerts(
        self,
        prompt: str | None = None,
        *,
        rollout_id: str | None = None,
        limit: int | None = None,
        before: int | None = None,
    ) -> list[AlertRecord]:
        """The alert log, oldest first (the newest ``limit`` records when given; with ``before``,
        only records whose id is smaller: the page before it).

        ``prompt`` and ``rollout_id`` narrow it; an unknown ``prompt`` raises
        :class:`~otel_prompt_canary.errors.NotFoundError`.
        """
        query = newest_first(select(t.alert_log), t.alert_log.c.id, before=before, limit=limit)
        with self.registry.database.read() as conn:
            if prompt is not None:
                validate_prompt_name(prompt)
                self.registry.route_in(conn, prompt)
                query = query.where(t.alert_log.c.prompt == prompt)
            if rollout_id is not None:
                check_storable(rollout_id, "rollout_id")
                query = query.where(t.alert_log.c.rollout_id == rollout_id)
            rows = list(conn.execute(query).mappings())
        return [_record(row) for row in reversed(rows)]


def key_row(
    notice: AlertNotice, *, decided_at: datetime, rollout_id: str | None, outcome: str, log_id: int | None
) -> dict[str, Any]:
    """The ``alert_keys`` row of the first decision of ``notice``'s key."""
    window = notice.dedup_window_seconds
    return {
        "alert_key": notice.key,
        "decided_at": decided_at,
        "outcome": outcome,
        "log_id": log_id,
        "rollout_id": rollout_id,
        "expires_at": None if window is None else decided_at + timedelta(seconds=window),
    }


def log_row(
    notice: AlertNotice,
    *,
    received_at: datetime,
    rollout_id: str | None,
    outcome: AlertOutcome,
    reason: str,
    audit_id: int | None,
) -> dict[str, Any]:
    """The ``alert_log`` row of one decision: all that one alert stores there."""
    return {
        "received_at": received_at,
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
        # The first decision of the key keeps the alert; its duplicates point to it.
        "alert": None if outcome is AlertOutcome.DUPLICATE else _logged(notice.alert),
    }


def _logged(alert: JsonValue) -> JsonValue:
    """``alert`` as the log keeps it: whole up to :data:`MAX_LOGGED_ALERT_BYTES`, else its size
    and digest."""
    if alert is None:
        return None
    encoded = canonical_json(alert).encode()
    if len(encoded) <= MAX_LOGGED_ALERT_BYTES:
        return alert
    return {
        "omitted": f"the alert's JSON is {len(encoded)} bytes, over the alert log's limit of "
        f"{MAX_LOGGED_ALERT_BYTES}; an applied alert is whole in the audit record of its transition",
        "sha256": hashlib.sha256(encoded).hexdigest(),
    }


def _log(
    conn: Connection,
    notice: AlertNotice,
    now: datetime,
    rollout_id: str | None,
    outcome: AlertOutcome,
    reason: str,
    audit_id: int | None,
) -> AlertRecord:
    values = log_row(
        notice, received_at=now, rollout_id=rollout_id, outcome=outcome, reason=reason, audit_id=audit_id
    )
    result = conn.execute(t.alert_log.insert().values(**values))
    return _record({**values, "id": inserted_id(result)})


def _record(row: RowMapping | dict[str, Any]) -> AlertRecord:
    return AlertRecord(
        id=row["id"],
        received_at=aware(row["received_at"]),
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
