from __future__ import annotations

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    JsonSchemaCheck,
    JsonValidCheck,
    LLMResponse,
    MaxOutputTokensCheck,
    OutputTokensScorer,
    RegexCheck,
    ToolCall,
    TruncationCheck,
    parse_json_output,
)


def out(text: str, **fields: object) -> LLMResponse:
    return LLMResponse(output_text=text, **fields)  # type: ignore[arg-type]


TOOL_ONLY = LLMResponse(tool_calls=(ToolCall("lookup_order", '{"id": "42"}'),))


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", '  {"a": [true, null]}\n', '"just a string"', "42"])
def test_json_valid_passes_json(text: str) -> None:
    assert JsonValidCheck().check(out(text)) is True


@pytest.mark.parametrize(
    "text",
    ["", "not json", '{"a": 1', "{'a': 1}", '{"a": NaN}', '{"a": Infinity}', '{"a": 1} trailing'],
)
def test_json_valid_fails_non_json(text: str) -> None:
    assert JsonValidCheck().check(out(text)) is False


def test_json_valid_fences_only_when_allowed() -> None:
    fenced = '```json\n{"answer": "yes"}\n```'
    assert JsonValidCheck().check(out(fenced)) is False
    assert JsonValidCheck(allow_fence=True).check(out(fenced)) is True
    assert JsonValidCheck(allow_fence=True).check(out("```\n[1]\n```\n")) is True
    # Prose around the block is not "the output is JSON".
    assert JsonValidCheck(allow_fence=True).check(out('Here:\n```json\n{"a": 1}\n```')) is False


def test_json_valid_can_require_an_object() -> None:
    check = JsonValidCheck(require_object=True)
    assert check.check(out('{"a": 1}')) is True
    assert check.check(out("[1]")) is False


def test_json_valid_when_requested_applies_only_to_json_requests() -> None:
    check = JsonValidCheck(when="requested")
    assert check.check(out("plain prose")) is None
    assert check.check(out("plain prose", response_format="text")) is None
    assert check.check(out("plain prose", response_format="json_object")) is False
    assert check.check(out('{"a": 1}', response_format="json_schema")) is True


def test_format_checks_do_not_apply_to_a_pure_tool_call() -> None:
    assert JsonValidCheck().check(TOOL_ONLY) is None
    assert JsonSchemaCheck({"type": "object"}).check(TOOL_ONLY) is None
    assert RegexCheck("x").check(TOOL_ONLY) is None


def test_parse_json_output_reuses_the_last_parse() -> None:
    text = '{"k": [1, 2, 3]}'
    assert parse_json_output(text) == (True, {"k": [1, 2, 3]})
    first = parse_json_output(text)[1]
    assert parse_json_output(text)[1] is first  # same string object: parsed once
    assert parse_json_output("nope") == (False, None)
    assert parse_json_output("null") == (True, None)


SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "category": {"enum": ["billing", "shipping", "other"]},
    },
    "required": ["answer", "category"],
    "additionalProperties": False,
}


def test_json_schema_passes_a_valid_document() -> None:
    check = JsonSchemaCheck(SCHEMA)
    assert check.check(out('{"answer": "ok", "category": "billing"}')) is True
    assert check.errors(out('{"answer": "ok", "category": "billing"}')) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"answer": "ok"}', "(root): 'category' is a required property"),
        ('{"answer": "ok", "category": "food"}', "category: 'food' is not one of"),
        ('{"answer": 3, "category": "other"}', "answer: 3 is not of type 'string'"),
        ('{"answer": "ok", "category": "other", "x": 1}', "Additional properties are not allowed"),
        ("not json", "the output is not valid JSON"),
    ],
)
def test_json_schema_fails_and_explains(text: str, error: str) -> None:
    check = JsonSchemaCheck(SCHEMA)
    assert check.check(out(text)) is False
    assert any(error in e for e in check.errors(out(text))), check.errors(out(text))


def test_json_schema_accepts_a_fenced_block_when_allowed() -> None:
    fenced = '```json\n{"answer": "ok", "category": "other"}\n```'
    assert JsonSchemaCheck(SCHEMA).check(out(fenced)) is False
    assert JsonSchemaCheck(SCHEMA, allow_fence=True).check(out(fenced)) is True


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "objekt"}, "type"),
        ({"properties": {"a": {"type": 12}}}, "properties/a/type"),
        ({"required": "answer"}, "required"),
    ],
)
def test_invalid_schema_is_refused_up_front(schema: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidInputError, match=f"invalid schema at {where}"):
        JsonSchemaCheck(schema)


def test_regex_must_match_and_must_not_match() -> None:
    has_order = RegexCheck(r"order #\d+", name="cites_order")
    assert has_order.name == "cites_order"
    assert has_order.check(out("Your order #123 shipped.")) is True
    assert has_order.check(out("It shipped.")) is False
    no_placeholder = RegexCheck(r"\{\{.*?\}\}", name="no_placeholder", must_match=False)
    assert no_placeholder.check(out("Hello Ana")) is True
    assert no_placeholder.check(out("Hello {{ name }}")) is False


def test_regex_options() -> None:
    assert RegexCheck("hello", ignore_case=True).check(out("HELLO")) is True
    assert RegexCheck("hello").check(out("HELLO")) is False
    assert RegexCheck(r"\d+", full_match=True).check(out("123")) is True
    assert RegexCheck(r"\d+", full_match=True).check(out("123 apples")) is False
    assert RegexCheck("^b", multiline=True).check(out("a\nb")) is True
    assert RegexCheck("a.b", dot_all=True).check(out("a\nb")) is True
    assert RegexCheck("needle", max_chars=10).check(out("0123456789needle")) is False


def test_regex_refuses_bad_patterns_and_names() -> None:
    with pytest.raises(InvalidInputError, match="invalid pattern"):
        RegexCheck("(unclosed")
    with pytest.raises(InvalidInputError, match="invalid check or scorer name"):
        RegexCheck("x", name="Has-Dash")


def test_max_output_tokens() -> None:
    check = MaxOutputTokensCheck(100)
    assert check.check(out("x", output_tokens=100)) is True
    assert check.check(out("x", output_tokens=101)) is False
    assert check.check(out("x")) is None
    with pytest.raises(InvalidInputError):
        MaxOutputTokensCheck(0)


def test_output_tokens_score() -> None:
    assert OutputTokensScorer().score(out("x", output_tokens=57)) == 57.0
    assert OutputTokensScorer().score(out("x")) is None


@pytest.mark.parametrize(
    ("reasons", "passed"),
    [
        (("stop",), True),
        (("end_turn",), True),
        (("tool_calls",), True),
        (("length",), False),
        (("max_tokens",), False),
        (("MAX_TOKENS",), False),
        (("stop", "length"), False),
        ((), None),
    ],
)
def test_truncation(reasons: tuple[str, ...], passed: bool | None) -> None:
    assert TruncationCheck().check(out("x", finish_reasons=reasons)) is passed
