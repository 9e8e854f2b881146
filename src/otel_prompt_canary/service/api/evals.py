"""``/v1/prompts/{name}/evals``: store and read evaluation runs; the evaluations of a diff.

``POST`` stores a run made by ``prompt-canary eval run`` (checked as a local store checks it: its
version and dataset version exist, its cases are the dataset's, a ``complete`` run has every case
and no error). ``GET`` lists runs newest first (``version``, ``dataset``, ``dataset_version``,
``status`` filter them; ``order=oldest`` reverses them), a page at a time (``limit``, at most 1000,
and ``cursor``, as every list: :mod:`otel_prompt_canary.service.pages`), and ``GET .../{run_id}``
answers one run with every case.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.evals.baselines import version_comparisons
from otel_prompt_canary.evals.comparison import RunComparison
from otel_prompt_canary.evals.results import EvalRun, EvalRunSummary, RunStatus
from otel_prompt_canary.evals.store import EvalStore, SqlEvalStore
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.bounds import MAX_VERSION
from otel_prompt_canary.registry.diff import PromptDiff
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.deps import NotSupportedError, PromptNameDep, WriterDep
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["EvalStoreDep", "VersionsDiff", "get_eval_store", "router", "with_evaluations"]

router = APIRouter(prefix="/v1/prompts/{name}/evals", tags=["evaluations"])

_READ_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt or run"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
    501: {"model": ErrorResponse, "description": "The registry behind the service keeps no evaluations"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorResponse, "description": "Unknown prompt, version or dataset version"},
    413: {"model": ErrorResponse, "description": "Body over the size limit"},
    422: {"model": ErrorResponse, "description": "A run that does not fit its dataset, or invalid input"},
    501: {"model": ErrorResponse, "description": "The registry behind the service keeps no evaluations"},
}


async def get_eval_store(request: Request) -> EvalStore:
    """The datasets and runs of the service's registry (501 when it is not a local store)."""
    registry: Registry = request.app.state.registry
    if not isinstance(registry, SqlRegistry):
        raise NotSupportedError(
            f"this control plane's registry ({type(registry).__name__}) keeps no datasets or evaluations"
        )
    return SqlEvalStore(registry)


EvalStoreDep = Annotated[EvalStore, Depends(get_eval_store)]


class VersionsDiff(PromptDiff):
    """A diff of two versions, with their evaluations side by side: per dataset, version ``to``'s
    newest complete run against version ``from``'s, on the newest dataset version both ran."""

    evaluations: list[RunComparison] = Field(default_factory=list)


def with_evaluations(registry: Registry, diff: PromptDiff) -> VersionsDiff:
    """``diff`` and the comparisons of its two versions' runs (none without a local store)."""
    comparisons: list[RunComparison] = []
    if isinstance(registry, SqlRegistry):
        comparisons = version_comparisons(
            SqlEvalStore(registry), diff.name, diff.from_version, diff.to_version
        )
    return VersionsDiff(**diff.model_dump(), evaluations=comparisons)


@router.post("", status_code=201, summary="Store an evaluation run", responses=_WRITE_ERRORS)
async def post_run(name: PromptNameDep, run: EvalRun, store: EvalStoreDep, _writer: WriterDep) -> EvalRun:
    """Store a run of one of the prompt's versions on one of its dataset versions."""
    if run.prompt != name:
        raise InvalidInputError(f"the run is of prompt {run.prompt!r}, posted under {name!r}")
    return await run_in_threadpool(store.record_run, run)


@router.get("", summary="List evaluation runs", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def list_runs(
    request: Request,
    response: Response,
    name: PromptNameDep,
    store: EvalStoreDep,
    page: PageDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="Only runs of this version")
    ] = None,
    dataset: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this dataset")
    ] = None,
    dataset_version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="Only this dataset version")
    ] = None,
    status: Annotated[RunStatus | None, Query(description="complete or incomplete")] = None,
    order: Annotated[
        Literal["newest", "oldest"], Query(description="newest (default) or oldest first")
    ] = "newest",
) -> list[EvalRunSummary]:
    """The prompt's runs, without their cases, in the order asked, a page at a time."""
    runs = await run_in_threadpool(
        store.list_runs,
        name,
        version=version,
        dataset=dataset,
        dataset_version=dataset_version,
        status=status,
        limit=page.limit + 1,
        oldest_first=order == "oldest",
        after=page.key(cursors.RUNS, cursors.parse_run_key),
    )
    return link_next(
        request,
        response,
        runs,
        page,
        cursors.RUNS,
        lambda run: cursors.run_key(run.finished_at, run.run_id),
        newest_first=False,
    )


@router.get("/{run_id}", summary="Show an evaluation run", responses=_READ_ERRORS)
async def get_run(
    name: PromptNameDep,
    store: EvalStoreDep,
    run_id: Annotated[str, Path(pattern=r"^[0-9a-f]{8,64}$", description="The run's id")],
) -> EvalRun:
    """One run, with every case."""
    return await run_in_threadpool(store.get_run, name, run_id)
