"""The output contract of a prompt spec: validated at push, hashed, stored, shown in diffs.

Specs without a contract must keep the content hash they had before contracts existed: the hashes
below were computed by the release before this field, and a store written by it must see its
versions unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import insert

from otel_prompt_canary.errors import describe_validation_errors
from otel_prompt_canary.registry import (
    OutputContract,
    PromptSpec,
    PromptVersion,
    SqlRegistry,
    diff_versions,
)
from otel_prompt_canary.registry import schema as tables
from tests.support.contracts import SUPPORT_BOT_SCHEMA

NOW = datetime(2026, 1, 1, tzinfo=UTC)

SUPPORT_BOT: dict[str, Any] = {
    "name": "support-bot",
    "messages": [
        {
            "role": "system",
            "content": "You are the support assistant of Acme. Answer with compact JSON only:\n"
            '{"answer": "<one or two sentences>", "category": "billing|shipping|other"}\n',
        },
        {"role": "user", "content": "{{ question }}"},
    ],
    "model": "gpt-4.1-mini",
    "config": {"temperature": 0.2, "max_tokens": 300},
    "commit_message": "First version of the support assistant",
    "environment": {"rag_index_id": "kb-2026-11-01", "eval_baseline_id": "eval-118"},
}
SCHEMA = SUPPORT_BOT_SCHEMA

#: Content hashes computed by the release before output contracts (the spec, the hash it had).
HASHES_BEFORE_CONTRACTS = [
    (SUPPORT_BOT, "sha256:f690316d6ad6d1ddbcb3b6bf01045082c12b208fdf8e9c5570a2073b09af5857"),
    (
        {"name": "greeter", "template": "Greet {{ name }} warmly."},
        "sha256:a64ca09ef76a1764c902f722e14a7050fed5d2a9b1f32d1de8488542b1b4ade1",
    ),
    (
        {
            "name": "p",
            "template": "t",
            "template_role": "user",
            "model": "m",
            "config": {"temperature": 0.2},
            "environment": {"rag_index_id": "i"},
            "tools": [{"name": "x"}],
        },
        "sha256:004a267fe5655413617de6982be6b18670cf431ce4eb64f00f3aa4ba65909d72",
    ),
]

#: How the release before output contracts stored SUPPORT_BOT as version 1 (the row's body).
BODY_BEFORE_CONTRACTS: dict[str, Any] = {
    **{k: v for k, v in SUPPORT_BOT.items() if k != "environment"},
    "version": 1,
    "content_hash": HASHES_BEFORE_CONTRACTS[0][1],
    "template": None,
    "template_role": "system",
    "variables": ["question"],
    "environment": {
        "model_id": "gpt-4.1-mini",
        "rag_index_id": "kb-2026-11-01",
        "tool_schema_hash": None,
        "eval_baseline_id": "eval-118",
    },
    "author": "ana",
    "created_at": "2026-01-01T00:00:00Z",
}


def spec(**fields: Any) -> PromptSpec:
    return PromptSpec.model_validate({**SUPPORT_BOT, **fields})


@pytest.mark.parametrize(("fields", "digest"), HASHES_BEFORE_CONTRACTS)
def test_a_spec_without_a_contract_keeps_its_hash(fields: dict[str, Any], digest: str) -> None:
    assert PromptSpec.model_validate(fields).content_hash() == digest


def test_the_contract_is_part_of_the_content_hash() -> None:
    plain = spec().content_hash()
    as_json = spec(output={"format": "json"}).content_hash()
    with_schema = spec(output={"format": "json", "schema": SCHEMA}).content_hash()
    assert len({plain, as_json, with_schema}) == 3
    # Canonical: key order and how the spec was written do not matter.
    reordered = dict(reversed(list(SCHEMA.items())))
    assert spec(output={"schema": reordered, "format": "json"}).content_hash() == with_schema
    assert spec(output=OutputContract(format="json", schema=SCHEMA)).content_hash() == with_schema


def test_the_version_keeps_the_contract_and_its_json_only_when_declared() -> None:
    declared = PromptVersion.from_spec(
        spec(output={"format": "json", "schema": SCHEMA}), version=1, created_at=NOW
    )
    assert declared.output == OutputContract(format="json", schema=SCHEMA)
    assert declared.model_dump(mode="json")["output"] == {"format": "json", "schema": SCHEMA}
    assert PromptVersion.model_validate_json(declared.model_dump_json()) == declared
    # Without a contract the version's JSON is what it was before contracts: no "output" key at all,
    # so older readers (a release that forbids unknown fields) still read it.
    plain = PromptVersion.from_spec(spec(), version=1, created_at=NOW)
    assert plain.output is None
    assert "output" not in plain.model_dump(mode="json")
    assert "output" not in spec().model_dump(mode="json")
    assert plain.model_dump(mode="json") | {"author": "ana"} == BODY_BEFORE_CONTRACTS


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ({"format": "xml"}, "output.format: Input should be 'json'"),
        ({"schema": SCHEMA}, "output.format: Field required"),
        ({"format": "json", "shema": SCHEMA}, "output.shema: unknown field"),
        ({"format": "json", "schema": True}, "output.schema: Input should be a valid dictionary"),
        (
            {"format": "json", "schema": {"type": "objekt"}},
            "output.schema: invalid schema at type: 'objekt' is not valid under any of the given schemas",
        ),
        (
            {"format": "json", "schema": {"properties": {"category": {"enum": "billing"}}}},
            "output.schema: invalid schema at properties/category/enum: 'billing' is not of type 'array'",
        ),
        (
            {
                "format": "json",
                "schema": {"$schema": "http://json-schema.org/draft-04/schema#", "minimum": "1"},
            },
            "output.schema: invalid schema at minimum: '1' is not of type 'number'",
        ),
    ],
)
def test_an_invalid_contract_is_refused_with_its_location(output: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(output=output)
    assert describe_validation_errors(caught.value.errors()) == message


def test_a_stored_version_is_read_without_checking_its_schema_again() -> None:
    # What the registry accepted stays readable: reading never re-validates (nor loads jsonschema).
    body = {**BODY_BEFORE_CONTRACTS, "output": {"format": "json", "schema": {"type": "objekt"}}}
    assert PromptVersion.model_validate(body).output == OutputContract(
        format="json", schema={"type": "objekt"}
    )


def test_a_store_written_before_contracts_sees_its_versions_unchanged(registry: SqlRegistry) -> None:
    # The row the earlier release wrote, as it wrote it.
    with registry.database.engine.begin() as conn:
        conn.execute(insert(tables.prompts).values(name="support-bot", created_at=NOW))
        conn.execute(
            insert(tables.versions).values(
                name="support-bot",
                version=1,
                content_hash=BODY_BEFORE_CONTRACTS["content_hash"],
                body=BODY_BEFORE_CONTRACTS,
                created_at=NOW,
            )
        )
    stored = registry.get_version("support-bot", 1)
    assert stored.output is None
    assert stored.content_hash == HASHES_BEFORE_CONTRACTS[0][1]
    again = registry.push(spec(commit_message="pushed again by this release"))
    assert not again.created and again.version == stored
    # The same prompt declaring its output is new content: a new version, with its contract.
    declared = registry.push(spec(output={"format": "json", "schema": SCHEMA}))
    assert declared.created and declared.version.version == 2
    assert registry.get_version("support-bot", 2).output == OutputContract(format="json", schema=SCHEMA)
    assert not registry.push(spec(output={"format": "json", "schema": SCHEMA})).created


def test_the_diff_shows_the_contract_and_calls_it_a_config_change() -> None:
    def v(n: int, **fields: Any) -> PromptVersion:
        return PromptVersion.from_spec(spec(**fields), version=n, created_at=NOW)

    added = diff_versions(v(1), v(2, output={"format": "json"}))
    assert added.blast_radius == "config"
    assert (
        added.summary == "support-bot@1 -> support-bot@2: output.format: null -> json [blast radius: config]"
    )
    assert '-  "output": null' in added.config_diff and '+  "output": {' in added.config_diff

    schema = diff_versions(v(2, output={"format": "json"}), v(3, output={"format": "json", "schema": SCHEMA}))
    assert schema.summary.endswith(": output.schema added [blast radius: config]")
    assert '+    "schema": {' in schema.config_diff

    changed = {**SCHEMA, "required": ["answer"]}
    tightened = diff_versions(
        v(3, output={"format": "json", "schema": SCHEMA}), v(4, output={"format": "json", "schema": changed})
    )
    assert tightened.summary.endswith(": output.schema changed [blast radius: config]")
    removed = diff_versions(v(4, output={"format": "json", "schema": changed}), v(5))
    assert "output.format: json -> null; output.schema removed" in removed.summary

    # Versions without contracts diff as they always did: no "output" in their config diff.
    plain = diff_versions(v(1), v(2, config={"temperature": 0.7}))
    assert "output" not in plain.config_diff


def test_the_examples_declare_the_support_bot_contract() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    for name in ("support-bot-v1.yaml", "support-bot-v2.yaml"):
        declared = PromptSpec.model_validate(yaml.safe_load((examples / name).read_text(encoding="utf-8")))
        assert declared.output is not None, name
        assert declared.output.content() == {"format": "json", "schema": SCHEMA}, name
