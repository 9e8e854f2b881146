"""The alert log in SQL: each alert decided once per key, its action applied, the decision recorded.

An applied alert is a flip of the routing flag (:meth:`SqlRegistry.flip
<otel_prompt_canary.registry.sql.SqlRegistry.flip>`) in the same transaction as its log record and
its de-duplication key, so that an alert and what it did commit together or not at all. The rules
of the decision are :func:`otel_prompt_canary.loop.alerts.decide`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, RowMapping, select

from otel_prompt_canary.loop.alerts import (
    AlertAction,
    AlertNotice,
    AlertOutcome,
    AlertRecord,
    AlertStatus,
    decide,
)
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import aware, inserted_id, utc_now
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["AlertLog"]


class AlertLog:
    """Alerts received, decided and recorded in the database of ``registry``."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.registry = registry

    def receive_alert(self, notice: AlertNotice) -> AlertRecord:
        """Decide ``notice`` once per key and record the decision, in one transaction.

        The first alert with a given ``key`` is decided; every later one (a retry, a repeat, a
        concurrent copy) is recorded as a ``duplicate`` and changes nothing. An applied action is a
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
        route = self.registry.route_in(conn, notice.prompt)
        now = utc_now()
        prior = (
            conn.execute(select(t.alert_keys).where(t.alert_keys.c.alert_key == notice.key))
            .mappings()
            .first()
        )
        if prior is not None:
            first = conn.execute(
                select(t.alert_log.c.rollout_id).where(t.alert_log.c.id == prior["log_id"])
            ).scalar()
            reason = f"duplicate of alert #{prior['log_id']}, which was {prior['outcome']}: nothing changes"
            return _log(conn, notice, now, first, AlertOutcome.DUPLICATE, reason, None)
        # Claim the key first: a concurrent copy waits here, then finds it taken (and runs again).
        conn.execute(t.alert_keys.insert().values(alert_key=notice.key, decided_at=now, outcome="pending"))
        bound = notice.rollout_id or route.rollout_id
        rollout = None if bound is None else self.registry.rollout_in(conn, notice.prompt, bound)
        outcome, reason, action = decide(notice, route, rollout)
        audit_id = None
        if action is not None:
            evidence: JsonValue = {"source": notice.source, "alert_key": notice.key, "alert": notice.alert}
            _, audit_id = self.registry.flip(
                conn, route, action, actor=notice.actor, reason=notice.reason, evidence=evidence, now=now
            )
        record = _log(conn, notice, now, bound, outcome, reason, audit_id)
        conn.execute(
            t.alert_keys.update()
            .where(t.alert_keys.c.alert_key == notice.key)
            .values(outcome=outcome.value, log_id=record.id)
        )
        return record

    def list_alerts(
        self, prompt: str | None = None, *, rollout_id: str | None = None, limit: int | None = None
    ) -> list[AlertRecord]:
        """The alert log, oldest first (the newest ``limit`` records when given).

        ``prompt`` and ``rollout_id`` narrow it; an unknown ``prompt`` raises
        :class:`~otel_prompt_canary.errors.NotFoundError`.
        """
        query = select(t.alert_log).order_by(t.alert_log.c.id.desc())
        with self.registry.database.read() as conn:
            if prompt is not None:
                validate_prompt_name(prompt)
                self.registry.route_in(conn, prompt)
                query = query.where(t.alert_log.c.prompt == prompt)
            if rollout_id is not None:
                query = query.where(t.alert_log.c.rollout_id == rollout_id)
            if limit is not None:
                query = query.limit(limit)
            rows = list(conn.execute(query).mappings())
        return [_record(row) for row in reversed(rows)]


def _log(
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
