"""``/v1/prompts/{name}/versions/{version}/reviews``: approve a version or request changes, and read
its reviews and where it stands (docs/reviews.md).

The reviewer is the principal of the request's credential (the ``review`` role): the author of a
version may not approve it (403). With ``required_approvals`` set, a rollout of a version starts
only once it is approved (:mod:`otel_prompt_canary.registry.reviews`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import InvalidInputError, PermissionDeniedError
from otel_prompt_canary.registry.bounds import MAX_VERSION, parse_version
from otel_prompt_canary.registry.reviews import (
    MAX_COMMENT_CHARS,
    Review,
    ReviewStatus,
    ReviewVerdict,
    SqlReviews,
)
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.deps import PrincipalDep, PromptNameDep, SettingsDep, reviews_of
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["ReviewRequest", "router"]

router = APIRouter(prefix="/v1/prompts/{name}/versions/{version}/reviews", tags=["reviews"])

_READ_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt or version"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    403: {
        "model": ErrorResponse,
        "description": "The principal lacks the review role, or is the version's author approving it",
    },
    **_READ_ERRORS,
}


class ReviewRequest(BaseModel):
    """A review: approve the version, or request changes (with a comment saying which)."""

    model_config = ConfigDict(extra="forbid")

    verdict: ReviewVerdict
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="Why; required to request changes")


async def get_reviews(request: Request) -> SqlReviews:
    """The reviews of the registry the application serves (501 when it cannot store them)."""
    return reviews_of(request.app.state.registry)


ReviewsDep = Annotated[SqlReviews, Depends(get_reviews)]


async def get_version_number(
    version: Annotated[
        str,
        Path(
            description=f"A version number (1 to {MAX_VERSION}, ASCII digits)",
            json_schema_extra={"pattern": r"^[0-9]{1,10}$"},
        ),
    ],
) -> int:
    """The ``{version}`` path parameter: a number ('latest' is refused: a review is of one version)."""
    number = parse_version(version)
    if number is None:
        raise InvalidInputError("give the version's number: a review is of one version, not 'latest'")
    return number


VersionDep = Annotated[int, Depends(get_version_number)]


@router.post("", status_code=201, summary="Review a version", responses=_WRITE_ERRORS)
async def post_review(
    request: Request,
    name: PromptNameDep,
    version: VersionDep,
    body: ReviewRequest,
    reviews: ReviewsDep,
    principal: PrincipalDep,
) -> Review:
    """Record the review of the request's principal: ``approve`` or ``request_changes`` (with a
    comment). Each principal's latest review counts; the version's author may not approve it (403)."""
    try:
        return await run_in_threadpool(
            reviews.record_review, name, version, body.verdict, principal=principal.name, comment=body.comment
        )
    except PermissionDeniedError as exc:
        log_refusal(request.method, request.url.path, principal.name, str(exc))
        raise


@router.get("", summary="List a version's reviews", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def list_reviews(
    request: Request,
    response: Response,
    name: PromptNameDep,
    version: VersionDep,
    reviews: ReviewsDep,
    page: PageDep,
) -> list[Review]:
    """Every review of the version, newest page first, each page oldest first (see the API's
    description of pages)."""
    found = await run_in_threadpool(
        reviews.list_reviews, name, version, before=page.before(cursors.REVIEWS), limit=page.limit + 1
    )
    return link_next(request, response, found, page, cursors.REVIEWS, lambda r: r.id, newest_first=True)


@router.get("/status", summary="Where a version stands with its reviewers", responses=_READ_ERRORS)
async def review_status(
    name: PromptNameDep, version: VersionDep, reviews: ReviewsDep, settings: SettingsDep
) -> ReviewStatus:
    """Its approvers and those requesting changes (each principal's latest review), the approvals
    the control plane requires (``required_approvals``), and whether a rollout of it may start."""
    return await run_in_threadpool(reviews.review_status, name, version, required=settings.required_approvals)
