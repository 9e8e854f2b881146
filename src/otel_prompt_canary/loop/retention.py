"""Retention: how long the loop keeps what only serves for a while, and pruning the rest.

What grows with traffic is kept for what it is for (:class:`Retention`):

- ``dedup_ids`` (default 1 day): the ids that make a retried alert or report count once, the
  alerts' de-duplication keys and the receipts of reports (live reports' too). A sender retries for
  minutes (the Collector processor for 10 minutes by default, a signed id is valid for the 5-minute
  timestamp tolerance), so a day covers every retry with a wide margin. The key of an alert bound to
  a rollout that is still active is kept however old: a repeat of an alert that paused it, after a
  person resumed it, must stay a duplicate while that rollout runs (an alert about a finished
  rollout is ignored anyway).
- ``untimed_alerts`` (default 1 hour): the de-duplication window of an alert whose key names no time
  (an Alertmanager or Grafana alert without ``startsAt``): within it, the same alert is a
  duplicate; after it, it is decided again, so that it can act on a later rollout.
- ``alert_log`` (default 30 days): the alert log's records of alerts that changed nothing
  (duplicate, ignored, recorded). The record of an applied alert is kept forever, as is the audit
  trail of every transition (``rollout history``): the database refuses to change or delete either.
- ``report_windows`` (default 30 days): the per-window statistics of rollouts that ended that long
  ago. Each rollout's totals are kept, so what judged it can still be read; the windows only served
  to judge its steps while it ran.
- ``live_windows`` (default 30 days): the per-window statistics of live traffic (drift monitoring's
  input), and the response models of versions no longer stable. The windows drift monitoring still
  needs are kept however old: a signal's baseline period while it is the baseline, a pinned
  baseline period, and what is not judged yet (:mod:`~otel_prompt_canary.loop.drift_retention`);
  the stable cohort's windows of ended rollouts are kept on the same terms.
- ``drift_alerts`` (default 30 days): drift alerts no one acknowledged, of a version no longer
  live. An acknowledged alert (who, when, why) is kept forever: the database refuses to delete it.
- ``eval_runs`` (default 30 days): evaluation runs other than those the gate and comparisons read
  (each version's first and newest complete run per dataset version, and pinned runs,
  :mod:`~otel_prompt_canary.loop.eval_retention`).

Any of them may be ``forever``. :func:`prune` applies a retention once, in small transactions so that
writers are never held up for long; ``prompt-canary gc`` runs it, and ``prompt-canary serve`` runs it
every hour (:class:`Pruner`). On PostgreSQL the pruned tables are vacuumed, so that their space is
reused at once; on SQLite freed pages are reused by the next writes (the file does not shrink).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, Delete, Select, and_, delete, not_, or_, select, text

from otel_prompt_canary.analysis.policy import parse_duration
from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.loop.drift_retention import (
    KeptPeriod,
    drift_keeps,
    kept_condition,
    prune_drift_alerts,
    prune_live_receipts,
    prune_live_windows,
    prune_response_models,
)
from otel_prompt_canary.loop.eval_retention import prune_eval_runs
from otel_prompt_canary.loop.pruning import delete_in_batches
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import Database, utc_now
from otel_prompt_canary.registry.models import RolloutState
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["DEFAULT_RETENTION", "Pruned", "Pruner", "Retention", "RetentionText", "prune"]

log = logging.getLogger("otel_prompt_canary.loop.retention")

#: De-duplication ids are kept at least this long: the senders' retries and the signatures'
#: timestamp tolerance must fit in it.
_MIN_DEDUP_IDS: Final = timedelta(hours=1)
_FOREVER: Final = "forever"
_FIELDS: Final = (
    "dedup_ids",
    "untimed_alerts",
    "alert_log",
    "report_windows",
    "live_windows",
    "drift_alerts",
    "eval_runs",
)


class Retention(BaseModel):
    """How long each kind of record is kept; None is forever. See the module docstring.

    Written ``NAME=DURATION`` pairs separated by commas, such as ``alert_log=90d,eval_runs=1w`` (any
    subset; the rest keep their defaults), with durations such as ``90s``, ``12h``, ``30d``, ``1w``
    or ``forever``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dedup_ids: timedelta | None = Field(
        timedelta(days=1), description="De-duplication ids of alerts and reports (at least 1 hour)"
    )
    untimed_alerts: timedelta | None = Field(
        timedelta(hours=1), description="The de-duplication window of an alert that names no time"
    )
    alert_log: timedelta | None = Field(
        timedelta(days=30), description="Records of alerts that changed nothing"
    )
    report_windows: timedelta | None = Field(
        timedelta(days=30), description="Per-window statistics of rollouts that ended"
    )
    live_windows: timedelta | None = Field(
        timedelta(days=30),
        description="Per-window statistics of live traffic, except what drift monitoring still needs, "
        "and the response models of versions no longer stable",
    )
    drift_alerts: timedelta | None = Field(
        timedelta(days=30), description="Drift alerts no one acknowledged, of versions no longer live"
    )
    eval_runs: timedelta | None = Field(
        timedelta(days=30),
        description="Evaluation runs, except each version's first and newest complete run per dataset "
        "version, and pinned runs",
    )

    @staticmethod
    def parse(spec: str) -> Retention:
        """The retention ``spec`` writes (``alert_log=90d,dedup_ids=2d``; empty: the defaults).

        Raises :class:`~otel_prompt_canary.errors.InvalidInputError` naming what is wrong.
        """
        return _parse(spec)

    @model_validator(mode="after")
    def _long_enough(self) -> Retention:
        if self.dedup_ids is not None and self.dedup_ids < _MIN_DEDUP_IDS:
            raise ValueError(
                f"dedup_ids must be at least 1h (senders retry for minutes, and a signed id is valid for "
                f"the timestamp tolerance), got {_text(self.dedup_ids)}"
            )
        return self

    def __str__(self) -> str:
        return ",".join(f"{name}={_text(getattr(self, name))}" for name in _FIELDS)

    @property
    def untimed_alert_window_seconds(self) -> int | None:
        """:attr:`untimed_alerts` in whole seconds (what an alert notice carries), None for forever."""
        return None if self.untimed_alerts is None else max(1, int(self.untimed_alerts.total_seconds()))


@functools.lru_cache(maxsize=16)
def _parse(spec: str) -> Retention:
    given: dict[str, timedelta | None] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep or name not in _FIELDS:
            raise InvalidInputError(
                f"invalid retention {part[:60]!r}: write NAME=DURATION, NAME one of {', '.join(_FIELDS)}"
            )
        if name in given:
            raise InvalidInputError(f"invalid retention: {name} is given twice")
        given[name] = _duration(name, value)
    try:
        return Retention.model_validate(given)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid retention: {describe_validation_errors(exc.errors())}") from None


def _duration(name: str, value: str) -> timedelta | None:
    if value == _FOREVER:
        return None
    seconds = parse_duration(value)
    if seconds is None or not 0 < seconds < 100 * 365 * 86_400:
        raise InvalidInputError(
            f"invalid retention {name}={value[:40]!r}: give a duration such as 12h, 30d or 1w, or 'forever'"
        )
    return timedelta(seconds=seconds)


def _text(value: timedelta | None) -> str:
    if value is None:
        return _FOREVER
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


#: The retention applied when none is given.
DEFAULT_RETENTION: Final = Retention()

#: A retention as a setting holds it: text, checked and written out in full (every name).
RetentionText = Annotated[str, AfterValidator(lambda spec: str(Retention.parse(spec)))]


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pruning removed, per kind of record."""

    alert_keys: int = 0
    report_receipts: int = 0
    alert_log: int = 0
    report_windows: int = 0
    live_windows: int = 0
    live_receipts: int = 0
    response_models: int = 0
    drift_alerts: int = 0
    eval_runs: int = 0

    @property
    def total(self) -> int:
        """Every row removed."""
        return sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        """Rows removed per kind of record, in the order of the fields."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


#: The table each count of :class:`Pruned` deletes from (vacuumed on PostgreSQL when it did).
_TABLES: Final = {
    "alert_keys": "alert_keys",
    "report_receipts": "report_receipts",
    "alert_log": "alert_log",
    "report_windows": "rollout_stats",
    "live_windows": "live_stats",
    "live_receipts": "live_receipts",
    "response_models": "response_models",
    "drift_alerts": "drift_alerts",
    "eval_runs": "eval_runs",
}


def prune(
    registry: SqlRegistry, retention: Retention = DEFAULT_RETENTION, *, now: datetime | None = None
) -> Pruned:
    """Remove what ``retention`` no longer keeps from the store of ``registry``; what was removed.

    Idempotent and safe to run from several processes at once (each batch is a transaction that
    deletes only what is past its retention at ``now``, which defaults to the current time).
    """
    database = registry.database
    now = now or utc_now()
    with database.read() as conn:
        keeps = drift_keeps(conn)
    pruned = Pruned(
        alert_keys=_prune_alert_keys(database, retention, now),
        report_receipts=_prune_receipts(database, retention, now),
        alert_log=_prune_alert_log(database, retention, now),
        report_windows=_prune_windows(database, retention, now, keeps),
        live_windows=_unless_forever(
            retention.live_windows, lambda kept: prune_live_windows(database, keeps, _seconds(now - kept))
        ),
        live_receipts=_unless_forever(
            retention.dedup_ids, lambda kept: prune_live_receipts(database, now - kept)
        ),
        response_models=_unless_forever(
            retention.live_windows, lambda kept: prune_response_models(database, _seconds(now - kept))
        ),
        drift_alerts=_unless_forever(
            retention.drift_alerts, lambda kept: prune_drift_alerts(database, now - kept)
        ),
        eval_runs=_unless_forever(retention.eval_runs, lambda kept: prune_eval_runs(database, now - kept)),
    )
    if database.dialect == "postgresql":
        _vacuum(database, pruned)
    return pruned


def _unless_forever(kept: timedelta | None, prune_older: Callable[[timedelta], int]) -> int:
    return 0 if kept is None else prune_older(kept)


def _seconds(at: datetime) -> int:
    """``at`` in Unix seconds, as windows start (rounded down: a window starting then is not older)."""
    return math.floor(at.timestamp())


def _active_rollouts() -> Select[tuple[str | None]]:
    r = t.routes.c
    active = [RolloutState.RAMPING.value, RolloutState.PAUSED.value]
    return select(r.rollout_id).where(r.rollout_id.is_not(None), r.state.in_(active))


def _prune_alert_keys(database: Database, retention: Retention, now: datetime) -> int:
    """Keys whose window ended, and keys past ``dedup_ids`` unless their rollout is still active."""
    k = t.alert_keys.c
    expired = and_(k.expires_at.is_not(None), k.expires_at <= now)
    if retention.dedup_ids is None:
        return delete_in_batches(database, k.alert_key, expired)
    old = and_(
        k.decided_at < now - retention.dedup_ids,
        or_(k.rollout_id.is_(None), k.rollout_id.not_in(_active_rollouts())),
    )
    return delete_in_batches(database, k.alert_key, or_(expired, old))


def _prune_receipts(database: Database, retention: Retention, now: datetime) -> int:
    if retention.dedup_ids is None:
        return 0
    r = t.report_receipts.c
    return delete_in_batches(database, r.report_id, r.received_at < now - retention.dedup_ids)


def _prune_alert_log(database: Database, retention: Retention, now: datetime) -> int:
    """Records of alerts that changed nothing, past ``alert_log``; never an applied alert's."""
    if retention.alert_log is None:
        return 0
    a = t.alert_log.c
    old = and_(a.received_at < now - retention.alert_log, a.outcome != "applied")
    # Oldest first: they sit at the start of the table, so each batch finds them at once.
    return delete_in_batches(database, a.id, old, oldest_first=True)


def _prune_windows(
    database: Database,
    retention: Retention,
    now: datetime,
    keeps: Mapping[tuple[str, int], Sequence[KeptPeriod]],
) -> int:
    """Delete the windows of rollouts that ended before the retention, one rollout per transaction,
    but the stable cohort's windows drift monitoring still needs (the rollout's stable version is
    the version a monitor watches, and their period one it keeps)."""
    if retention.report_windows is None:
        return 0
    s, r = t.rollout_stats.c, t.rollouts.c
    ended = select(r.rollout_id).where(r.ended_at.is_not(None), r.ended_at < now - retention.report_windows)
    with database.read() as conn:
        rollouts = list(
            conn.execute(
                select(r.rollout_id, r.prompt, r.baseline_version).where(
                    r.rollout_id.in_(select(s.rollout_id).distinct().where(s.rollout_id.in_(ended)))
                )
            )
        )
    removed = 0
    for rollout_id, prompt, stable_version in rollouts:
        periods = keeps.get((prompt, stable_version), ())
        kept = and_(s.cohort == "stable", kept_condition(periods, s.attribute, s.window_start))
        windows = delete(t.rollout_stats).where(s.rollout_id == rollout_id, not_(kept))

        def attempt(conn: Connection, windows: Delete = windows) -> int:
            return int(conn.execute(windows).rowcount)

        removed += database.write(
            attempt,
            contended=f"could not prune the windows of rollout {rollout_id}: too many concurrent writes",
        )
    return removed


def _vacuum(database: Database, pruned: Pruned) -> None:
    """Let PostgreSQL reuse the space of the rows just deleted (VACUUM runs outside a transaction)."""
    tables = [_TABLES[name] for name, count in pruned.counts().items() if count]
    if not tables:
        return
    with database.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in tables:
            conn.execute(text(f"VACUUM {name}"))


class Pruner:
    """Prunes a store every ``interval_seconds`` on a daemon thread (what ``serve`` runs).

    The first pruning runs ``first_after_seconds`` after :meth:`start`; a pruning that fails (the
    store is down, say) is logged and tried again at the next interval.
    """

    def __init__(
        self,
        registry: SqlRegistry,
        retention: Retention = DEFAULT_RETENTION,
        *,
        interval_seconds: float = 3600.0,
        first_after_seconds: float = 60.0,
    ) -> None:
        if interval_seconds <= 0 or first_after_seconds < 0:
            raise InvalidInputError("a pruning interval must be positive")
        self.registry = registry
        self.retention = retention
        self.interval_seconds = interval_seconds
        self.first_after_seconds = first_after_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Pruner({self.retention}, every {self.interval_seconds:g} s)"

    def start(self) -> Pruner:
        """Start the thread (once)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="prompt-canary-pruner", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        wait = self.first_after_seconds
        while not self._stop.wait(wait):
            wait = self.interval_seconds
            try:
                pruned = prune(self.registry, self.retention)
            except Exception:  # the store is down, say: the next interval tries again
                log.exception("pruning the store failed")
                continue
            if pruned.total:
                log.info("pruned %s", pruned)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting for a pruning in progress up to ``timeout`` seconds."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
