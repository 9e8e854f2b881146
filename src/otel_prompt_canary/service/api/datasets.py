"""``/v1/prompts/{name}/datasets``: push and read a prompt's golden-set datasets, and diff versions.

A push is checked as a local store checks it (docs/evaluations.md): its cases, their ids and
variables (against the prompt's newest version), and its size (413 over the limit). Pushing the
same content again answers the existing version (200), a new version 201.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.datasets import (
    Dataset,
    DatasetDiff,
    DatasetPushResult,
    DatasetSpec,
    DatasetSummary,
    validate_dataset_name,
)
from otel_prompt_canary.registry.bounds import MAX_VERSION, parse_version
from otel_prompt_canary.service.api.evals import EvalStoreDep
from otel_prompt_canary.service.deps import AuthorDep, PromptNameDep, WriterDep
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/prompts/{name}/datasets", tags=["evaluations"])

_DATASET = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="The dataset's name")
_READ_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt, dataset or version"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
    501: {"model": ErrorResponse, "description": "The registry behind the service keeps no datasets"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    200: {"model": DatasetPushResult, "description": "Identical content: the existing version"},
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorResponse, "description": "Unknown prompt"},
    413: {"model": ErrorResponse, "description": "Body or dataset over the size limit"},
    422: {"model": ErrorResponse, "description": "Malformed cases, duplicate ids, unknown variables..."},
    501: {"model": ErrorResponse, "description": "The registry behind the service keeps no datasets"},
}


@router.post("", status_code=201, summary="Push a dataset version", responses=_WRITE_ERRORS)
async def push_dataset(
    name: PromptNameDep,
    spec: DatasetSpec,
    response: Response,
    store: EvalStoreDep,
    _writer: WriterDep,
    author: AuthorDep,
) -> DatasetPushResult:
    """Store a new version of the dataset (201), or answer the version with identical content (200)."""
    if spec.prompt != name:
        raise InvalidInputError(f"the dataset belongs to prompt {spec.prompt!r}, pushed under {name!r}")
    result = await run_in_threadpool(store.push_dataset, spec, author=author)
    if not result.created:
        response.status_code = 200
    return result


@router.get("", summary="List datasets", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def list_datasets(
    request: Request, response: Response, name: PromptNameDep, store: EvalStoreDep, page: PageDep
) -> list[DatasetSummary]:
    """The prompt's datasets, by name, with their newest version, a page at a time."""
    summaries = await run_in_threadpool(
        store.list_datasets,
        name,
        after=page.key(cursors.DATASETS, validate_dataset_name),
        limit=page.limit + 1,
    )
    return link_next(
        request, response, summaries, page, cursors.DATASETS, lambda d: d.name, newest_first=False
    )


@router.get("/{dataset}/versions/{version}", summary="Show a dataset version", responses=_READ_ERRORS)
async def get_dataset(
    name: PromptNameDep,
    dataset: Annotated[str, _DATASET],
    version: Annotated[
        str,
        Path(
            description=f"A version number (1 to {MAX_VERSION}, ASCII digits), or 'latest'",
            pattern=r"^([0-9]{1,10}|latest)$",
        ),
    ],
    store: EvalStoreDep,
) -> Dataset:
    """One version of the dataset, every case."""
    return await run_in_threadpool(store.get_dataset, name, dataset, parse_version(version))


@router.get("/{dataset}/diff", summary="Diff two dataset versions", responses=_READ_ERRORS)
async def diff_datasets(
    name: PromptNameDep,
    dataset: Annotated[str, _DATASET],
    store: EvalStoreDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION, description="The older version")],
    to: Annotated[int, Query(ge=1, le=MAX_VERSION, description="The newer version")],
) -> DatasetDiff:
    """Cases added, removed and changed from version ``from`` to version ``to``."""
    return await run_in_threadpool(store.diff_datasets, name, dataset, from_, to)
