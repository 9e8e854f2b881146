"""What drift monitoring keeps of the live statistics, and pruning the rest.

The drift monitor (:mod:`otel_prompt_canary.loop.drift`) judges each window once and keeps what it
learnt (a signal's baseline, its detector) in its own rows; the windows it read are then only
needed while they are a **baseline** (a person may pin that period again, and the alert's evidence
names it) or **not judged yet**. So, whatever their age, these windows of the version each prompt's
monitor watches are kept (:func:`drift_keeps`):

- every window from the last one judged on (all of them, for a monitor that judged nothing yet);
- the period a person pinned as the baseline;
- per signal, its baseline period: from its start to its last window (and a day after it, the
  largest window the detector may use), or, while the baseline fills, from its start on.

The same holds for the stable cohort's windows of the version's rollouts, which the monitor reads
too (the rollout windows' pruning asks :func:`kept_condition`). Everything else is pruned by age:

- live windows older than the retention's ``live_windows`` (:func:`prune_live_windows`);
- the models that answered a version that is no longer its prompt's stable version, last seen
  before that retention (:func:`prune_response_models`); the stable version's are kept, with the
  models a person accepted;
- live report receipts, after ``dedup_ids`` as the rollouts' receipts (:func:`prune_live_receipts`);
- drift alerts that no one acknowledged, of a version that is no longer live, detected before the
  retention's ``drift_alerts`` (:func:`prune_drift_alerts`): the version they were about was
  replaced, so they are moot (and no longer sent to Alertmanager). An acknowledged alert records who
  acknowledged it, when and why: it is kept forever, and the database refuses to delete it or
  change its acknowledgement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    RowMapping,
    and_,
    delete,
    exists,
    false,
    not_,
    or_,
    select,
)

from otel_prompt_canary.loop.drift_models import SignalStatus
from otel_prompt_canary.loop.pruning import delete_in_batches, delete_in_slices
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import Database

__all__ = [
    "KeptPeriod",
    "drift_keeps",
    "kept_condition",
    "prune_drift_alerts",
    "prune_live_receipts",
    "prune_live_windows",
    "prune_response_models",
]

#: The largest window the detector may use (``DriftConfig.window_seconds``): a baseline's last
#: window is kept with this much after its start, whatever the monitor's window size.
_LONGEST_WINDOW: Final = 86_400

#: Kept periods per watched (prompt, version).
Keeps = Mapping[tuple[str, int], Sequence["KeptPeriod"]]


@dataclass(frozen=True, slots=True)
class KeptPeriod:
    """Windows starting in ``[start, end)`` (``end`` None: from ``start`` on) of one signal
    ``attribute``, or of every signal when it is None."""

    attribute: str | None
    start: int
    end: int | None

    def covers(self, attribute: Column[str], window_start: Column[int]) -> ColumnElement[bool]:
        """The SQL condition of a window this period keeps."""
        parts = [window_start >= self.start]
        if self.end is not None:
            parts.append(window_start < self.end)
        if self.attribute is not None:
            parts.append(attribute == self.attribute)
        return and_(*parts)


def drift_keeps(conn: Connection) -> dict[tuple[str, int], list[KeptPeriod]]:
    """The windows each prompt's drift monitor still needs, per (prompt, watched version)."""
    keeps: dict[tuple[str, int], list[KeptPeriod]] = {}
    for monitor in conn.execute(select(t.drift_monitors)).mappings():
        periods = keeps.setdefault((monitor["prompt"], monitor["version"]), [])
        cursor = monitor["cursor"]
        periods.append(KeptPeriod(None, monitor["live_since"] if cursor is None else cursor, None))
        if monitor["pinned_from"] is not None:
            periods.append(KeptPeriod(None, monitor["pinned_from"], monitor["pinned_until"]))
    for signal in conn.execute(select(t.drift_signals)).mappings():
        watched = keeps.get((signal["prompt"], signal["version"]))
        if watched is not None:  # a signal of another version is left from before a reset
            watched.append(_baseline_period(signal))
    return keeps


def _baseline_period(signal: RowMapping) -> KeptPeriod:
    """A signal's baseline period: complete, judged for good without a verdict, or still filling."""
    data = signal["baseline"] or {}
    made = data.get("baseline")
    if isinstance(made, dict) and made.get("last_window") is not None:
        last = int(made["last_window"])
    elif signal["status"] == SignalStatus.NO_VERDICT.value:
        # No verdict for good (a pinned period too thin): what it collected, for a person to pin again.
        collected = data.get("last_window")
        last = int(signal["baseline_from"] if collected is None else collected)
    else:
        return KeptPeriod(signal["attribute"], signal["baseline_from"], None)  # still filling
    return KeptPeriod(signal["attribute"], signal["baseline_from"], last + _LONGEST_WINDOW)


def kept_condition(
    periods: Sequence[KeptPeriod], attribute: Column[str], window_start: Column[int]
) -> ColumnElement[bool]:
    """The SQL condition of a window one of ``periods`` keeps (false when there are none)."""
    return or_(*(p.covers(attribute, window_start) for p in periods)) if periods else false()


def prune_live_windows(database: Database, keeps: Keeps, before: int) -> int:
    """Delete the live windows that start before ``before`` (Unix seconds) and that no period of
    ``keeps`` keeps, one prompt version at a time; how many."""
    s = t.live_stats.c
    v = t.versions.c
    old = exists().where(s.prompt == v.name, s.version == v.version, s.window_start < before)
    with database.read() as conn:
        pairs = [(row.name, row.version) for row in conn.execute(select(v.name, v.version).where(old))]
    removed = 0
    for prompt, version in pairs:
        kept = kept_condition(keeps.get((prompt, version), ()), s.attribute, s.window_start)
        where = and_(s.prompt == prompt, s.version == version, s.window_start < before, not_(kept))
        removed += delete_in_slices(database, s.window_start, where)
    return removed


def prune_response_models(database: Database, before: int) -> int:
    """Delete the response models of versions no longer stable, last seen before ``before``."""
    m, r = t.response_models.c, t.routes.c
    stable = exists().where(r.prompt == m.prompt, r.stable_version == m.version)
    watched = exists().where(t.drift_monitors.c.prompt == m.prompt, t.drift_monitors.c.version == m.version)
    where = and_(m.last_window < before, not_(stable), not_(watched))
    # A handful of rows per version: one transaction is short.
    return int(
        database.write(
            lambda conn: conn.execute(delete(t.response_models).where(where)).rowcount,
            contended="could not prune response_models: too many concurrent writes",
        )
    )


def prune_live_receipts(database: Database, before: datetime) -> int:
    """Delete the receipts of live reports received before ``before``."""
    r = t.live_receipts.c
    return delete_in_batches(database, r.report_id, r.received_at < before)


def prune_drift_alerts(database: Database, before: datetime) -> int:
    """Delete the drift alerts no one acknowledged, of versions no longer live, detected before
    ``before``."""
    a, r = t.drift_alerts.c, t.routes.c
    live = exists().where(r.prompt == a.prompt, r.stable_version == a.version)
    where = and_(a.acknowledged_at.is_(None), a.detected_at < before, not_(live))
    return delete_in_batches(database, a.id, where, oldest_first=True)
