"""The loop: what turns quality signals into rollout decisions.

- :func:`start_rollout` starts a rollout with its policy (the one way a rollout starts);
- :class:`RolloutController` judges every active rollout on the statistics reported for it and
  advances, promotes, pauses or rolls it back (:func:`assess` is one such judgement);
- :class:`SqlLoopStore` keeps what the loop needs besides the registry: reports merged into each
  rollout's windowed statistics (:class:`ReportReceipt`; one :class:`ReportOrigin` counts per
  rollout, :class:`RolloutOrigin`), and the alert log, where every alert (from
  Alertmanager, Grafana, the Collector or the controller) is decided once (:class:`AlertNotice`,
  :class:`AlertRecord`).

The loop needs no HTTP stack: one process (the demo) can run it next to an SQLite registry; the
control plane (:mod:`otel_prompt_canary.service`) exposes it over HTTP.
"""

from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice, AlertOutcome, AlertRecord, AlertStatus
from otel_prompt_canary.loop.assessment import ActiveRollout, Assessment, active_rollouts, assess
from otel_prompt_canary.loop.controller import Decision, RolloutController
from otel_prompt_canary.loop.reports import ReportOrigin, ReportOutcome, ReportReceipt, RolloutOrigin
from otel_prompt_canary.loop.start import RolloutPolicy, resolve_rollout_policy, start_rollout
from otel_prompt_canary.loop.store import LoopStore, SqlLoopStore

__all__ = [
    "ActiveRollout",
    "AlertAction",
    "AlertNotice",
    "AlertOutcome",
    "AlertRecord",
    "AlertStatus",
    "Assessment",
    "Decision",
    "LoopStore",
    "ReportOrigin",
    "ReportOutcome",
    "ReportReceipt",
    "RolloutController",
    "RolloutOrigin",
    "RolloutPolicy",
    "SqlLoopStore",
    "active_rollouts",
    "assess",
    "resolve_rollout_policy",
    "start_rollout",
]
