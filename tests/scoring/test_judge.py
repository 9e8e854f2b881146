from __future__ import annotations

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    DEFAULT_RUBRIC,
    EvaluationError,
    EvaluationResponseError,
    EvaluationTimeoutError,
    LLMJudge,
    LLMResponse,
    ToolCall,
    parse_judge_score,
)
from tests.scoring.fakes import FakeOpenAI, Reply, chat_reply, unreachable_base_url

RESPONSE = LLMResponse(
    output_text='{"answer": "Your parcel ships today.", "category": "shipping"}',
    response_id="chatcmpl-1",
    instructions="You are the support assistant of Acme.",
    request_messages=[
        {"role": "user", "content": "Where is my parcel?"},
        {"role": "user", "content": [{"type": "text", "text": "Order 42."}, {"type": "image_url"}]},
    ],
)


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ('{"score": 0.8}', 0.8),
        ('{"Score": 1}', 1.0),
        ('{"score": "0.25"}', 0.25),
        ('{"score": 0.7, "reason": "good"}', 0.7),
        ("0.6", 0.6),
        ("  1  ", 1.0),
        ("0", 0.0),
        (".5", 0.5),
        ("0,75", 0.75),
        ("4/5", 0.8),
        ("8 / 10", 0.8),
        ("80%", 0.8),
        ('```json\n{"score": 0.9}\n```', 0.9),
        ('Reasoning: concise and correct.\n{"score": 0.95}', 0.95),
        ("The response is fine. Score: 0.7", 0.7),
        ("score = 3/4 overall", 0.75),
    ],
)
def test_parse_judge_score(text: str, score: float) -> None:
    assert parse_judge_score(text) == pytest.approx(score)


@pytest.mark.parametrize(
    "text", ["", "excellent", "7", '{"score": 1.5}', "-0.1", '{"score": null}', "score: 12", "1/0"]
)
def test_parse_judge_score_refuses_missing_or_out_of_range(text: str) -> None:
    with pytest.raises(EvaluationResponseError):
        parse_judge_score(text)


def judge(server: FakeOpenAI, **kwargs: object) -> LLMJudge:
    options: dict[str, object] = {"base_url": server.base_url, "model": "judge-model"}
    options.update(kwargs)
    return LLMJudge(**options)  # type: ignore[arg-type]


def test_judge_sends_rubric_conversation_and_response(fake_openai: FakeOpenAI) -> None:
    fake_openai.respond = lambda path, body: chat_reply('{"score": 0.9}')
    scorer = judge(fake_openai, api_key="sk-test", rubric="Is it about shipping?", json_mode=True)
    try:
        assert scorer.score(RESPONSE) == 0.9
    finally:
        scorer.close()
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "judge-model"
    assert body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and "between the <response> tags" in system["content"]
    content = user["content"]
    assert "<rubric>\nIs it about shipping?\n</rubric>" in content
    assert "[system]\nYou are the support assistant of Acme." in content
    assert "[user]\nWhere is my parcel?" in content
    assert "Order 42.\n[image_url]" in content
    assert "Your parcel ships today." in content
    assert "sk-test" not in repr(scorer)


def test_judge_renders_tool_calls_and_cuts_long_material() -> None:
    scorer = LLMJudge(base_url="http://127.0.0.1:9/v1", model="m", max_context_chars=50, max_output_chars=40)
    response = LLMResponse(
        output_text="x" * 100,
        tool_calls=(ToolCall("lookup_order", {"id": "42"}),),
        request_messages=[{"role": "user", "content": "q" * 500}],
    )
    content = scorer.messages(response)[1]["content"]
    assert "[...]\n" + "q" * 50 + "\n</conversation>" in content
    assert "<response>\n" + "x" * 40 + "\n[...]\n</response>" in content
    short = LLMResponse(tool_calls=(ToolCall("lookup_order", {"id": "42"}),))
    assert '[tool call] lookup_order({"id": "42"})' in scorer.messages(short)[1]["content"]
    assert DEFAULT_RUBRIC in LLMJudge(base_url="http://x", model="m").messages(short)[1]["content"]


def test_judge_does_not_apply_to_an_empty_response(fake_openai: FakeOpenAI) -> None:
    assert judge(fake_openai).score(LLMResponse()) is None
    assert fake_openai.requests == []


def test_judge_endpoint_errors_are_mapped(fake_openai: FakeOpenAI) -> None:
    scorer = judge(fake_openai, timeout=0.3)
    fake_openai.respond = lambda path, body: Reply(status=500, body={"error": "down"})
    with pytest.raises(EvaluationResponseError, match="HTTP 500"):
        scorer.score(RESPONSE)
    fake_openai.respond = lambda path, body: Reply(raw="<html>not json</html>")
    with pytest.raises(EvaluationResponseError, match="not JSON"):
        scorer.score(RESPONSE)
    fake_openai.respond = lambda path, body: Reply(body={"choices": []})
    with pytest.raises(EvaluationResponseError, match="no choices"):
        scorer.score(RESPONSE)
    fake_openai.respond = lambda path, body: chat_reply("I think it is great!")
    with pytest.raises(EvaluationResponseError, match="no score"):
        scorer.score(RESPONSE)
    fake_openai.respond = lambda path, body: Reply(delay=2.0, body={})
    with pytest.raises(EvaluationTimeoutError):
        scorer.score(RESPONSE)
    scorer.close()


def test_judge_unreachable_endpoint() -> None:
    scorer = LLMJudge(base_url=unreachable_base_url(), model="m", timeout=2)
    with pytest.raises(EvaluationError):
        scorer.score(RESPONSE)


def test_judge_validates_its_parameters() -> None:
    with pytest.raises(InvalidInputError, match="base_url"):
        LLMJudge(base_url="ftp://x", model="m")
    with pytest.raises(InvalidInputError, match="model"):
        LLMJudge(base_url="http://x", model="")
    with pytest.raises(InvalidInputError, match="rubric"):
        LLMJudge(base_url="http://x", model="m", rubric="  ")
    with pytest.raises(InvalidInputError, match="timeout"):
        LLMJudge(base_url="http://x", model="m", timeout=0)
