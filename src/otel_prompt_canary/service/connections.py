"""Connection limits, below the application: how many connections one process keeps open, and how
long a client may take to send a request's headers.

uvicorn's HTTP/1.1 protocol (h11) keeps a connection for as long as its client wants, even one that
never sends a full request, and accepts as many as the operating system lets it. The protocol made
by :func:`guarded_protocol` adds two rules:

- beyond ``max_connections`` open connections, a new connection is answered ``503`` with
  ``Retry-After`` and closed as soon as its request's headers have arrived (it holds no more than
  that while it waits for them);
- a request's headers must arrive within ``read_timeout_seconds`` of its first byte (or of the
  connection's opening): beyond, the client gets ``408`` and the connection is closed. Idle
  keep-alive connections between requests are closed by uvicorn's own keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from otel_prompt_canary.service.limits import RETRY_AFTER_SECONDS, answer
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["guarded_protocol"]


def _raw_answer(status: int, reason: str, type_: str, message: str) -> bytes:
    body = json.dumps({"error": {"type": type_, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a deadline for each request's headers."""

    max_connections: ClassVar[int]
    head_timeout_seconds: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over_capacity = len(self.connections) >= self.max_connections
        super().connection_made(transport)
        if over_capacity:
            self.app = _over_capacity  # this connection's request is answered 503
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """Start the headers' deadline while a request's headers are awaited, stop it once they came."""
        awaiting_head = self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE
        if not awaiting_head:
            self._stop_head_deadline()
        elif self._head_deadline is None and not self.transport.is_closing():
            self._head_deadline = self.loop.call_later(self.head_timeout_seconds, self._head_too_slow)

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        message = (
            f"the request's headers did not arrive within {self.head_timeout_seconds:g} s (--read-timeout)"
        )
        self.transport.write(_raw_answer(408, "Request Timeout", "RequestTimeoutError", message))
        self.transport.close()


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    await answer(
        send,
        503,
        "CapacityError",
        "the control plane has too many open connections (--max-connections); try again",
        {"retry-after": str(RETRY_AFTER_SECONDS)},
    )


def guarded_protocol(settings: ServiceSettings) -> type[H11Protocol]:
    """The HTTP protocol class to give uvicorn (``Config(http=...)``) for ``settings``' limits."""
    return type(
        "GuardedH11Protocol",
        (_GuardedH11Protocol,),
        {
            "max_connections": settings.max_connections,
            "head_timeout_seconds": settings.read_timeout_seconds,
        },
    )
