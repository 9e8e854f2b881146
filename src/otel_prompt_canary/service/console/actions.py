"""The console's actions (form posts): start a rollout, move it (advance, promote, pause, resume, roll
back, revert), review a version.

Each checks, in order: a signed-in session, the form's CSRF token and origin, the role the API asks
for the same change in the same environment (``operate``, ``review``); then it calls what the API's
handler calls, with the principal's name as actor and principal of the audit record. On success it
goes back to the page acted from (303); a refusal or an error is answered with a page saying why,
and nothing changes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.start import move_rollout, start_rollout
from otel_prompt_canary.registry.bounds import MAX_VERSION
from otel_prompt_canary.registry.models import Action, validate_prompt_name
from otel_prompt_canary.registry.reviews import ReviewVerdict
from otel_prompt_canary.service.console.context import EnvironmentDep, ServiceDep
from otel_prompt_canary.service.console.csrf import FIELD
from otel_prompt_canary.service.console.forms import optional_int, read_form, required_text
from otel_prompt_canary.service.console.rollout_view import rollout_in
from otel_prompt_canary.service.console.visitors import (
    Visitor,
    VisitorDep,
    check_form,
    require_visitor_role,
)
from otel_prompt_canary.service.deps import reviews_of
from otel_prompt_canary.service.environments import check_served
from otel_prompt_canary.service.principals import Role

__all__ = ["router"]

router = APIRouter()

#: The actions the rollout page offers, and the transition each is.
_ACTIONS = {
    "advance": Action.ADVANCE,
    "promote": Action.PROMOTE,
    "pause": Action.PAUSE,
    "resume": Action.RESUME,
    "rollback": Action.ROLLBACK,
    "revert": Action.REVERT,
}


async def _checked_form(
    request: Request, visitor: Visitor, name: str, role: Role, environment: str | None, *, doing: str
) -> dict[str, str]:
    """The posted form, once its CSRF token, the visitor's ``role`` (in ``environment``; None: in
    any) and the prompt's ``name`` are checked, in that order."""
    form = await read_form(request)
    check_form(request, visitor, visitor.session, form.get(FIELD))
    require_visitor_role(request, visitor, role, environment, doing=doing)
    validate_prompt_name(name)
    return form


def _back(path: str, environment: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?environment={environment}", status_code=303)


@router.post("/prompts/{name}/rollout/{action}")
async def move(
    request: Request,
    name: str,
    action: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: EnvironmentDep,
) -> RedirectResponse:
    """Advance, promote, pause, resume, roll back or revert the rollout, at the revision the person saw."""
    form = await _checked_form(
        request, visitor, name, Role.OPERATE, environment, doing="start or move rollouts"
    )
    transition = _ACTIONS.get(action)
    if transition is None:
        raise InvalidInputError(f"unknown action {action[:20]!r}: use one of {', '.join(_ACTIONS)}")
    reason = required_text(form, "reason", "a reason")
    expected = optional_int(form, "expected_revision", "expected_revision")
    to_version = optional_int(form, "to_version", "the version to revert to", high=MAX_VERSION)
    rollout_id = form.get("rollout_id", "").strip() or None
    if rollout_id is not None:
        # A rollout of another environment is not found here (404), whatever the visitor may do there.
        await run_in_threadpool(rollout_in, service.registry, name, rollout_id, environment)
    principal = visitor.principal.name
    await run_in_threadpool(
        lambda: move_rollout(
            service.registry,
            name,
            transition,
            required_approvals=service.settings.required_approvals,
            actor=principal,
            reason=reason,
            expected_revision=expected,
            rollout_id=rollout_id,
            to_version=to_version,
            environment=environment,
            principal=principal,
        )
    )
    await service.watch.notify()
    return _back(f"/console/prompts/{name}/rollout", environment)


@router.post("/prompts/{name}/rollouts")
async def start(
    request: Request,
    name: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: EnvironmentDep,
) -> RedirectResponse:
    """Start the rollout of a version (the default policy, the ramp given or the default one),
    with the approvals and gate the API asks for."""
    form = await _checked_form(
        request, visitor, name, Role.OPERATE, environment, doing="start or move rollouts"
    )
    version = optional_int(form, "version", "the version", high=MAX_VERSION)
    if version is None:
        raise InvalidInputError("the version to roll out is required")
    reason = required_text(form, "reason", "a reason")
    expected = optional_int(form, "expected_revision", "expected_revision")
    ramp = form.get("ramp", "").strip() or None
    promoted_from = form.get("from_environment", "").strip() or None
    if promoted_from is not None:
        check_served(service.settings, promoted_from)
    principal = visitor.principal.name
    settings = service.settings
    await run_in_threadpool(
        lambda: start_rollout(
            service.registry,
            name,
            version,
            ramp=ramp,
            actor=principal,
            reason=reason,
            expected_revision=expected,
            store=service.store,
            environment=environment,
            from_environment=promoted_from,
            environments=settings.environments,
            principal=principal,
            required_approvals=settings.required_approvals,
        )
    )
    await service.watch.notify()
    return _back(f"/console/prompts/{name}/rollout", environment)


@router.post("/prompts/{name}/versions/{version}/reviews")
async def review(
    request: Request,
    name: str,
    version: int,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: EnvironmentDep,
) -> RedirectResponse:
    """Approve the version or request changes (with a comment), as the signed-in principal."""
    form = await _checked_form(request, visitor, name, Role.REVIEW, None, doing="review versions")
    reviews = reviews_of(service.registry)
    try:
        verdict = ReviewVerdict(form.get("verdict", ""))
    except ValueError:
        raise InvalidInputError("the verdict must be 'approve' or 'request_changes'") from None
    comment = form.get("comment", "")
    principal = visitor.principal.name
    await run_in_threadpool(
        lambda: reviews.record_review(name, version, verdict, principal=principal, comment=comment)
    )
    return _back(f"/console/prompts/{name}/versions/{version}", environment)
