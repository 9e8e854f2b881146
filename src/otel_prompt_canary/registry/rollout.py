"""The rollout state machine: pure functions from one routing flag to the next.

::

    idle | promoted | rolled_back --start--> ramping(step 0)
    ramping(i) --advance--> ramping(i+1)          (not past the last step: promote instead)
    ramping <--pause/resume--> paused              (paused holds the current weight)
    ramping | paused --promote--> promoted         (the candidate becomes stable, weight 0)
    ramping | paused --rollback--> rolled_back     (weight 0, the candidate is never routed again)
    promoted --revert--> rolled_back               (everyone back on the promoted rollout's baseline,
                                                    or on another version named by the caller)

``revert`` undoes a promotion: the stable version becomes the version the promoted rollout started
from (its baseline), or a version the caller names, and the flag says ``rolled_back`` with the
promoted rollout's id, exactly as if that rollout had been rolled back before its promotion. So a
router that saw the promotion and then sees the revert remembers the rollout as rolled back, routes
everyone to the new stable version, and treats any later read that shows the rollout ``ramping``,
``paused`` or ``promoted`` as stale (see :mod:`otel_prompt_canary.routing.cache`). A revert is
refused from every other state: an active rollout is undone by ``rollback``, and from ``idle`` or
``rolled_back`` there is no promotion to undo (a new rollout changes the stable version).

Every transition bumps ``revision`` by one. Stores apply the result with compare-and-set on the
revision they read, so two concurrent writers can never both apply blindly.
"""

from __future__ import annotations

from datetime import datetime

from otel_prompt_canary.errors import IllegalTransitionError, InvalidInputError
from otel_prompt_canary.registry.models import Action, RolloutState, Route, percent_to_bp

__all__ = ["ALLOWED", "apply", "check_allowed", "start"]

#: The states each action may leave from.
ALLOWED: dict[Action, frozenset[RolloutState]] = {
    Action.START: frozenset({RolloutState.IDLE, RolloutState.PROMOTED, RolloutState.ROLLED_BACK}),
    Action.ADVANCE: frozenset({RolloutState.RAMPING}),
    Action.PAUSE: frozenset({RolloutState.RAMPING}),
    Action.RESUME: frozenset({RolloutState.PAUSED}),
    Action.PROMOTE: frozenset({RolloutState.RAMPING, RolloutState.PAUSED}),
    Action.ROLLBACK: frozenset({RolloutState.RAMPING, RolloutState.PAUSED}),
    Action.REVERT: frozenset({RolloutState.PROMOTED}),
}

# Why a revert is refused, by state: what to do instead.
_REVERT_HINTS: dict[RolloutState, str] = {
    RolloutState.RAMPING: "an active rollout is undone with rollback",
    RolloutState.PAUSED: "an active rollout is undone with rollback",
    RolloutState.IDLE: "no rollout was ever promoted",
    RolloutState.ROLLED_BACK: "there is no promotion to undo; start a rollout to change the stable version",
}


def check_allowed(route: Route, action: Action) -> None:
    """Raise :class:`IllegalTransitionError` unless ``action`` may leave the state of ``route``."""
    if route.state in ALLOWED[action]:
        return
    allowed = ", ".join(sorted(ALLOWED[action]))
    hint = _REVERT_HINTS.get(route.state) if action is Action.REVERT else None
    raise IllegalTransitionError(
        f"cannot {action} prompt {route.prompt!r}: its rollout is {route.state} "
        f"(revision {route.revision}); {action} is allowed from: {allowed}" + (f" ({hint})" if hint else "")
    )


def start(route: Route, *, candidate: int, ramp: tuple[float, ...], rollout_id: str, now: datetime) -> Route:
    """Start a rollout of ``candidate`` on ``route``; ``ramp`` must already be validated."""
    if route.state not in ALLOWED[Action.START]:
        raise IllegalTransitionError(
            f"cannot start a rollout of {route.prompt!r}: rollout {route.rollout_id} is "
            f"{route.state}; promote or roll it back first"
        )
    if candidate == route.stable_version:
        raise InvalidInputError(f"version {candidate} of {route.prompt!r} is already the stable version")
    return route.model_copy(
        update={
            "canary_version": candidate,
            "canary_weight_bp": percent_to_bp(ramp[0]),
            "rollout_id": rollout_id,
            "state": RolloutState.RAMPING,
            "step": 0,
            "ramp": ramp,
            "revision": route.revision + 1,
            "updated_at": now,
        }
    )


def apply(route: Route, action: Action, *, now: datetime, to_version: int | None = None) -> Route:
    """The route after ``action``; raises :class:`IllegalTransitionError` if the state forbids it.

    ``to_version`` is the version a ``revert`` makes stable (required there, refused elsewhere).
    """
    if action is Action.START:
        raise InvalidInputError("use start() to start a rollout")
    if to_version is not None and action is not Action.REVERT:
        raise InvalidInputError(f"a version to go back to applies to revert only, not to {action}")
    check_allowed(route, action)
    update: dict[str, object] = {"revision": route.revision + 1, "updated_at": now}
    if action is Action.ADVANCE:
        if route.step + 1 >= len(route.ramp):
            raise IllegalTransitionError(
                f"cannot advance {route.prompt!r}: it is at the last ramp step "
                f"({route.ramp[route.step]:g}%); promote it instead"
            )
        update |= {
            "step": route.step + 1,
            "canary_weight_bp": percent_to_bp(route.ramp[route.step + 1]),
        }
    elif action is Action.PAUSE:
        update["state"] = RolloutState.PAUSED
    elif action is Action.RESUME:
        update["state"] = RolloutState.RAMPING
    elif action is Action.PROMOTE:
        assert route.canary_version is not None  # an active rollout always has a candidate
        update |= {
            "state": RolloutState.PROMOTED,
            "stable_version": route.canary_version,
            "canary_version": None,
            "canary_weight_bp": 0,
        }
    elif action is Action.ROLLBACK:
        update |= {"state": RolloutState.ROLLED_BACK, "canary_version": None, "canary_weight_bp": 0}
    elif action is Action.REVERT:
        if to_version is None:
            raise InvalidInputError("revert needs the version to route everyone back to")
        if to_version == route.stable_version:
            raise InvalidInputError(
                f"version {to_version} of {route.prompt!r} is already the stable version: nothing to revert"
            )
        update |= {"state": RolloutState.ROLLED_BACK, "stable_version": to_version}
    return route.model_copy(update=update)
