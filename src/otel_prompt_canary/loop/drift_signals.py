"""What the drift monitor does with one signal's settled windows, and with the models that answered.

Pure (no store): :func:`advance` takes a :class:`WatchedSignal` through new windows (filling its
baseline, then judging with :func:`otel_prompt_canary.analysis.drift.judge`) and returns a
:class:`Detection` when the detector alarms; :func:`watch_models` decides which response models are
expected and which raise an alert. :mod:`otel_prompt_canary.loop.drift` stores what they decide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import JsonValue

from otel_prompt_canary.analysis.drift import (
    Baseline,
    DetectorState,
    DriftConfig,
    judge,
    make_baseline,
    window_sums,
)
from otel_prompt_canary.analysis.policy import Direction
from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, merge_stats
from otel_prompt_canary.loop.drift_models import SignalStatus
from otel_prompt_canary.loop.live import ResponseModel

__all__ = [
    "Detection",
    "Stats",
    "WatchedSignal",
    "advance",
    "directions",
    "format_value",
    "iso",
    "utc",
    "watch_models",
    "window_ceil",
    "window_floor",
]

Stats = ProportionStats | MeanStats


@dataclass(slots=True)
class WatchedSignal:
    """One signal of a prompt's live version between two ticks; ``changed`` when it must be stored."""

    attribute: str
    version: int
    kind: str
    epoch: int
    status: SignalStatus
    baseline_from: int
    #: While baselining: the samples collected so far (and the last window that added to them).
    collected: Stats | None = None
    last_window: int | None = None
    baseline: Baseline | None = None
    reason: str = ""
    state: DetectorState | None = None
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Detection:
    """An alert to store: its subject (a signal attribute or a model), window, summary and evidence."""

    subject_kind: str
    subject: str
    epoch: int
    window_start: int
    summary: str
    evidence: dict[str, JsonValue]


def window_floor(seconds: float, size: int) -> int:
    """The start of the window of ``size`` seconds holding ``seconds``."""
    return math.floor(seconds / size) * size


def window_ceil(seconds: float, size: int) -> int:
    """The start of the first window of ``size`` seconds starting at or after ``seconds``."""
    return math.ceil(seconds / size) * size


def utc(seconds: int) -> datetime:
    """Unix ``seconds`` as an aware UTC time."""
    return datetime.fromtimestamp(seconds, UTC)


def iso(seconds: int) -> str:
    """Unix ``seconds`` as RFC 3339 (``2026-11-27T04:00:00Z``)."""
    return utc(seconds).isoformat().replace("+00:00", "Z")


def format_value(kind: str, value: float | None) -> str:
    """A proportion as a percentage, a mean with four significant digits."""
    if value is None:
        return "-"
    return f"{value:.2%}" if kind == "proportion" else f"{value:.4g}"


def directions(attribute: str, kind: str, harmful: Mapping[str, Direction]) -> tuple[Direction, ...]:
    """The directions a signal is watched in: a check's drop; a score's harmful direction (from the
    prompt's policy), else both."""
    if kind == "proportion":
        return (Direction.DECREASE,)  # a check's True is its good outcome
    known = harmful.get(attribute)
    return (known,) if known is not None else (Direction.DECREASE, Direction.INCREASE)


def advance(
    signal: WatchedSignal,
    series: Mapping[int, Stats],
    *,
    prompt: str,
    end: int,
    pinned_until: int | None,
    harmful: Mapping[str, Direction],
    config: DriftConfig,
) -> Detection | None:
    """Take ``signal`` through the settled windows ``series`` (by start, all before ``end``).

    A baselining signal collects windows until its baseline is complete (the period up to
    ``pinned_until`` when a person pinned one), then judges the rest; a watched signal judges them
    all. A signal in alarm or without a verdict takes nothing.
    """
    if signal.status in (SignalStatus.ALARM, SignalStatus.NO_VERDICT):
        return None
    pending = sorted((b, s) for b, s in series.items() if b >= signal.baseline_from and s.kind == signal.kind)
    if signal.status is SignalStatus.BASELINING:
        pending = _fill_baseline(signal, pending, end, pinned_until, harmful, config)
    if signal.baseline is None or signal.state is None or not pending:
        return None
    windows = [(b, *window_sums(s)) for b, s in pending]
    state, found = judge(signal.state, signal.baseline, windows, config=config)
    signal.state, signal.changed = state, True
    if found is None:
        return None
    signal.status = SignalStatus.ALARM
    baseline = signal.baseline
    moved = "dropped" if found.direction is Direction.DECREASE else "rose"
    summary = (
        f"{signal.attribute} of {prompt}@{signal.version} {moved} from its baseline "
        f"{format_value(baseline.kind, baseline.estimate)} (n={baseline.n}) to "
        f"{format_value(baseline.kind, found.estimate_since_change)} (n={found.samples_since_change}) since "
        f"about {iso(found.change_start)}; proven in the window starting {iso(found.window_start)} "
        f"(ln M {found.statistic:.1f} >= {found.threshold:.1f})"
    )
    signal.reason = summary
    evidence: dict[str, JsonValue] = {
        "signal": signal.attribute,
        "kind": baseline.kind,
        "direction": found.direction.value,
        "baseline": {
            "n": baseline.n,
            "estimate": baseline.estimate,
            "edge": baseline.edge(found.direction),
            "from": iso(baseline.first_window),
            "until": iso(baseline.last_window + config.window_seconds),
        },
        "since_change": {
            "start": iso(found.change_start),
            "n": found.samples_since_change,
            "estimate": found.estimate_since_change,
        },
        "shift_sd": found.shift,
        "statistic": found.statistic,
        "threshold": found.threshold,
        "window_start": iso(found.window_start),
        "window_seconds": config.window_seconds,
        "alpha": config.alpha,
        "horizon_seconds": config.horizon_seconds,
    }
    return Detection("signal", signal.attribute, signal.epoch, found.window_start, summary, evidence)


def _fill_baseline(
    signal: WatchedSignal,
    pending: list[tuple[int, Stats]],
    end: int,
    pinned_until: int | None,
    harmful: Mapping[str, Direction],
    config: DriftConfig,
) -> list[tuple[int, Stats]]:
    """Add windows to a filling baseline until it is complete; the windows left to judge."""
    size = config.window_seconds
    watched = directions(signal.attribute, signal.kind, harmful)
    used = 0
    for bucket, stats in pending:
        if pinned_until is not None and bucket >= pinned_until:
            break
        used += 1
        signal.collected = stats if signal.collected is None else merge_stats(signal.collected, stats)
        signal.last_window, signal.changed = bucket, True
        if pinned_until is None:
            made = make_baseline(
                signal.collected,
                harmful=watched,
                first_window=signal.baseline_from,
                last_window=bucket,
                config=config,
            )
            if isinstance(made, Baseline):
                _watch(signal, made, config)
                return pending[used:]
    collected = signal.collected
    if pinned_until is not None and end >= pinned_until:
        # The pinned period has passed: its samples are the whole baseline, enough or not.
        signal.changed = True
        if collected is None:
            signal.status = SignalStatus.NO_VERDICT
            signal.reason = "no verdict: the pinned baseline holds no samples of this signal"
            return []
        made = make_baseline(
            collected,
            harmful=watched,
            first_window=signal.baseline_from,
            last_window=pinned_until - size,
            config=config,
        )
        if isinstance(made, Baseline):
            _watch(signal, made, config)
            return pending[used:]
        signal.status, signal.reason = SignalStatus.NO_VERDICT, f"{made} (pinned period)"
        return []
    n = 0 if collected is None else collected.n
    span = 0 if signal.last_window is None else signal.last_window + size - signal.baseline_from
    signal.reason = (
        f"no verdict yet: the baseline holds {n} of {config.baseline_samples} samples over {span} of "
        f"{config.baseline_seconds:g} s"
    )
    return []


def _watch(signal: WatchedSignal, baseline: Baseline, config: DriftConfig) -> None:
    signal.baseline, signal.status = baseline, SignalStatus.WATCHING
    signal.state = DetectorState.start(baseline, config)
    signal.reason = (
        f"watching against its baseline {format_value(baseline.kind, baseline.estimate)} (n={baseline.n})"
    )


def watch_models(
    prompt: str,
    version: int,
    snapshot: str | None,
    models: list[ResponseModel],
    alerted: set[str],
) -> tuple[list[str], list[Detection]]:
    """The models to accept and the alerts to raise, in first-seen order (see docs/drift.md).

    Expected: the ``snapshot`` model, or the first model seen when the snapshot names none or an
    alias of it (``gpt-4o-2024-08-06`` for ``gpt-4o``); any other model not ``alerted`` yet alerts.
    """
    any_accepted = any(m.accepted for m in models)
    accepted: list[str] = []
    found: list[Detection] = []
    for model in models:
        if model.accepted or model.model in alerted:
            continue
        learnt = not any_accepted and (snapshot is None or model.model.startswith(snapshot + "-"))
        if model.model == snapshot or learnt:
            accepted.append(model.model)
            any_accepted = True
            continue
        expected = sorted(
            {m.model for m in models if m.accepted} | set(accepted) | ({snapshot} if snapshot else set())
        )
        summary = (
            f"{prompt}@{version} was answered by model {model.model!r}, expected "
            f"{' or '.join(repr(e) for e in expected) or 'none yet'}; first seen in the window starting "
            f"{iso(model.first_window)} ({model.calls} calls so far)"
        )
        evidence: dict[str, JsonValue] = {
            "model": model.model,
            "snapshot_model": snapshot,
            "expected": list(expected),
            "first_window": iso(model.first_window),
            "calls": model.calls,
        }
        found.append(Detection("model", model.model, 0, model.first_window, summary, evidence))
    return accepted, found
