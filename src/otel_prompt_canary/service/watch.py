"""Watching the routing flags: the ETag of the route set, and the long-poll behind ``GET /v1/routes``.

Every change of any route bumps that route's ``revision``, so a hash of all routes changes whenever
anything a router cares about changes. Writes made through this process call :meth:`RouteWatch.notify`
and wake long-polls at once. Writes made by other replicas sharing the same database are noticed by
one background task that re-reads the routes every ``poll_seconds``, and only while long-polls wait.

Reads are single-flight per generation: the waiters woken by one change share one read of the store
(started after the change, so none of them can see the state from before it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.registry.models import Route, canonical_json

__all__ = ["RouteWatch", "RoutesSnapshot", "routes_etag"]


def routes_etag(routes: list[Route]) -> str:
    """The opaque revision of a set of routes: equal iff every route is the same."""
    payload = canonical_json([r.model_dump(mode="json") for r in routes])
    return "r" + hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RoutesSnapshot:
    """Every route, sorted by prompt name, and their combined revision."""

    routes: list[Route]
    revision: str

    @property
    def etag(self) -> str:
        """The strong HTTP ETag: the revision in double quotes."""
        return f'"{self.revision}"'


class RouteWatch:
    """Reads the route set and waits for it to change; one per application."""

    def __init__(self, read_routes: Callable[[], list[Route]], *, poll_seconds: float) -> None:
        self._read_routes = read_routes
        self._poll_seconds = poll_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Condition()
        self._generation = 0
        self._inflight: asyncio.Future[RoutesSnapshot] | None = None
        self._inflight_generation = -1
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None
        self._closing = False

    def _bind(self) -> None:
        # asyncio primitives belong to one loop; a test client may run the app on several in turn.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._changed = asyncio.Condition()
            self._inflight = None
            self._poller = None
            self._closing = False

    def _read(self) -> RoutesSnapshot:
        routes = sorted(self._read_routes(), key=lambda r: r.prompt)
        return RoutesSnapshot(routes=routes, revision=routes_etag(routes))

    async def snapshot(self) -> RoutesSnapshot:
        """The current routes, read in the threadpool (shared with concurrent readers)."""
        self._bind()
        generation = self._generation
        inflight = self._inflight
        if inflight is None or inflight.done() or self._inflight_generation != generation:
            inflight = asyncio.ensure_future(run_in_threadpool(self._read))
            self._inflight = inflight
            self._inflight_generation = generation
        # shield: a caller that goes away must not cancel the read others are waiting for.
        return await asyncio.shield(inflight)

    async def notify(self) -> None:
        """Say that routes may have changed: every long-poll re-reads them now."""
        self._bind()
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    async def wait_for_change(
        self,
        revision: str,
        timeout: float,
        *,
        gone: Callable[[], object] | None = None,
    ) -> RoutesSnapshot | None:
        """The routes as soon as their revision differs from ``revision``; None after ``timeout``.

        ``gone`` is an async callable checked about once a second; when it returns True (the client
        disconnected) the wait ends early with None.
        """
        self._bind()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters += 1
        try:
            while True:
                generation = self._generation  # before the read: a change after it wakes us
                snap = await self.snapshot()
                if snap.revision != revision:
                    return snap
                self._ensure_poller(snap.revision)
                while not await self._wait_generation(generation, min(deadline - loop.time(), 1.0)):
                    if loop.time() >= deadline or (gone is not None and await _call(gone)):
                        return None
                if self._closing:
                    return None
        finally:
            self._waiters -= 1

    async def _wait_generation(self, generation: int, timeout: float) -> bool:
        """True if the generation moved past ``generation`` within ``timeout`` seconds."""
        if self._closing or self._generation != generation:
            return True
        if timeout <= 0:
            return False
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._closing or self._generation != generation),
                    timeout,
                )
            except TimeoutError:
                return False
        return True

    def _ensure_poller(self, seen: str) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.ensure_future(self._poll(seen))

    async def _poll(self, last: str) -> None:
        """While anyone waits, re-read the store to see changes made by other replicas.

        ``last`` is the revision a waiter has just read: anything different is a change.
        """
        while self._waiters > 0:
            await asyncio.sleep(self._poll_seconds)
            try:
                snap = await self.snapshot()
            except Exception:  # the store is down: a waiter sees it on its next read
                continue
            if snap.revision != last:
                last = snap.revision
                await self.notify()

    def notify_threadsafe(self) -> None:
        """:meth:`notify` from any thread (the rollout controller's, say)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.notify()))

    def release(self) -> None:
        """End every long-poll now (they answer 304): the server is shutting down.

        Safe to call from any thread, including a signal handler.
        """
        self._closing = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.notify()))

    async def aclose(self) -> None:
        """Stop the background poller."""
        poller, self._poller = self._poller, None
        if poller is not None and not poller.done():
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller


async def _call(check: Callable[[], object]) -> bool:
    result = check()
    if asyncio.iscoroutine(result):
        result = await result
    return bool(result)
