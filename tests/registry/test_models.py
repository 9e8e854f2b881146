from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from otel_prompt_canary.errors import InvalidInputError, TemplateError
from otel_prompt_canary.registry import PromptSpec, PromptVersion, parse_ramp
from otel_prompt_canary.registry.template import find_variables, render_text

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def version(**fields: object) -> PromptVersion:
    spec = PromptSpec.model_validate({"name": "p", **fields})
    return PromptVersion.from_spec(spec, version=1, created_at=NOW)


def test_text_template_renders_named_variables() -> None:
    v = version(template='Hello {{ user }}. Reply as {"tone": "{{tone}}"}.')
    assert v.variables == ("user", "tone")
    assert v.render(user="Ana", tone="warm", unused=1) == 'Hello Ana. Reply as {"tone": "warm"}.'


def test_chat_template_renders_every_message() -> None:
    v = version(
        messages=[{"role": "system", "content": "Be {{style}}."}, {"role": "user", "content": "{{q}}"}]
    )
    assert v.variables == ("style", "q")
    assert v.render(style="brief", q="Hi?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]


def test_missing_variables_are_named() -> None:
    with pytest.raises(TemplateError, match="missing template variable\\(s\\): a, b"):
        render_text("{{a}} {{ b }} {{a}}", {})
    assert find_variables(["{{ x }} {{y}} {{x}}", "{{ z}}"]) == ("x", "y", "z")


def test_versions_are_frozen() -> None:
    v = version(template="t")
    with pytest.raises(ValidationError):
        v.template = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"template": "a", "messages": [{"role": "user", "content": "b"}]}, "exactly one"),
        ({}, "exactly one"),
        ({"template": "   "}, "must not be empty"),
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "role"),
        ({"template": "a", "colour": "red"}, "Extra inputs"),
        ({"template": "a", "name": "bad name"}, "invalid prompt name"),
    ],
)
def test_invalid_specs_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PromptSpec.model_validate({"name": "p", **fields})


def test_content_hash_ignores_metadata_but_not_behaviour() -> None:
    base = PromptSpec(name="p", template="t", commit_message="a", author="x")
    assert base.content_hash() == PromptSpec(name="p", template="t", commit_message="b").content_hash()
    assert base.content_hash() != PromptSpec(name="p", template="t", config={"top_p": 1}).content_hash()


def test_environment_is_filled_from_model_and_tools() -> None:
    spec = PromptSpec(name="p", template="t", model="m-1", tools=[{"name": "lookup"}])
    env = spec.resolved_environment()
    assert env.model_id == "m-1"
    assert env.tool_schema_hash is not None and env.tool_schema_hash.startswith("sha256:")


@pytest.mark.parametrize(
    ("ramp", "expected"),
    [
        (None, (1, 5, 20, 50, 100)),
        ("1,5,20,50,100", (1, 5, 20, 50, 100)),
        ("0.5%, 10%, 100%", (0.5, 10, 100)),
        ([100], (100,)),
    ],
)
def test_valid_ramps(ramp: object, expected: tuple[float, ...]) -> None:
    assert parse_ramp(ramp) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ramp", "message"),
    [
        ("", "comma-separated"),
        ("a,b", "comma-separated"),
        ([], "at least one step"),
        ([5, 5, 100], "strictly increasing"),
        ([50, 20, 100], "strictly increasing"),
        ([0, 100], "in \\(0, 100\\]"),
        ([-1, 100], "in \\(0, 100\\]"),
        ([10, 150], "in \\(0, 100\\]"),
        ([10, 50], "last step must be 100"),
        ([0.001, 100], "finer than 0.01%"),
    ],
)
def test_invalid_ramps(ramp: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_ramp(ramp)  # type: ignore[arg-type]
