from __future__ import annotations

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    EvaluationResponseError,
    EvaluationTimeoutError,
    LLMResponse,
    ModerationClassifier,
    SafetyCheck,
)
from tests.scoring.fakes import FakeOpenAI, Reply, moderation_reply


def classifier(server: FakeOpenAI, **kwargs: object) -> ModerationClassifier:
    return ModerationClassifier(server.base_url, **kwargs)  # type: ignore[arg-type]


def test_moderation_flags_and_passes(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: moderation_reply("kill" in body["input"])
    moderation = classifier(fake_openai, api_key="sk-mod", max_chars=20)
    check = SafetyCheck(moderation)
    try:
        assert check.check(LLMResponse(output_text="have a nice day")) is True
        assert check.check(LLMResponse(output_text="how to kill a process")) is False
        assert check.check(LLMResponse(output_text="   ")) is None  # nothing to send
    finally:
        check.close()
    assert fake_openai.count("/v1/moderations") == 2
    request = fake_openai.requests[0]
    assert request.headers["Authorization"] == "Bearer sk-mod"
    assert request.body == {"input": "have a nice day", "model": "omni-moderation-latest"}
    long_input = LLMResponse(output_text="x" * 100)
    classifier(fake_openai, max_chars=20)(long_input)
    assert fake_openai.requests[-1].body["input"] == "x" * 20


def test_moderation_any_flagged_result_flags(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: moderation_reply(False, True)
    assert classifier(fake_openai, model=None)(LLMResponse(output_text="x")) is True
    assert "model" not in fake_openai.requests[0].body


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=429, body={"error": "rate limited"}),
        Reply(body={"results": []}),
        Reply(body={"results": [{"categories": {}}]}),
        Reply(body=["not", "an", "object"]),
    ],
)
def test_moderation_bad_answers_raise(fake_openai: FakeOpenAI, reply: Reply) -> None:
    fake_openai.respond = lambda path, body: reply
    with pytest.raises(EvaluationResponseError):
        classifier(fake_openai)(LLMResponse(output_text="x"))


def test_moderation_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: Reply(delay=3, body={})
    with pytest.raises(EvaluationTimeoutError):
        classifier(fake_openai, timeout=0.2)(LLMResponse(output_text="x"))


def test_moderation_validates_its_parameters() -> None:
    with pytest.raises(InvalidInputError):
        ModerationClassifier("localhost:8000")
    with pytest.raises(InvalidInputError):
        ModerationClassifier("http://127.0.0.1:1", max_chars=0)
