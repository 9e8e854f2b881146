"""Test data of the drift suite: a watched prompt, live reports of a check, and a clock to move.

Windows are minutes, as the detector's default; :class:`Clock` is the monitor's time, moved by the
test past each window and its settling delay, so that a tick judges exactly the windows fed so far.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_prompt_canary.analysis.drift import DriftConfig
from otel_prompt_canary.analysis.stats import ProportionStats, Report
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import (
    DriftAlert,
    PromptDrift,
    SignalDrift,
    SignalStatus,
    ValueSummary,
)
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.registry.database import utc_now
from otel_prompt_canary.service.api.drift import render_metrics

__all__ = [
    "CHECK",
    "FAST",
    "Clock",
    "Feeder",
    "drift_alert_row",
    "drift_metrics_scrape",
    "live_body",
    "push_bot",
]

CHECK = "prompt_canary.check.json_valid"

#: A baseline of an hour and 1,000 samples (a day by default): the tests reach a verdict sooner.
FAST = DriftConfig(window_seconds=60, baseline_seconds=3600, baseline_samples=1000, settle_seconds=30)


class Clock:
    """The monitor's clock: starts now, moves when the test says."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def push_bot(
    registry: SqlRegistry, *, name: str = "bot", model: str | None = "sim-1", text: str = "Hi"
) -> int:
    """A version of the prompt ``name`` whose snapshot's model is ``model``; returns its number."""
    spec: dict[str, Any] = {"name": name, "template": text + " {{ x }}"}
    if model is not None:
        spec["model"] = model
    return registry.push(PromptSpec.model_validate(spec)).version.version


def drift_alert_row(
    prompt: str, version: int, subject: str, *, days_ago: float = 0, acknowledged: bool = False
) -> dict[str, Any]:
    """A ``drift_alerts`` row of a signal that dropped, detected ``days_ago``: for tests that need
    many alerts (inserted at once) or old ones (the monitor only raises alerts now)."""
    detected = utc_now() - timedelta(days=days_ago)
    return {
        "prompt": prompt,
        "version": version,
        "subject_kind": "signal",
        "subject": subject,
        "epoch": 0,
        "detected_at": detected,
        "window_start": 0,
        "summary": f"{subject} dropped",
        "evidence": {"statistic": 16.1},
        "acknowledged_at": detected + timedelta(hours=1) if acknowledged else None,
        "acknowledged_by": "ana" if acknowledged else None,
        "acknowledge_reason": "provider incident" if acknowledged else None,
    }


def live_body(
    window: int,
    *,
    n: int,
    passed: int,
    version: int = 1,
    prompt: str = "bot",
    models: Mapping[str, int] | None = None,
    origin: str = "application",
    number: int = 0,
) -> dict[str, Any]:
    """A live report on the wire: ``n`` calls of one window, ``passed`` of them JSON-valid."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(window))
    body: dict[str, Any] = {
        "id": f"pcr_{number:032x}",
        "type": "prompt_canary.report",
        "source": "test-app",
        "origin": origin,
        "prompt": prompt,
        "rollout_id": f"live:{version}",
        "window_seconds": 60,
        "versions": {"stable": str(version)},
        "stable": {CHECK: {str(window): {"kind": "proportion", "n": n, "successes": passed}}},
        "canary": {},
        "window_start": stamp,
        "window_end": stamp,
        "created_at": stamp,
    }
    if models:
        body["response_models"] = {"stable": {m: {str(window): c} for m, c in models.items()}}
    return body


class Feeder:
    """Feeds a monitor one minute of live traffic at a time, and ticks it once the minute settled."""

    def __init__(
        self, monitor: DriftMonitor, clock: Clock, *, prompt: str = "bot", version: int = 1, seed: int = 1
    ):
        self.monitor = monitor
        self.clock = clock
        self.prompt = prompt
        self.version = version
        self.rng = random.Random(seed)
        size = monitor.config.window_seconds
        self.window = math.ceil(clock.now / size) * size + size
        self.raised: list[DriftAlert] = []

    def minute(
        self, *, pass_rate: float, calls: int = 17, models: Mapping[str, int] | None = None
    ) -> list[DriftAlert]:
        """One window of ``calls`` calls passing at ``pass_rate``; the alerts the tick after it raised."""
        passed = sum(self.rng.random() < pass_rate for _ in range(calls))
        report = Report(
            rollout_id=f"live:{self.version}",
            window_seconds=60,
            stable={CHECK: {self.window: ProportionStats(n=calls, successes=passed)}},
        )
        self.monitor.live.record_live_report(
            report,
            prompt=self.prompt,
            source="test",
            origin="application",
            models=None if models is None else {m: {self.window: c} for m, c in models.items()},
        )
        self.clock.now = self.window + 60 + self.monitor.config.settle_seconds + 1
        self.window += 60
        raised = self.monitor.tick()
        self.raised += raised
        return raised

    def minutes(
        self, count: int, *, pass_rate: float, models: Mapping[str, int] | None = None
    ) -> list[DriftAlert]:
        """``count`` minutes; the alerts they raised."""
        raised = []
        for _ in range(count):
            raised += self.minute(pass_rate=pass_rate, models=models)
        return raised


def drift_metrics_scrape() -> str:
    """What ``GET /v1/drift/metrics`` serves for a prompt with a signal in alarm and its open alert."""
    at = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    signal = SignalDrift(
        attribute=CHECK,
        kind="proportion",
        status=SignalStatus.ALARM,
        reason="dropped",
        harmful=["decrease"],
        epoch=0,
        baseline_from=at,
        baseline=ValueSummary(n=24_000, estimate=0.99),
        baseline_until=at,
        since_baseline=ValueSummary(n=600, estimate=0.94),
        statistic=16.2,
        threshold=FAST.threshold,
    )
    alert = DriftAlert(
        id=1,
        prompt="bot",
        version=1,
        subject_kind="signal",
        subject=CHECK,
        epoch=0,
        detected_at=at,
        window_start=at,
        summary="dropped",
        evidence=None,
        notified_at=None,
        acknowledged_at=None,
        acknowledged_by=None,
        acknowledge_reason=None,
    )
    status = PromptDrift(
        prompt="bot",
        version=1,
        live_since=at,
        judged_until=at,
        pinned=None,
        snapshot_model=None,
        signals=[signal],
        models=[],
        alerts=[alert],
    )
    return render_metrics([status])
