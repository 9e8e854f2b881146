"""The request body guard: size limit and content type, enforced before anything parses the body.

A pure ASGI middleware. It reads the body of a write itself, counting bytes whether the client sent
``Content-Length`` or chunks, answers 413 as soon as the limit is crossed, and otherwise hands the
buffered body to the application. Bodies are small (the default limit is 1 MiB), so buffering costs
nothing worth measuring.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestBodyGuard"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: Past the limit, up to this many bytes are still read and dropped so that the client, which is
#: usually still sending, reads the 413 instead of a reset connection.
_DRAIN_LIMIT = 16 * 1024 * 1024


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestBodyGuard:
    """Refuse bodies over ``max_body_bytes`` (413) and bodies that are not JSON (415)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _answer(send, 400, "InvalidInputError", f"invalid Content-Length {declared!r}")
                return
            if int(declared) > self.max_body_bytes:
                await self._drain(receive, limit=int(declared))
                await self._too_large(send, f"{int(declared)} bytes")
                return

        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            more = bool(message.get("more_body", False))
            if size > self.max_body_bytes:
                if more:
                    await self._drain(receive, limit=_DRAIN_LIMIT - size)
                await self._too_large(send, f"more than {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)

        body = b"".join(chunks)
        content_type = headers.get("content-type", "")
        if body and not _is_json(content_type):
            shown = content_type or "none"
            await _answer(
                send,
                415,
                "InvalidInputError",
                f"the body must be JSON: send it with 'Content-Type: application/json' (got {shown})",
            )
            return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Receive, *, limit: int) -> None:
        """Read and drop what the client is still sending, up to ``limit`` bytes."""
        seen = 0
        while seen <= min(limit, _DRAIN_LIMIT):
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _too_large(self, send: Send, what: str) -> None:
        await _answer(
            send,
            413,
            "TooLargeError",
            f"request body too large: {what}, the limit is {self.max_body_bytes} bytes",
            close=True,
        )


async def _answer(send: Send, status: int, type_: str, message: str, *, close: bool = False) -> None:
    payload = json.dumps({"error": {"type": type_, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:  # the rest of an oversized body is not worth reading
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
