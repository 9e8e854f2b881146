"""Datasets: read from JSONL or YAML naming every bad line, stored content-addressed beside the
prompt, versioned and diffable, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text

from otel_prompt_canary.errors import InvalidInputError, NotFoundError, TooLargeError
from otel_prompt_canary.evals import Dataset, SqlEvalStore, read_dataset
from otel_prompt_canary.evals.datasets import MAX_CASES, check_size
from otel_prompt_canary.registry import PromptSpec
from otel_prompt_canary.yaml_documents import load_yaml
from tests.evals.golden import dataset_jsonl, dataset_yaml, spec


def test_a_yaml_file_keeps_each_cases_line() -> None:
    read = read_dataset(dataset_yaml(), source="golden.yaml")
    assert (read.name, read.prompt, len(read.cases)) == ("support-golden", "support-bot", 12)
    lines = dataset_yaml().splitlines()
    assert read.lines is not None
    for case, line in zip(read.cases, read.lines, strict=True):
        assert lines[line - 1].strip() == f"- id: {case.id}"
    assert read.cases[0].expect.reference == "A billing answer"
    assert read.cases[0].tags == ("billing",)


def test_a_jsonl_file_takes_its_name_from_the_file_and_its_prompt_from_the_caller() -> None:
    text_ = "\n" + dataset_jsonl()  # a blank line is skipped, and the numbering follows the file
    read = read_dataset(text_, source="data/golden-set.jsonl", prompt="support-bot")
    assert (read.name, read.prompt, read.lines) == ("golden-set", "support-bot", tuple(range(2, 14)))


@pytest.mark.parametrize(
    ("content", "source", "message"),
    [
        (
            '{"id": "a", "variables": {"question": "x"}}\n{"id": "b", "variables": \n',
            "g.jsonl",
            "g.jsonl: line 2: malformed JSON",
        ),
        (
            '{"id": "a", "variables": {"question": "x"}}\n[1]\n',
            "g.jsonl",
            "g.jsonl: line 2: a case is a mapping",
        ),
        (
            '{"id": "a", "variables": {"question": "x"}}\n'
            '{"id": "b", "expect": {"must_contain": [""]}, "variables": {"q": 1}}\n',
            "g.jsonl",
            "g.jsonl: line 2 (case 'b'): expect.must_contain: a phrase must not be empty",
        ),
        (
            '{"id": "a b", "variables": {"question": "x"}}\n',
            "g.jsonl",
            "g.jsonl: line 1 (case 'a b'): id: invalid case id",
        ),
        ('{"id": "a"}\n', "g.jsonl", "line 1 (case 'a'): give 'variables' or 'messages'"),
        (
            '{"id": "a", "variables": {"question": "x"}}\n{"id": "c", "variables": {"question": "y"}}\n'
            '{"id": "a", "variables": {"question": "z"}}\n',
            "g.jsonl",
            "line 3 (case 'a'): the id is already used by line 1 (case 'a'); case ids are unique",
        ),
        (
            '{"id": "a", "variables": {"question": "x"}, "expect": {"schema": {"type": "nope"}}}\n',
            "g.jsonl",
            "line 1 (case 'a'): expect.schema: invalid schema at",
        ),
        (
            "prompt: p\ncases:\n  - id: a\n    variables: {question: [unclosed\n",
            "g.yaml",
            "g.yaml: malformed YAML at line",
        ),
        (
            "prompt: p\ncases:\n  - id: a\n    variables: {question: x}\n    extra: 1\n",
            "g.yaml",
            "g.yaml: line 3 (case 'a'): extra: unknown field",
        ),
        ("prompt: p\nwhat: 1\ncases: []\n", "g.yaml", "g.yaml: unknown field 'what'"),
        ("prompt: p\ncases: []\n", "g.yaml", "g.yaml: 'cases' must be a list of at least one case"),
        (
            "cases:\n  - {id: a, variables: {q: 1}}\n",
            "g.yaml",
            "g.yaml: the dataset needs the prompt it belongs to",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(content: str, source: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_dataset(content, source=source, prompt=None if source.endswith(".yaml") else "p")
    assert message in str(caught.value)


def test_a_file_with_too_many_cases_is_refused_before_the_rest_is_read() -> None:
    rows = "".join(json.dumps({"id": f"c{i}", "variables": {"q": i}}) + "\n" for i in range(MAX_CASES + 1))
    with pytest.raises(TooLargeError, match=rf"more than {MAX_CASES} cases \(line {MAX_CASES + 1} is case"):
        read_dataset(rows, source="big.jsonl", prompt="p")


def test_a_dataset_over_the_byte_limit_names_the_case_that_crosses_it() -> None:
    read = read_dataset(dataset_yaml(), source="golden.yaml")
    with pytest.raises(TooLargeError, match="over the limit of 1000 bytes at line") as caught:
        check_size(read, max_bytes=1000)
    match = re.search(r"at line (\d+) \(case '([a-z]+-\d)'\)", str(caught.value))
    assert match is not None
    assert dataset_yaml().splitlines()[int(match.group(1)) - 1].strip() == f"- id: {match.group(2)}"
    check_size(read, max_bytes=100_000)  # the whole set is far below the default limit


def test_push_is_content_addressed_versioned_and_diffable(store: SqlEvalStore) -> None:
    first = store.push_dataset(read_dataset(dataset_yaml(), source="golden.yaml"), author="ana")
    again = store.push_dataset(read_dataset(dataset_yaml(), source="golden.yaml"), author="bo")
    assert first.created and not again.created
    assert again.dataset == first.dataset and first.dataset.version == 1 and first.dataset.author == "ana"
    changed = dataset_yaml().replace("must_not_contain: [sorry]", "must_not_contain: [sorry, oops]", 1)
    changed += '  - id: extra-1\n    variables: {question: "Hello?"}\n'
    second = store.push_dataset(read_dataset(changed, source="golden.yaml"))
    assert (second.created, second.dataset.version) == (True, 2)

    [summary] = store.list_datasets("support-bot")
    assert (summary.name, summary.latest_version, summary.versions, summary.cases) == (
        "support-golden",
        2,
        2,
        13,
    )
    assert store.get_dataset("support-bot", "support-golden").version == 2
    assert store.get_dataset("support-bot", "support-golden", 1) == first.dataset
    diff = store.diff_datasets("support-bot", "support-golden", 1, 2)
    assert (diff.added, diff.removed, diff.changed) == (("extra-1",), (), ("billing-1",))
    assert diff.summary.endswith("1 case added (extra-1); 1 case changed (billing-1)")
    assert '+      "oops"' in diff.cases_diff


def test_cases_must_use_exactly_the_variables_of_the_prompts_newest_version(store: SqlEvalStore) -> None:
    bad = dataset_yaml().replace("variables: {question:", "variables: {qustion:", 1)
    with pytest.raises(InvalidInputError) as caught:
        store.push_dataset(read_dataset(bad, source="golden.yaml"))
    message = str(caught.value)
    assert "line 5 (case 'billing-1'): unknown variable 'qustion' (support-bot@3 uses: question)" in message
    assert "line 5 (case 'billing-1'): missing variable 'question'" in message
    assert store.list_datasets("support-bot") == []


def test_an_unknown_prompt_or_dataset_is_not_found(store: SqlEvalStore, golden: Dataset) -> None:
    other = read_dataset(dataset_yaml(), source="golden.yaml", prompt="nobody")
    with pytest.raises(NotFoundError, match="unknown prompt 'nobody'"):
        store.push_dataset(other)
    with pytest.raises(NotFoundError, match="has no dataset 'other'"):
        store.get_dataset("support-bot", "other")
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.get_dataset("support-bot", "support-golden", 9)


def test_a_stored_dataset_version_cannot_be_changed(store: SqlEvalStore, golden: Dataset) -> None:
    with pytest.raises(Exception, match="immutable"), store.registry.database.transaction() as conn:
        conn.execute(text("UPDATE datasets SET content_hash = 'x'"))
    assert store.get_dataset("support-bot", "support-golden") == golden


def test_a_messages_case_appends_to_a_prompt_without_variables(store: SqlEvalStore) -> None:
    prompt = load_yaml(
        spec("Answer briefly.")
        .replace("support-bot", "brief")
        .replace('  - {role: user, content: "{{ question }}"}\n', "")
    )
    store.registry.push(PromptSpec.model_validate(prompt))
    content = "prompt: brief\ncases:\n  - id: hi\n    messages: [{role: user, content: Hello}]\n"
    pushed = store.push_dataset(read_dataset(content, source="brief.yaml")).dataset
    assert pushed.cases[0].messages[0].content == "Hello"
