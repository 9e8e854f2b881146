"""YAML documents with their aliases bounded: a "billion laughs" spec or policy is refused before
anything is built, on a local store as anywhere else, while ordinary anchors keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from otel_prompt_canary.analysis import load_policy
from otel_prompt_canary.cli import EXIT_BAD_INPUT, cli
from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry import open_store
from otel_prompt_canary.yaml_documents import MAX_ALIAS_EXPANSION, YamlLimitError, load_yaml


def laughs(levels: int = 9, *, key: str = "config") -> str:
    """The classic: nine lists of nine aliases of the one before, under ``key`` (a few hundred bytes
    that stand for 9**levels values)."""
    lines = [f"{key}:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BOMB_SPEC = "name: support\ntemplate: Answer {{ q }}.\n" + laughs()


def test_a_billion_laughs_is_refused_with_its_size_and_place() -> None:
    assert len(BOMB_SPEC) < 600
    with pytest.raises(YamlLimitError) as refused:
        load_yaml(BOMB_SPEC)
    message = str(refused.value)
    assert f"more than the {MAX_ALIAS_EXPANSION} aliases may add" in message
    assert "line 1, column 1" in message
    assert isinstance(refused.value, yaml.YAMLError)  # callers that handle YAML errors handle it


def test_aliases_within_the_bound_are_expanded_as_usual() -> None:
    document = load_yaml(
        "base: &b {model: gpt-4.1-mini, temperature: 0.2}\nprod: *b\nstaging: {<<: *b, seed: 7}\n"
    )
    assert document == {
        "base": {"model": "gpt-4.1-mini", "temperature": 0.2},
        "prod": {"model": "gpt-4.1-mini", "temperature": 0.2},
        "staging": {"model": "gpt-4.1-mini", "temperature": 0.2, "seed": 7},
    }
    # Four levels of the same shape expand to 9**4 values: under the bound, read whole.
    assert len(load_yaml(laughs(4))["config"]["l3"]) == 9  # type: ignore[index]


def test_a_long_text_repeated_counts_by_its_characters() -> None:
    text = "x" * 50_000
    document = f"a: &a {text}\nb: [" + ", ".join(["*a"] * 30) + "]\n"
    with pytest.raises(YamlLimitError, match="values and characters"):
        load_yaml(document)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("a: &a [1, *a]\n", "an alias refers to a node that contains it"),
        ("a: &a {b: *a}\n", "an alias refers to a node that contains it"),
        ("n: " + "9" * 5000 + "\n", "a value cannot be read"),
        ("[" * 20_000, "nested too deeply"),
    ],
)
def test_documents_no_json_value_can_be_are_refused(document: str, message: str) -> None:
    with pytest.raises(YamlLimitError, match=message):
        load_yaml(document)


def test_a_policy_bomb_is_refused() -> None:
    policy = (
        "signals: [{name: json_valid, kind: proportion, harmful: decrease}]\n"
        "rules: [{signal: json_valid, type: relative, action: rollback}]\n" + laughs(key="extra")
    )
    with pytest.raises(InvalidInputError, match=r"^invalid policy: its aliases expand it"):
        load_policy(policy)


def test_pushing_a_bomb_to_a_local_store_stores_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(BOMB_SPEC, encoding="utf-8")
    store = tmp_path / "registry.db"
    result = CliRunner().invoke(cli, ["--registry", str(store), "prompt", "push", str(spec)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "aliases expand it" in result.output
    with open_store(store) as registry:
        assert registry.list_prompts() == []
