"""Judging one active rollout now: its policy, when its step started, and the judge's verdict.

:func:`assess` is what the rollout controller decides on and what ``GET .../rollout/verdict``
shows: the rollout's policy (the one stored when it started), the start of its current step (its
newest ``start`` or ``advance``; a pause does not restart a step), the statistics reported for it,
and the :class:`~otel_prompt_canary.analysis.Verdict` of the policy's judge on them.
:func:`active_rollouts` lists every rollout a judge outside the control plane (the Collector
processor) must watch, with the same policy and step start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from otel_prompt_canary.analysis.judge import Judge
from otel_prompt_canary.analysis.policy import DEFAULT_POLICY, Policy, load_policy
from otel_prompt_canary.analysis.verdict import Verdict
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.loop.start import with_steps
from otel_prompt_canary.loop.store import LoopStore
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Action, AuditRecord, Rollout, Route

__all__ = [
    "CONTROLLER",
    "ActiveRollout",
    "Assessment",
    "active_rollouts",
    "assess",
    "policy_of",
    "step_started_at",
]

log = logging.getLogger("otel_prompt_canary.loop")

#: The actor the rollout controller records on its transitions and alerts.
CONTROLLER = "controller"

# How much of a prompt's audit trail one judgement reads (its step start, pauses and resumes);
# older records are read only when the step started before them.
_RECENT_AUDIT = 256


@dataclass(frozen=True, slots=True)
class Assessment:
    """A rollout judged at one moment: its route, policy, step timing and the verdict."""

    route: Route
    rollout: Rollout
    policy: Policy
    step_started_at: datetime
    elapsed_seconds: float
    time_scale: float
    verdict: Verdict
    acknowledged: frozenset[str]

    def evidence(self) -> dict[str, JsonValue]:
        """What a transition records as its evidence: the verdict and how it was reached."""
        return {
            "verdict": self.verdict.model_dump(mode="json"),
            "step_started_at": self.step_started_at.isoformat(),
            "elapsed_seconds": self.elapsed_seconds,
            "time_scale": self.time_scale,
            "acknowledged_rules": list[JsonValue](sorted(self.acknowledged)),
        }


def policy_of(rollout: Rollout) -> Policy:
    """The policy that judges ``rollout``, with its ramp's steps.

    A rollout stored without a policy (started through a store directly) is judged by the default
    policy. Raises :class:`~otel_prompt_canary.errors.InvalidInputError` when the stored policy
    cannot be decided (a rollout started before policies were validated).
    """
    policy = DEFAULT_POLICY if rollout.policy is None else load_policy(rollout.policy)
    return with_steps(policy, tuple(rollout.ramp))


def _step_start(records: Sequence[AuditRecord], route: Route) -> datetime | None:
    for record in reversed(records):
        if record.rollout_id == route.rollout_id and record.action in (Action.START, Action.ADVANCE):
            return record.at
    return None


def step_started_at(
    registry: Registry,
    route: Route,
    recent: Sequence[AuditRecord] | None = None,
    recent_limit: int = _RECENT_AUDIT,
) -> datetime:
    """When the current step of ``route``'s rollout started: its newest ``start`` or ``advance``.

    Pausing and resuming do not restart a step: the canary keeps its weight while paused.
    ``recent`` is the prompt's newest ``recent_limit`` audit records (oldest first) when the caller
    already read them; the whole history is read only if the step's start is not among them.
    """
    env = route.environment
    records = (
        recent if recent is not None else registry.history(route.prompt, limit=recent_limit, environment=env)
    )
    found = _step_start(records, route)
    if found is None and len(records) >= recent_limit:
        found = _step_start(registry.history(route.prompt, environment=env), route)
    return found if found is not None else route.updated_at


def acknowledged_rules(records: Iterable[AuditRecord], route: Route) -> frozenset[str]:
    """Rules whose pause by the controller a person acknowledged by resuming the rollout."""
    paused: set[str] = set()
    acknowledged: set[str] = set()
    for record in records:
        if record.rollout_id != route.rollout_id:
            continue
        if record.action is Action.PAUSE and record.actor == CONTROLLER and isinstance(record.evidence, dict):
            verdict = record.evidence.get("verdict")
            breached = verdict.get("breached") if isinstance(verdict, dict) else None
            if isinstance(breached, list):
                paused.update(str(rule) for rule in breached)
        elif record.action is Action.RESUME:
            acknowledged |= paused
            paused = set()
    return frozenset(acknowledged)


def assess(
    registry: Registry, store: LoopStore, route: Route, *, time_scale: float = 1.0, now: float | None = None
) -> Assessment:
    """Judge the active rollout of ``route`` now, on everything reported for it.

    Raises :class:`~otel_prompt_canary.errors.NotFoundError` when ``route`` has no active rollout
    and :class:`~otel_prompt_canary.errors.InvalidInputError` when its policy cannot be applied (a
    stored policy that cannot be decided, or statistics of the wrong kind for a signal).
    """
    if route.rollout_id is None or not route.state.active:
        raise NotFoundError(f"prompt {route.prompt!r} has no active rollout")
    rollout = registry.get_rollout(route.prompt, route.rollout_id, environment=route.environment)
    policy = policy_of(rollout)
    # One read of the recent audit trail serves both the step's start and the acknowledged rules.
    recent = registry.history(route.prompt, limit=_RECENT_AUDIT, environment=route.environment)
    started = step_started_at(registry, route, recent, _RECENT_AUDIT)
    current = time.time() if now is None else now
    since = started.timestamp()
    # Summed by the store, in one read: the cost of a judgement does not grow with the rollout's age.
    evidence, in_step = store.rollout_evidence(route.rollout_id, since=since)
    elapsed = max(0.0, current - since) * time_scale
    verdict = Judge(policy).evaluate(
        evidence, step=route.step, elapsed_seconds=elapsed, step_evidence=in_step
    )
    return Assessment(
        route=route,
        rollout=rollout,
        policy=policy,
        step_started_at=started,
        elapsed_seconds=elapsed,
        time_scale=time_scale,
        verdict=verdict,
        acknowledged=acknowledged_rules(recent, route),
    )


@dataclass(frozen=True, slots=True)
class ActiveRollout:
    """An active rollout and what a judge needs to watch it."""

    route: Route
    rollout: Rollout
    policy: Policy
    step_started_at: datetime


def active_rollouts(
    registry: Registry, environments: Sequence[str] = (DEFAULT_ENVIRONMENT,)
) -> list[ActiveRollout]:
    """Every active rollout of ``environments`` with its policy, by environment (in the order
    given) and prompt name.

    A rollout whose stored policy cannot be decided (one started before policies were validated)
    is left out, with a warning in the log: no judge can apply it.
    """
    found: list[ActiveRollout] = []
    routes = [
        route for environment in environments for route in registry.list_routes(environment=environment)
    ]
    for route in routes:
        if not route.state.active or route.rollout_id is None or route.canary_version is None:
            continue
        try:
            rollout = registry.get_rollout(route.prompt, route.rollout_id, environment=route.environment)
            policy = policy_of(rollout)
        except NotFoundError:
            continue  # finished and replaced between the two reads
        except InvalidInputError as exc:
            log.warning(
                "rollout %s of %r has a policy no judge can apply: %s", route.rollout_id, route.prompt, exc
            )
            continue
        found.append(ActiveRollout(route, rollout, policy, step_started_at(registry, route)))
    return found
