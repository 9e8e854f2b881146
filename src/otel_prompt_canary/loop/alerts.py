"""Alerts that ask to stop a rollout, and the decision recorded for each: a pure function and its data.

Whatever sends it (Alertmanager, Grafana, the Collector processor, the rollout controller), an alert
reaches the store as an :class:`AlertNotice`: which prompt, which action (``rollback``, ``pause`` or
``alert``), firing or resolved, optionally which rollout, and a de-duplication ``key``. The store
decides it in one transaction and records an :class:`AlertRecord` in the alert log, whatever the
outcome:

- ``applied``: the action was carried out on the rollout (the audit log has the transition, with
  the alert as evidence, and ``audit_id`` points to it);
- ``duplicate``: an alert with the same key was decided before; nothing changes (an alert that
  names no time, such as an Alertmanager alert without ``startsAt``, is a duplicate only within
  its ``dedup_window_seconds``: after it, the same alert is decided again);
- ``ignored``: the alert names a finished or unknown rollout, a rollout that started after the
  alert fired, or asks for what is already so (``pause`` on a paused rollout); or its sender's
  credential may not act in the alert's environment (:func:`out_of_scope`: the sender's ``alert``
  role is limited to other environments);
- ``recorded``: a resolved alert, or an ``alert`` action: recorded, never a transition.

An alert can only stop a rollout (roll it back or pause it): it never starts, resumes, advances or
promotes one, and a resolved alert never re-enables a rolled-back canary.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from otel_prompt_canary.registry.bounds import storable_problem
from otel_prompt_canary.registry.models import (
    Action,
    Rollout,
    RolloutState,
    Route,
    validate_environment_name,
    validate_prompt_name,
)

__all__ = [
    "AlertAction",
    "AlertNotice",
    "AlertOutcome",
    "AlertRecord",
    "AlertStatus",
    "decide",
    "out_of_scope",
]


class AlertAction(StrEnum):
    """What an alert asks for: roll the rollout back, pause it, or only record the alert."""

    ROLLBACK = "rollback"
    PAUSE = "pause"
    ALERT = "alert"

    @property
    def transition(self) -> Action | None:
        """The rollout transition this action asks for (None for ``alert``)."""
        return {"rollback": Action.ROLLBACK, "pause": Action.PAUSE}.get(self.value)


class AlertStatus(StrEnum):
    """``firing``: the condition holds; ``resolved``: it no longer does."""

    FIRING = "firing"
    RESOLVED = "resolved"


class AlertOutcome(StrEnum):
    """What became of one alert (see the module docstring)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    RECORDED = "recorded"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertNotice(_Frozen):
    """One alert, as the store decides it."""

    source: str = Field(
        min_length=1, max_length=32, description="alertmanager, grafana, collector or controller"
    )
    key: str = Field(
        min_length=1,
        max_length=256,
        description="De-duplication key: one decision per key, until the key is pruned or its window ends",
    )
    prompt: str
    action: AlertAction
    status: AlertStatus = AlertStatus.FIRING
    rollout_id: str | None = Field(
        None, min_length=1, max_length=256, description="The rollout the alert is about; else the current"
    )
    environment: str | None = Field(
        None,
        description="The environment of the prompt's flag the alert is about, when it names no rollout "
        "(a rollout it names says its own environment); null: the default environment",
    )
    fired_at: datetime | None = Field(
        None, description="When the alert started firing; older than the rollout means not about it"
    )
    actor: str = Field(min_length=1, max_length=256, description="Recorded as the transition's actor")
    reason: str = Field(min_length=1, max_length=2000, description="Recorded as the transition's reason")
    alert: JsonValue = Field(None, description="The alert as received: the evidence of the decision")
    principal: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="Who sent it (the principal of its credential): recorded in the audit record of "
        "what it applies; null: the loop itself (the rollout controller)",
    )
    principal_environments: frozenset[str] | None = Field(
        None,
        description="The environments the sender's alert role is limited to; an alert about another "
        "environment is ignored. Null: every environment",
    )
    dedup_window_seconds: int | None = Field(
        None,
        ge=1,
        le=100 * 365 * 86_400,  # a retention's longest duration
        description="For a key that names no time (an alert without a start): how long it de-duplicates; "
        "null: as long as the key is kept",
    )

    @field_validator("prompt")
    @classmethod
    def _valid_prompt(cls, value: str) -> str:
        try:
            return validate_prompt_name(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("environment")
    @classmethod
    def _valid_environment(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_environment_name(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _storable(self) -> AlertNotice:
        # Refused here, before any alert of a request is decided, rather than by the store.
        texts = {"source": self.source, "key": self.key, "actor": self.actor, "reason": self.reason}
        problem = storable_problem(
            {**texts, "rollout_id": self.rollout_id, "principal": self.principal, "alert": self.alert}
        )
        if problem is not None:
            raise ValueError(problem)
        return self


class AlertRecord(_Frozen):
    """One line of the alert log: an alert and what became of it."""

    id: int
    received_at: datetime
    source: str
    key: str
    prompt: str
    rollout_id: str | None = Field(description="The rollout the alert was bound to, if any")
    action: AlertAction
    status: AlertStatus
    outcome: AlertOutcome
    summary: str = Field(description="What the alert says, for people")
    reason: str = Field(description="Why this outcome, for people")
    audit_id: int | None = Field(description="The audit record of the applied transition")
    alert: JsonValue = Field(
        description="The alert as received; null for a duplicate (the first record of its key has it), "
        "its size and digest when over the log's limit"
    )


def out_of_scope(notice: AlertNotice, environment: str) -> str | None:
    """Why ``notice``'s sender may not act on an alert about ``environment`` (the environment of
    the rollout it names, else its label, else the default one), or None when it may."""
    allowed = notice.principal_environments
    if allowed is None or environment in allowed:
        return None
    return (
        f"principal {notice.principal or 'unknown'!r} may not act on alerts in environment "
        f"{environment!r}: its alert role is limited to {', '.join(sorted(allowed)) or 'no environment'}; "
        "nothing changes"
    )


def decide(
    notice: AlertNotice, route: Route, rollout: Rollout | None
) -> tuple[AlertOutcome, str, Action | None]:
    """The outcome of ``notice`` on the prompt's ``route``, and the transition to apply if any.

    ``rollout`` is the rollout the notice is bound to: the one it names, else the route's current
    one; None when that rollout does not exist (for this prompt).
    """
    if notice.status is AlertStatus.RESOLVED:
        return AlertOutcome.RECORDED, "resolved: recorded; a resolved alert never changes routing", None
    action = notice.action.transition
    if action is None:
        return AlertOutcome.RECORDED, "action 'alert': recorded; it changes no routing", None
    bound = notice.rollout_id or route.rollout_id
    if bound is None:
        return AlertOutcome.IGNORED, f"prompt {route.prompt!r} has no rollout to {notice.action}", None
    if rollout is None:
        return AlertOutcome.IGNORED, f"unknown rollout {bound!r} of prompt {route.prompt!r}", None
    if bound != route.rollout_id:
        return (
            AlertOutcome.IGNORED,
            f"rollout {bound} has finished ({rollout.state}); the current rollout of "
            f"{route.prompt!r} is {route.rollout_id} ({route.state})",
            None,
        )
    if not route.state.active:
        return (
            AlertOutcome.IGNORED,
            f"rollout {bound} has finished ({route.state}): nothing to {action}",
            None,
        )
    if notice.rollout_id is None and notice.fired_at is not None and notice.fired_at < rollout.started_at:
        return (
            AlertOutcome.IGNORED,
            f"the alert fired at {notice.fired_at.isoformat()}, before rollout {bound} started at "
            f"{rollout.started_at.isoformat()}: it is about an earlier rollout",
            None,
        )
    if action is Action.PAUSE and route.state is RolloutState.PAUSED:
        return AlertOutcome.IGNORED, f"rollout {bound} is already paused", None
    return AlertOutcome.APPLIED, notice.reason, action
