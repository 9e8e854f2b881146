"""``prompt push/show/diff`` with an output contract, on a store and through a control plane."""

from __future__ import annotations

from pathlib import Path

from tests.cli.cli_helpers import SPEC_V1, Cli, write

CONTRACT = """\
output:
  format: json
  schema:
    type: object
    required: [answer, category]
    properties:
      answer: {type: string}
      category: {enum: [billing, shipping, other]}
"""


def test_push_show_and_diff_a_contract(any_cli: Cli, tmp_path: Path) -> None:
    plain = write(tmp_path / "v1.yaml", SPEC_V1)
    declared = write(tmp_path / "v2.yaml", SPEC_V1 + CONTRACT)
    assert any_cli.ok("prompt", "push", plain).stdout == "support-bot@1 (new)\n"
    # Only the contract differs: a new version.
    assert any_cli.ok("prompt", "push", declared).stdout == "support-bot@2 (new)\n"
    assert any_cli.ok("prompt", "push", declared).stdout == "support-bot@2 (unchanged: identical content)\n"

    shown = any_cli.ok("prompt", "show", "support-bot@2").stdout.splitlines()
    assert "output       json, matching the schema below" in shown
    schema_at = shown.index("--- output schema ---")
    assert shown[schema_at + 1 : schema_at + 4] == ["{", '  "properties": {', '    "answer": {']
    assert "output       -" in any_cli.ok("prompt", "show", "support-bot@1").stdout.splitlines()

    as_json = any_cli.json("prompt", "show", "support-bot@2")
    assert as_json["output"]["format"] == "json"
    assert as_json["output"]["schema"]["required"] == ["answer", "category"]
    assert "output" not in any_cli.json("prompt", "show", "support-bot@1")

    diff = any_cli.ok("prompt", "diff", "support-bot", "1", "2").stdout.splitlines()
    assert diff[0] == (
        "support-bot@1 -> support-bot@2: output.format: null -> json; output.schema added "
        "[blast radius: config]"
    )
    assert '-  "output": null' in diff and '+  "output": {' in diff


def test_an_invalid_contract_is_refused_with_its_place(any_cli: Cli, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", SPEC_V1 + CONTRACT.replace("type: string", "type: text"))
    assert any_cli.fails(2, "prompt", "push", bad) == (
        f"{bad}: invalid prompt spec: output.schema: invalid schema at properties/answer/type: "
        "'text' is not valid under any of the given schemas"
    )
    unknown = write(tmp_path / "unknown.yaml", SPEC_V1 + "output: {format: xml}\n")
    assert any_cli.fails(2, "prompt", "push", unknown) == (
        f"{unknown}: invalid prompt spec: output.format: Input should be 'json'"
    )
    assert any_cli.ok("prompt", "list").stdout.startswith("no prompts yet")
