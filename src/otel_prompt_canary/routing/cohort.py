"""Cohort assignment: which units of traffic a rollout sends to the canary.

The assignment is a pure function of the rollout salt (the rollout's ``rollout_id``), the unit key
(a user, session or account id chosen by the application) and the canary weight in basis points
(0..10000). To reimplement it in another language:

1. ``data`` = the UTF-8 bytes of ``rollout_id + ":" + unit_key``;
2. ``digest`` = SHA-256 of ``data`` (32 bytes);
3. ``bucket`` = the first 8 bytes of ``digest`` read as an unsigned big-endian 64-bit integer,
   modulo 10000 (so ``0 <= bucket < 10000``);
4. the unit is in the ``canary`` cohort iff ``bucket < canary_weight_bp``, else in ``stable``.

Properties that follow from it:

- sticky: the same unit gets the same cohort for as long as the rollout and its weight stay the same;
- monotone in weight: a unit in the canary at 5% (500 bp) is still in it at 20% (2000 bp), because
  its bucket does not change while the weight grows;
- independent across rollouts: a new rollout has a new salt, so the units that saw one canary are
  not systematically the ones that see the next;
- uniform: buckets are uniform over 0..9999 (the modulo bias of 2**64 mod 10000 is below 1e-15).

Test vectors (``bucket(rollout_id, unit_key)``)::

    bucket("ro_test", "user-1")     == 3462
    bucket("ro_test", "user-2")     == 5453
    bucket("rollout-42", "alice")   == 4844
    bucket("ro_test", "élève")      == 2502

Without a unit key there is nothing to be sticky to: each call is assigned at random, canary with
probability ``canary_weight_bp / 10000``. Strings that are not valid UTF-8 (lone surrogates) are
encoded with the ``surrogatepass`` error handler; other unit keys are converted with ``str()``.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Literal

__all__ = [
    "BUCKETS",
    "CANARY",
    "STABLE",
    "Cohort",
    "assign_cohort",
    "bucket",
    "is_canary",
    "unit_key_bytes",
]

#: The number of buckets; weights are in basis points, one bucket per basis point.
BUCKETS = 10_000

Cohort = Literal["stable", "canary"]
STABLE: Cohort = "stable"
CANARY: Cohort = "canary"

_U64 = struct.Struct(">Q")


def unit_key_bytes(unit_key: object) -> bytes:
    """The UTF-8 bytes hashed for ``unit_key`` (``str()`` of non-strings, lone surrogates kept)."""
    text = unit_key if isinstance(unit_key, str) else str(unit_key)
    return text.encode("utf-8", "surrogatepass")


def bucket(rollout_id: str, unit_key: str) -> int:
    """The bucket (0..9999) of ``unit_key`` in the rollout ``rollout_id``."""
    digest = hashlib.sha256(unit_key_bytes(rollout_id) + b":" + unit_key_bytes(unit_key)).digest()
    value: int = _U64.unpack_from(digest)[0]
    return value % BUCKETS


def is_canary(rollout_id: str, unit_key: str, canary_weight_bp: int) -> bool:
    """True iff ``unit_key`` falls in the canary of rollout ``rollout_id`` at ``canary_weight_bp``."""
    return bucket(rollout_id, unit_key) < canary_weight_bp


def assign_cohort(rollout_id: str, unit_key: str, canary_weight_bp: int) -> Cohort:
    """``"canary"`` or ``"stable"``: the cohort of ``unit_key`` (see the module docstring)."""
    return CANARY if is_canary(rollout_id, unit_key, canary_weight_bp) else STABLE
