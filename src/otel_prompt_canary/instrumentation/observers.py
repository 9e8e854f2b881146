"""In-process observers of every instrumented LLM call, and user feedback by feedback key or response id.

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
    from otel_prompt_canary.instrumentation._runtime import Runtime
    from otel_prompt_canary.scoring import CheckOutcome, ScoreOutcome, ScoringResults

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


def record_feedback(target: str, score: float | bool, *, name: str | None = None) -> bool:
    """Record a user's feedback on one answer: ``target`` is the call's feedback key, or its response id.

    - a **feedback key** (``Selection.feedback_key``, stored with the answer) works in any
      instrumented process: the feedback counts in the next in-app report to the control plane,
      in the key's rollout and cohort. A key that is forged, altered or expired is a counted drop
      (``prompt_canary.samples.dropped``) and returns False;
    - a **response id** works in the process that made the call, for one of its last
      ``feedback_capacity`` responses; an unknown id returns False.

    ``score`` is a bool or a number in [0, 1]; :func:`otel_prompt_canary.feedback.feedback_signal`
    says what it counts as: a number, or a bool with no ``name``, is the score ``name`` (default
    ``user_feedback``, a bool as 1.0 or 0.0); a bool with a ``name`` is the check ``name``. It is
    recorded like a late score: a ``gen_ai.evaluation.result`` log record and a metric data point.
    Returns True when recorded. Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for a
    score or name that is not valid.
    """
    # Imported here: scoring is loaded when instrumenting, not when an application imports this package.
    from otel_prompt_canary.feedback import feedback_signal, is_feedback_key
    from otel_prompt_canary.scoring import CheckOutcome, ScoreOutcome

    signal = feedback_signal(score, name)
    outcome: CheckOutcome | ScoreOutcome
    if isinstance(signal.value, bool):
        outcome = CheckOutcome(signal.name, signal.value)
    else:
        outcome = ScoreOutcome(signal.name, signal.value)
    runtime = active_runtime()
    if runtime is None or not isinstance(target, str):
        return False
    if is_feedback_key(target):
        return _record_by_key(runtime, target, outcome)
    if runtime.feedback is None:
        return False
    identity = runtime.feedback.get(target)
    if identity is None:
        return False
    runtime.late_outcome(identity, outcome, response_id=target)
    return True


def _record_by_key(runtime: Runtime, key: str, outcome: CheckOutcome | ScoreOutcome) -> bool:
    from otel_prompt_canary.errors import FeedbackKeyError
    from otel_prompt_canary.feedback import FeedbackKeys
    from otel_prompt_canary.routing.control_planes import control_planes

    # Any credential this process reports with may have signed the key: the instrumentation's and
    # each router's (the key's router may have been given its own).
    credentials = [runtime.config.registry_token, *(plane.token for plane in control_planes())]
    keys = FeedbackKeys(credentials, lifetime_seconds=runtime.config.feedback_key_lifetime)
    try:
        found = keys.read(key)
    except FeedbackKeyError as exc:
        logger.info("feedback not recorded: %s", exc)
        if runtime.reporter is not None:
            runtime.reporter.drop_samples(f"feedback_{exc.reason}")
        return False
    identity = (found.prompt, str(found.version), found.cohort, found.rollout_id)
    runtime.late_outcome(identity, outcome)
    return True
