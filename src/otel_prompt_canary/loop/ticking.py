"""A background thread that calls ``tick()`` on an interval: the rollout controller, the drift
monitor and the drift notifier each run on one.

A tick that raises is logged and the next one runs on time (the store may be down for a while: the
loop must outlive it). :meth:`Ticking.wake` runs the next tick at once, :meth:`Ticking.stop` ends the
thread after the tick in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Self

__all__ = ["Ticking", "TicksInBackground"]

log = logging.getLogger(__name__)


class Ticking:
    """Calls ``tick`` every ``interval_seconds`` on a daemon thread named ``name``, once started."""

    def __init__(self, name: str, interval_seconds: float, tick: Callable[[], object]) -> None:
        self.name = name
        self.interval_seconds = interval_seconds
        self._tick = tick
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; nothing if it runs already. The first tick comes after one interval."""
        if self.running:
            return
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tick now instead of at the end of the current interval."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds for the tick in progress."""
        self._stopping = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_seconds)
            self._wake.clear()
            if self._stopping:
                return
            try:
                self._tick()
            except Exception:  # the store is down, say: try again at the next tick
                log.exception("%s: tick failed", self.name)


class TicksInBackground:
    """What a class ticking on a :class:`Ticking` (its ``_ticking``) offers its callers: ``running``,
    ``start()``, ``wake()``, ``stop()`` and use as a context manager. A subclass that has something
    to finish once the thread ended (store what is pending, close a client) overrides
    :meth:`_stopped`."""

    _ticking: Ticking

    @property
    def running(self) -> bool:
        """True while the background thread runs."""
        return self._ticking.running

    def start(self) -> Self:
        """Tick every ``interval_seconds`` on a daemon thread until :meth:`stop`."""
        self._ticking.start()
        return self

    def wake(self) -> None:
        """Tick now instead of at the end of the current interval."""
        self._ticking.wake()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread, waiting up to ``timeout`` seconds for the tick in progress."""
        self._ticking.stop(timeout)
        self._stopped()

    def _stopped(self) -> None:
        """Called by :meth:`stop` once the thread has ended."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
