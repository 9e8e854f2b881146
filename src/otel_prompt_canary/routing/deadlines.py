"""Deadlines of the control plane client: a request still running at its deadline is cut off.

urllib3's timeouts bound each read of the socket, not the answer: a server, or a proxy in front of
it, that sends one byte every few seconds keeps a request (and the router's updates) alive for
ever. Here every request gets a total deadline::

    with deadline(seconds) as request:   # on the thread that sends the request
        ...                              # connections attach themselves with attach(connection)
    request.expired                      # True when the deadline cut the request off

One daemon thread, started on first use, watches every deadline of the process. At a deadline it
shuts down the socket of the connection the request runs on, which wakes the reading thread at
once with an error; the caller then reads ``expired`` to say why. A connection belongs to one
request at a time: a connection that went back to the pool and serves another request is never
shut down for the first one's deadline.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Final, Protocol

__all__ = ["Deadline", "attach", "deadline", "shut_down"]


class _Connection(Protocol):
    """What a deadline needs of a connection (urllib3's connections have it)."""

    sock: object


def shut_down(connection: _Connection) -> None:
    """Shut the connection's socket down, waking a thread blocked reading it; no error if closed.

    An SSLSocket is shut down as a plain socket: its own ``shutdown()`` also drops its TLS state,
    which the thread reading it may be using. A TLS-in-TLS tunnel wraps the socket.
    """
    sock = connection.sock
    raw = sock if isinstance(sock, socket.socket) else getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        with suppress(OSError):  # already closed
            socket.socket.shutdown(raw, socket.SHUT_RDWR)


class Deadline:
    """The deadline of one request: ``seconds`` from when it was set."""

    __slots__ = ("_connection", "at", "done", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: The time.monotonic() instant it falls at.
        self.at = time.monotonic() + seconds
        #: True once the deadline cut the request off (the answer, if any, is not to be trusted).
        self.expired = False
        #: True once the request ended (the deadline no longer acts).
        self.done = False
        self._connection: _Connection | None = None

    def __repr__(self) -> str:
        state = "expired" if self.expired else "done" if self.done else "running"
        return f"Deadline({self.seconds:g} s, {state})"


class _Watchdog:
    """The deadlines of the process in a heap, and the thread that acts on them."""

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.heap: list[tuple[float, int, Deadline]] = []
        self.order = itertools.count()  # ties never compare two Deadlines
        self.thread: threading.Thread | None = None
        #: Which deadline each connection serves now (by id: connections are not all hashable).
        self.owners: dict[int, Deadline] = {}

    def add(self, item: Deadline) -> None:
        with self.condition:
            heapq.heappush(self.heap, (item.at, next(self.order), item))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="prompt-canary-deadlines", daemon=True)
                self.thread.start()
            elif self.heap[0][2] is item:
                self.condition.notify()  # sooner than what the thread waits for

    def attach(self, item: Deadline, connection: _Connection) -> None:
        with self.condition:
            if item.expired:
                raise TimeoutError(f"the request's deadline of {item.seconds:g} s has passed")
            previous = item._connection
            if previous is not None and self.owners.get(id(previous)) is item:
                del self.owners[id(previous)]
            item._connection = connection
            self.owners[id(connection)] = item

    def finish(self, item: Deadline) -> None:
        with self.condition:
            item.done = True
            connection, item._connection = item._connection, None
            if connection is not None and self.owners.get(id(connection)) is item:
                del self.owners[id(connection)]
            # Left in the heap: dropped when it comes up, without waking the thread now.

    def run(self) -> None:
        with self.condition:
            while True:
                if not self.heap:
                    self.condition.wait()
                    continue
                at, _, item = self.heap[0]
                if item.done:
                    heapq.heappop(self.heap)
                    continue
                wait = at - time.monotonic()
                if wait > 0:
                    self.condition.wait(wait)
                    continue
                heapq.heappop(self.heap)
                item.expired = True
                connection = item._connection
                if connection is not None and self.owners.get(id(connection)) is item:
                    shut_down(connection)


_WATCHDOG: Final = [_Watchdog()]
_current = threading.local()


def _after_fork_in_child() -> None:
    # The watchdog's thread does not exist in a child, and its lock may have been held at the fork.
    _WATCHDOG[0] = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Give the request sent by this thread within the block ``seconds`` to complete.

    Connections used in the block must call :func:`attach`. The block is not interrupted itself:
    its blocking reads fail once the socket is shut down; check ``expired`` afterwards.
    """
    item = Deadline(seconds)
    watchdog = _WATCHDOG[0]
    watchdog.add(item)
    outer = getattr(_current, "deadline", None)
    _current.deadline = item
    try:
        yield item
    finally:
        _current.deadline = outer
        watchdog.finish(item)


def attach(connection: _Connection) -> None:
    """Put ``connection`` under the deadline of the request this thread is sending, if any.

    Raises :class:`TimeoutError` when that deadline has already passed (connecting took it all).
    """
    item: Deadline | None = getattr(_current, "deadline", None)
    if item is not None:
        _WATCHDOG[0].attach(item, connection)
