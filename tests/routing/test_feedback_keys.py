"""Feedback keys: what a Selection hands out, and what makes a key unusable (forged, altered, expired)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable

import pytest

from otel_prompt_canary.errors import FeedbackKeyError, InvalidInputError
from otel_prompt_canary.feedback import (
    DEFAULT_KEY_LIFETIME_SECONDS,
    FeedbackKey,
    FeedbackKeys,
    FeedbackSignal,
    feedback_signal,
    is_feedback_key,
)
from otel_prompt_canary.routing import PromptRouter
from tests.routing.fakes import ScriptedRegistry, ramping, route, version
from tests.support.auth import REPORT_TOKEN

KEYS = FeedbackKeys([REPORT_TOKEN])


def test_a_key_names_the_call_and_reads_back() -> None:
    now = time.time()
    key = KEYS.mint("support-reply", 12, "canary", "a8f3c2d1e4b5a6f7", now=now)
    assert re.fullmatch(r"pcfk\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", key), key
    assert len(key) < 100 and is_feedback_key(key)
    assert KEYS.read(key) == FeedbackKey("support-reply", 12, "canary", "a8f3c2d1e4b5a6f7", int(now))
    assert not is_feedback_key("chatcmpl-9x2") and not is_feedback_key(None)


def test_every_altered_character_is_detected() -> None:
    key = KEYS.mint("p", 1, "stable", "r1")
    for position in range(len("pcfk."), len(key)):
        if key[position] == ".":
            continue
        for replacement in "AQ_-":
            altered = key[:position] + replacement + key[position + 1 :]
            if altered == key:
                continue
            with pytest.raises(FeedbackKeyError) as refused:
                KEYS.read(altered)
            assert refused.value.reason in ("signature", "malformed")


@pytest.mark.parametrize(
    ("minted_by", "read_by", "readable"),
    [
        ([REPORT_TOKEN], [REPORT_TOKEN], True),
        (["another-credential-0123"], [REPORT_TOKEN], False),
        ([None], [REPORT_TOKEN], False),
        ([None], [REPORT_TOKEN, ""], True),  # a control plane with open writes takes unsigned keys
        ([REPORT_TOKEN], ["write-token-0123456789", REPORT_TOKEN], True),
    ],
)
def test_keys_verify_under_the_credentials_that_made_them(
    minted_by: list[str | None], read_by: list[str | None], readable: bool
) -> None:
    key = FeedbackKeys(minted_by).mint("p", 1, "canary", "r1")
    if readable:
        assert FeedbackKeys(read_by).read(key).rollout_id == "r1"
    else:
        with pytest.raises(FeedbackKeyError, match="signature does not verify"):
            FeedbackKeys(read_by).read(key)
    assert FeedbackKeys(minted_by).authenticated is bool(minted_by[0])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_key_is_signed_as_the_module_documents() -> None:
    """The tag, recomputed from the documented formula: another implementation can mint keys."""
    key = KEYS.mint("p", 3, "canary", "r1", now=1_800_000_000)
    _, payload_text, tag_text = key.split(".")
    payload = base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4))
    assert payload[0] == 2  # the format
    k = hmac.digest(
        hashlib.sha256(REPORT_TOKEN.encode()).digest(), b"otel-prompt-canary feedback key v2", "sha256"
    )
    assert tag_text == _b64(hmac.digest(k, b"pcfk2" + payload, "sha256")[:16])


def test_keys_of_the_earlier_format_still_read_where_the_credential_is_known() -> None:
    key = KEYS.mint("p", 3, "canary", "r1")
    payload = bytes([1]) + base64.urlsafe_b64decode(key.split(".")[1] + "==")[1:]
    k1 = hmac.digest(REPORT_TOKEN.encode(), b"otel-prompt-canary feedback key v1", "sha256")
    earlier = f"pcfk.{_b64(payload)}.{_b64(hmac.digest(k1, b'pcfk1' + payload, 'sha256')[:16])}"
    assert KEYS.read(earlier) == KEYS.read(key)
    # A reader knowing only the credential's SHA-256 (a credentials file) cannot check format 1.
    only_digest = FeedbackKeys([None], digests=[hashlib.sha256(REPORT_TOKEN.encode()).digest()])
    with pytest.raises(FeedbackKeyError, match="signature does not verify"):
        only_digest.read(earlier)


def test_a_reader_of_digests_reads_the_keys_of_their_credentials() -> None:
    """A control plane keeps only the SHA-256 of a credentials file's tokens: it reads their keys."""
    reader = FeedbackKeys(
        ["write-token-0123456789"], digests=[hashlib.sha256(REPORT_TOKEN.encode()).digest()]
    )
    assert reader.read(KEYS.mint("p", 1, "stable", "r1")).rollout_id == "r1"
    with pytest.raises(FeedbackKeyError, match="signature does not verify"):
        reader.read(FeedbackKeys(["another-credential-0123"]).mint("p", 1, "stable", "r1"))


def test_a_key_lives_for_its_lifetime() -> None:
    now = time.time()
    key = KEYS.mint("p", 1, "canary", "r1", now=now)
    assert KEYS.read(key, now=now + DEFAULT_KEY_LIFETIME_SECONDS - 1).version == 1
    with pytest.raises(FeedbackKeyError, match=r"expired: issued 7\.0 days ago") as expired:
        KEYS.read(key, now=now + DEFAULT_KEY_LIFETIME_SECONDS + 1)
    assert expired.value.reason == "expired"
    short = FeedbackKeys([REPORT_TOKEN], lifetime_seconds=60)
    with pytest.raises(FeedbackKeyError, match="expired"):
        short.read(key, now=now + 61)
    with pytest.raises(FeedbackKeyError, match="in the future"):
        KEYS.read(key, now=now - 3600)


@pytest.mark.parametrize(
    ("score", "name", "expected"),
    [
        (0.8, None, FeedbackSignal("user_feedback", 0.8)),
        (True, None, FeedbackSignal("user_feedback", 1.0)),
        (False, "user_feedback", FeedbackSignal("user_feedback", 0.0)),
        (1, "helpfulness", FeedbackSignal("helpfulness", 1.0)),
        (True, "thumbs_down", FeedbackSignal("thumbs_down", True)),
        (False, "resolved", FeedbackSignal("resolved", False)),
    ],
)
def test_what_a_feedback_counts_as(score: float | bool, name: str | None, expected: FeedbackSignal) -> None:
    signal = feedback_signal(score, name)
    assert signal == expected
    kind = "check" if isinstance(expected.value, bool) else "score"
    assert signal.attribute == f"prompt_canary.{kind}.{expected.name}"


@pytest.mark.parametrize(
    ("score", "name"), [(1.01, None), (float("nan"), None), (0.5, "Bad Name"), ("1", None)]
)
def test_what_a_feedback_cannot_be(score: object, name: str | None) -> None:
    with pytest.raises(InvalidInputError):
        feedback_signal(score, name)  # type: ignore[arg-type]


def _registry(state: str = "ramping") -> ScriptedRegistry:
    routes = [ramping("p", "ro-1", 5000)] if state == "ramping" else [route("p")]
    return ScriptedRegistry(routes, [version("p", 1), version("p", 2)])


def test_a_selection_has_a_key_while_a_rollout_runs(
    make_router: Callable[..., PromptRouter], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PROMPT_CANARY_TOKEN", REPORT_TOKEN)  # the router's default credential
    router = make_router(_registry())
    for unit in ("u1", "u2", "u3", "u4"):
        selection = router.select("p", unit)
        key = selection.feedback_key
        assert key is not None and selection.feedback_key == key  # made once per selection
        found = KEYS.read(key)
        assert (found.prompt, found.version, found.cohort, found.rollout_id) == (
            "p",
            selection.version,
            selection.cohort,
            "ro-1",
        )


def test_no_key_without_a_rollout_and_a_router_credential_wins(
    make_router: Callable[..., PromptRouter],
) -> None:
    idle = make_router(_registry("idle"), token=REPORT_TOKEN)
    assert idle.select("p", "u1").feedback_key is None
    fallback = make_router(_registry("idle"), fallbacks={"q": "Hi"})
    assert fallback.select("q").feedback_key is None
    own = make_router(_registry(), token="router-credential-0123")
    key = own.select("p", "u1").feedback_key
    assert FeedbackKeys(["router-credential-0123"]).read(key).rollout_id == "ro-1"
