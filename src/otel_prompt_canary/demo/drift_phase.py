"""``prompt-canary demo --drift``: after a clean promotion, the provider changes its model, and drift
monitoring catches it.

Once the candidate is promoted, every call is served the new stable version with no rollout: the
application's in-app reports carry them to the control plane as live reports, and its drift monitor
fills the version's baseline (:data:`DEMO_DRIFT`: one-second windows and a 15 s baseline, in real
time, so that the demo lasts a minute or so). When every signal is watched, :class:`DriftPhase` lets
the provider change the model behind the same name (:meth:`CanaryDemoModel.update_model
<otel_prompt_canary.demo.demo_model.CanaryDemoModel.update_model>`: longer answers, 6% of them no
longer valid JSON) and waits for the monitor's alert, which the report shows with when and on which
signal it was caught. :class:`RecentSignals` keeps the last seconds of live calls for the live view
and the charts.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from otel_prompt_canary.demo.demo_model import CanaryDemoModel
from otel_prompt_canary.demo.report import CohortPoint, DemoRecord, DriftEvent
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import PromptDrift, SignalStatus

__all__ = ["DEMO_DRIFT", "DriftPhase", "RecentSignals"]

#: The drift monitor's settings in the demo: one-second windows judged 3 s after they end, a baseline
#: of 15 s and 800 samples; the false-alarm rate is the default's (alpha 0.01 per 30 days).
DEMO_DRIFT = "window=1s,baseline=15s,baseline_samples=800,settle=3s"


class RecentSignals:
    """The last ``seconds`` of live samples per signal attribute: a moving value for the live view."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def add(self, attribute: str, value: float, at: float | None = None) -> None:
        """One sample of ``attribute``."""
        with self._lock:
            self._samples.setdefault(attribute, deque()).append(
                (time.monotonic() if at is None else at, value)
            )

    def points(self, now: float | None = None) -> dict[str, CohortPoint]:
        """Each attribute's samples of the last ``seconds`` and their mean."""
        cutoff = (time.monotonic() if now is None else now) - self.seconds
        out = {}
        with self._lock:
            for attribute, samples in self._samples.items():
                while samples and samples[0][0] < cutoff:
                    samples.popleft()
                n = len(samples)
                out[attribute] = CohortPoint(n, sum(v for _, v in samples) / n if n else None)
        return out


@dataclass
class DriftPhase:
    """Drives the demo after the promotion; :meth:`step` once per live-view tick until :attr:`done`."""

    monitor: DriftMonitor
    model: CanaryDemoModel
    record: DemoRecord
    prompt: str
    version: int
    #: Seconds every signal is watched before the provider changes its model.
    calm_seconds: float = 4.0
    #: Seconds the demo goes on after the first alert on a signal (more signals may be caught).
    linger_seconds: float = 3.0
    status: PromptDrift | None = None
    changed_at: float | None = None
    caught_at: float | None = None
    _watching_since: float | None = None
    _now: float = 0.0
    _seen: set[int] = field(default_factory=set)

    @property
    def done(self) -> bool:
        """True once an alert on a signal was seen and the demo lingered after it."""
        return self.caught_at is not None and self._now >= self.caught_at + self.linger_seconds

    def step(self, now: float) -> None:
        """Read the monitor at ``now`` (seconds since the demo's traffic started); change the model
        once every signal has been watched for ``calm_seconds``; record what happens."""
        self._now = now
        status = self.monitor.prompt_status(self.prompt)
        if status.version != self.version:
            return
        self.status = status
        watched = [s for s in status.signals if s.status is not SignalStatus.BASELINING]
        if self._watching_since is None and status.signals and len(watched) == len(status.signals):
            self._watching_since = now
            baselines = ", ".join(
                f"{self.record.label(s.attribute)} {_value(s.kind, s.baseline.estimate)} (n={s.baseline.n})"
                for s in status.signals
                if s.baseline is not None and s.attribute in self.record.signal_labels
            )
            self.record.drift.append(
                DriftEvent(now, "baseline", f"v{self.version}'s baselines are complete: {baselines}")
            )
        if (
            self.changed_at is None
            and self._watching_since is not None
            and now - self._watching_since >= self.calm_seconds
        ):
            self.model.update_model()
            self.changed_at = now
            self.record.drift.append(
                DriftEvent(
                    now,
                    "change",
                    "the provider changes the model behind the same name: longer answers, 6% not valid JSON",
                )
            )
        for alert in self.monitor.list_alerts(self.prompt):
            if alert.id in self._seen or alert.version != self.version:
                continue
            self._seen.add(alert.id)
            when = "" if self.changed_at is None else f" {now - self.changed_at:.1f} s after the change"
            self.record.drift.append(
                DriftEvent(
                    now,
                    "alert",
                    f"caught{when} on {self.record.label(alert.subject)}: {alert.summary}",
                    alert.subject,
                )
            )
            if alert.subject_kind == "signal" and self.caught_at is None:
                self.caught_at = now

    def view_lines(self) -> list[str]:
        """What the live view shows of drift monitoring."""
        if self.status is None:
            return ["        drift: waiting for the promoted version's live reports"]
        lines = []
        for signal in self.status.signals:
            if signal.attribute not in self.record.signal_labels:
                continue
            baseline = "-" if signal.baseline is None else _value(signal.kind, signal.baseline.estimate)
            statistic = (
                ""
                if signal.statistic is None
                else f"  ln M {signal.statistic:5.1f} of {signal.threshold:.1f}"
            )
            lines.append(
                f"        drift {self.record.label(signal.attribute):<24} {signal.status.value:<10} "
                f"baseline {baseline}{statistic}"
            )
        return lines or ["        drift: no signal reported yet"]


def _value(kind: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if kind == "proportion" else f"{value:.1f}"
