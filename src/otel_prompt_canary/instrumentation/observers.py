"""In-process observers of every instrumented LLM call, and user feedback by response id.

A listener added with :func:`add_observation_listener` is called after each call (and after each late
score, such as a sampled LLM judge's or :func:`record_feedback`'s) with one :class:`Observation`. It
runs in the application's thread (or the judge's worker thread for late scores): keep it fast. A
listener that raises is logged and ignored; it never reaches the application.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from otel_prompt_canary.instrumentation._active import active_runtime

if TYPE_CHECKING:
    from otel_prompt_canary.scoring import ScoringResults

__all__ = [
    "Observation",
    "ObservationListener",
    "add_observation_listener",
    "record_feedback",
    "remove_observation_listener",
]

logger = logging.getLogger("otel_prompt_canary.instrumentation")


@dataclass(frozen=True, slots=True)
class Observation:
    """One instrumented LLM call (or one late score of it).

    ``prompt_name``/``version``/``cohort``/``rollout_id`` are None for a call of no known prompt.
    ``results`` holds the check and score outcomes (empty for a failed call, whose ``error_type`` is
    set). ``late`` is True for a score delivered after the call ended.
    """

    prompt_name: str | None
    version: str | None
    cohort: str | None
    rollout_id: str | None
    results: ScoringResults
    response_id: str | None = None
    error_type: str | None = None
    duration_s: float | None = None
    late: bool = False


ObservationListener = Callable[[Observation], object]


class Listeners:
    """The registered listeners, as an immutable tuple swapped under a lock (readers take no lock)."""

    __slots__ = ("_lock", "items")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: tuple[ObservationListener, ...] = ()

    def add(self, listener: ObservationListener) -> None:
        with self._lock:
            self.items = (*self.items, listener)

    def remove(self, listener: ObservationListener) -> None:
        with self._lock:
            self.items = tuple(item for item in self.items if item is not listener)

    def notify(self, observation: Observation) -> None:
        """Call every listener; an exception of one is logged and the others still run."""
        for listener in self.items:
            try:
                listener(observation)
            except Exception:
                logger.warning("an observation listener raised; ignoring it", exc_info=True)


#: The process's listeners, shared by every instrumentation.
LISTENERS: Final = Listeners()


def add_observation_listener(listener: ObservationListener) -> None:
    """Call ``listener`` with an :class:`Observation` after each instrumented LLM call."""
    if not callable(listener):
        raise TypeError(f"an observation listener must be callable, not {type(listener).__name__}")
    LISTENERS.add(listener)


def remove_observation_listener(listener: ObservationListener) -> None:
    """Stop calling ``listener`` (no error when it was not added)."""
    LISTENERS.remove(listener)


def record_feedback(response_id: str, score: float | bool, *, name: str | None = None) -> bool:
    """Record a user's feedback on the response ``response_id`` (a thumbs up/down or a 0..1 score).

    The score is attributed to the prompt, version and cohort that produced the response, if the
    response is among the last ``feedback_capacity`` ones this process saw, and recorded as a
    ``gen_ai.evaluation.result`` event and a ``prompt_canary.score`` data point named ``name``
    (default ``user_feedback``). Returns True when the response was found. Raises
    :class:`~otel_prompt_canary.errors.InvalidInputError` for a score that is not a bool or a
    number in [0, 1].
    """
    # Imported here: scoring is loaded when instrumenting, not when an application imports this package.
    from otel_prompt_canary.scoring import (
        FEEDBACK_SCORE_NAME,
        ScoreOutcome,
        validate_evaluation_name,
        validate_feedback_score,
    )

    value = validate_feedback_score(score)
    evaluation = validate_evaluation_name(name if name is not None else FEEDBACK_SCORE_NAME)
    runtime = active_runtime()
    if runtime is None or runtime.feedback is None or not isinstance(response_id, str):
        return False
    identity = runtime.feedback.get(response_id)
    if identity is None:
        return False
    runtime.late_outcome(identity, ScoreOutcome(evaluation, value), response_id=response_id)
    return True
