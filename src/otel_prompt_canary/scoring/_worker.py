"""The background worker that runs slow evaluations (LLM judge, moderation) off the hot path.

One thread reads a bounded queue. :meth:`ScoringWorker.submit` never blocks and never raises: when
the queue is full the response is dropped and counted, because an application must not wait for its
own telemetry. Each evaluation runs like :func:`~otel_prompt_canary.scoring.run_checks` runs a check
(an exception becomes an error outcome) and its outcome goes to the ``on_result`` callback, since the
span of the LLM call has usually ended by then: the instrumentation records a late score as an
evaluation event and a metric. The thread survives failing evaluations and failing callbacks.

:meth:`ScoringWorker.shutdown` stops accepting work, lets the queue drain until a deadline, and
joins the thread; what is still queued then is abandoned and counted. A process forked after the
worker started (gunicorn, multiprocessing) gets a fresh, empty queue and its own thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._outcomes import Check, CheckOutcome, ScoreOutcome, Scorer
from otel_prompt_canary.scoring._response import LLMResponse
from otel_prompt_canary.scoring._runner import evaluate_check, evaluate_score

__all__ = ["LateResultCallback", "ScoringWorker", "WorkerStats"]

_logger = logging.getLogger("otel_prompt_canary.scoring")

#: Receives each late outcome with the response it belongs to; ``value``/``passed`` is None and
#: ``error`` is set when the evaluation failed.
LateResultCallback = Callable[[LLMResponse, "CheckOutcome | ScoreOutcome"], None]

_STOP = object()
_Task = tuple[LLMResponse, "Check | Scorer", bool]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """Counters of a :class:`ScoringWorker` since it was created.

    Attributes:
        submitted: Evaluations accepted into the queue.
        completed: Evaluations run to an outcome (errors included).
        errors: Completed evaluations whose outcome is an error (timeout, HTTP error, bad answer...).
        dropped: Evaluations refused because the queue was full or the worker shut down.
        abandoned: Evaluations still queued when shutdown's deadline passed.
        callback_errors: Calls of ``on_result`` that raised.
        queued: Evaluations waiting now.
    """

    submitted: int
    completed: int
    errors: int
    dropped: int
    abandoned: int
    callback_errors: int
    queued: int


_live_workers: weakref.WeakSet[ScoringWorker] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for worker in list(_live_workers):
        worker._restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ScoringWorker:
    """Runs evaluations in one background thread, fed by a bounded queue.

    Args:
        on_result: Called in the worker thread with ``(response, outcome)`` for every evaluation.
            Keep it short; an exception there is counted and logged, never propagated.
        queue_size: The most evaluations waiting at once; more are dropped.
        thread_name: The worker thread's name.
    """

    def __init__(
        self,
        on_result: LateResultCallback,
        *,
        queue_size: int = 1000,
        thread_name: str = "prompt-canary-scoring",
    ) -> None:
        if not callable(on_result):
            raise InvalidInputError("on_result must be callable")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise InvalidInputError(f"queue_size must be a positive integer, got {queue_size!r}")
        self._on_result = on_result
        self._queue_size = queue_size
        self._thread_name = thread_name
        self._submitted = self._completed = self._errors = 0
        self._dropped = self._abandoned = self._callback_errors = 0
        self._warned: set[str] = set()
        self._closed = False
        self._start()
        _live_workers.add(self)

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._queue: queue.Queue[_Task | object] = queue.Queue(self._queue_size)
        self._abandon = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._queue, self._abandon), name=self._thread_name, daemon=True
        )
        self._thread.start()

    def _restart_after_fork(self) -> None:
        # The parent's thread does not exist in the child and its queued work is the parent's.
        if not self._closed:
            self._start()

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closed

    def submit(self, response: LLMResponse, evaluator: Check | Scorer) -> bool:
        """Queue ``evaluator`` on ``response``; False (and counted) when full or shut down.

        Never blocks and never raises. An evaluator with a ``score`` method is run as a scorer, else
        as a check.
        """
        try:
            is_score = callable(getattr(evaluator, "score", None))
            with self._lock:
                if self._closed:
                    self._dropped += 1
                    return False
                try:
                    self._queue.put_nowait((response, evaluator, is_score))
                except queue.Full:
                    self._dropped += 1
                    return False
                self._submitted += 1
                self._pending += 1
            return True
        except Exception:  # e.g. an evaluator whose attribute lookup raises
            _logger.debug("submit failed", exc_info=True)
            return False

    def _run(self, tasks: queue.Queue[_Task | object], abandon: threading.Event) -> None:
        while True:
            item = tasks.get()
            if item is _STOP:
                return
            if abandon.is_set():
                self._abandon_rest(tasks, 1)
                return
            try:
                self._evaluate(item)  # type: ignore[arg-type]
            except Exception:  # the worker outlives anything a task does
                _logger.debug("scoring task failed", exc_info=True)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._idle.notify_all()

    def _evaluate(self, task: _Task) -> None:
        response, evaluator, is_score = task
        outcome: CheckOutcome | ScoreOutcome = (
            evaluate_score(response, cast(Scorer, evaluator))
            if is_score
            else evaluate_check(response, cast(Check, evaluator))
        )
        with self._lock:
            self._completed += 1
            if outcome.error is not None:
                self._errors += 1
        if outcome.error is not None and outcome.error not in self._warned:
            self._warned.add(outcome.error)
            _logger.warning(
                "evaluation %s failed with %s; further failures of this kind are counted, not logged",
                outcome.name,
                outcome.error,
            )
        try:
            self._on_result(response, outcome)
        except Exception:
            with self._lock:
                self._callback_errors += 1
            _logger.debug("on_result raised for %s", outcome.name, exc_info=True)

    def _abandon_rest(self, tasks: queue.Queue[_Task | object], already: int) -> None:
        count = already
        while True:
            try:
                item = tasks.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                count += 1
        with self._idle:
            self._abandoned += count
            self._pending -= count
            self._idle.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued evaluation has completed; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self, timeout: float = 5.0, *, drain: bool = True) -> bool:
        """Stop accepting work, finish queued evaluations until ``timeout``, and join the thread.

        With ``drain=False`` queued evaluations are abandoned at once (the one running finishes).
        Returns True when the thread has ended. Calling it again is harmless.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            already = self._closed
            self._closed = True
        if not drain:
            self._abandon.set()
        if not already:
            try:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                self._abandon.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            # Past the deadline: whatever is still queued is abandoned once the running task ends.
            self._abandon.set()
            return False
        _live_workers.discard(self)
        return True

    def stats(self) -> WorkerStats:
        """A snapshot of the counters."""
        with self._lock:
            return WorkerStats(
                submitted=self._submitted,
                completed=self._completed,
                errors=self._errors,
                dropped=self._dropped,
                abandoned=self._abandoned,
                callback_errors=self._callback_errors,
                queued=max(0, self._pending),
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"ScoringWorker(queue_size={self._queue_size}, {state})"
