"""User feedback from anywhere: the feedback key of a call, and what one piece of feedback counts as.

**The key.** ``Selection.feedback_key`` (and the LLM span's ``prompt_canary.feedback.key``) names the
prompt, version, cohort and rollout of one call and when the key was issued, so that feedback given
later, in any process, counts in the right rollout and cohort::

    pcfk.<payload>.<tag>        e.g. pcfk.AWZ3x4oBAAAAAg1zdXBwb3J0LXJlcGx5EGE4ZjM....Jq1vY2Vh8KX0cQ1mO1a0xA

- ``payload``: base64url (no padding) of: format ``1`` (1 byte), issue time (Unix seconds, 4 bytes),
  cohort (1 byte: 0 stable, 1 canary), version (4 bytes), then the prompt name and the rollout id,
  each as 1 byte of length and UTF-8;
- ``tag``: base64url of the first 16 bytes of ``HMAC-SHA256(k, "pcfk2" + payload)``, where ``k`` is
  ``HMAC-SHA256(SHA-256(credential), "otel-prompt-canary feedback key v2")`` and ``credential`` is
  the application's **reporting credential** (``OTEL_PROMPT_CANARY_TOKEN``). The control plane needs
  only the credential's SHA-256, which is what a credentials file holds (docs/access.md).

Keys of format ``1`` (made by earlier releases: ``k = HMAC-SHA256(credential, "otel-prompt-canary
feedback key v1")``, tag over ``"pcfk1" + payload``) still read where the credential itself is known
(the control plane's single tokens), until they expire.

A key is URL-safe and opaque to the end user: signed, not encrypted (anyone can decode the prompt name
and rollout id; no one without the credential can make or alter a key). It is valid for a lifetime
(:data:`DEFAULT_KEY_LIFETIME_SECONDS`, 7 days, configurable) from its issue time. Without a credential
(development), keys are signed with the empty credential: well formed, but anyone can make one, and a
control plane that has a token refuses them.

**The mapping** (:func:`feedback_signal`): a number in [0, 1] is a score, ``prompt_canary.score.<name>``
(``user_feedback`` by default); a bool with no name is that score too (``True`` 1.0, ``False`` 0.0);
a bool with a name is the check ``prompt_canary.check.<name>``, ``True`` or ``False`` as given.

Pure: imports nothing of the package but errors and names, so the router, the instrumentation and the
control plane share it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from otel_prompt_canary.errors import FeedbackKeyError, InvalidInputError
from otel_prompt_canary.names import CHECK_PREFIX, SCORE_PREFIX, SIGNAL_NAME_PATTERN

__all__ = [
    "DEFAULT_KEY_LIFETIME_SECONDS",
    "FEEDBACK_SCORE_NAME",
    "KEY_PREFIX",
    "FeedbackKey",
    "FeedbackKeys",
    "FeedbackSignal",
    "feedback_signal",
    "is_feedback_key",
    "validate_feedback_score",
]

#: The score name user feedback is recorded under (``gen_ai.evaluation.name``) by default.
FEEDBACK_SCORE_NAME: Final = "user_feedback"
#: Every feedback key starts with this.
KEY_PREFIX: Final = "pcfk."
#: How long a feedback key is valid after it was issued, by default: 7 days.
DEFAULT_KEY_LIFETIME_SECONDS: Final = 7 * 86_400
#: A key issued this far in the future of the reader's clock still reads (clocks disagree a little).
CLOCK_SKEW_SECONDS: Final = 300

#: The format of the keys minted; the formats read (see the module docstring).
_FORMAT: Final = 2
_FORMATS: Final = (1, 2)
_HEADER: Final = struct.Struct(">BIBI")  # format, issued at, cohort, version
_TAG_BYTES: Final = 16
_MAX_KEY_LENGTH: Final = 1024
_LABELS: Final = {1: b"otel-prompt-canary feedback key v1", 2: b"otel-prompt-canary feedback key v2"}
_COHORTS: Final = ("stable", "canary")
_SIGNAL_NAME: Final = re.compile(SIGNAL_NAME_PATTERN)


def validate_feedback_score(score: float | bool, *, low: float = 0.0, high: float = 1.0) -> float:
    """``score`` as a float in [low, high]; a bool is a thumbs up (1.0) or down (0.0).

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for anything else: a string, NaN,
    an infinity, or a number out of range (it is not clamped, since that would hide a caller's bug).
    """
    if isinstance(score, bool):
        return high if score else low
    if not isinstance(score, int | float):
        raise InvalidInputError(f"feedback score must be a number or a bool, got {type(score).__name__}")
    value = float(score)
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidInputError(f"feedback score must be in [{low:g}, {high:g}], got {score!r}")
    return value


@dataclass(frozen=True, slots=True)
class FeedbackSignal:
    """What one piece of feedback counts as: a check's outcome or a score's value, by name."""

    name: str
    value: bool | float

    @property
    def is_check(self) -> bool:
        """True for a check (a bool), False for a score."""
        return isinstance(self.value, bool)

    @property
    def attribute(self) -> str:
        """``prompt_canary.check.<name>`` or ``prompt_canary.score.<name>``."""
        return (CHECK_PREFIX if self.is_check else SCORE_PREFIX) + self.name


def feedback_signal(score: float | bool, name: str | None = None) -> FeedbackSignal:
    """The signal ``score`` counts under (see the module's mapping); ``InvalidInputError`` when the
    score is not a bool or a number in [0, 1], or the name is not 1-64 of ``a-z``, ``0-9``, ``_``."""
    if name is not None and (not isinstance(name, str) or not _SIGNAL_NAME.fullmatch(name)):
        raise InvalidInputError(
            f"invalid feedback name {name!r}: use 1-64 characters from a-z, 0-9 and '_' "
            "(it becomes part of a span attribute name)"
        )
    if isinstance(score, bool) and name is not None and name != FEEDBACK_SCORE_NAME:
        return FeedbackSignal(name, score)
    return FeedbackSignal(name or FEEDBACK_SCORE_NAME, validate_feedback_score(score))


@dataclass(frozen=True, slots=True)
class FeedbackKey:
    """What a feedback key names: one call's prompt, version, cohort and rollout, and its issue time."""

    prompt: str
    version: int
    cohort: Literal["stable", "canary"]
    rollout_id: str
    #: Unix seconds.
    issued_at: int


def is_feedback_key(text: object) -> bool:
    """True when ``text`` has the shape of a feedback key (it may still be forged or expired)."""
    return isinstance(text, str) and text.startswith(KEY_PREFIX) and text.count(".") == 2


def _derive(secret: bytes, fmt: int) -> bytes:
    return hmac.digest(secret, _LABELS[fmt], "sha256")


def _keys_of(credential: str | None) -> dict[int, bytes]:
    """The signing key of each format under ``credential`` (None: the empty credential)."""
    raw = (credential or "").encode()
    return {1: _derive(raw, 1), 2: _derive(hashlib.sha256(raw).digest(), 2)}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    # validate: refuse any character outside the alphabet rather than skip it
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


class FeedbackKeys:
    """Mints feedback keys under the first of ``credentials`` and reads keys made under any of them,
    or under any credential whose SHA-256 is one of ``digests`` (a control plane's credentials file
    keeps only those: it reads the keys of their holders, and mints none under them).

    A credential of None or ``""`` is the empty credential (keys anyone can make). ``lifetime_seconds``
    is how long a key stays valid after it was issued.
    """

    __slots__ = ("_keys", "_mint_key", "authenticated", "lifetime_seconds")

    def __init__(
        self,
        credentials: Iterable[str | None],
        *,
        digests: Iterable[bytes] = (),
        lifetime_seconds: float = DEFAULT_KEY_LIFETIME_SECONDS,
    ) -> None:
        given = list(credentials) or [None]
        if not lifetime_seconds > 0:
            raise InvalidInputError(f"a feedback key lifetime must be positive, got {lifetime_seconds!r}")
        derived = [_keys_of(c) for c in given]
        self._mint_key = derived[0][_FORMAT]
        #: The keys each format's tags verify under: format 1 needs the credential itself.
        self._keys: dict[int, tuple[bytes, ...]] = {
            1: tuple(dict.fromkeys(keys[1] for keys in derived)),
            2: tuple(dict.fromkeys([*(keys[2] for keys in derived), *(_derive(d, 2) for d in digests)])),
        }
        #: True when keys are minted under a real credential (not the empty one).
        self.authenticated = bool(given[0])
        self.lifetime_seconds = lifetime_seconds

    def __repr__(self) -> str:
        return (
            f"FeedbackKeys(credentials={len(self._keys[2])}, authenticated={self.authenticated}, "
            f"lifetime_seconds={self.lifetime_seconds:g})"
        )

    def mint(
        self, prompt: str, version: int, cohort: str, rollout_id: str, *, now: float | None = None
    ) -> str:
        """The key of one call (``InvalidInputError`` for a cohort, version or name it cannot carry)."""
        if cohort not in _COHORTS:
            raise InvalidInputError(f"unknown cohort {cohort!r}: use 'stable' or 'canary'")
        names = [prompt.encode(), rollout_id.encode()]
        if not all(0 < len(n) < 256 for n in names) or not 0 <= version < 2**32:
            raise InvalidInputError("a feedback key carries names of 1-255 bytes and a version below 2**32")
        issued = int(time.time() if now is None else now)
        payload = b"".join(
            (
                _HEADER.pack(_FORMAT, issued, _COHORTS.index(cohort), version),
                bytes((len(names[0]),)),
                names[0],
                bytes((len(names[1]),)),
                names[1],
            )
        )
        return f"{KEY_PREFIX}{_b64(payload)}.{_b64(_tag(self._mint_key, _FORMAT, payload))}"

    def read(self, key: object, *, now: float | None = None) -> FeedbackKey:
        """What ``key`` names; :class:`~otel_prompt_canary.errors.FeedbackKeyError` when it is
        malformed, its signature does not verify under any credential (forged or altered), or it
        has expired (or was issued beyond the clock skew in the future)."""
        if not is_feedback_key(key) or len(key) > _MAX_KEY_LENGTH:  # type: ignore[arg-type]
            raise FeedbackKeyError(f"not a feedback key: it starts with {KEY_PREFIX!r} and has three parts")
        assert isinstance(key, str)
        _, payload_text, tag_text = key.split(".")
        try:
            payload, tag = _unb64(payload_text), _unb64(tag_text)
        except (binascii.Error, ValueError):
            raise FeedbackKeyError("malformed feedback key: its parts are not base64url") from None
        # Only the canonical spelling verifies: the unused low bits of a last character would
        # otherwise let an altered key decode to the bytes of the original.
        canonical = _b64(payload) == payload_text and _b64(tag) == tag_text
        fmt = payload[0] if payload else 0
        keys = self._keys.get(fmt, ())
        if not canonical or not any(hmac.compare_digest(tag, _tag(k, fmt, payload)) for k in keys):
            raise FeedbackKeyError(
                "the feedback key's signature does not verify: it was altered, forged, or made under "
                "another reporting credential",
                "signature",
            )
        found = _decode(payload)
        current = time.time() if now is None else now
        age = current - found.issued_at
        if age > self.lifetime_seconds:
            raise FeedbackKeyError(
                f"the feedback key expired: issued {age / 86_400:.1f} days ago, keys are valid for "
                f"{self.lifetime_seconds / 86_400:g} days",
                "expired",
            )
        if age < -CLOCK_SKEW_SECONDS:
            raise FeedbackKeyError(
                f"the feedback key was issued {-age:.0f} s in the future (check the clocks)", "expired"
            )
        return found


def _tag(key: bytes, fmt: int, payload: bytes) -> bytes:
    # hmac.digest: the one-shot C implementation, a few times faster than hmac.new (a key is
    # minted on every call made under a Selection while a rollout runs).
    return hmac.digest(key, b"pcfk%d" % fmt + payload, "sha256")[:_TAG_BYTES]


def _decode(payload: bytes) -> FeedbackKey:
    """A signed payload's fields (signed by us, so malformed only if our own format changed)."""
    try:
        fmt, issued, cohort, version = _HEADER.unpack_from(payload)
        offset = _HEADER.size
        texts = []
        for _ in range(2):
            length = payload[offset]
            texts.append(payload[offset + 1 : offset + 1 + length].decode())
            offset += 1 + length
        if fmt not in _FORMATS or offset != len(payload) or cohort >= len(_COHORTS) or not all(texts):
            raise ValueError("unknown layout")
    except (struct.error, IndexError, ValueError) as exc:
        raise FeedbackKeyError(f"malformed feedback key ({exc})") from None
    return FeedbackKey(
        prompt=texts[0],
        version=version,
        cohort=_COHORTS[cohort],
        rollout_id=texts[1],
        issued_at=issued,
    )
