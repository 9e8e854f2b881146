from __future__ import annotations

import dataclasses

import pytest

from otel_prompt_canary.scoring import LLMResponse, ToolCall, normalize_finish_reason


def test_response_is_frozen_and_keyword_only() -> None:
    r = LLMResponse(output_text="hi", output_tokens=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.output_text = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        LLMResponse("positional")  # type: ignore[misc]
    assert not hasattr(r, "__dict__")


def test_requested_json_follows_the_response_format() -> None:
    assert LLMResponse(response_format="json_object").requested_json
    assert LLMResponse(response_format="json_schema").requested_json
    assert not LLMResponse(response_format="text").requested_json
    assert not LLMResponse().requested_json


def test_tool_call_arguments_parse_on_demand() -> None:
    assert ToolCall("f", '{"a": 1}').arguments_dict() == {"a": 1}
    assert ToolCall("f", {"a": 1}).arguments_dict() == {"a": 1}
    assert ToolCall("f").arguments_dict() == {}
    assert ToolCall("f", "not json").arguments_dict() is None
    assert ToolCall("f", "[1, 2]").arguments_dict() is None


@pytest.mark.parametrize(
    ("reason", "normal"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("stop", "stop"),
        ("length", "length"),
        ("something_new", "something_new"),
    ],
)
def test_finish_reasons_normalise_to_openai_words(reason: str, normal: str) -> None:
    assert normalize_finish_reason(reason) == normal
