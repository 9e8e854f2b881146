"""The settings object validates itself: no start without a token unless in development mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from otel_prompt_canary.service import ServiceSettings


def test_refuses_to_start_without_a_token() -> None:
    with pytest.raises(ValidationError, match="refusing to start without a token"):
        ServiceSettings()


def test_insecure_dev_allows_no_token_and_opens_writes() -> None:
    settings = ServiceSettings(insecure_dev=True)
    assert settings.writes_open
    assert not ServiceSettings(token="x" * 32).writes_open


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("short", "too short"),
        ("has a space inside it", "whitespace"),
        (" leading-space-0123456789", "whitespace"),
    ],
)
def test_refuses_weak_tokens(token: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings(token=token)


def test_token_is_not_shown_in_repr() -> None:
    settings = ServiceSettings(token="s3cret-s3cret-s3cret")
    assert "s3cret" not in repr(settings)


def test_limits_are_checked() -> None:
    with pytest.raises(ValidationError, match="max_template_bytes"):
        ServiceSettings(insecure_dev=True, max_body_bytes=4096, max_template_bytes=8192)
    with pytest.raises(ValidationError, match="max_body_bytes"):
        ServiceSettings(insecure_dev=True, max_body_bytes=10)
    with pytest.raises(ValidationError, match="unknown_setting"):
        ServiceSettings(insecure_dev=True, unknown_setting=1)  # type: ignore[call-arg]
