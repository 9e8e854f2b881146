"""What the drift monitor shows: each prompt's watched version, its signals, response models and alerts.

These are the read models of ``prompt-canary drift status`` and ``GET /v1/drift`` (field names are
the API's); :mod:`otel_prompt_canary.loop.drift` makes them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from otel_prompt_canary.loop.live import ResponseModel

__all__ = ["DriftAlert", "PinnedBaseline", "PromptDrift", "SignalDrift", "SignalStatus", "ValueSummary"]


class SignalStatus(StrEnum):
    """Where a signal's monitoring is.

    ``baselining``: its baseline is filling (no verdict yet); ``watching``: each window is judged
    against the baseline; ``alarm``: a change was detected and waits for a person to acknowledge it
    (which re-baselines); ``no_verdict``: its baseline cannot judge (a pinned period with too few
    samples, or a score without spread), ``reason`` says why.
    """

    BASELINING = "baselining"
    WATCHING = "watching"
    ALARM = "alarm"
    NO_VERDICT = "no_verdict"


class _Frozen(BaseModel):
    # Read back by the CLI from control planes of any release: fields it does not know are skipped.
    model_config = ConfigDict(frozen=True)


class ValueSummary(_Frozen):
    """Samples and their value (a proportion of a check, a mean of a score)."""

    n: int = Field(ge=0)
    estimate: float | None


class SignalDrift(_Frozen):
    """One signal of a prompt's live stable version, as the drift monitor sees it."""

    attribute: str = Field(description="The signal attribute, e.g. prompt_canary.check.json_valid")
    kind: Literal["proportion", "mean"]
    status: SignalStatus
    reason: str = Field(description="The status in words, for people")
    harmful: list[Literal["decrease", "increase"]] = Field(description="The directions watched")
    epoch: int = Field(ge=0, description="Baselines this signal had for this version before this one")
    baseline_from: datetime = Field(description="Start of the baseline period")
    baseline: ValueSummary | None = Field(description="The baseline once complete")
    baseline_until: datetime | None = Field(description="End of the baseline period, once complete")
    since_baseline: ValueSummary | None = Field(description="What was judged since the baseline")
    statistic: float | None = Field(description="ln M of the last window judged (the alarm is at threshold)")
    threshold: float


class PinnedBaseline(_Frozen):
    """A baseline period a person chose, instead of the window after the promotion."""

    start: datetime
    end: datetime
    by: str
    reason: str


class DriftAlert(_Frozen):
    """A drift detection: a signal that moved away from its baseline, or an unexpected response model.

    An alert is about the live stable ``version`` of ``prompt``; it changes no routing. It stays
    open until a person acknowledges it, which re-baselines the signal (or accepts the model).
    """

    id: int
    prompt: str
    version: int
    subject_kind: Literal["signal", "model"]
    subject: str = Field(description="The signal attribute, or the response model")
    epoch: int
    detected_at: datetime = Field(description="When the control plane detected it")
    window_start: datetime = Field(
        description="Start of the window whose samples proved it (a model: first seen)"
    )
    summary: str
    evidence: JsonValue
    notified_at: datetime | None = Field(description="When every configured receiver accepted it")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledge_reason: str | None

    @property
    def open(self) -> bool:
        """True until acknowledged."""
        return self.acknowledged_at is None


class PromptDrift(_Frozen):
    """The drift monitoring of one prompt: its live stable version, signals, models and open alerts."""

    prompt: str
    version: int = Field(description="The live stable version watched")
    live_since: datetime = Field(description="When it became the stable version")
    judged_until: datetime | None = Field(description="End of the last window judged")
    pinned: PinnedBaseline | None
    snapshot_model: str | None = Field(description="The model of the version's snapshot")
    signals: list[SignalDrift]
    models: list[ResponseModel]
    alerts: list[DriftAlert] = Field(description="Open alerts (not acknowledged)")
