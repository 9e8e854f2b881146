"""What ``POST /v1/reports`` hands to drift monitoring: live reports, and rollouts' response models.

A report whose rollout id is ``live:<version>`` (:mod:`otel_prompt_canary.loop.live`) carries the calls
a prompt's stable version served with no rollout: it is stored for the drift monitor, not for a
rollout. Any report may carry ``response_models``; those of a live report are stored with it, those
of a rollout's stable cohort are counted for the rollout's stable version once the report is merged
(stored at the monitor's next tick, so that the report waits for no second write).
On a control plane whose drift monitoring is off, a live report is acknowledged as ``ignored``.
"""

from __future__ import annotations

from otel_prompt_canary.analysis.stats import Report
from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.reports import ReportOutcome, ReportReceipt
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.payloads import ReportEnvelope

__all__ = ["record_live_report", "record_rollout_models"]


def record_live_report(
    monitor: DriftMonitor | None, envelope: ReportEnvelope, report: Report, prompt: str
) -> ReportReceipt:
    """Store a live report for the drift monitor (``ignored`` when drift monitoring is off)."""
    if monitor is None:
        return ReportReceipt(
            report_id=envelope.id,
            rollout_id=envelope.rollout_id,
            outcome=ReportOutcome.IGNORED,
            reason="not counted: drift monitoring is off on this control plane (serve --drift off)",
        )
    models = None if envelope.response_models is None else envelope.response_models.of("stable")
    receipt = monitor.live.record_live_report(
        report,
        prompt=prompt,
        source=envelope.source,
        report_id=envelope.id,
        origin=envelope.origin,
        models=models,
    )
    if models:
        monitor.wake()  # the model watch answers at the first report naming a model
    return receipt


def record_rollout_models(
    monitor: DriftMonitor | None, registry: Registry, envelope: ReportEnvelope, receipt: ReportReceipt
) -> None:
    """Count the response models of a merged rollout report's stable cohort for its stable version."""
    if monitor is None or envelope.response_models is None or receipt.outcome is not ReportOutcome.MERGED:
        return
    models = envelope.response_models.of("stable")
    if not models:
        return
    try:
        rollout = registry.get_rollout(envelope.prompt, envelope.rollout_id)
    except NotFoundError:
        return
    if rollout.environment != DEFAULT_ENVIRONMENT:
        return  # drift monitoring watches the default environment only (docs/environments.md)
    monitor.count_models(envelope.prompt, rollout.baseline_version, models)
