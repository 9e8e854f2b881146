"""Watching the routing flags: the ETag of the route set, and the long-poll behind ``GET /v1/routes``.

Every change of any route bumps that route's ``revision``, so a hash of all routes changes whenever
anything a router cares about changes. Writes made through this process call :meth:`RouteWatch.notify`
and wake long-polls at once. Writes made by other replicas sharing the same database are noticed by
one background task that re-reads the routes every ``poll_seconds``, and only while long-polls wait.

The route set is read once and kept, with its JSON answer already encoded: until this process
changes a route, for up to ``poll_seconds``, every ``GET /v1/routes`` is answered from memory, and
the long-polls woken by one change share one read of the store (started after the change, so none
of them can see the state from before it). A change made by another replica (or by another process
on the same store) is seen within ``poll_seconds``.

Each environment has its own route set, ETag and long-polls: :class:`RouteWatches` holds one
:class:`RouteWatch` per environment the control plane serves. A write wakes them all (a push, say,
brings a new route to every environment), and each answers only if its own routes changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Route, canonical_json

__all__ = ["RouteWatch", "RouteWatches", "RoutesSnapshot", "routes_etag", "routes_reader"]


def routes_etag(routes: list[Route]) -> str:
    """The opaque revision of a set of routes: equal iff every route is the same."""
    payload = canonical_json([r.model_dump(mode="json") for r in routes])
    return "r" + hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class RoutesSnapshot:
    """Every route, sorted by prompt name, their combined revision, and the JSON answer of both."""

    routes: list[Route]
    revision: str
    #: ``{"revision": ..., "routes": [...]}``, encoded once for every request that answers it.
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, routes: list[Route]) -> RoutesSnapshot:
        """The snapshot of ``routes``."""
        ordered = sorted(routes, key=lambda r: r.prompt)
        revision = routes_etag(ordered)
        document = {"revision": revision, "routes": [r.model_dump(mode="json") for r in ordered]}
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return cls(routes=ordered, revision=revision, body=body)

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
        self._generation = 0
        self._changed: asyncio.Future[RoutesSnapshot | None] | None = None
        self._inflight: asyncio.Future[RoutesSnapshot] | None = None
        self._inflight_generation = -1
        self._kept: RoutesSnapshot | None = None
        self._kept_generation = -1
        self._kept_at = 0.0
        self._waiters = 0
        self._poller: asyncio.Task[None] | None = None
        self._closing = False

    def _bind(self) -> asyncio.AbstractEventLoop:
        # asyncio primitives belong to one loop; a test client may run the app on several in turn.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._changed = None
            self._inflight = None
            self._kept = None
            self._poller = None
            self._closing = False
        return loop

    @property
    def waiters(self) -> int:
        """Long-polls waiting for a change now."""
        return self._waiters

    def current(self) -> RoutesSnapshot | None:
        """The routes kept in memory while they are known to be current, else None (no I/O)."""
        loop = self._loop
        if loop is None or self._kept is None or self._kept_generation != self._generation:
            return None
        try:
            if asyncio.get_running_loop() is not loop:
                return None
        except RuntimeError:
            return None
        return self._kept if loop.time() - self._kept_at < self._poll_seconds else None

    def _read(self) -> RoutesSnapshot:
        return RoutesSnapshot.of(self._read_routes())

    async def snapshot(self, *, fresh: bool = False) -> RoutesSnapshot:
        """The current routes: kept in memory until a change here or ``poll_seconds`` pass, else
        read in the thread pool (one read shared by concurrent callers). ``fresh`` reads always."""
        loop = self._bind()
        generation = self._generation
        kept = self._kept
        if (
            not fresh
            and kept is not None
            and self._kept_generation == generation
            and loop.time() - self._kept_at < self._poll_seconds
        ):
            return kept
        inflight = self._inflight
        if inflight is None or inflight.done() or self._inflight_generation != generation:
            inflight = asyncio.ensure_future(self._read_and_keep(generation, loop.time()))
            self._inflight = inflight
            self._inflight_generation = generation
        # shield: a caller that goes away must not cancel the read others are waiting for.
        return await asyncio.shield(inflight)

    async def _read_and_keep(self, generation: int, started: float) -> RoutesSnapshot:
        snap = await run_in_threadpool(self._read)
        if self._generation == generation:  # no change since the read began: it is current
            self._kept, self._kept_generation, self._kept_at = snap, generation, started
        return snap

    async def notify(self) -> None:
        """Say that routes may have changed: the long-polls get the routes read after this call."""
        self._bind()
        self._generation += 1
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            # One read for every waiter, started after the change; each waiter gets its result.
            reading = asyncio.ensure_future(self.snapshot())
            reading.add_done_callback(lambda read: _hand_over(read, changed))

    def _next_change(self, generation: int) -> asyncio.Future[RoutesSnapshot | None]:
        """A future done once the generation has moved past ``generation``: with the routes read
        after the change, or None (then the waiter reads them itself)."""
        loop = self._bind()
        if self._closing or self._generation != generation:
            done: asyncio.Future[RoutesSnapshot | None] = loop.create_future()
            done.set_result(None)
            return done
        if self._changed is None or self._changed.done():
            self._changed = loop.create_future()
        return self._changed

    async def wait_for_change(
        self,
        revision: str,
        timeout: float,
        *,
        gone: Awaitable[object] | None = None,
    ) -> RoutesSnapshot | None:
        """The routes as soon as their revision differs from ``revision``; None after ``timeout``.

        ``gone``, when given, completes when the client disconnects: the wait then ends with None.
        """
        loop = self._bind()
        deadline = loop.time() + timeout
        gone_future = asyncio.ensure_future(gone) if gone is not None else None
        self._waiters += 1
        try:
            found: RoutesSnapshot | None = None
            while True:
                if found is not None:  # the routes read for every waiter after the change
                    if found.revision != revision:
                        return found
                    found = None  # nothing this waiter cares about changed: wait again, from now
                generation = self._generation  # before the read: a change after it wakes us
                snap = await self.snapshot()
                if snap.revision != revision:
                    return snap
                remaining = deadline - loop.time()
                if self._closing or remaining <= 0:
                    return None
                self._ensure_poller(snap.revision)
                # shield: the shared future must outlive a waiter that times out or goes away.
                change = asyncio.shield(self._next_change(generation))
                waiting: set[asyncio.Future[Any]] = {change}
                if gone_future is not None:
                    waiting.add(gone_future)
                await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if not change.done():
                    change.cancel()
                    return None  # timed out, or the client went away
                found = change.result()
        finally:
            self._waiters -= 1
            if gone_future is not None and not gone_future.done():
                gone_future.cancel()

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
                snap = await self.snapshot(fresh=True)
            except Exception:  # the store is down: a waiter sees it on its next read
                continue
            if snap.revision != last:
                last = snap.revision
                await self.notify()
                # What was just read is the state after that change: the waiters need not read again.
                self._kept, self._kept_generation = snap, self._generation

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


def _hand_over(read: asyncio.Future[RoutesSnapshot], changed: asyncio.Future[RoutesSnapshot | None]) -> None:
    """Give the waiters of one change the routes read after it (None when the read failed: each
    waiter then reads, and meets the failure, itself)."""
    if changed.done():
        return
    if read.cancelled() or read.exception() is not None:
        changed.set_result(None)
    else:
        changed.set_result(read.result())


class RouteWatches:
    """One :class:`RouteWatch` per environment served, woken together; one per application."""

    def __init__(
        self,
        read_routes: Callable[[str], list[Route]],
        environments: Sequence[str],
        *,
        poll_seconds: float,
    ) -> None:
        self._watches = {
            environment: RouteWatch(_reader(read_routes, environment), poll_seconds=poll_seconds)
            for environment in environments
        }

    def __getitem__(self, environment: str) -> RouteWatch:
        """The watch of ``environment`` (KeyError when it is not served)."""
        return self._watches[environment]

    def get(self, environment: str) -> RouteWatch | None:
        """The watch of ``environment``, None when it is not served."""
        return self._watches.get(environment)

    @property
    def waiters(self) -> int:
        """Long-polls waiting for a change now, in every environment."""
        return sum(watch.waiters for watch in self._watches.values())

    async def notify(self) -> None:
        """Say that routes may have changed, in any environment (see :meth:`RouteWatch.notify`)."""
        for watch in self._watches.values():
            await watch.notify()

    def notify_threadsafe(self) -> None:
        """:meth:`notify` from any thread."""
        for watch in self._watches.values():
            watch.notify_threadsafe()

    def release(self) -> None:
        """End every long-poll of every environment now (see :meth:`RouteWatch.release`)."""
        for watch in self._watches.values():
            watch.release()

    async def aclose(self) -> None:
        """Stop the background pollers."""
        for watch in self._watches.values():
            await watch.aclose()


def routes_reader(registry: Registry) -> Callable[[str], list[Route]]:
    """What reads the routes of an environment from ``registry``; the default environment is asked
    as registries written before environments know it."""

    def read(environment: str) -> list[Route]:
        if environment == DEFAULT_ENVIRONMENT:
            return registry.list_routes()
        return registry.list_routes(environment=environment)

    return read


def _reader(read_routes: Callable[[str], list[Route]], environment: str) -> Callable[[], list[Route]]:
    return lambda: read_routes(environment)
