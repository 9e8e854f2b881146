"""``/v1/routes``: the routing flags routers poll, with an ETag and an optional long-poll.

The contract routers rely on:

- ``GET /v1/routes`` answers ``{"revision": R, "routes": [...]}`` with ``ETag: "R"``;
- with ``If-None-Match: "R"`` and R still current: ``304 Not Modified``, no body;
- with ``wait=S`` (0..60 seconds) as well: the answer is held until a route changes (then ``200``
  at once, with the new revision) or S seconds pass (then ``304``);
- beyond ``max_long_polls`` long-polls held at once, a long-poll is answered ``503`` with
  ``Retry-After`` at once (a plain ``GET`` is still answered).

Each environment has its own route set, revision and long-polls (``?environment=``, default the
default environment; one the control plane does not serve is answered 404).

Every answer comes from the route set kept in memory (:class:`~.watch.RouteWatch`), already encoded.
Routers ask most often a plain ``GET`` with ``If-None-Match`` naming the current revision:
:class:`NotModifiedShortcut` answers it its ``304`` before the request reaches the framework.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.models import Route
from otel_prompt_canary.service.deps import PromptNameDep, RegistryDep, RouteWatchDep, SettingsDep
from otel_prompt_canary.service.environments import EnvironmentDep
from otel_prompt_canary.service.errors import error_response
from otel_prompt_canary.service.limits import RETRY_AFTER_SECONDS
from otel_prompt_canary.service.schemas import ErrorResponse, RoutesDocument
from otel_prompt_canary.service.settings import MAX_LONG_POLL_SECONDS
from otel_prompt_canary.service.watch import RoutesSnapshot, RouteWatches

__all__ = ["NotModifiedShortcut", "parse_if_none_match", "router"]

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


def _answer(snap: RoutesSnapshot) -> Response:
    return Response(snap.body, media_type="application/json", headers=_headers(snap))


def _not_modified(snap: RoutesSnapshot) -> Response:
    return Response(status_code=304, headers=_headers(snap))


async def _disconnected(receive: Receive) -> None:
    """Done when the client goes away (or the answer is complete): what a GET receives after its
    empty body."""
    while (await receive())["type"] != "http.disconnect":
        pass


@router.get(
    "",
    response_model=RoutesDocument,
    summary="Every routing flag (ETag, long-poll)",
    responses={
        304: {"description": "Not modified: If-None-Match names the current revision"},
        404: {"model": ErrorResponse, "description": "An environment this control plane does not serve"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
        503: {
            "model": ErrorResponse,
            "description": "Too many long-polls held at once: try again after Retry-After seconds",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        },
    },
)
async def list_routes(
    request: Request,
    watches: RouteWatchDep,
    settings: SettingsDep,
    environment: EnvironmentDep,
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
    """The routing flags of every prompt in the environment; 304 when the caller's revision is current."""
    watch = watches[environment]
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
    if watches.waiters >= settings.max_long_polls:
        return error_response(
            503,
            "CapacityError",
            f"too many long-polls held at once ({settings.max_long_polls}, --max-long-polls): try again",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    changed = await watch.wait_for_change(snap.revision, wait, gone=_disconnected(request.receive))
    if changed is None or changed.revision in known:
        return _not_modified(changed or snap)
    return _answer(changed)


@router.get(
    "/{name}",
    summary="One routing flag",
    responses={404: {"model": ErrorResponse, "description": "Unknown prompt or environment"}},
)
def get_route(name: PromptNameDep, registry: RegistryDep, environment: EnvironmentDep) -> Route:
    """The routing flag of one prompt in the environment."""
    return registry.get_route(name, environment=environment)


class NotModifiedShortcut:
    """ASGI middleware: ``GET /v1/routes`` without a query (the default environment), whose
    ``If-None-Match`` names the revision kept in memory, is answered ``304`` here; every other
    request goes on.

    It answers exactly what :func:`list_routes` would, for the request routers send most; it must
    sit inside the request guard, which checks credentials first.
    """

    def __init__(self, app: ASGIApp, *, watch: RouteWatches) -> None:
        self.app = app
        self.watch = watch.get(DEFAULT_ENVIRONMENT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self.watch
        if (
            watch is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/routes"
            and not scope["query_string"]
        ):
            snap = watch.current()
            if snap is not None and scope["method"] == "GET":
                for name, value in scope["headers"]:
                    if name == b"if-none-match":
                        known = parse_if_none_match(value.decode("latin-1"))
                        if known is not None and ("*" in known or snap.revision in known):
                            await _send_not_modified(send, snap)
                            return
                        break
        await self.app(scope, receive, send)


async def _send_not_modified(send: Send, snap: RoutesSnapshot) -> None:
    headers = [(b"etag", snap.etag.encode()), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 304, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
