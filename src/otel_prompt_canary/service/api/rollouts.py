"""``/v1/prompts/{name}/rollout*``: start a rollout, move it along the ramp, read its audit trail.

Every endpoint acts in the environment of ``?environment=`` (default the default environment; one
the control plane does not serve: 404). Writes record the request's principal in the audit record,
beside the actor the ``X-Prompt-Canary-Actor`` header names (else ``api``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.loop.assessment import assess
from otel_prompt_canary.loop.start import move_rollout, start_rollout
from otel_prompt_canary.registry.models import AuditRecord, Route
from otel_prompt_canary.service.deps import (
    ActorDep,
    LoopStoreDep,
    PromptNameDep,
    RegistryDep,
    RouteWatchDep,
    SettingsDep,
    WriterDep,
)
from otel_prompt_canary.service.environments import EnvironmentDep, check_served
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.principals import PrincipalDep
from otel_prompt_canary.service.schemas import (
    ErrorResponse,
    RolloutStatus,
    RolloutVerdict,
    StartRolloutRequest,
    TransitionAction,
    TransitionRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/prompts/{name}", tags=["rollouts"])

_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorResponse, "description": "Unknown prompt, version, rollout or environment"},
    409: {
        "model": ErrorResponse,
        "description": "Illegal transition, or the revision or rollout is not the current one",
    },
    422: {"model": ErrorResponse, "description": "Invalid input"},
}
_READ_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt, rollout or environment"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}


@router.post(
    "/rollouts", status_code=201, name="start_rollout", summary="Start a rollout", responses=_WRITE_ERRORS
)
async def post_rollout(
    name: PromptNameDep,
    body: StartRolloutRequest,
    registry: RegistryDep,
    store: LoopStoreDep,
    watch: RouteWatchDep,
    settings: SettingsDep,
    environment: EnvironmentDep,
    principal: PrincipalDep,
    _writer: WriterDep,
    actor: ActorDep,
) -> Route:
    """Start canarying ``version`` along the ramp; answers the new routing flag.

    With ``from_environment``, the candidate is the version stable in that environment, which must
    be the one before ``?environment=`` in the control plane's order (422 otherwise, and when that
    version is already stable here); the start's audit record says where it came from.

    The policy is validated first (422 when it cannot be decided, or when it must have data from a
    signal never reported for the prompt); without one the default policy applies. It is stored on
    the rollout in full. See docs/control-plane.md for how the ramp and the policy's
    ``ramp.steps`` are reconciled. A policy with a ``gate`` needs a passing evaluation of the
    candidate (409 naming what is missing, or the cases that failed or got worse), unless
    ``skip_gate``, which the start's audit record keeps (docs/evaluations.md).
    """
    if body.from_environment is not None:
        check_served(settings, body.from_environment)
    route = await run_in_threadpool(
        start_rollout,
        registry,
        name,
        body.version,
        policy=body.policy,
        ramp=body.ramp,
        actor=actor,
        reason=body.reason,
        expected_revision=body.expected_revision,
        store=store,
        skip_gate=body.skip_gate,
        environment=environment,
        from_environment=body.from_environment,
        environments=settings.environments,
        principal=principal.name,
        required_approvals=settings.required_approvals,
    )
    await watch.notify()
    return route


@router.get("/rollout", summary="Show the rollout", responses=_READ_ERRORS)
def get_rollout(
    name: PromptNameDep,
    registry: RegistryDep,
    environment: EnvironmentDep,
    rollout_id: Annotated[
        str | None, Query(min_length=1, description="A given rollout instead of the current one")
    ] = None,
) -> RolloutStatus:
    """The routing flag and the current (or last) rollout; ``rollout`` is null if there was none."""
    route = registry.get_route(name, environment=environment)
    try:
        rollout = registry.get_rollout(name, rollout_id, environment=environment)
    except NotFoundError:
        if rollout_id is not None:
            raise
        rollout = None
    if rollout is not None and rollout.environment != environment:
        raise NotFoundError(
            f"rollout {rollout_id} of {name!r} is in environment {rollout.environment}, not {environment}"
        )
    return RolloutStatus(route=route, rollout=rollout)


@router.get("/rollout/verdict", summary="The judge's verdict now", responses=_READ_ERRORS)
async def rollout_verdict(
    name: PromptNameDep,
    registry: RegistryDep,
    store: LoopStoreDep,
    settings: SettingsDep,
    environment: EnvironmentDep,
) -> RolloutVerdict:
    """What the rollout controller's judge says of the active rollout now, with its evidence, and
    which origin's reports (application or collector) the statistics come from.

    404 when the prompt has no active rollout; 422 when its policy cannot be applied.
    """
    route = await run_in_threadpool(lambda: registry.get_route(name, environment=environment))
    assessment = await run_in_threadpool(assess, registry, store, route, time_scale=settings.time_scale)
    assert route.rollout_id is not None  # assess() refuses a route without an active rollout
    origin = await run_in_threadpool(store.report_origin, route.rollout_id)
    return RolloutVerdict.of(assessment, origin)


@router.get("/rollout/history", summary="Audit trail", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def rollout_history(
    request: Request,
    response: Response,
    name: PromptNameDep,
    registry: RegistryDep,
    page: PageDep,
    environment: EnvironmentDep,
) -> list[AuditRecord]:
    """Every applied transition of the prompt's routing flag, newest page first, each page oldest
    first (see the API's description of pages)."""
    records = await run_in_threadpool(
        lambda: registry.history(
            name, limit=page.limit + 1, before=page.before(cursors.AUDIT), environment=environment
        )
    )
    return link_next(request, response, records, page, cursors.AUDIT, lambda r: r.id, newest_first=True)


@router.post("/rollout/{action}", summary="Move the rollout", responses=_WRITE_ERRORS)
async def transition(
    name: PromptNameDep,
    action: Annotated[TransitionAction, Path(description="What to do")],
    body: TransitionRequest,
    registry: RegistryDep,
    watch: RouteWatchDep,
    settings: SettingsDep,
    environment: EnvironmentDep,
    principal: PrincipalDep,
    _writer: WriterDep,
    actor: ActorDep,
) -> Route:
    """Advance, pause, resume, promote, roll back or revert the rollout; answers the new routing flag.

    ``revert`` undoes a promotion: everyone goes back to ``to_version``, by default the promoted
    rollout's baseline, and the flag reads ``rolled_back`` (docs/registry.md). When the control
    plane requires approvals, a ``to_version`` that has never been stable in the environment must
    be approved (409 otherwise).
    """
    route = await run_in_threadpool(
        lambda: move_rollout(
            registry,
            name,
            action.to_action(),
            required_approvals=settings.required_approvals,
            actor=actor,
            reason=body.reason,
            evidence=body.evidence,
            expected_revision=body.expected_revision,
            rollout_id=body.rollout_id,
            to_version=body.to_version,
            environment=environment,
            principal=principal.name,
        )
    )
    await watch.notify()
    return route
