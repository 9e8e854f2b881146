"""``/v1/routes``: the routing flags routers poll, with an ETag and an optional long-poll.

The contract routers rely on:

- ``GET /v1/routes`` answers ``{"revision": R, "routes": [...]}`` with ``ETag: "R"``;
- with ``If-None-Match: "R"`` and R still current: ``304 Not Modified``, no body;
- with ``wait=S`` (0..60 seconds) as well: the answer is held until a route changes (then ``200``
  at once, with the new revision) or S seconds pass (then ``304``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from otel_prompt_canary.registry.models import Route
from otel_prompt_canary.service.deps import PromptNameDep, RegistryDep, RouteWatchDep
from otel_prompt_canary.service.schemas import ErrorResponse, RoutesDocument
from otel_prompt_canary.service.settings import MAX_LONG_POLL_SECONDS
from otel_prompt_canary.service.watch import RoutesSnapshot

__all__ = ["parse_if_none_match", "router"]

router = APIRouter(prefix="/v1/routes", tags=["routes"])


def parse_if_none_match(header: str | None) -> frozenset[str] | None:
    """The opaque revisions named by an ``If-None-Match`` header (``*`` kept as is).

    Weak validators (``W/"..."``) compare equal to strong ones, and an unquoted value is accepted
    for clients that send the body's ``revision`` as it is.
    """
    if header is None or not header.strip():
        return None
    tags: set[str] = set()
    for raw in header.split(","):
        tag = raw.strip()
        tag = tag.removeprefix("W/")
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        if tag:
            tags.add(tag)
    return frozenset(tags) or None


def _headers(snap: RoutesSnapshot) -> dict[str, str]:
    return {"ETag": snap.etag, "Cache-Control": "no-cache"}


def _answer(snap: RoutesSnapshot) -> JSONResponse:
    document = RoutesDocument(revision=snap.revision, routes=snap.routes)
    return JSONResponse(document.model_dump(mode="json"), headers=_headers(snap))


def _not_modified(snap: RoutesSnapshot) -> Response:
    return Response(status_code=304, headers=_headers(snap))


@router.get(
    "",
    response_model=RoutesDocument,
    summary="Every routing flag (ETag, long-poll)",
    responses={
        304: {"description": "Not modified: If-None-Match names the current revision"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
    },
)
async def list_routes(
    request: Request,
    watch: RouteWatchDep,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_LONG_POLL_SECONDS,
            description="With If-None-Match: hold the answer up to this many seconds until a route changes",
        ),
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description="The revision the caller has, as an ETag")
    ] = None,
) -> Response:
    """The routing flags of every prompt; 304 when the caller's revision is current."""
    known = parse_if_none_match(if_none_match)
    snap = await watch.snapshot()
    if known is None:
        return _answer(snap)
    if "*" in known:
        return _not_modified(snap)
    if snap.revision not in known:
        return _answer(snap)
    if not wait:
        return _not_modified(snap)
    changed = await watch.wait_for_change(snap.revision, wait, gone=request.is_disconnected)
    if changed is None or changed.revision in known:
        return _not_modified(changed or snap)
    return _answer(changed)


@router.get(
    "/{name}",
    summary="One routing flag",
    responses={404: {"model": ErrorResponse, "description": "Unknown prompt"}},
)
def get_route(name: PromptNameDep, registry: RegistryDep) -> Route:
    """The routing flag of one prompt."""
    return registry.get_route(name)
