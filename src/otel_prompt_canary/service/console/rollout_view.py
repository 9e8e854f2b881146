"""What the rollout page shows of one rollout: its flag, ramp, verdict and what the step waits for,
its transitions, and its charts (weight over time, each signal canary vs stable with the limits of
the rules on it), read once for the page and again for each refresh of its live part."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from otel_prompt_canary.analysis.policy import Direction, Policy, RuleType
from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.loop.assessment import Assessment, assess, policy_of
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Rollout, RolloutState, Route, validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.console.charts import RuleLimit, signal_chart, weight_chart
from otel_prompt_canary.service.console.context import Service
from otel_prompt_canary.service.console.series import signal_series, weight_steps
from otel_prompt_canary.service.console.visitors import Visitor
from otel_prompt_canary.service.principals import Role

__all__ = ["CHART_POINTS", "actions_for", "rollout_in", "rollout_view", "rule_limits"]

#: Buckets per signal chart: about one per 5 pixels of the chart's width.
CHART_POINTS = 120
#: How much of the prompt's audit trail the page reads for the rollout's transitions.
_AUDIT_READ = 500


def actions_for(route: Route, rollout: Rollout) -> list[str]:
    """The actions a person may take on ``rollout`` now (it must be the route's current one)."""
    if route.rollout_id != rollout.rollout_id:
        return []
    if route.state is RolloutState.RAMPING:
        # At the last step the canary has all the traffic: what is left is to promote it.
        last = route.step >= len(rollout.ramp) - 1
        return ["promote" if last else "advance", "pause", "rollback"]
    if route.state is RolloutState.PAUSED:
        return ["resume", "rollback"]
    if route.state is RolloutState.PROMOTED:
        return ["revert"]
    return []


def rollout_in(registry: Registry, name: str, rollout_id: str | None, environment: str) -> Rollout:
    """The rollout ``rollout_id`` of ``name`` (its current or last one when None), which must be one
    of ``environment``: a rollout of another environment is not found (404), as the API answers,
    and the message does not say it exists elsewhere (the visitor may not read there)."""
    rollout = registry.get_rollout(name, rollout_id, environment=environment)
    if rollout.environment != environment:
        raise NotFoundError(f"prompt {name!r} has no rollout {rollout_id!r} in environment {environment}")
    return rollout


def rule_limits(policy: Policy) -> dict[str, list[RuleLimit]]:
    """The limits the policy's rules draw on each signal attribute.

    An absolute rule draws its threshold; a relative rule with a margin draws stable minus the
    margin (a decrease harms) or plus it; a ratio rule, on rates of bad outcomes, draws none.
    """
    attributes = {signal.name: signal for signal in policy.signals}
    found: dict[str, list[RuleLimit]] = {}
    for rule in policy.rules:
        signal = attributes.get(rule.signal)
        if signal is None:
            continue
        if rule.type is RuleType.ABSOLUTE and rule.threshold is not None:
            limit = RuleLimit(rule_id=rule.id, threshold=rule.threshold)
        elif rule.type is RuleType.RELATIVE and rule.margin is not None and rule.ratio is None:
            sign = -1.0 if signal.harmful is Direction.DECREASE else 1.0
            limit = RuleLimit(rule_id=rule.id, offset=sign * rule.margin)
        else:
            continue
        found.setdefault(signal.attribute, []).append(limit)
    return found


def rollout_view(
    service: Service, visitor: Visitor, name: str, environment: str, rollout_id: str | None
) -> dict[str, Any]:
    """The template values of the rollout page of ``name`` in ``environment`` (its current or last
    rollout, or ``rollout_id``)."""
    registry = service.registry
    validate_prompt_name(name)
    route = registry.get_route(name, environment=environment)
    rollout: Rollout | None
    try:
        rollout = rollout_in(registry, name, rollout_id, environment)
    except NotFoundError:
        if rollout_id is not None:
            raise
        rollout = None
    view: dict[str, Any] = {"name": name, "route": route, "rollout": rollout}
    if rollout is None:
        return view
    current = route.rollout_id == rollout.rollout_id
    records = registry.history(name, limit=_AUDIT_READ, environment=environment)
    transitions = [r for r in records if r.rollout_id == rollout.rollout_id]
    assessment: Assessment | None = None
    problem: str | None = None
    if current and route.state.active and service.store is not None:
        try:
            assessment = assess(registry, service.store, route, time_scale=service.settings.time_scale)
        except (InvalidInputError, NotFoundError) as exc:
            problem = f"The judge cannot assess this rollout now: {exc}"
    try:
        policy: Policy | None = assessment.policy if assessment is not None else policy_of(rollout)
    except InvalidInputError:
        policy = None
    limits = rule_limits(policy) if policy is not None else {}
    series = (
        signal_series(registry, rollout.rollout_id, points=CHART_POINTS)
        if isinstance(registry, SqlRegistry)
        else []
    )
    end = rollout.ended_at or datetime.now(UTC)
    may_operate = visitor.may(Role.OPERATE, environment)
    view.update(
        current=current,
        assessment=assessment,
        verdict_problem=problem,
        transitions=list(reversed(transitions)),
        weight_svg=weight_chart(weight_steps(transitions, rollout.rollout_id), end),
        signal_charts=[(s.attribute, signal_chart(s, limits.get(s.attribute, ()))) for s in series],
        bucket_seconds=series[0].bucket_seconds if series else None,
        actions=actions_for(route, rollout) if may_operate else [],
    )
    return view
