"""The pure pieces of user feedback: validating a feedback score, remembering which prompt answered.

``record_feedback(response_id, score)`` arrives long after the LLM call, often from another request
handler. To tag it with the prompt, version and cohort that produced the response, the
instrumentation remembers them per response id in a :class:`FeedbackIndex`, a bounded LRU map: memory
stays flat however much traffic flows, and feedback on a response older than the last ``maxsize``
ones is simply unattributed.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring._response import LLMResponse

__all__ = [
    "FEEDBACK_SCORE_NAME",
    "BoundedLRU",
    "FeedbackContext",
    "FeedbackIndex",
    "validate_feedback_score",
]

#: The score name user feedback is recorded under (``gen_ai.evaluation.name``).
FEEDBACK_SCORE_NAME = "user_feedback"

K = TypeVar("K")
V = TypeVar("V")


def validate_feedback_score(score: float | bool, *, low: float = 0.0, high: float = 1.0) -> float:
    """``score`` as a float in [low, high]; a bool is a thumbs up (1.0) or down (0.0).

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for anything else: a string, NaN,
    an infinity, or a number out of range (it is not clamped, since that would hide a caller's bug).
    """
    if isinstance(score, bool):
        return high if score else low
    if not isinstance(score, (int, float)):
        raise InvalidInputError(f"feedback score must be a number or a bool, got {type(score).__name__}")
    value = float(score)
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInputError(f"feedback score must be in [{low:g}, {high:g}], got {score!r}")
    return value


class BoundedLRU(Generic[K, V]):
    """A thread-safe mapping that keeps the ``maxsize`` most recently used entries."""

    __slots__ = ("_data", "_lock", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise InvalidInputError(f"maxsize must be a positive integer, got {maxsize!r}")
        self._maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def maxsize(self) -> int:
        """The most entries kept."""
        return self._maxsize

    def put(self, key: K, value: V) -> None:
        """Store ``value`` under ``key`` as the most recent entry, evicting the oldest when full."""
        with self._lock:
            data = self._data
            data[key] = value
            data.move_to_end(key)
            if len(data) > self._maxsize:
                data.popitem(last=False)

    def get(self, key: K) -> V | None:
        """The value under ``key`` (marking it recently used), or None."""
        with self._lock:
            try:
                self._data.move_to_end(key)
            except KeyError:
                return None
            return self._data[key]

    def pop(self, key: K) -> V | None:
        """Remove and return the value under ``key``, or None."""
        with self._lock:
            return self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return f"BoundedLRU(maxsize={self._maxsize}, size={len(self._data)})"


@dataclass(frozen=True, slots=True)
class FeedbackContext:
    """What feedback on one response is attributed to."""

    prompt_name: str | None
    prompt_version: str | int | None
    cohort: str | None


class FeedbackIndex:
    """Remembers prompt, version and cohort of recent responses by response id (bounded LRU)."""

    __slots__ = ("_entries",)

    def __init__(self, maxsize: int = 10_000) -> None:
        self._entries: BoundedLRU[str, FeedbackContext] = BoundedLRU(maxsize)

    def remember(self, response: LLMResponse) -> None:
        """Remember ``response``'s prompt, version and cohort; a no-op without a response id or prompt."""
        if response.response_id and response.prompt_name:
            self._entries.put(
                response.response_id,
                FeedbackContext(response.prompt_name, response.prompt_version, response.cohort),
            )

    def lookup(self, response_id: str) -> FeedbackContext | None:
        """The context of ``response_id``, or None when it is unknown or was evicted."""
        return self._entries.get(response_id)

    def __len__(self) -> int:
        return len(self._entries)
