"""Drift monitoring inside the control plane: the monitor and the delivery of its alerts, run together.

:meth:`DriftMonitoring.of` builds them from the service's settings (None when ``--drift off`` or when
the registry stores no statistics); the application starts them with its lifespan and stops them
with it. A new alert wakes the notifier, so that it is delivered at once rather than at the next tick.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.drift_notifier import DriftNotifier
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["DriftMonitoring"]


@dataclass(frozen=True, slots=True)
class DriftMonitoring:
    """The drift monitor of a control plane and the notifier delivering its alerts."""

    monitor: DriftMonitor
    notifier: DriftNotifier

    @classmethod
    def of(cls, registry: Registry, settings: ServiceSettings) -> DriftMonitoring | None:
        """What ``settings`` asks for, or None when drift monitoring is off or cannot run here."""
        config = settings.drift_config
        if config is None or not isinstance(registry, SqlRegistry):
            return None
        interval = settings.drift_interval_seconds
        monitor = DriftMonitor(registry, config, interval_seconds=interval)
        notifier = DriftNotifier(monitor, settings, interval_seconds=interval)
        monitor.on_alert = lambda _alert: notifier.wake()
        return cls(monitor, notifier)

    def start(self) -> None:
        """Start the monitor, and the notifier when a receiver is configured."""
        self.monitor.start()
        if self.notifier.configured:
            self.notifier.start()

    def stop(self) -> None:
        """Stop both (blocking: call it from a worker thread in async code)."""
        self.notifier.stop()
        self.monitor.stop()
