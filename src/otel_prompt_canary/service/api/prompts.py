"""``/v1/prompts``: push and read prompt versions, and diff two of them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.errors import InvalidInputError, NotFoundError, TooLargeError
from otel_prompt_canary.registry.diff import PromptDiff
from otel_prompt_canary.registry.models import (
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
)
from otel_prompt_canary.service.deps import (
    AuthorDep,
    PromptNameDep,
    RegistryDep,
    RouteWatchDep,
    SettingsDep,
    WriterDep,
)
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


def parse_version(value: str) -> int | None:
    """A version path segment: a positive integer, or ``latest`` (None)."""
    if value == "latest":
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise InvalidInputError(f"invalid version {value!r}: give a positive integer or 'latest'")


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
) -> PushResult:
    """Store a new version (201), or return the version with identical content (200)."""
    size = spec.template_bytes()
    if size > settings.max_template_bytes:
        raise TooLargeError(
            f"template of {spec.name!r} is {size} bytes, over the limit of "
            f"{settings.max_template_bytes} bytes"
        )
    result = await run_in_threadpool(registry.push, spec, author=author)
    if not result.created:
        response.status_code = 200
    elif result.version.version == 1:
        await watch.notify()  # a new prompt brings a new route
    return result


@router.get("", summary="List prompts")
def list_prompts(registry: RegistryDep) -> list[PromptSummary]:
    """Every prompt with its newest version and routing state, by name."""
    return registry.list_prompts()


@router.get("/{name}", summary="Show a prompt", responses=_ERRORS)
def get_prompt(name: PromptNameDep, registry: RegistryDep) -> PromptDetail:
    """A prompt: its newest version, how many versions it has, and its routing flag."""
    versions = registry.list_versions(name)
    if not versions:
        raise NotFoundError(f"unknown prompt {name!r}")
    latest = versions[-1]
    return PromptDetail(
        name=name,
        latest_version=latest.version,
        versions=len(versions),
        route=registry.get_route(name),
        latest=latest,
    )


@router.get("/{name}/versions", summary="List versions", responses=_ERRORS)
def list_versions(name: PromptNameDep, registry: RegistryDep) -> list[PromptVersion]:
    """Every version of the prompt, oldest first."""
    versions = registry.list_versions(name)
    if not versions:
        raise NotFoundError(f"unknown prompt {name!r}")
    return versions


@router.get("/{name}/versions/{version}", summary="Show a version", responses=_ERRORS)
def get_version(
    name: PromptNameDep,
    version: Annotated[str, Path(description="A version number, or 'latest'")],
    registry: RegistryDep,
) -> PromptVersion:
    """One version of the prompt."""
    return registry.get_version(name, parse_version(version))


@router.get("/{name}/diff", summary="Diff two versions", responses=_ERRORS)
def diff_versions(
    name: PromptNameDep,
    registry: RegistryDep,
    from_: Annotated[int, Query(alias="from", ge=1, description="The older version")],
    to: Annotated[int, Query(ge=1, description="The newer version")],
) -> PromptDiff:
    """What changed from version ``from`` to version ``to``, with a summary and blast radius."""
    return registry.diff(name, from_, to)
