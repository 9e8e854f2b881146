"""Which responses a costly evaluation (LLM judge, moderation) looks at.

A :class:`Sampler` keeps a fraction ``rate`` of responses. With a response id the decision is a pure
function of (salt, id): the same response is always in or always out, so a replay of recorded traffic
samples the same responses, and several processes agree. The hash is BLAKE2b, not Python's ``hash``
(which changes per process). Without an id the decision is random.
"""

from __future__ import annotations

import hashlib
import random

from otel_prompt_canary.errors import InvalidInputError

__all__ = ["Sampler"]

_SCALE = 1 << 64


class Sampler:
    """Keeps a fraction ``rate`` in [0, 1] of responses.

    Args:
        rate: The fraction to keep; 0 keeps none, 1 keeps all.
        salt: Mixed into the hash, so that two evaluations sampling at the same rate pick
            independent sets of responses (the plan uses the evaluation's name).
        seed: Seeds the random choice for responses without an id (for reproducible tests).
    """

    __slots__ = ("_random", "_rate", "_salt", "_threshold")

    def __init__(self, rate: float, *, salt: str = "", seed: int | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise InvalidInputError(f"sample rate must be a number in [0, 1], got {rate!r}")
        self._rate = float(rate)
        self._threshold = int(self._rate * _SCALE)
        self._salt = salt.encode() + b"\x00"
        self._random = random.Random(seed)

    @property
    def rate(self) -> float:
        """The fraction of responses kept."""
        return self._rate

    def should_sample(self, response_id: str | None = None) -> bool:
        """True when the response with this id (None: unknown) is to be evaluated."""
        if self._rate >= 1.0:
            return True
        if self._rate <= 0.0:
            return False
        if response_id:
            digest = hashlib.blake2b(self._salt + response_id.encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big") < self._threshold
        return self._random.random() < self._rate

    def __repr__(self) -> str:
        return f"Sampler({self._rate:g})"
