"""The policy of a rollout: validated when the rollout starts, stored with it, read back to judge it.

A rollout is judged by one policy (:mod:`otel_prompt_canary.analysis.policy`). When a rollout
starts, :func:`resolve_rollout_policy` turns what the caller gave into the policy that applies:

- no policy: :data:`~otel_prompt_canary.analysis.DEFAULT_POLICY`;
- a policy that cannot be decided is refused (:class:`~otel_prompt_canary.errors.InvalidInputError`,
  HTTP 422, CLI exit 2), so that no rollout discovers a broken policy while it runs.

The ramp and the policy's ``ramp.steps`` must agree, since the judge's step index is an index into
both. The rule:

- the policy gives ``ramp.steps`` and no ramp is given: the policy's steps are the ramp;
- a ramp is given and the policy leaves ``ramp.steps`` out (or there is no policy): the ramp fills
  the policy's steps;
- both are given: they must be equal, else the start is refused;
- neither: the default ramp, 1, 5, 20, 50, 100.

The policy is stored on the rollout in full (defaults filled in, null fields left out), so the audit
record of the start says exactly what applied. No module here imports the HTTP stack: the CLI uses
:func:`start_rollout_with_policy` on a local store as the service does behind its API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from otel_prompt_canary.analysis.policy import DEFAULT_POLICY, Policy, load_policy
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Action, AuditRecord, Rollout, Route, parse_ramp

__all__ = [
    "RolloutPolicy",
    "policy_document",
    "policy_of",
    "resolve_rollout_policy",
    "start_rollout_with_policy",
    "step_started_at",
]

# The audit records read to find when the current step started; older ones are read only if needed.
_RECENT_RECORDS = 64


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """The policy that applies to a rollout, and the ramp it walks (equal to ``policy.ramp.steps``)."""

    policy: Policy
    ramp: tuple[float, ...]

    @property
    def document(self) -> dict[str, JsonValue]:
        """The policy as stored on the rollout: every field explicit, null fields left out."""
        return policy_document(self.policy)


def policy_document(policy: Policy) -> dict[str, JsonValue]:
    """``policy`` as a JSON object: every field explicit, null fields left out."""
    document: dict[str, JsonValue] = policy.model_dump(mode="json", exclude_none=True)
    return document


def _with_steps(policy: Policy, steps: tuple[float, ...]) -> Policy:
    if policy.ramp.steps == steps:
        return policy
    data = policy.model_dump(mode="json", exclude_none=True)
    data["ramp"]["steps"] = list(steps)
    return load_policy(data)


def _gives_steps(policy: Mapping[str, Any]) -> bool:
    ramp = policy.get("ramp")
    return isinstance(ramp, Mapping) and "steps" in ramp


def _steps_text(steps: Sequence[float]) -> str:
    return ",".join(f"{s:g}" for s in steps)


def resolve_rollout_policy(
    policy: Mapping[str, Any] | None,
    ramp: str | Sequence[float] | None = None,
) -> RolloutPolicy:
    """The policy and ramp a rollout starts with (see the module docstring for the rules).

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for an invalid ramp, a policy that
    cannot be decided, or a ramp that disagrees with the policy's ``ramp.steps``.
    """
    steps = None if ramp is None else parse_ramp(list(ramp) if not isinstance(ramp, str) else ramp)
    if policy is None:
        base, explicit = DEFAULT_POLICY, False
    else:
        if not isinstance(policy, Mapping):
            raise InvalidInputError("invalid policy: a policy is a JSON object with 'signals' and 'rules'")
        base, explicit = load_policy(policy), _gives_steps(policy)
    if explicit:
        if steps is not None and steps != base.ramp.steps:
            raise InvalidInputError(
                f"the ramp {_steps_text(steps)} disagrees with the policy's ramp.steps "
                f"{_steps_text(base.ramp.steps)}: give the ramp in one place, or the same steps in both"
            )
        steps = base.ramp.steps
    elif steps is None:
        steps = base.ramp.steps
    return RolloutPolicy(policy=_with_steps(base, steps), ramp=steps)


def start_rollout_with_policy(
    registry: Registry,
    name: str,
    version: int,
    *,
    policy: Mapping[str, Any] | None = None,
    ramp: str | Sequence[float] | None = None,
    actor: str,
    reason: str = "",
    expected_revision: int | None = None,
) -> Route:
    """Start a rollout with its policy resolved and validated first; nothing is written if invalid."""
    resolved = resolve_rollout_policy(policy, ramp)
    return registry.start_rollout(
        name,
        version,
        ramp=resolved.ramp,
        actor=actor,
        reason=reason,
        policy=resolved.document,
        expected_revision=expected_revision,
    )


def policy_of(rollout: Rollout) -> Policy:
    """The policy that judges ``rollout``, with its ramp's steps.

    A rollout stored without a policy (started through a store directly) is judged by the default
    policy. Raises :class:`~otel_prompt_canary.errors.InvalidInputError` when the stored policy
    cannot be decided (a rollout started before policies were validated).
    """
    policy = DEFAULT_POLICY if rollout.policy is None else load_policy(rollout.policy)
    return _with_steps(policy, tuple(rollout.ramp))


def _step_start(records: Sequence[AuditRecord], route: Route) -> datetime | None:
    for record in reversed(records):
        if record.rollout_id == route.rollout_id and record.action in (Action.START, Action.ADVANCE):
            return record.at
    return None


def step_started_at(
    registry: Registry,
    route: Route,
    recent: Sequence[AuditRecord] | None = None,
    recent_limit: int = _RECENT_RECORDS,
) -> datetime:
    """When the current step of ``route``'s rollout started: its newest ``start`` or ``advance``.

    Pausing and resuming do not restart a step: the canary keeps its weight while paused.
    ``recent`` is the prompt's newest ``recent_limit`` audit records (oldest first) when the caller
    already read them; the whole history is read only if the step's start is not among them.
    """
    records = recent if recent is not None else registry.history(route.prompt, limit=recent_limit)
    found = _step_start(records, route)
    if found is None and len(records) >= recent_limit:
        found = _step_start(registry.history(route.prompt), route)
    return found if found is not None else route.updated_at
