"""Rows of the registry's tables as its models, and back: one place that knows both shapes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from otel_prompt_canary.registry.database import aware
from otel_prompt_canary.registry.models import Action, AuditRecord, Rollout, RolloutState, Route

__all__ = ["audit_record", "rollout", "route", "route_values"]


def route(row: RowMapping) -> Route:
    """The routing flag a ``routes`` row holds."""
    return Route(
        prompt=row["prompt"],
        environment=row["environment"],
        stable_version=row["stable_version"],
        canary_version=row["canary_version"],
        canary_weight_bp=row["canary_weight_bp"],
        rollout_id=row["rollout_id"],
        state=RolloutState(row["state"]),
        step=row["step"],
        revision=row["revision"],
        ramp=tuple(row["ramp"] or ()),
        updated_at=aware(row["updated_at"]),
    )


def route_values(route: Route) -> dict[str, Any]:
    """The ``routes`` columns of a routing flag (all but its environment and prompt, its key)."""
    return {
        "stable_version": route.stable_version,
        "canary_version": route.canary_version,
        "canary_weight_bp": route.canary_weight_bp,
        "rollout_id": route.rollout_id,
        "state": route.state.value,
        "step": route.step,
        "revision": route.revision,
        "ramp": list(route.ramp),
        "updated_at": route.updated_at,
    }


def rollout(row: RowMapping) -> Rollout:
    """The rollout a ``rollouts`` row holds."""
    return Rollout(
        rollout_id=row["rollout_id"],
        prompt=row["prompt"],
        candidate_version=row["candidate_version"],
        baseline_version=row["baseline_version"],
        ramp=tuple(row["ramp"]),
        state=RolloutState(row["state"]),
        step=row["step"],
        started_at=aware(row["started_at"]),
        ended_at=aware(row["ended_at"]),
        started_by=row["started_by"],
        policy=row["policy"],
        environment=row["environment"],
    )


def audit_record(row: RowMapping) -> AuditRecord:
    """The audit record an ``audit`` row holds."""
    return AuditRecord(
        id=row["id"],
        prompt=row["prompt"],
        rollout_id=row["rollout_id"],
        action=Action(row["action"]),
        actor=row["actor"],
        reason=row["reason"],
        evidence=row["evidence"],
        from_state=None if row["from_state"] is None else RolloutState(row["from_state"]),
        to_state=RolloutState(row["to_state"]),
        from_revision=row["from_revision"],
        to_revision=row["to_revision"],
        stable_version=row["stable_version"],
        canary_version=row["canary_version"],
        canary_weight_bp=row["canary_weight_bp"],
        at=aware(row["at"]),
        environment=row["environment"],
        principal=row["principal"],
    )
