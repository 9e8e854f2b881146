"""The drift monitor's rows: each prompt's monitor, each signal's state, each alert, to and from SQL.

``drift_monitors``, ``drift_signals`` and ``drift_alerts`` (:mod:`otel_prompt_canary.registry.schema`,
version 6) hold what :mod:`otel_prompt_canary.loop.drift` decides; the functions here turn their rows
into the monitor's working objects and the read models of :mod:`~otel_prompt_canary.loop.drift_models`,
and back. A signal's baseline and detector are JSON (:class:`~otel_prompt_canary.analysis.drift.Baseline`,
:meth:`~otel_prompt_canary.analysis.drift.DetectorState.to_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue
from sqlalchemy import RowMapping

from otel_prompt_canary.analysis.drift import Baseline, DetectorState, DriftConfig
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats
from otel_prompt_canary.loop.drift_models import DriftAlert, SignalDrift, SignalStatus, ValueSummary
from otel_prompt_canary.loop.drift_signals import Stats, WatchedSignal, format_value, utc
from otel_prompt_canary.registry.database import aware, utc_now

__all__ = ["MonitorRow", "alert_of", "monitor_of", "signal_of", "signal_values", "signal_view"]


@dataclass(slots=True)
class MonitorRow:
    """A prompt's monitor: the version watched, since when, a pinned baseline, the last window judged."""

    prompt: str
    version: int
    live_since: int
    pinned_from: int | None = None
    pinned_until: int | None = None
    pinned_by: str | None = None
    pinned_reason: str | None = None
    cursor: int | None = None

    @property
    def baseline_start(self) -> int:
        """Where baselines start: the pinned period, else when the version went live."""
        return self.pinned_from if self.pinned_from is not None else self.live_since


def monitor_of(row: RowMapping) -> MonitorRow:
    """A ``drift_monitors`` row."""
    return MonitorRow(
        row["prompt"],
        row["version"],
        row["live_since"],
        row["pinned_from"],
        row["pinned_until"],
        row["pinned_by"],
        row["pinned_reason"],
        row["cursor"],
    )


def _stats_from(data: Any) -> Stats | None:
    if data is None:
        return None
    return (
        ProportionStats.model_validate(data)
        if data.get("kind") == "proportion"
        else MeanStats.model_validate(data)
    )


def signal_values(signal: WatchedSignal) -> dict[str, Any]:
    """The ``drift_signals`` columns of ``signal`` (but its prompt and attribute, the key)."""
    baseline: dict[str, JsonValue] = {
        "collected": None if signal.collected is None else signal.collected.model_dump(mode="json"),
        "last_window": signal.last_window,
        "reason": signal.reason,
    }
    if signal.baseline is not None:
        baseline["baseline"] = signal.baseline.model_dump(mode="json")
    return {
        "version": signal.version,
        "kind": signal.kind,
        "epoch": signal.epoch,
        "status": signal.status.value,
        "baseline_from": signal.baseline_from,
        "baseline": baseline,
        "state": None if signal.state is None else signal.state.to_json(),
    }


def signal_of(row: RowMapping) -> WatchedSignal:
    """A ``drift_signals`` row."""
    data = row["baseline"] or {}
    made = data.get("baseline")
    return WatchedSignal(
        attribute=row["attribute"],
        version=row["version"],
        kind=row["kind"],
        epoch=row["epoch"],
        status=SignalStatus(row["status"]),
        baseline_from=row["baseline_from"],
        collected=_stats_from(data.get("collected")),
        last_window=data.get("last_window"),
        baseline=None if made is None else Baseline.model_validate(made),
        reason=data.get("reason") or "",
        state=None if row["state"] is None else DetectorState.from_json(row["state"]),
    )


def signal_view(signal: WatchedSignal, config: DriftConfig) -> SignalDrift:
    """What ``drift status`` and ``GET /v1/drift`` show of ``signal``."""
    baseline, state, reason = signal.baseline, signal.state, signal.reason
    if signal.status is SignalStatus.BASELINING and not reason:
        reason = "no verdict yet: the baseline has no samples"
    if (
        signal.status is SignalStatus.WATCHING
        and baseline is not None
        and state is not None
        and state.samples
    ):
        reason = (
            f"watching: {format_value(baseline.kind, state.estimate)} (n={state.samples}) since the baseline "
            f"{format_value(baseline.kind, baseline.estimate)} (n={baseline.n})"
        )
    if baseline is not None:
        harmful = [d.value for d in baseline.harmful]
    else:
        harmful = ["decrease"] if signal.kind == "proportion" else ["decrease", "increase"]
    return SignalDrift(
        attribute=signal.attribute,
        kind="proportion" if signal.kind == "proportion" else "mean",
        status=signal.status,
        reason=reason,
        harmful=harmful,
        epoch=signal.epoch,
        baseline_from=utc(signal.baseline_from),
        baseline=None if baseline is None else ValueSummary(n=baseline.n, estimate=baseline.estimate),
        baseline_until=None if baseline is None else utc(baseline.last_window + config.window_seconds),
        since_baseline=None if state is None else ValueSummary(n=state.samples, estimate=state.estimate),
        statistic=None if state is None or not state.windows else state.statistic,
        threshold=config.threshold,
    )


def alert_of(row: RowMapping) -> DriftAlert:
    """A ``drift_alerts`` row."""
    return DriftAlert(
        id=row["id"],
        prompt=row["prompt"],
        version=row["version"],
        subject_kind=row["subject_kind"],
        subject=row["subject"],
        epoch=row["epoch"],
        detected_at=aware(row["detected_at"]) or utc_now(),
        window_start=utc(row["window_start"]),
        summary=row["summary"],
        evidence=row["evidence"],
        notified_at=aware(row["notified_at"]),
        acknowledged_at=aware(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        acknowledge_reason=row["acknowledge_reason"],
    )
