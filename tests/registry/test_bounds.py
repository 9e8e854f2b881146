"""What the store can hold: version numbers in ASCII digits and in range, integers in 64 bits, text
it can store (no lone surrogate, no NUL), and a version's documents bounded like its template, on a
local store as behind the control plane. Bad input is refused with a precise message and changes
nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from otel_prompt_canary.errors import InvalidInputError, TooLargeError, describe_validation_errors
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry, open_store
from otel_prompt_canary.registry.bounds import (
    MAX_INTEGER,
    MAX_VERSION,
    check_storable,
    parse_version,
    storable_problem,
)


def _two_versions(registry: SqlRegistry) -> None:
    registry.push(PromptSpec(name="support", template="Answer {{ q }}."))
    registry.push(PromptSpec(name="support", template="Answer {{ q }} in JSON."))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("0042", 42), (str(MAX_VERSION), MAX_VERSION), ("latest", None)],
)
def test_a_version_is_ascii_digits_in_range(text: str, expected: int | None) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2",
        "\u0661",
        "1\u00b2",
        "0",
        "-1",
        "+1",
        " 1",
        "1.0",
        str(MAX_VERSION + 1),
        "9" * 30,
        "",
        "Latest",
    ],
)
def test_anything_else_is_refused_naming_the_bounds(text: str) -> None:
    # str.isdigit() accepts the superscript and the Arabic-Indic digit one, and int() reads them.
    with pytest.raises(InvalidInputError, match=f"give a number from 1 to {MAX_VERSION} in ASCII digits"):
        parse_version(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ok", None),
        ({"nested": [1, 2.5, True, None, {"k": "v"}]}, None),
        ("a\ud800b", "a lone surrogate (U+D800) at character 1 cannot be stored"),
        ("ab\x00", "a NUL character (U+0000) at character 2 cannot be stored"),
        ({"k\udfff": 1}, "the key 'k\\udfff' has a lone surrogate (U+DFFF) at character 1"),
        ({"a": [0, {"b c": "\x00"}]}, "a.1.'b c': a NUL character (U+0000) at character 0"),
        ([float("nan")], "0: nan is not a JSON number"),
        ({"x": float("inf")}, "x: inf is not a JSON number"),
    ],
)
def test_what_cannot_be_stored_is_named_with_its_place(value: object, expected: str | None) -> None:
    problem = storable_problem(value)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem
        # The message itself can always be stored and sent: the offending text is escaped.
        assert storable_problem(problem) is None


def test_check_storable_prefixes_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"^config\.k: a NUL character"):
        check_storable({"k": "\x00"}, "config")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"template": "x", "config": {"k\ud800": 1}}, "config: the key 'k\\ud800' has a lone surrogate"),
        ({"template": "x\x00"}, "template: a NUL character (U+0000) at character 1"),
        ({"messages": [{"role": "user", "content": "a\ud801"}]}, "messages: 0.content: a lone surrogate"),
        ({"template": "x", "tools": [{"n": float("nan")}]}, "tools: 0.n: nan is not a JSON number"),
        ({"template": "x", "commit_message": "\x00"}, "commit_message: a NUL character"),
        ({"template": "x", "environment": {"model_id": "m\x00"}}, "environment: model_id: a NUL"),
    ],
)
def test_a_spec_with_text_that_cannot_be_stored_is_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PromptSpec.model_validate({"name": "support", **spec})
    assert describe_validation_errors(refused.value.errors()).startswith(message)


@pytest.mark.parametrize("part", ["config", "tools", "output schema"])
def test_config_tools_and_schema_are_bounded_like_templates_on_a_local_store(
    store_target: str, part: str
) -> None:
    big = "x" * 2000
    documents = {
        "config": {"config": {"notes": big}},
        "tools": {"tools": [{"name": "lookup", "description": big}]},
        "output schema": {"output": {"format": "json", "schema": {"description": big}}},
    }
    with open_store(store_target, max_template_bytes=1024) as registry:
        spec = PromptSpec.model_validate({"name": "support", "template": "short", **documents[part]})
        with pytest.raises(
            TooLargeError, match=f"^{part} of 'support' is 20[0-9]{{2}} bytes, over the limit of 1024"
        ):
            registry.push(spec)
        assert registry.list_prompts() == []
        # Within the limit, the same document is stored.
        registry.max_template_bytes = 4096
        assert registry.push(spec).created


def test_transitions_refuse_what_cannot_be_stored_and_change_nothing(registry: SqlRegistry) -> None:
    _two_versions(registry)
    started = registry.start_rollout("support", 2, actor="ana", reason="try")
    refusals: list[tuple[dict[str, object], str]] = [
        ({"reason": "why\x00"}, "reason: a NUL character"),
        ({"reason": "why", "evidence": {"n\ud800": 1}}, "evidence: the key"),
        ({"reason": "why", "rollout_id": "r\x00"}, "rollout_id: a NUL character"),
        (
            {"reason": "why", "expected_revision": MAX_INTEGER + 1},
            "expected_revision 9223372036854775808 is out",
        ),
    ]
    for arguments, message in refusals:
        with pytest.raises(InvalidInputError, match=message):
            registry.transition("support", Action.PAUSE, actor="ana", **arguments)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="actor: a NUL"):
        registry.transition("support", Action.PAUSE, actor="a\x00", reason="why")
    assert registry.get_route("support") == started
    assert [r.action for r in registry.history("support")] == [Action.START]


def test_versions_beyond_the_column_are_refused_not_overflowed(registry: SqlRegistry) -> None:
    _two_versions(registry)
    for version in (MAX_VERSION + 1, 2**63, 10**30):
        with pytest.raises(InvalidInputError, match=f"version {version} is out of range"):
            registry.get_version("support", version)
        with pytest.raises(InvalidInputError, match=f"version {version} is out of range"):
            registry.start_rollout("support", version, actor="ana", reason="try")
    with pytest.raises(InvalidInputError, match="rollout_id: a NUL"):
        registry.get_rollout("support", "r\x00")
    assert registry.get_route("support").state == "idle"
