"""The base of route sources: a daemon thread that keeps a :class:`RouteCache` up to date.

A source reads the registry in a loop (:meth:`RouteSource.poll_once`). On an error it keeps the
cache as it is (the last known state), records the error, waits with capped exponential backoff and
tries again; it logs once when the registry becomes unreachable and once when it is back, not on
every retry. The backoff delay counts from the start of the failed attempt: an attempt that failed
at its deadline has waited long enough, and the next one starts at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import final

from otel_prompt_canary.routing.cache import RouteCache

__all__ = ["Backoff", "RouteSource"]

logger = logging.getLogger("otel_prompt_canary.routing")


@final
class Backoff:
    """Capped exponential backoff with jitter: ``initial``, ``2 * initial``... up to ``maximum``.

    Each delay is drawn from ``[(1 - jitter) * d, d]`` so that a fleet of routers does not retry in
    step after an outage.
    """

    def __init__(self, initial: float = 0.2, maximum: float = 5.0, *, jitter: float = 0.2) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._failures = 0
        self._random = random.Random()  # not the application's generator

    def next_delay(self) -> float:
        """The delay before the next attempt after one more failure."""
        delay = min(self.maximum, self.initial * 2.0 ** min(self._failures, 32))
        self._failures += 1
        return delay * self._random.uniform(1.0 - self.jitter, 1.0)

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self._failures = 0

    def __repr__(self) -> str:
        return f"Backoff(initial={self.initial}, maximum={self.maximum}, jitter={self.jitter})"


class RouteSource:
    """Feeds a :class:`RouteCache` from a background daemon thread until :meth:`close`."""

    def __init__(self, cache: RouteCache, *, description: str, backoff: Backoff | None = None):
        self.cache = cache
        #: Where routes come from, for messages (a URL or a store description).
        self.description = description
        self._backoff = backoff or Backoff()
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"prompt-canary-routes {description}", daemon=True
        )

    @property
    def thread(self) -> threading.Thread:
        """The background thread (daemon; joined by :meth:`close`)."""
        return self._thread

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._stop.is_set()

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread, wait for it up to ``timeout`` seconds, and release resources."""
        self._stop.set()
        self._interrupt()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("route source %s did not stop within %.1f s", self.description, timeout)
        else:
            self._release()

    def poll_once(self) -> float:
        """Read the registry once, apply what changed; return the delay before the next read.

        Raise on any failure: the loop keeps the last known state and retries with backoff.
        Subclasses implement it.
        """
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Unblock a read in progress so that :meth:`close` is prompt (optional)."""

    def _release(self) -> None:
        """Release connections once the thread has stopped (optional)."""

    def _wait(self, delay: float) -> None:
        if delay > 0:
            self._stop.wait(delay)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                delay = self.poll_once()
            except Exception as exc:
                if self._stop.is_set():
                    break
                message = f"{type(exc).__name__}: {exc}"
                self.cache.record_error(message)
                delay = self._backoff.next_delay() - (time.monotonic() - started)
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "cannot read routes from %s (%s); keeping the last known routes and "
                        "retrying with backoff",
                        self.description,
                        message,
                    )
                else:
                    logger.debug("routes from %s still unavailable: %s", self.description, message)
            else:
                self._backoff.reset()
                self.cache.record_success()
                if self._failing:
                    self._failing = False
                    logger.info("reading routes from %s again", self.description)
            self._wait(delay)
