"""Where a report or a feedback counts, and whether its sender may report there.

The request guard decides before reading a body, so it cannot see which rollout a report or a
feedback key names; once the handler has read it, :func:`require_reporter` checks the sender's
``report`` role in the environment of that rollout (rollout ids are unique across environments), or,
for the calls of no rollout, in the environment the report names.
"""

from __future__ import annotations

from contextlib import suppress

from fastapi import Request

from otel_prompt_canary.errors import NotFoundError, PermissionDeniedError
from otel_prompt_canary.loop.live import live_version
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.principals import Principal, Role, require_role

__all__ = ["require_reporter"]


def require_reporter(
    request: Request,
    principal: Principal,
    registry: Registry,
    prompt: str,
    rollout_id: str,
    named: str,
    *,
    doing: str,
) -> None:
    """Refuse (403, logged) ``principal`` unless it may report in the environment of ``rollout_id``
    (``named`` for a live report or an unknown rollout, which is then acknowledged as ignored).
    Blocking: it may read the registry."""
    environment = named
    if live_version(rollout_id) is None:
        with suppress(NotFoundError):
            environment = registry.get_rollout(prompt, rollout_id).environment
    try:
        require_role(principal, Role.REPORT, environment, doing=doing)
    except PermissionDeniedError as exc:
        log_refusal(request.method, request.url.path, principal.name, str(exc))
        raise
