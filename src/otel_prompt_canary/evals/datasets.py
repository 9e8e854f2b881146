"""Golden-set datasets: the cases a prompt version is evaluated on, and what a good answer has.

A :class:`DatasetSpec` is what a user pushes: a name, the prompt it belongs to, and its
:class:`Case` s. Each case gives the prompt's variables and/or chat messages appended after the
prompt's own, and its :class:`Expectations`: the prompt's output contract (on by default),
phrases the answer must or must not contain, a JSON Schema of its own, a reference answer and a
rubric for the LLM judge. The store turns a spec into a :class:`Dataset`, a version numbered per
prompt and dataset name and identified by a content hash: pushing the same cases again returns the
existing version.

Every bad input is refused before a model is called, and says where: a case's line in the file it
was read from (:attr:`DatasetSpec.lines`), else its position. :func:`check_variables` refuses cases
whose variables the evaluated version does not use, or that miss one it does; :func:`check_size`
refuses a dataset of more than :data:`MAX_CASES` cases or :data:`MAX_DATASET_BYTES` bytes.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from otel_prompt_canary.errors import InvalidInputError, TooLargeError
from otel_prompt_canary.json_schemas import schema_validator
from otel_prompt_canary.registry.bounds import storable_problem
from otel_prompt_canary.registry.models import Message, PromptVersion, canonical_json, validate_prompt_name

__all__ = [
    "CASE_ID_PATTERN",
    "MAX_CASES",
    "MAX_DATASET_BYTES",
    "Case",
    "Dataset",
    "DatasetDiff",
    "DatasetPushResult",
    "DatasetSpec",
    "DatasetSummary",
    "Expectations",
    "JudgeSettings",
    "check_size",
    "check_variables",
    "diff_datasets",
    "validate_dataset_name",
]

#: The most cases a dataset may hold.
MAX_CASES: Final = 1000
#: The largest dataset, in bytes of the canonical JSON of its content: it must fit, with its
#: evaluation runs, in a control plane's request body (1 MiB by default).
MAX_DATASET_BYTES: Final = 512 * 1024

CASE_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
#: Problems listed in one error, at most: the first ones say enough to fix the file.
_SHOWN_PROBLEMS: Final = 10


def validate_dataset_name(name: str) -> str:
    """``name`` if it is a valid dataset name (the rule of prompt names), else InvalidInputError."""
    try:
        return validate_prompt_name(name)
    except InvalidInputError:
        raise InvalidInputError(
            f"invalid dataset name {name!r}: use 1-128 characters from letters, digits, '.', '_' and "
            "'-', starting with a letter or digit"
        ) from None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectations(_Frozen):
    """What a good answer to one case has; every part is optional.

    ``contract``: the prompt version's output contract applies (its ``json_valid`` and
    ``json_schema`` checks); ``must_contain`` / ``must_not_contain``: phrases, compared without
    regard to case; ``schema``: a JSON Schema the answer (one JSON document) must match;
    ``reference``: a good answer, given to the LLM judge; ``rubric``: how the judge grades this case
    (default: the dataset's); ``min_judge_score``: the judge's score the case needs (default: the
    dataset's ``judge.pass_score``); ``ignore_checks``: project checks not held against this case
    (``refusal`` for a case whose right answer is a refusal, say).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True, populate_by_name=True)

    contract: bool = True
    must_contain: tuple[str, ...] = ()
    must_not_contain: tuple[str, ...] = ()
    json_schema: dict[str, JsonValue] | None = Field(
        None, alias="schema", description="A JSON Schema the answer must match"
    )
    reference: str | None = None
    rubric: str | None = None
    min_judge_score: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    ignore_checks: tuple[str, ...] = ()

    @field_validator("must_contain", "must_not_contain")
    @classmethod
    def _phrases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not phrase.strip() for phrase in value):
            raise ValueError("a phrase must not be empty")
        return value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None:
            try:
                schema_validator(value)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("reference", "rubric")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("leave it out rather than empty")
        return value

    @property
    def needs_judge(self) -> bool:
        """Whether the LLM judge grades this case on its own (a reference or a rubric)."""
        return self.reference is not None or self.rubric is not None


class Case(_Frozen):
    """One golden-set case: what to send (variables and/or messages) and what a good answer has.

    ``variables`` fill the prompt's ``{{ variables }}``; ``messages`` are appended after the
    prompt's own messages (the user's question of a prompt that is all system instructions, or a
    conversation). ``tags`` name the class of the case (``billing``, ``refund``), for reports.
    """

    id: str = Field(description="Unique within the dataset: letters, digits and . _ : -")
    variables: dict[str, JsonValue] = Field(default_factory=dict)
    messages: tuple[Message, ...] = ()
    expect: Expectations = Field(default_factory=Expectations)
    tags: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not CASE_ID_PATTERN.fullmatch(value):
            raise ValueError(
                f"invalid case id {value[:40]!r}: use 1-128 letters, digits and . _ : -, starting with a "
                "letter or digit"
            )
        return value

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"invalid variable name {name[:40]!r}: a template variable is an identifier")
        return value

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not _TAG.fullmatch(tag):
                raise ValueError(f"invalid tag {tag[:40]!r}: use 1-64 letters, digits and . _ : -")
        return value


class JudgeSettings(_Frozen):
    """How the LLM judge grades the dataset: a rubric for every case (a case's own replaces it) and
    the score below which a case fails."""

    rubric: str | None = None
    pass_score: float = Field(0.5, ge=0, le=1, allow_inf_nan=False)


def _where(index: int, case_id: str, lines: Sequence[int] | None) -> str:
    if lines is not None and index < len(lines):
        return f"line {lines[index]} (case {case_id!r})"
    return f"case {index + 1} ({case_id!r})"


class DatasetSpec(BaseModel):
    """What a user pushes: one version of a prompt's golden set.

    ``lines`` is where each case starts in the file it was read from (set by the file reader), so
    that every refusal names the line. Text the store cannot hold is refused, naming where.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    prompt: str
    description: str = ""
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    cases: tuple[Case, ...] = Field(min_length=1)
    lines: tuple[int, ...] | None = Field(None, description="The line each case starts at, in its file")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        try:
            return validate_dataset_name(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("prompt")
    @classmethod
    def _valid_prompt(cls, value: str) -> str:
        try:
            return validate_prompt_name(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        if self.lines is not None and len(self.lines) != len(self.cases):
            raise ValueError(f"'lines' has {len(self.lines)} entries for {len(self.cases)} cases")
        first: dict[str, int] = {}
        problems = []
        for index, case in enumerate(self.cases):
            if case.id in first:
                problems.append(
                    f"{_where(index, case.id, self.lines)}: the id is already used by "
                    f"{_where(first[case.id], case.id, self.lines)}; case ids are unique"
                )
            first.setdefault(case.id, index)
            if not case.variables and not case.messages:
                problems.append(f"{_where(index, case.id, self.lines)}: give 'variables' or 'messages'")
        problem = storable_problem(self.content())
        if problem is not None:
            problems.append(problem)
        if problems:
            raise ValueError("; ".join(problems[:_SHOWN_PROBLEMS]))
        return self

    def where(self, index: int) -> str:
        """How messages name case ``index``: its line when known (``line 12 (case 'refund-1')``)."""
        return _where(index, self.cases[index].id, self.lines)

    def content(self) -> dict[str, Any]:
        """What defines the dataset's behaviour (its lines and author aside): what is hashed."""
        return {
            "description": self.description,
            "judge": self.judge.model_dump(mode="json"),
            "cases": [case.model_dump(mode="json", by_alias=True) for case in self.cases],
        }

    def content_hash(self) -> str:
        """``sha256:<hex>`` over the canonical JSON of :meth:`content`."""
        return "sha256:" + hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()


def check_size(spec: DatasetSpec, *, max_bytes: int = MAX_DATASET_BYTES, max_cases: int = MAX_CASES) -> None:
    """Refuse (:class:`TooLargeError`, HTTP 413) more than ``max_cases`` cases or a content of more
    than ``max_bytes`` bytes (canonical JSON), naming the first case over the limit."""
    if len(spec.cases) > max_cases:
        raise TooLargeError(
            f"dataset {spec.name!r} has {len(spec.cases)} cases, more than the limit of {max_cases}: "
            f"{spec.where(max_cases)} is the first one over it; split the dataset"
        )
    total = len(canonical_json({k: v for k, v in spec.content().items() if k != "cases"}).encode())
    for index, case in enumerate(spec.cases):
        total += len(canonical_json(case.model_dump(mode="json", by_alias=True)).encode()) + 1
        if total > max_bytes:
            raise TooLargeError(
                f"dataset {spec.name!r} is over the limit of {max_bytes} bytes at {spec.where(index)}: "
                "shorten its cases or split the dataset"
            )


class Dataset(_Frozen):
    """One stored, immutable version of a prompt's golden set."""

    prompt: str
    name: str
    version: int = Field(ge=1)
    content_hash: str
    description: str = ""
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    cases: tuple[Case, ...]
    lines: tuple[int, ...] | None = None
    author: str | None = None
    created_at: datetime

    @classmethod
    def from_spec(
        cls, spec: DatasetSpec, *, version: int, created_at: datetime, author: str | None
    ) -> Dataset:
        """The dataset that storing ``spec`` as number ``version`` creates."""
        return cls(
            prompt=spec.prompt,
            name=spec.name,
            version=version,
            content_hash=spec.content_hash(),
            description=spec.description,
            judge=spec.judge,
            cases=spec.cases,
            lines=spec.lines,
            author=author,
            created_at=created_at,
        )

    @property
    def ref(self) -> str:
        """``name@version``, the way the CLI names a dataset version."""
        return f"{self.name}@{self.version}"

    def where(self, index: int) -> str:
        """How messages name case ``index`` (its line in the pushed file, when known)."""
        return _where(index, self.cases[index].id, self.lines)

    @property
    def needs_judge(self) -> bool:
        """Whether the LLM judge grades any case (a dataset rubric, or a case's reference or rubric)."""
        return self.judge.rubric is not None or any(case.expect.needs_judge for case in self.cases)


class DatasetPushResult(_Frozen):
    """What a push returns: the stored dataset version, and whether it is new."""

    dataset: Dataset
    created: bool


class DatasetSummary(_Frozen):
    """One line of ``dataset list``: a dataset of a prompt, its newest version and size."""

    prompt: str
    name: str
    latest_version: int
    versions: int
    cases: int
    updated_at: datetime


def check_variables(cases: Sequence[Case], version: PromptVersion, where: Sequence[str]) -> None:
    """Refuse cases that give a variable ``version`` does not use, or miss one it does.

    ``where`` names each case in messages (``line 12 (case 'refund-1')``). Raises
    :class:`InvalidInputError` listing the first problems.
    """
    wanted = set(version.variables)
    uses = ", ".join(version.variables) or "none"
    problems = []
    for case, place in zip(cases, where, strict=True):
        unknown = sorted(set(case.variables) - wanted)
        missing = sorted(wanted - set(case.variables))
        if unknown:
            shown = ", ".join(repr(v) for v in unknown)
            problems.append(f"{place}: unknown variable {shown} ({version.ref} uses: {uses})")
        if missing:
            shown = ", ".join(repr(v) for v in missing)
            problems.append(f"{place}: missing variable {shown} ({version.ref} uses: {uses})")
    if problems:
        more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
        raise InvalidInputError("; ".join(problems[:_SHOWN_PROBLEMS]) + more)


class DatasetDiff(BaseModel):
    """What changed between two versions of a dataset: cases added, removed and changed, by id."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    name: str
    from_version: int
    to_version: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    summary: str
    cases_diff: str


def _case_lines(case: Case) -> list[str]:
    text = json.dumps(
        case.model_dump(mode="json", by_alias=True), indent=2, sort_keys=True, ensure_ascii=False
    )
    return [line + "\n" for line in text.splitlines()]


def _listed(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def diff_datasets(a: Dataset, b: Dataset) -> DatasetDiff:
    """The diff from dataset version ``a`` to version ``b`` (of the same dataset)."""
    old = {case.id: case for case in a.cases}
    new = {case.id: case for case in b.cases}
    added = tuple(case.id for case in b.cases if case.id not in old)
    removed = tuple(case.id for case in a.cases if case.id not in new)
    changed = tuple(case.id for case in b.cases if case.id in old and old[case.id] != new[case.id])
    parts = []
    for what, ids in (("added", added), ("removed", removed), ("changed", changed)):
        if ids:
            parts.append(f"{len(ids)} {'case' if len(ids) == 1 else 'cases'} {what} ({_listed(ids)})")
    if a.judge != b.judge:
        parts.append("judge settings changed")
    if a.description != b.description:
        parts.append("description changed")
    chunks = []
    for case_id in (*removed, *changed, *added):
        before = _case_lines(old[case_id]) if case_id in old else []
        after = _case_lines(new[case_id]) if case_id in new else []
        chunks.append(
            "".join(
                difflib.unified_diff(
                    before, after, fromfile=f"{a.ref} {case_id}", tofile=f"{b.ref} {case_id}"
                )
            )
        )
    summary = "; ".join(parts) if parts else "no changes"
    return DatasetDiff(
        prompt=b.prompt,
        name=b.name,
        from_version=a.version,
        to_version=b.version,
        added=added,
        removed=removed,
        changed=changed,
        summary=f"{a.prompt}/{a.ref} -> {b.ref}: {summary}",
        cases_diff="".join(chunks),
    )
