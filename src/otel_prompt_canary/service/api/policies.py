"""``/v1/policies``: the policies of the active rollouts, for judges outside the service.

The Collector's ``promptcanary`` processor polls this endpoint (``policy.source: control_plane``)
and reads exactly ``{"policies": {"<prompt>": <policy>, ...}}``: one policy document per prompt
with an active (``ramping`` or ``paused``) rollout, as stored on the rollout. ``?include=rollouts``
adds ``rollouts``, one entry per active rollout with what a judge needs to evaluate it: the rollout
id, the stable and canary versions, the current step and when it started, and the policy.

Both answers carry an ``ETag``; ``If-None-Match`` naming it answers ``304`` with no body.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.loop.assessment import active_rollouts
from otel_prompt_canary.loop.start import policy_document
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import RolloutState, canonical_json
from otel_prompt_canary.service.api.routes import parse_if_none_match
from otel_prompt_canary.service.deps import RegistryDep
from otel_prompt_canary.service.environments import EnvironmentDep
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["ActiveRolloutPolicy", "PoliciesDocument", "active_policies", "router"]

router = APIRouter(prefix="/v1/policies", tags=["policies"])


class ActiveRolloutPolicy(BaseModel):
    """One active rollout and the policy that judges it."""

    prompt: str
    rollout_id: str
    state: RolloutState = Field(description="ramping or paused")
    stable_version: int
    canary_version: int
    canary_weight_bp: int
    step: int = Field(description="Index of the current step in ramp (and in policy.ramp.steps)")
    ramp: tuple[float, ...]
    step_started_at: datetime = Field(description="When the current step started (start or advance)")
    started_at: datetime = Field(description="When the rollout started")
    policy: dict[str, JsonValue] = Field(description="The policy document (schemas/policy.schema.json)")


class PoliciesDocument(BaseModel):
    """``GET /v1/policies``: policies by prompt; with ``include=rollouts``, the rollouts too."""

    policies: dict[str, dict[str, JsonValue]]
    rollouts: list[ActiveRolloutPolicy] | None = Field(
        None, description="Only with include=rollouts: one entry per active rollout, by prompt"
    )


def active_policies(registry: Registry, environment: str = DEFAULT_ENVIRONMENT) -> list[ActiveRolloutPolicy]:
    """Every active rollout of ``environment`` with its policy, by prompt name (see
    :func:`~.loop.active_rollouts`)."""
    return [
        ActiveRolloutPolicy(
            prompt=active.route.prompt,
            rollout_id=active.rollout.rollout_id,
            state=active.route.state,
            stable_version=active.route.stable_version,
            canary_version=active.rollout.candidate_version,
            canary_weight_bp=active.route.canary_weight_bp,
            step=active.route.step,
            ramp=active.route.ramp,
            step_started_at=active.step_started_at,
            started_at=active.rollout.started_at,
            policy=policy_document(active.policy),
        )
        for active in active_rollouts(registry, (environment,))
    ]


def _etag(body: dict[str, object]) -> str:
    return '"p' + hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32] + '"'


@router.get(
    "",
    response_model=PoliciesDocument,
    response_model_exclude_none=True,
    summary="Policies of the active rollouts (ETag)",
    responses={
        304: {"description": "Not modified: If-None-Match names the current ETag"},
        404: {"model": ErrorResponse, "description": "An environment this control plane does not serve"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
    },
)
async def list_policies(
    registry: RegistryDep,
    environment: EnvironmentDep,
    include: Annotated[
        Literal["rollouts"] | None,
        Query(description="'rollouts': add one entry per active rollout (step, step start, versions)"),
    ] = None,
    if_none_match: Annotated[str | None, Header(description="The ETag the caller has")] = None,
) -> Response:
    """``{"policies": {prompt: policy}}`` for every prompt with an active rollout in the environment."""
    active = await run_in_threadpool(active_policies, registry, environment)
    document = PoliciesDocument(
        policies={entry.prompt: entry.policy for entry in active},
        rollouts=active if include == "rollouts" else None,
    )
    body = document.model_dump(mode="json", exclude_none=True)
    etag = _etag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    known = parse_if_none_match(if_none_match)
    if known is not None and ("*" in known or etag.strip('"') in known):
        return Response(status_code=304, headers=headers)
    return JSONResponse(body, headers=headers)
