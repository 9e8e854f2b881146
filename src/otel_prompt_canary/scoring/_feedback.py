"""The pure pieces of user feedback: validating a feedback score, remembering which prompt answered.

``record_feedback(response_id, score)`` arrives long after the LLM call, often from another request
handler. To tag it with the prompt, version and cohort that produced the response, the
instrumentation remembers them per response id in a :class:`FeedbackIndex`, a bounded LRU map: memory
stays flat however much traffic flows, and feedback on a response older than the last ``maxsize``
ones is simply unattributed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from otel_prompt_canary.errors import InvalidInputError

# Shared with the router and the control plane (feedback keys, /v1/feedback): defined there, re-exported here.
from otel_prompt_canary.feedback import FEEDBACK_SCORE_NAME, validate_feedback_score
from otel_prompt_canary.scoring._response import LLMResponse

__all__ = [
    "FEEDBACK_SCORE_NAME",
    "BoundedLRU",
    "FeedbackContext",
    "FeedbackIndex",
    "validate_feedback_score",
]

K = TypeVar("K")
V = TypeVar("V")


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
