"""The request guard: credentials, body size, body-read deadline and request deadline, before any handler.

A pure ASGI middleware, the outermost layer of the application. For each request, in this order:

1. the credentials, from the headers, path and query alone
   (:func:`~otel_prompt_canary.service.access.check_access`): a request that cannot pass is answered
   401 (no or a wrong credential) or 403 (a principal acting beyond its roles) before its body is
   read, so an anonymous client cannot make the service hold a byte of it; the request's principal
   is put on it (``request.state.principal``);
2. the body of a write, read whole within ``read_timeout_seconds`` (408 beyond) and counted whether
   the client sent ``Content-Length`` or chunks (413 as soon as ``max_body_bytes`` is crossed), and
   JSON only (415), except the console's forms;
3. the handler, within ``request_timeout_seconds`` (503 with ``Retry-After`` beyond); a long-poll of
   ``GET /v1/routes`` gets its longest wait on top.

Refusals close the connection. Before answering, what the client is still sending is read and
dropped (never kept, and within the read deadline) so that it reads the answer rather than a reset
connection; a client that asked ``Expect: 100-continue`` has sent nothing yet and is answered at once.
Connections themselves (how many, how long a request's headers may take) are bounded below the
application, in :mod:`otel_prompt_canary.service.connections`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otel_prompt_canary.errors import AuthenticationError, PermissionDeniedError
from otel_prompt_canary.service.access import Access, access_of, check_access
from otel_prompt_canary.service.settings import MAX_LONG_POLL_SECONDS, ServiceSettings

__all__ = ["RETRY_AFTER_SECONDS", "RequestGuard", "answer", "describe_guard"]

logger = logging.getLogger("otel_prompt_canary.service")

#: What a 503 for capacity or a deadline asks the client to wait before it tries again.
RETRY_AFTER_SECONDS = 1

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Past the limit, up to this many bytes are still read and dropped so that the client, which is
#: usually still sending, reads the answer instead of a reset connection.
_DRAIN_LIMIT = 16 * 1024 * 1024


class _Refused(Exception):
    """The request is answered by the guard: ``status``, error ``type_``, ``message``."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.type_, self.message, self.headers = status, type_, message, headers or {}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """See the module docstring; ``settings`` gives the limits and the credentials."""

    def __init__(self, app: ASGIApp, *, settings: ServiceSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            granted = check_access(method, scope["path"], headers, self.settings, query)
        except AuthenticationError as exc:
            await self._refuse(receive, send, headers, 401, type(exc).__name__, str(exc), bearer=True)
            return
        except PermissionDeniedError as exc:
            await self._refuse(receive, send, headers, 403, type(exc).__name__, str(exc))
            return
        access = granted.access
        if granted.principal is not None:
            scope.setdefault("state", {})["principal"] = granted.principal
        if method in _BODY_METHODS and access is not Access.UNKNOWN:
            try:
                replay = await self._read_body(receive, headers, json_only=access is not Access.CONSOLE)
            except _Refused as refusal:
                await answer(send, refusal.status, refusal.type_, refusal.message, refusal.headers)
                return
            if replay is None:  # the client went away
                return
            receive = replay
        if scope["path"] == "/v1/routes" and method == "GET":
            # Served from memory by async code (the routes kept by the watch, a long-poll's wait):
            # cancelling it at the deadline works, so it runs in this task, without the extra task
            # the other handlers need (routers send these requests most, in their thousands).
            await self._handle_inline(scope, receive, send, self._deadline(scope, access))
        else:
            await self._handle(scope, receive, send, self._deadline(scope, access))

    # -- the body -----------------------------------------------------------------------------

    async def _read_body(self, receive: Receive, headers: Headers, *, json_only: bool) -> Receive | None:
        """A ``receive`` replaying the whole body; None when the client disconnected. ``json_only``
        refuses (415) a body that is not JSON."""
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isascii() or not declared.strip().isdigit():
                raise _Refused(400, "InvalidInputError", f"invalid Content-Length {declared[:40]!r}")
            if int(declared) > limit:
                await self._drain(receive, headers, int(declared))
                raise self._too_large(f"{int(declared)} bytes")
        chunks: list[bytes] = []
        size = 0
        more = True
        try:
            async with asyncio.timeout(self.settings.read_timeout_seconds):
                while more and size <= limit:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    more = bool(message.get("more_body", False))
                    chunks.append(chunk)
        except TimeoutError:
            raise self._slow_body() from None
        if size > limit:
            if more:
                await self._drain(receive, headers, _DRAIN_LIMIT - size)
            raise self._too_large(f"more than {limit} bytes")
        body = b"".join(chunks)
        content_type = headers.get("content-type", "")
        if json_only and body and not _is_json(content_type):
            raise _Refused(
                415,
                "InvalidInputError",
                "the body must be JSON: send it with 'Content-Type: application/json' "
                f"(got {content_type[:80] or 'none'})",
            )
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _drain(self, receive: Receive, headers: Headers, limit: int) -> None:
        """Read and drop what the client is still sending: up to ``limit`` bytes, within the read
        deadline; nothing when it waits for ``100 Continue`` (it has sent nothing yet)."""
        if headers.get("expect", "").lower() == "100-continue":
            return
        seen = 0
        try:
            async with asyncio.timeout(self.settings.read_timeout_seconds):
                while seen <= min(limit, _DRAIN_LIMIT):
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    seen += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return  # answered all the same; the connection closes

    def _too_large(self, what: str) -> _Refused:
        limit = self.settings.max_body_bytes
        return _Refused(413, "TooLargeError", f"request body too large: {what}, the limit is {limit} bytes")

    def _slow_body(self) -> _Refused:
        seconds = self.settings.read_timeout_seconds
        return _Refused(
            408,
            "RequestTimeoutError",
            f"the request body did not arrive within {seconds:g} s (--read-timeout)",
        )

    async def _refuse(
        self,
        receive: Receive,
        send: Send,
        headers: Headers,
        status: int,
        type_: str,
        message: str,
        *,
        bearer: bool = False,
    ) -> None:
        if headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers:
            await self._drain(receive, headers, self.settings.max_body_bytes)
        extra = {"www-authenticate": "Bearer"} if bearer else {}
        await answer(send, status, type_, message, extra)

    # -- the handler --------------------------------------------------------------------------

    def _deadline(self, scope: Scope, access: Access) -> float:
        seconds = self.settings.request_timeout_seconds
        if (
            access is Access.APPLICATION_READ
            and scope["path"] == "/v1/routes"
            and b"wait=" in scope.get("query_string", b"")
        ):
            seconds += MAX_LONG_POLL_SECONDS  # a long-poll waits up to that, then answers
        return seconds

    async def _handle_inline(self, scope: Scope, receive: Receive, send: Send, seconds: float) -> None:
        """Run an async handler that can be cancelled; past ``seconds``, answer 503 in its place."""
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(seconds):
                await self.app(scope, receive, watched_send)
        except TimeoutError:
            if not started:
                await self._too_slow(scope, send, seconds)

    async def _too_slow(self, scope: Scope, send: Send, seconds: float) -> None:
        logger.warning("%s %s took longer than %g s: answered 503", scope["method"], scope["path"], seconds)
        await answer(
            send,
            503,
            "RequestTimeoutError",
            f"the request took longer than {seconds:g} s (--request-timeout); try again",
            {"retry-after": str(RETRY_AFTER_SECONDS)},
        )

    async def _handle(self, scope: Scope, receive: Receive, send: Send, seconds: float) -> None:
        """Run the handler; past ``seconds``, answer 503 in its place (or close a started answer)."""
        started = False
        cut = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                return  # the guard answered; what the handler sends now goes nowhere
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        # The handler runs as its own task: a handler blocked in a thread (a slow store) cannot be
        # interrupted, but its client can still be answered on time.
        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait((task,), timeout=seconds)
        if done:
            task.result()
            return
        cut = True
        task.cancel()
        task.add_done_callback(_log_late_failure)
        if not started:
            await self._too_slow(scope, send, seconds)


def _log_late_failure(task: asyncio.Future[None]) -> None:
    # A handler cut at the deadline may still fail later, when no one awaits it: log it.
    if not task.cancelled() and task.exception() is not None:
        logger.error("a request handler cut at its deadline failed", exc_info=task.exception())


async def answer(
    send: Send, status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """Send the JSON error answer and close the connection."""
    payload = json.dumps({"error": {"type": type_, "message": message}}).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "integer"}} for name, text in headers.items()
        }
    return answer


def describe_guard(document: dict[str, Any], settings: ServiceSettings) -> None:
    """Add to the OpenAPI ``document`` what the guard (and the connection limits) may answer to
    any operation: 400, 408, 503 with ``Retry-After``; 401 and 403 to reads when they need a
    credential, 401, 403, 413 and 415 to writes."""
    busy = _error(
        "Too many connections or long-polls, or the request took longer than its deadline",
        **{"Retry-After": "Seconds to wait before trying again"},
    )
    common = {
        "400": _error("Malformed request: its Content-Length, or a body that cannot be parsed"),
        "408": _error("The request's headers or body did not arrive in time (--read-timeout)"),
        "503": busy,
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            access = access_of(method.upper(), path)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            extra = dict(common)
            if access in (Access.READ, Access.APPLICATION_READ) and not settings.reads_open:
                extra["401"] = _error("Missing or wrong read credential")
                extra["403"] = _error("The credential's principal may not read this (role, environment)")
            if method.upper() in _BODY_METHODS and access not in (Access.UNKNOWN, Access.CONSOLE):
                extra["401"] = responses.get("401") or _error("Missing or wrong credentials")
                extra["403"] = _error("The credential's principal lacks the role (in the environment)")
                extra["413"] = _error("Body over the size limit (--max-body-bytes)")
                extra["415"] = _error("Body not sent as application/json")
            for status, description in extra.items():
                responses.setdefault(status, description)
