"""``/v1/prompts``: push and read prompt versions, and diff two of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.registry.bounds import MAX_VERSION, check_spec_size, parse_version
from otel_prompt_canary.registry.models import (
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
)
from otel_prompt_canary.service.api.evals import VersionsDiff, with_evaluations
from otel_prompt_canary.service.deps import (
    AuthorDep,
    PromptNameDep,
    RegistryDep,
    RouteWatchDep,
    SettingsDep,
    WriterDep,
)
from otel_prompt_canary.service.environments import EnvironmentDep
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.principals import ANONYMOUS, PrincipalDep
from otel_prompt_canary.service.schemas import ErrorResponse, PromptDetail

__all__ = ["parse_version", "router"]

router = APIRouter(prefix="/v1/prompts", tags=["prompts"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt or version"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    413: {"model": ErrorResponse, "description": "Body or template over the size limit"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}


@router.post(
    "",
    status_code=201,
    response_model=PushResult,
    summary="Push a prompt version",
    responses={
        200: {"model": PushResult, "description": "Identical content: existing version"},
        **_WRITE_ERRORS,
    },
)
async def push_prompt(
    spec: PromptSpec,
    response: Response,
    registry: RegistryDep,
    settings: SettingsDep,
    watch: RouteWatchDep,
    _writer: WriterDep,
    author: AuthorDep,
    principal: PrincipalDep,
) -> PushResult:
    """Store a new version (201), or return the version with identical content (200).

    Its template, ``config``, ``tools`` and output schema are each at most ``max_template_bytes``
    (413 otherwise). The version's author is the principal whose credential pushed it (a review
    by its author is no review); only when writes are open does the ``X-Prompt-Canary-Actor``
    header, or the spec's ``author``, name it.
    """
    check_spec_size(spec, settings.max_template_bytes)
    if principal is not ANONYMOUS:
        spec, author = spec.model_copy(update={"author": None}), principal.name
    result = await run_in_threadpool(registry.push, spec, author=author)
    if not result.created:
        response.status_code = 200
    elif result.version.version == 1:
        await watch.notify()  # a new prompt brings a new route
    return result


@router.get("", summary="List prompts", responses={**PAGE_RESPONSE, **_ERRORS})
async def list_prompts(
    request: Request, response: Response, registry: RegistryDep, page: PageDep, environment: EnvironmentDep
) -> list[PromptSummary]:
    """Every prompt with its newest version and routing state in the environment, by name, a page
    at a time."""
    prompts = await run_in_threadpool(
        lambda: registry.list_prompts(
            after=page.after(cursors.PROMPTS), limit=page.limit + 1, environment=environment
        )
    )
    return link_next(request, response, prompts, page, cursors.PROMPTS, lambda p: p.name, newest_first=False)


@router.get("/{name}", summary="Show a prompt", responses=_ERRORS)
def get_prompt(name: PromptNameDep, registry: RegistryDep, environment: EnvironmentDep) -> PromptDetail:
    """A prompt: its newest version, how many versions it has, and its routing flag in the environment."""
    latest = registry.get_version(name)
    return PromptDetail(
        name=name,
        # Versions are numbered 1, 2, 3... and never removed: the newest number is the count.
        latest_version=latest.version,
        versions=latest.version,
        route=registry.get_route(name, environment=environment),
        latest=latest,
    )


@router.get("/{name}/versions", summary="List versions", responses={**PAGE_RESPONSE, **_ERRORS})
async def list_versions(
    request: Request, response: Response, name: PromptNameDep, registry: RegistryDep, page: PageDep
) -> list[PromptVersion]:
    """Every version of the prompt, newest page first, each page oldest first (see the API's
    description of pages)."""
    versions = await run_in_threadpool(
        registry.list_versions, name, before=page.before(cursors.VERSIONS), limit=page.limit + 1
    )
    return link_next(
        request, response, versions, page, cursors.VERSIONS, lambda v: v.version, newest_first=True
    )


@router.get("/{name}/versions/{version}", summary="Show a version", responses=_ERRORS)
def get_version(
    name: PromptNameDep,
    version: Annotated[
        str,
        Path(
            description=f"A version number (1 to {MAX_VERSION}, ASCII digits), or 'latest'",
            # Documented here, checked by parse_version, whose message says what to give.
            json_schema_extra={"pattern": r"^([0-9]{1,10}|latest)$"},
        ),
    ],
    registry: RegistryDep,
) -> PromptVersion:
    """One version of the prompt."""
    return registry.get_version(name, parse_version(version))


@router.get("/{name}/diff", summary="Diff two versions", responses=_ERRORS)
def diff_versions(
    name: PromptNameDep,
    registry: RegistryDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION, description="The older version")],
    to: Annotated[int, Query(ge=1, le=MAX_VERSION, description="The newer version")],
) -> VersionsDiff:
    """What changed from version ``from`` to version ``to``, with a summary and blast radius, and
    their evaluations side by side (``evaluations``, docs/evaluations.md)."""
    return with_evaluations(registry, registry.diff(name, from_, to))
