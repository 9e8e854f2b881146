"""The drift monitor: every prompt's live stable version, judged window by window against its own baseline.

A canary ends with a promotion; quality can still move afterwards while no prompt changes (the
provider updates the model behind the same name, a retrieval index is refreshed, the traffic mix
shifts). Every ``interval_seconds`` the monitor, for every prompt:

1. finds the live stable version (the routing flag's ``stable_version``) and when it became stable
   (its promotion or revert in the audit trail, else its creation): a new version starts afresh;
2. reads the windows of that version's stable traffic that have settled (``settle_seconds`` after
   their end), from live reports and from the stable cohort of rollouts
   (:meth:`~otel_prompt_canary.loop.live.LiveStatistics.stable_windows`), in windows of the
   detector's size;
3. per signal attribute (checks, scores, token usage): fills the baseline from the first windows
   after the version went live (or from the period a person pinned), then judges each later window
   with the anytime-valid detector of :mod:`otel_prompt_canary.analysis.drift`. Checks are watched
   for a drop; a score for the harmful direction of the prompt's last policy, else both ways;
4. watches ``gen_ai.response.model``: a model other than the snapshot's raises an alert at the
   first report that names it (a dated name of an alias, ``gpt-4o-2024-08-06`` for ``gpt-4o``, is
   learnt when it is the first model seen; a snapshot without a model learns the first model seen).

A detection is a :class:`~otel_prompt_canary.loop.drift_models.DriftAlert`: stored once per
signal and baseline (replicas agree through a unique key), logged, recorded in the alert log
(source ``drift``, action ``alert``: no routing changes), and handed to ``on_alert``. The signal then
waits in ``alarm``. :meth:`DriftMonitor.acknowledge` records who acknowledged it and why (in the
alert and the alert log) and re-baselines the signal from that moment (or accepts the model).

State lives in the store (``drift_monitors``, ``drift_signals``, ``drift_alerts``), advanced by a
compare-and-set on the last window judged, so that several replicas may each run a monitor and a
restart carries on where the last tick stopped. Samples reported for a window after it was judged
are stored but not judged: ``settle_seconds`` should exceed the time reports take to arrive.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from otel_prompt_canary.analysis.drift import DriftConfig
from otel_prompt_canary.analysis.policy import Direction, load_policy
from otel_prompt_canary.analysis.stats import merge_stats
from otel_prompt_canary.errors import ConflictError, InvalidInputError, NotFoundError, PromptCanaryError
from otel_prompt_canary.loop.alert_log import AlertLog
from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice, AlertStatus
from otel_prompt_canary.loop.drift_models import DriftAlert, PinnedBaseline, PromptDrift, SignalStatus
from otel_prompt_canary.loop.drift_rows import (
    MonitorRow,
    alert_of,
    monitor_of,
    signal_of,
    signal_values,
    signal_view,
)
from otel_prompt_canary.loop.drift_signals import (
    Detection,
    Stats,
    WatchedSignal,
    advance,
    iso,
    utc,
    watch_models,
    window_ceil,
    window_floor,
)
from otel_prompt_canary.loop.live import LiveStatistics, ResponseModels
from otel_prompt_canary.loop.ticking import Ticking, TicksInBackground
from otel_prompt_canary.names import signal_kind
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.registry.database import aware, inserted_id, newest_first, utc_now
from otel_prompt_canary.registry.models import Action, Route, validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = ["ALERT_SOURCE", "DriftMonitor"]

log = logging.getLogger("otel_prompt_canary.loop.drift")

#: Response model counts of rollouts kept in memory until the next tick.
MAX_PENDING_MODELS: Final = 10_000
#: The alert log's source of drift alerts, and the actor of the monitor's own records.
ALERT_SOURCE: Final = "drift"
MONITOR: Final = "drift-monitor"


class DriftMonitor(TicksInBackground):
    """Judges the live stable version of every prompt of ``registry``; see the module docstring.

    Start the background thread with :meth:`start` (or use the monitor as a context manager), or call
    :meth:`tick` yourself. ``on_alert`` hears of every alert this monitor stores (a listener's
    failure is logged, never raised).
    """

    def __init__(
        self,
        registry: SqlRegistry,
        config: DriftConfig | None = None,
        *,
        interval_seconds: float = 5.0,
        on_alert: Callable[[DriftAlert], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if interval_seconds <= 0:
            raise InvalidInputError(f"interval_seconds must be positive, got {interval_seconds}")
        self.registry = registry
        self.config = config or DriftConfig()
        self.interval_seconds = interval_seconds
        self.live = LiveStatistics(registry)
        self._alert_log = AlertLog(registry)
        #: Hears of every alert this monitor stores (a listener's failure is logged, never raised).
        self.on_alert = on_alert
        self._clock = clock
        self._warned: set[str] = set()
        self._pending_models: dict[tuple[str, int, str, int], int] = {}
        self._pending_lock = threading.Lock()
        self._ticking = Ticking("prompt-canary-drift", interval_seconds, self.tick)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"DriftMonitor(every {self.interval_seconds:g} s, {self.config.describe()}, {state})"

    @property
    def _db(self) -> Any:
        return self.registry.database

    # -- judging ----------------------------------------------------------------------------

    def count_models(self, prompt: str, version: int, models: ResponseModels) -> None:
        """Count response models of ``version``'s stable traffic in a rollout, stored at the next tick.

        Kept in memory until then (at most :data:`MAX_PENDING_MODELS` counts; beyond, dropped and
        logged), so that the report that carried them waits for no second write.
        """
        with self._pending_lock:
            for model, windows in models.items():
                for start, calls in windows.items():
                    key = (prompt, version, model, start)
                    if key in self._pending_models:
                        self._pending_models[key] += calls
                    elif len(self._pending_models) < MAX_PENDING_MODELS:
                        self._pending_models[key] = calls
                    elif "pending models" not in self._warned:
                        self._warned.add("pending models")
                        log.warning("too many response models waiting to be stored: some are dropped")
        self.wake()

    def _store_models(self) -> None:
        with self._pending_lock:
            pending, self._pending_models = self._pending_models, {}
        grouped: dict[tuple[str, int], dict[str, dict[int, int]]] = {}
        for (prompt, version, model, start), calls in pending.items():
            grouped.setdefault((prompt, version), {}).setdefault(model, {})[start] = calls
        for (prompt, version), models in grouped.items():
            try:
                self.live.record_response_models(prompt, version, models)
            except PromptCanaryError as exc:
                log.warning("could not store the response models of %s@%d: %s", prompt, version, exc)

    def tick(self) -> list[DriftAlert]:
        """Judge what settled since the last tick, for every prompt; returns the alerts it raised."""
        self._store_models()
        raised: list[DriftAlert] = []
        for route in self.registry.list_routes():
            try:
                raised += self._tick_prompt(route)
            except PromptCanaryError as exc:
                key = f"{route.prompt}:{type(exc).__name__}"
                if key not in self._warned:
                    self._warned.add(key)
                    log.warning("cannot judge the drift of %r: %s", route.prompt, exc)
        for alert in raised:
            self._announce(alert)
        return raised

    def _tick_prompt(self, route: Route) -> list[DriftAlert]:
        monitor = self._monitor_of(route)
        size = self.config.window_seconds
        end = window_floor(self._clock() - self.config.settle_seconds, size)
        first = window_ceil(monitor.baseline_start, size)
        start = monitor.cursor + size if monitor.cursor is not None else first
        signals = self._signals(monitor)
        found: list[Detection] = []
        buckets: dict[str, dict[int, Stats]] = {}
        if start < end:
            buckets = self._buckets(monitor, start, end)
            harmful = self._harmful_directions(monitor.prompt)
            for attribute in sorted(set(buckets) | set(signals)):
                kind = signal_kind(attribute)
                series = buckets.get(attribute, {})
                signal = signals.get(attribute)
                if signal is None:
                    if kind is None or not series:
                        continue
                    signal = signals[attribute] = self._new_signal(
                        monitor, attribute, kind, max(first, min(series))
                    )
                # A signal without new windows still moves when its pinned period has passed.
                detection = advance(
                    signal,
                    series,
                    prompt=monitor.prompt,
                    end=end,
                    pinned_until=monitor.pinned_until,
                    harmful=harmful,
                    config=self.config,
                )
                if detection is not None:
                    found.append(detection)
        models = self.live.response_models(monitor.prompt, monitor.version)
        accepted: list[str] = []
        if not all(m.accepted for m in models):
            accepted, model_alerts = watch_models(
                monitor.prompt,
                monitor.version,
                self._snapshot_model(monitor),
                models,
                self._alerted_models(monitor),
            )
            found += model_alerts
        if not buckets and not found and not accepted and not any(s.changed for s in signals.values()):
            # Nothing new: no write. The next tick reads from the same start (an index makes an empty
            # range cheap), so that a quiet prompt costs the store no transaction.
            return []
        cursor = max(monitor.cursor if monitor.cursor is not None else end - size, end - size)
        return self._db.write(  # type: ignore[no-any-return]
            lambda conn: self._save(conn, monitor, signals, found, accepted, cursor),
            contended=f"could not store the drift monitor of {monitor.prompt!r}: too many concurrent writers",
        )

    def _buckets(self, monitor: MonitorRow, start: int, end: int) -> dict[str, dict[int, Stats]]:
        """The settled windows ``[start, end)`` of the version's stable traffic, per attribute and
        detector window (stored windows of any size, added into the window holding their start)."""
        size = self.config.window_seconds
        out: dict[str, dict[int, Stats]] = {}
        for window, _seconds, attribute, stats in self.live.stable_windows(
            monitor.prompt, monitor.version, since=start, until=end
        ):
            series = out.setdefault(attribute, {})
            bucket = window_floor(window, size)
            before = series.get(bucket)
            if before is None:
                series[bucket] = stats
            elif before.kind == stats.kind:
                series[bucket] = merge_stats(before, stats)
        return out

    def _save(
        self,
        conn: Connection,
        monitor: MonitorRow,
        signals: dict[str, WatchedSignal],
        found: list[Detection],
        accepted: list[str],
        cursor: int,
    ) -> list[DriftAlert]:
        m = t.drift_monitors.c
        row = conn.execute(
            select(t.drift_monitors).where(m.prompt == monitor.prompt).with_for_update()
        ).first()
        if (
            row is None
            or row.version != monitor.version
            or row.cursor != monitor.cursor
            or (row.pinned_from != monitor.pinned_from)
        ):
            return []  # another replica (or a person) moved it meanwhile: the next tick starts from there
        now = utc_now()
        s = t.drift_signals.c
        for signal in signals.values():
            if not signal.changed:
                continue
            values = signal_values(signal) | {"updated_at": now}
            key = (s.prompt == monitor.prompt) & (s.attribute == signal.attribute)
            if conn.execute(select(s.epoch).where(key)).first() is None:
                conn.execute(
                    t.drift_signals.insert().values(
                        prompt=monitor.prompt, attribute=signal.attribute, **values
                    )
                )
            else:
                conn.execute(t.drift_signals.update().where(key).values(**values))
        self.live.accept_models(conn, monitor.prompt, monitor.version, accepted)
        raised = []
        for item in found:
            try:
                with conn.begin_nested():
                    result = conn.execute(
                        t.drift_alerts.insert().values(
                            prompt=monitor.prompt,
                            version=monitor.version,
                            subject_kind=item.subject_kind,
                            subject=item.subject,
                            epoch=item.epoch,
                            detected_at=now,
                            window_start=item.window_start,
                            summary=item.summary[:4000],
                            evidence=item.evidence,
                        )
                    )
            except IntegrityError:
                continue  # raised once already, by another replica
            raised.append(self._alert_by_id(conn, inserted_id(result)))
        conn.execute(
            t.drift_monitors.update().where(m.prompt == monitor.prompt).values(cursor=cursor, updated_at=now)
        )
        return raised

    def _announce(self, alert: DriftAlert) -> None:
        log.warning("drift alert %d: %s", alert.id, alert.summary)
        try:
            self._alert_log.receive_alert(
                AlertNotice(
                    source=ALERT_SOURCE,
                    key=f"drift:{alert.id}",
                    prompt=alert.prompt,
                    action=AlertAction.ALERT,
                    actor=MONITOR,
                    reason=alert.summary[:2000],
                    alert=alert.model_dump(mode="json"),
                )
            )
        except PromptCanaryError as exc:
            log.warning("could not record drift alert %d in the alert log: %s", alert.id, exc)
        if self.on_alert is not None:
            try:
                self.on_alert(alert)
            except Exception:  # a listener's failure must not stop the monitor
                log.exception("drift alert listener failed")

    # -- the monitor of each prompt -----------------------------------------------------------

    def _monitor_of(self, route: Route) -> MonitorRow:
        """The prompt's monitor, started afresh when its stable version is not the one watched."""
        with self._db.read() as conn:
            row = (
                conn.execute(select(t.drift_monitors).where(t.drift_monitors.c.prompt == route.prompt))
                .mappings()
                .first()
            )
        if row is not None and row["version"] == route.stable_version:
            return monitor_of(row)
        live_since = self._live_since(route.prompt, route.stable_version)

        def reset(conn: Connection) -> MonitorRow:
            m = t.drift_monitors.c
            current = (
                conn.execute(select(t.drift_monitors).where(m.prompt == route.prompt).with_for_update())
                .mappings()
                .first()
            )
            if current is not None and current["version"] == route.stable_version:
                return monitor_of(current)  # another replica did it
            values = {
                "version": route.stable_version,
                "live_since": live_since,
                "pinned_from": None,
                "pinned_until": None,
                "pinned_by": None,
                "pinned_reason": None,
                "cursor": None,
                "updated_at": utc_now(),
            }
            if current is None:
                conn.execute(t.drift_monitors.insert().values(prompt=route.prompt, **values))
            else:
                conn.execute(t.drift_monitors.update().where(m.prompt == route.prompt).values(**values))
            conn.execute(t.drift_signals.delete().where(t.drift_signals.c.prompt == route.prompt))
            return MonitorRow(route.prompt, route.stable_version, live_since, None, None, None, None, None)

        started: MonitorRow = self._db.write(
            reset, contended=f"could not start the drift monitor of {route.prompt!r}"
        )
        log.info(
            "drift monitor of %r watches version %d, live since %s",
            route.prompt,
            started.version,
            iso(live_since),
        )
        return started

    def _live_since(self, prompt: str, version: int) -> int:
        """When ``version`` became stable: the promotion or revert that made it so, else its creation."""
        a = t.audit.c
        with self._db.read() as conn:
            other = conn.execute(
                select(func.max(a.id)).where(a.prompt == prompt, a.stable_version != version)
            ).scalar()
            first = conn.execute(
                select(a.action, a.at)
                .where(a.prompt == prompt, a.stable_version == version, a.id > (other or 0))
                .order_by(a.id)
                .limit(1)
            ).first()
        if first is not None and first.action in (Action.PROMOTE.value, Action.REVERT.value):
            at = aware(first.at)
            assert at is not None
            return math.floor(at.timestamp())
        created = self.registry.get_version(prompt, version).created_at
        return math.floor(created.timestamp())

    def _signals(self, monitor: MonitorRow) -> dict[str, WatchedSignal]:
        s = t.drift_signals.c
        with self._db.read() as conn:
            rows = list(
                conn.execute(
                    select(t.drift_signals).where(s.prompt == monitor.prompt, s.version == monitor.version)
                ).mappings()
            )
        return {row["attribute"]: signal_of(row) for row in rows}

    def _new_signal(self, monitor: MonitorRow, attribute: str, kind: str, start: int) -> WatchedSignal:
        a = t.drift_alerts.c
        with self._db.read() as conn:
            last = conn.execute(
                select(func.max(a.epoch)).where(
                    a.prompt == monitor.prompt,
                    a.version == monitor.version,
                    a.subject_kind == "signal",
                    a.subject == attribute,
                )
            ).scalar()
        return WatchedSignal(
            attribute,
            monitor.version,
            kind,
            0 if last is None else last + 1,
            SignalStatus.BASELINING,
            start,
            changed=True,
        )

    def _harmful_directions(self, prompt: str) -> dict[str, Direction]:
        """The harmful direction of each score the prompt's last policy names (checks always drop)."""
        try:
            rollout = self.registry.get_rollout(prompt)
        except NotFoundError:
            return {}
        if rollout.policy is None:
            return {}
        try:
            policy = load_policy(rollout.policy)
        except InvalidInputError:
            return {}
        return {signal.attribute: signal.harmful for signal in policy.signals}

    def _snapshot_model(self, monitor: MonitorRow) -> str | None:
        version = self.registry.get_version(monitor.prompt, monitor.version)
        return version.environment.model_id or version.model

    def _alerted_models(self, monitor: MonitorRow) -> set[str]:
        a = t.drift_alerts.c
        with self._db.read() as conn:
            return set(
                conn.execute(
                    select(a.subject).where(
                        a.prompt == monitor.prompt, a.version == monitor.version, a.subject_kind == "model"
                    )
                ).scalars()
            )

    # -- people ---------------------------------------------------------------------------------

    def acknowledge(self, alert_id: int, *, actor: str, reason: str) -> DriftAlert:
        """Acknowledge an open alert: recorded (who, why, when) in the alert and the alert log; the
        signal re-baselines from now on (a model is accepted for the version).

        Raises :class:`~otel_prompt_canary.errors.NotFoundError` for an unknown alert and
        :class:`~otel_prompt_canary.errors.ConflictError` for one acknowledged before.
        """
        actor, reason = _person(actor, reason)
        size = self.config.window_seconds
        restart = window_ceil(self._clock(), size)

        def attempt(conn: Connection) -> DriftAlert:
            a = t.drift_alerts.c
            row = (
                conn.execute(select(t.drift_alerts).where(a.id == alert_id).with_for_update())
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"unknown drift alert {alert_id}")
            if row["acknowledged_at"] is not None:
                raise ConflictError(
                    f"drift alert {alert_id} was acknowledged by {row['acknowledged_by']} at "
                    f"{aware(row['acknowledged_at'])}"
                )
            conn.execute(
                t.drift_alerts.update()
                .where(a.id == alert_id)
                .values(acknowledged_at=utc_now(), acknowledged_by=actor, acknowledge_reason=reason)
            )
            prompt, version = row["prompt"], row["version"]
            if row["subject_kind"] == "model":
                self.live.accept_models(conn, prompt, version, [row["subject"]])
            else:
                s = t.drift_signals.c
                key = (s.prompt == prompt) & (s.attribute == row["subject"]) & (s.version == version)
                conn.execute(
                    t.drift_signals.update()
                    .where(key, s.epoch == row["epoch"])
                    .values(
                        epoch=row["epoch"] + 1,
                        status=SignalStatus.BASELINING.value,
                        baseline_from=restart,
                        baseline=None,
                        state=None,
                        updated_at=utc_now(),
                    )
                )
            return self._alert_by_id(conn, alert_id)

        alert: DriftAlert = self._db.write(attempt, contended=f"could not acknowledge drift alert {alert_id}")
        again = (
            "accepted for this version"
            if alert.subject_kind == "model"
            else f"re-baselined from {iso(restart)}"
        )
        self._record(
            alert.prompt,
            f"drift-ack:{alert.id}",
            actor,
            f"{actor} acknowledged drift alert {alert.id} ({alert.subject}, {again}): {reason}",
            alert,
        )
        log.info("drift alert %d acknowledged by %s: %s", alert.id, actor, reason)
        return alert

    def pin_baseline(
        self, prompt: str, *, start: datetime, end: datetime, actor: str, reason: str
    ) -> PromptDrift:
        """Make ``[start, end)`` the baseline of every signal of ``prompt``'s live stable version.

        The period must lie within the version's live time and be over; every signal re-baselines
        on it and is judged again from its end. A period with too few samples of a signal gives that
        signal no verdict, and says so (``no_verdict``). Recorded in the alert log.
        """
        actor, reason = _person(actor, reason)
        validate_prompt_name(prompt)
        route = self.registry.get_route(prompt)
        monitor = self._monitor_of(route)
        size = self.config.window_seconds
        first, last = window_ceil(start.timestamp(), size), window_floor(end.timestamp(), size)
        if last <= first:
            raise InvalidInputError(
                f"the baseline period {start.isoformat()} - {end.isoformat()} holds no whole window "
                f"of {size} s"
            )
        if first < monitor.live_since:
            raise InvalidInputError(
                f"the baseline period starts before {prompt}@{monitor.version} went live "
                f"({iso(monitor.live_since)}): pin a period of the live version"
            )
        if last > self._clock():
            raise InvalidInputError(f"the baseline period must be over: it ends {iso(last)}, in the future")

        def attempt(conn: Connection) -> None:
            m = t.drift_monitors.c
            row = (
                conn.execute(select(t.drift_monitors).where(m.prompt == prompt).with_for_update())
                .mappings()
                .first()
            )
            if row is None or row["version"] != monitor.version:
                raise ConflictError(f"the stable version of {prompt!r} changed meanwhile: try again")
            conn.execute(
                t.drift_monitors.update()
                .where(m.prompt == prompt)
                .values(
                    pinned_from=first,
                    pinned_until=last,
                    pinned_by=actor,
                    pinned_reason=reason,
                    cursor=first - size,
                    updated_at=utc_now(),
                )
            )
            s = t.drift_signals.c
            conn.execute(
                t.drift_signals.update()
                .where(s.prompt == prompt)
                .values(
                    epoch=s.epoch + 1,
                    status=SignalStatus.BASELINING.value,
                    baseline_from=first,
                    baseline=None,
                    state=None,
                    updated_at=utc_now(),
                )
            )

        self._db.write(attempt, contended=f"could not pin the drift baseline of {prompt!r}")
        self._record(
            prompt,
            f"drift-pin:{prompt}:{monitor.version}:{first}:{last}:{int(self._clock())}",
            actor,
            f"{actor} pinned the drift baseline of {prompt}@{monitor.version} to {iso(first)} - "
            f"{iso(last)}: {reason}",
            None,
        )
        self.wake()
        return self.prompt_status(prompt)

    def _record(self, prompt: str, key: str, actor: str, reason: str, alert: DriftAlert | None) -> None:
        try:
            self._alert_log.receive_alert(
                AlertNotice(
                    source=ALERT_SOURCE,
                    key=key[:256],
                    prompt=prompt,
                    action=AlertAction.ALERT,
                    status=AlertStatus.RESOLVED,
                    actor=actor,
                    reason=reason[:2000],
                    alert=None if alert is None else alert.model_dump(mode="json"),
                )
            )
        except PromptCanaryError as exc:
            log.warning("could not record %r in the alert log: %s", key, exc)

    # -- reading ------------------------------------------------------------------------------

    def prompt_status(self, prompt: str) -> PromptDrift:
        """The drift monitoring of ``prompt`` (unknown: :class:`~otel_prompt_canary.errors.NotFoundError`)."""
        validate_prompt_name(prompt)
        route = self.registry.get_route(prompt)
        return self._status(self._monitor_of(route))

    def status(self, *, after: str | None = None, limit: int | None = None) -> list[PromptDrift]:
        """The drift monitoring of every prompt, by name (the first ``limit`` prompts whose name
        sorts after ``after``, when given)."""
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit must be at least 1, got {limit}")
        # Names compare as Python strings here and in the cursor, whatever the database's collation.
        routes = sorted(self.registry.list_routes(), key=lambda route: route.prompt)
        if after is not None:
            routes = [route for route in routes if route.prompt > after]
        return [self._status(self._monitor_of(route)) for route in routes[:limit]]

    def _status(self, monitor: MonitorRow) -> PromptDrift:
        signals = [signal_view(s, self.config) for _, s in sorted(self._signals(monitor).items())]
        pinned = None
        if monitor.pinned_from is not None and monitor.pinned_until is not None:
            pinned = PinnedBaseline(
                start=utc(monitor.pinned_from),
                end=utc(monitor.pinned_until),
                by=monitor.pinned_by or "",
                reason=monitor.pinned_reason or "",
            )
        judged = None if monitor.cursor is None else utc(monitor.cursor + self.config.window_seconds)
        return PromptDrift(
            prompt=monitor.prompt,
            version=monitor.version,
            live_since=utc(monitor.live_since),
            judged_until=judged,
            pinned=pinned,
            snapshot_model=self._snapshot_model(monitor),
            signals=signals,
            models=self.live.response_models(monitor.prompt, monitor.version),
            alerts=self.list_alerts(monitor.prompt, open_only=True),
        )

    def list_alerts(
        self,
        prompt: str | None = None,
        *,
        open_only: bool = False,
        limit: int | None = 100,
        before: int | None = None,
    ) -> list[DriftAlert]:
        """Drift alerts, oldest first: the newest ``limit`` (every one when None; with ``before``,
        those of a smaller id)."""
        a = t.drift_alerts.c
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit must be at least 1, got {limit}")
        query = newest_first(select(t.drift_alerts), a.id, before=before, limit=limit)
        if prompt is not None:
            query = query.where(a.prompt == validate_prompt_name(prompt))
        if open_only:
            query = query.where(a.acknowledged_at.is_(None))
        with self._db.read() as conn:
            newest = [alert_of(row) for row in conn.execute(query).mappings()]
        return newest[::-1]

    def get_alert(self, alert_id: int) -> DriftAlert:
        """One alert (:class:`~otel_prompt_canary.errors.NotFoundError` if unknown)."""
        with self._db.read() as conn:
            return self._alert_by_id(conn, alert_id)

    @staticmethod
    def _alert_by_id(conn: Connection, alert_id: int) -> DriftAlert:
        row = conn.execute(select(t.drift_alerts).where(t.drift_alerts.c.id == alert_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"unknown drift alert {alert_id}")
        return alert_of(row)

    # -- notifications --------------------------------------------------------------------------

    def alerts_to_notify(self, limit: int = 100) -> tuple[list[DriftAlert], list[DriftAlert]]:
        """Alerts no receiver has accepted yet: (firing, acknowledged and not yet notified as resolved)."""
        a = t.drift_alerts.c
        firing = select(t.drift_alerts).where(a.notified_at.is_(None)).order_by(a.id).limit(limit)
        resolved = (
            select(t.drift_alerts)
            .where(a.acknowledged_at.is_not(None), a.resolved_notified_at.is_(None))
            .order_by(a.id)
            .limit(limit)
        )
        with self._db.read() as conn:
            return (
                [alert_of(row) for row in conn.execute(firing).mappings()],
                [alert_of(row) for row in conn.execute(resolved).mappings()],
            )

    def mark_notified(self, alert_id: int, *, resolved: bool = False) -> None:
        """Record that every configured receiver accepted the alert (or its resolution)."""
        column = "resolved_notified_at" if resolved else "notified_at"
        self._db.write(
            lambda conn: conn.execute(
                t.drift_alerts.update().where(t.drift_alerts.c.id == alert_id).values({column: utc_now()})
            ),
            contended=f"could not mark drift alert {alert_id} notified",
        )


# -- helpers --------------------------------------------------------------------------------------


def _person(actor: str, reason: str) -> tuple[str, str]:
    actor, reason = actor.strip(), reason.strip()
    if not actor or len(actor) > 256:
        raise InvalidInputError("say who you are: an actor of 1-256 characters")
    if not reason or len(reason) > 2000:
        raise InvalidInputError("say why: a reason of 1-2000 characters")
    check_storable(actor, "actor")
    check_storable(reason, "reason")
    return actor, reason
