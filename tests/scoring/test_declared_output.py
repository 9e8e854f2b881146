"""A prompt version's declared output (its output contract) in the scoring plan: it outranks the request."""

from __future__ import annotations

from typing import Any

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.scoring import (
    DeclaredOutput,
    JsonSchemaCheck,
    LLMResponse,
    ScoringPlan,
    build_scoring,
    load_scoring_config,
)
from tests.support.contracts import SUPPORT_BOT_SCHEMA

SCHEMA = SUPPORT_BOT_SCHEMA
GOOD = '{"answer": "Refunds take 5 days.", "category": "billing"}'
WRONG_SHAPE = '{"answer": "Refunds take 5 days."}'
PROSE = f"Sure! Here is your answer:\n\n{GOOD}"


def results(plan: ScoringPlan, text: str, response_format: str | None = None) -> dict[str, bool | None]:
    """Every check's outcome on a response with ``text`` whose request asked ``response_format``."""
    outcome = plan.run(LLMResponse(output_text=text, response_format=response_format))
    return {check.name: check.passed for check in outcome.checks}


def test_without_a_declaration_the_request_decides_as_before() -> None:
    plan = build_scoring()
    assert results(plan, PROSE)["json_valid"] is None  # free text is not failed for being free text
    assert results(plan, PROSE, "json_object")["json_valid"] is False
    assert "json_schema" not in results(plan, GOOD)


@pytest.mark.parametrize("response_format", [None, "text", "json_object"])
def test_a_declared_json_format_is_checked_whatever_the_request_says(response_format: str | None) -> None:
    plan = build_scoring(declared_output=DeclaredOutput(format="json"))
    assert results(plan, GOOD, response_format)["json_valid"] is True
    assert results(plan, PROSE, response_format)["json_valid"] is False
    assert "json_schema" not in results(plan, GOOD, response_format)


def test_a_declared_schema_adds_the_schema_check() -> None:
    plan = build_scoring(declared_output=DeclaredOutput(json_schema=SCHEMA))
    for text, expected in ((GOOD, (True, True)), (WRONG_SHAPE, (True, False)), (PROSE, (False, False))):
        outcome = results(plan, text)
        assert (outcome["json_valid"], outcome["json_schema"]) == expected, text
    (schema_check,) = [c for c in plan.checks if c.name == "json_schema"]
    assert isinstance(schema_check, JsonSchemaCheck)
    assert schema_check.errors(LLMResponse(output_text=WRONG_SHAPE)) == [
        "(root): 'category' is a required property"
    ]


def test_the_configuration_still_turns_each_check_off() -> None:
    # An explicit `false` is the operator's choice of checks: the contract adds checks, it does not
    # overrule a configuration that removed one.
    off = load_scoring_config("json_valid: {enabled: false}\njson_schema: {enabled: false}")
    plan = build_scoring(off, declared_output=DeclaredOutput(json_schema=SCHEMA))
    assert {"json_valid", "json_schema"}.isdisjoint(results(plan, PROSE))


def test_the_configured_json_options_apply_to_the_contract_checks() -> None:
    config = load_scoring_config(
        "json_valid: {allow_fence: true, require_object: true}\n"
        "json_schema: {name: reply_shape, schema: {type: array}, allow_fence: true}"
    )
    plan = build_scoring(config, declared_output=DeclaredOutput(json_schema=SCHEMA))
    fenced = f"```json\n{GOOD}\n```"
    # The version's schema replaces the prompt-wide one, under the configured name and options.
    for text, expected in ((fenced, (True, True)), ("[1, 2]", (False, False))):
        outcome = results(plan, text)
        assert (outcome["json_valid"], outcome["reply_shape"]) == expected, text
    assert "json_schema" not in results(plan, fenced)
    # Without a declaration the configured schema applies, as before.
    assert results(build_scoring(config), "[1, 2]")["reply_shape"] is True


def test_declarations_are_values() -> None:
    schema = {"type": "object", "required": ["a"]}
    first = DeclaredOutput(json_schema=schema)
    same = DeclaredOutput(json_schema={"required": ["a"], "type": "object"})
    assert first == same and hash(first) == hash(same)
    assert first != DeclaredOutput() and first != DeclaredOutput(json_schema={"type": "array"})
    schema["required"].append("b")  # the caller's mapping changing later changes nothing
    assert first.json_schema == {"type": "object", "required": ["a"]}
    assert first == same
    assert repr(first) == "DeclaredOutput(format='json', json_schema={...})"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format": "xml"}, "unknown format 'xml'"),
        ({"json_schema": ["type"]}, "the schema must be a JSON object"),
        ({"json_schema": {"minimum": float("nan")}}, "the schema is not JSON"),
        ({"json_schema": {"enum": {1, 2}}}, "the schema is not JSON"),
    ],
)
def test_invalid_declarations_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        DeclaredOutput(**fields)


def test_a_declared_schema_that_is_no_schema_fails_the_build() -> None:
    with pytest.raises(InvalidInputError, match="json_schema: invalid schema at type"):
        build_scoring(declared_output=DeclaredOutput(json_schema={"type": "objekt"}))
