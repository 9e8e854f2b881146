"""User feedback given after the call: one sample added to its rollout's statistics, exactly once.

A feedback names its call by the call's feedback key (:mod:`otel_prompt_canary.feedback`): prompt,
version, cohort and rollout. :func:`record_feedback` checks it against the registry, then adds the
one sample (:func:`~otel_prompt_canary.feedback.feedback_signal`: a check's outcome or a score's value)
as a report whose id is the feedback's id, in the window of the moment it arrived, so that the
store's de-duplication by report id counts a repeated feedback id once, like a repeated report.

The report has no origin: feedback posted to the control plane is neither path's (the Collector
sees only the applications' telemetry, an application reports only what it counted itself), so it
counts whichever origin the rollout's reports come from (:mod:`otel_prompt_canary.loop.reports`).

Refused, with nothing stored: a rollout the registry does not have, or not of the key's prompt
(:class:`~otel_prompt_canary.errors.NotFoundError`); a rollout that has ended, or whose version in the
key's cohort is not the key's (:class:`~otel_prompt_canary.errors.ConflictError`).
"""

from __future__ import annotations

import hashlib
import time

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report
from otel_prompt_canary.errors import ConflictError
from otel_prompt_canary.feedback import FeedbackKey, FeedbackSignal
from otel_prompt_canary.loop.reports import ReportReceipt
from otel_prompt_canary.loop.store import LoopStore
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.samples import window_start

__all__ = ["FEEDBACK_SOURCE", "FEEDBACK_WINDOW_SECONDS", "feedback_id", "record_feedback"]

#: The source feedback is stored under (a report's ``source``).
FEEDBACK_SOURCE = "feedback"
#: The window size feedback samples are counted in.
FEEDBACK_WINDOW_SECONDS = 1


def feedback_id(key: str, name: str) -> str:
    """The id of a feedback that gives none: one per key and signal name (``pcf_<32 hex>``), so that a
    piece of feedback sent twice, or an answer rated twice on one signal, counts once."""
    return "pcf_" + hashlib.sha256(f"{key}\n{name}".encode()).hexdigest()[:32]


def record_feedback(
    registry: Registry,
    store: LoopStore,
    key: FeedbackKey,
    signal: FeedbackSignal,
    *,
    feedback_id: str,
    at: float | None = None,
) -> ReportReceipt:
    """Add one feedback to its rollout's statistics, once per ``feedback_id`` (see the module)."""
    rollout = registry.get_rollout(key.prompt, key.rollout_id)  # NotFoundError: unknown, or not its
    if not rollout.state.active:
        raise ConflictError(
            f"rollout {rollout.rollout_id} of {key.prompt!r} has ended ({rollout.state.value}): its "
            "statistics take no more feedback"
        )
    version = rollout.candidate_version if key.cohort == "canary" else rollout.baseline_version
    if key.version != version:
        raise ConflictError(
            f"the feedback key names {key.prompt}@{key.version} in the {key.cohort} cohort, but rollout "
            f"{rollout.rollout_id} serves version {version} there"
        )
    value = signal.value
    stats = ProportionStats(n=1, successes=int(value)) if isinstance(value, bool) else MeanStats.of([value])
    when = time.time() if at is None else at
    series = {signal.attribute: {window_start(when, FEEDBACK_WINDOW_SECONDS): stats}}
    report = Report(
        rollout_id=key.rollout_id,
        window_seconds=FEEDBACK_WINDOW_SECONDS,
        stable=series if key.cohort == "stable" else {},
        canary=series if key.cohort == "canary" else {},
    )
    # No origin: it is no duplicate of either path's reports (see the module).
    return store.record_report(report, source=FEEDBACK_SOURCE, prompt=key.prompt, report_id=feedback_id)
