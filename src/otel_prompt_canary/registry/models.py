"""The registry's data: prompt specs, immutable versions, routing state, rollouts and audit records.

A :class:`PromptSpec` is what a user pushes. The registry turns it into a :class:`PromptVersion`, immutable,
numbered per prompt and identified by a content hash over everything that changes model behaviour
(template, model, configuration, environment) or how its answers are judged (the
:class:`OutputContract`); pushing identical content again returns the existing version. A
:class:`Route` is the routing flag of one prompt: which version is stable, which is in canary and at
what weight. Field names are public (dashboards, the Collector processor and users' scripts read
them); see ARCHITECTURE.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
    model_validator,
)

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.json_schemas import schema_validator
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.bounds import storable_problem
from otel_prompt_canary.registry.template import find_variables, render_text

__all__ = [
    "DEFAULT_RAMP",
    "ENVIRONMENT_NAME_PATTERN",
    "PROMPT_NAME_PATTERN",
    "Action",
    "AuditRecord",
    "Environment",
    "Message",
    "OutputContract",
    "OutputContractSpec",
    "PromptName",
    "PromptSpec",
    "PromptSummary",
    "PromptVersion",
    "PushResult",
    "Rollout",
    "RolloutState",
    "Route",
    "canonical_json",
    "parse_ramp",
    "percent_to_bp",
    "validate_environment_name",
    "validate_prompt_name",
]

PROMPT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

#: Names of environments (``staging``, ``production``...): what routes, rollouts and audit records
#: belong to. Lower case, so that one environment never hides behind two spellings.
ENVIRONMENT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")

#: The default ramp, in percent of traffic routed to the canary at each step.
DEFAULT_RAMP: tuple[float, ...] = (1.0, 5.0, 20.0, 50.0, 100.0)

MessageRole = Literal["system", "developer", "user", "assistant", "tool"]


def validate_prompt_name(name: str) -> str:
    """Return ``name`` if it is a valid prompt name, else raise :class:`InvalidInputError`."""
    if not isinstance(name, str) or not PROMPT_NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid prompt name {name!r}: use 1-128 characters from letters, digits, '.', '_' "
            "and '-', starting with a letter or digit"
        )
    return name


def validate_environment_name(name: str) -> str:
    """Return ``name`` if it is a valid environment name, else raise :class:`InvalidInputError`."""
    if not isinstance(name, str) or not ENVIRONMENT_NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid environment name {name!r}: use 1-32 characters from lower-case letters, digits "
            "and '-', starting with a letter"
        )
    return name


def _check_name(value: str) -> str:
    try:
        return validate_prompt_name(value)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None


PromptName = Annotated[str, Field(description="Prompt name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}")]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: the input of every content hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Message(_Frozen):
    """One chat message of a template; ``content`` may use ``{{ variables }}``."""

    role: MessageRole
    content: str


class Environment(_Frozen):
    """What the prompt was tested with: a change here is a change of behaviour, so it is hashed too."""

    model_id: str | None = Field(None, description="Model identifier, e.g. gpt-4.1-mini-2025-04-14")
    rag_index_id: str | None = Field(None, description="Snapshot id of the retrieval index")
    tool_schema_hash: str | None = Field(None, description="Hash of the tool/function schemas")
    eval_baseline_id: str | None = Field(None, description="Id of the offline evaluation baseline")


class OutputContract(_Frozen):
    """What a good answer of a prompt version looks like: the checks follow it on every call.

    ``format: json``: every answer is one JSON document, so the ``json_valid`` check runs on every
    call of the version, whatever the request says (docs/checks.md). ``schema``, a JSON Schema, adds
    the ``json_schema`` check against it. Part of the version's content hash.
    """

    # Written `schema` in specs and JSON (the attribute name avoids shadowing BaseModel.schema).
    model_config = ConfigDict(frozen=True, extra="forbid", serialize_by_alias=True)

    format: Literal["json"] = Field(description="json: every answer is one JSON document")
    json_schema: dict[str, JsonValue] | None = Field(
        None,
        alias="schema",
        description="A JSON Schema every answer must match (any draft jsonschema knows; $schema picks it)",
        exclude_if=lambda value: value is None,
    )

    def content(self) -> dict[str, JsonValue]:
        """The contract as hashed: ``format``, and ``schema`` when one is declared."""
        content: dict[str, JsonValue] = {"format": self.format}
        if self.json_schema is not None:
            content["schema"] = self.json_schema
        return content


class OutputContractSpec(OutputContract):
    """The output contract of a pushed spec: its JSON Schema is checked before it is stored.

    Stored versions keep the plain :class:`OutputContract`: reading a version never checks the
    schema again (nor loads ``jsonschema``), so a router always reads what the registry accepted.
    """

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, JsonValue] | None) -> dict[str, JsonValue] | None:
        if value is not None:
            try:
                schema_validator(value)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value


class PromptSpec(BaseModel):
    """What a user pushes: one prompt version's content and metadata.

    Exactly one of ``template`` (text) or ``messages`` (chat) is given. ``tools``, when given, is
    hashed into ``environment.tool_schema_hash``; ``model`` fills ``environment.model_id`` when unset.
    ``output``, when given, declares what a good answer looks like (:class:`OutputContract`).
    Text the store cannot hold (a lone surrogate, a NUL, anywhere, keys included) and NaN or
    infinite numbers are refused, naming the field (see :mod:`~otel_prompt_canary.registry.bounds`).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    template: str | None = None
    messages: list[Message] | None = None
    template_role: MessageRole = Field(
        "system", description="Role of a text template, for diffs: 'system' or a task prompt"
    )
    model: str | None = None
    config: dict[str, JsonValue] = Field(default_factory=dict)
    commit_message: str = ""
    author: str | None = None
    environment: Environment = Field(default_factory=Environment)
    tools: list[dict[str, JsonValue]] | None = None
    # Left out of the JSON when absent, so that a spec without a contract still pushes to an older
    # control plane (which refuses fields it does not know).
    output: OutputContractSpec | None = Field(
        None,
        description="What a good answer looks like, e.g. {format: json, schema: {...}}",
        exclude_if=lambda value: value is None,
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("output", mode="before")
    @classmethod
    def _contract_as_data(cls, value: object) -> object:
        # A stored version's contract (the base class) is checked like one written in a file.
        if isinstance(value, OutputContract) and not isinstance(value, OutputContractSpec):
            return value.model_dump()
        return value

    @model_validator(mode="after")
    def _one_template(self) -> PromptSpec:
        if (self.template is None) == (self.messages is None):
            raise ValueError("give exactly one of 'template' (text) or 'messages' (chat)")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' must hold at least one message")
        if self.template is not None and not self.template.strip():
            raise ValueError("'template' must not be empty")
        return self

    @field_validator("*")
    @classmethod
    def _storable(cls, value: object, info: ValidationInfo) -> object:
        data = value.model_dump() if isinstance(value, BaseModel) else value
        if isinstance(data, list | tuple):
            data = [item.model_dump() if isinstance(item, BaseModel) else item for item in data]
        problem = storable_problem(data)
        if problem is not None:
            raise ValueError(problem)
        return value

    def resolved_environment(self) -> Environment:
        """The environment with ``model_id`` and ``tool_schema_hash`` filled from ``model`` and ``tools``."""
        env = self.environment
        updates: dict[str, str] = {}
        if env.model_id is None and self.model:
            updates["model_id"] = self.model
        if self.tools is not None and env.tool_schema_hash is None:
            digest = hashlib.sha256(canonical_json(self.tools).encode()).hexdigest()
            updates["tool_schema_hash"] = "sha256:" + digest[:32]
        return env.model_copy(update=updates) if updates else env

    def content(self) -> dict[str, Any]:
        """The fields that define behaviour; identical content means an identical version."""
        content = {
            "template": self.template,
            "messages": None if self.messages is None else [m.model_dump() for m in self.messages],
            "template_role": self.template_role,
            "model": self.model,
            "config": self.config,
            "environment": self.resolved_environment().model_dump(),
        }
        # Only a declared contract is hashed: a spec without one keeps the hash it always had, so
        # stores written before contracts existed see none of their versions change.
        if self.output is not None:
            content["output"] = self.output.content()
        return content

    def content_hash(self) -> str:
        """``sha256:<hex>`` over the canonical JSON of :meth:`content`."""
        return "sha256:" + hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()

    def template_bytes(self) -> int:
        """Size of the template text in UTF-8 bytes (for the size limit)."""
        if self.template is not None:
            return len(self.template.encode())
        return sum(len(m.content.encode()) for m in self.messages or ())

    def sizes(self) -> dict[str, int]:
        """The bytes of each part a size limit applies to: the template (UTF-8 text), and the
        ``config``, ``tools`` and output ``schema`` given (canonical JSON)."""
        sizes = {"template": self.template_bytes()}
        documents = {
            "config": self.config or None,
            "tools": self.tools,
            "output schema": None if self.output is None else self.output.json_schema,
        }
        for what, document in documents.items():
            if document is not None:
                sizes[what] = len(canonical_json(document).encode())
        return sizes


class PromptVersion(_Frozen):
    """One immutable version of a prompt."""

    name: str
    version: int = Field(ge=1)
    content_hash: str
    template: str | None = None
    messages: tuple[Message, ...] | None = None
    template_role: MessageRole = "system"
    variables: tuple[str, ...] = ()
    model: str | None = None
    config: dict[str, JsonValue] = Field(default_factory=dict)
    environment: Environment = Field(default_factory=Environment)
    # Left out of the JSON when absent: a version without a contract reads as it did before contracts
    # (stored bodies, control-plane answers), so older readers are not refused by an unknown field.
    output: OutputContract | None = Field(None, exclude_if=lambda value: value is None)
    commit_message: str = ""
    author: str | None = None
    created_at: datetime

    @classmethod
    def from_spec(
        cls, spec: PromptSpec, *, version: int, created_at: datetime, author: str | None = None
    ) -> PromptVersion:
        """Build the version that storing ``spec`` as number ``version`` creates."""
        texts = [spec.template] if spec.template is not None else [m.content for m in spec.messages or ()]
        return cls(
            name=spec.name,
            version=version,
            content_hash=spec.content_hash(),
            template=spec.template,
            messages=None if spec.messages is None else tuple(spec.messages),
            template_role=spec.template_role,
            variables=find_variables(texts),
            model=spec.model,
            config=spec.config,
            environment=spec.resolved_environment(),
            output=None if spec.output is None else OutputContract.model_validate(spec.output.model_dump()),
            commit_message=spec.commit_message,
            author=spec.author if spec.author is not None else author,
            created_at=created_at,
        )

    @property
    def ref(self) -> str:
        """``name@version``, the way the CLI names a version."""
        return f"{self.name}@{self.version}"

    def render(self, **variables: object) -> str | list[dict[str, str]]:
        """The text (for a text template) or the list of ``{role, content}`` chat messages."""
        if self.template is not None:
            return render_text(self.template, variables)
        return [{"role": m.role, "content": render_text(m.content, variables)} for m in self.messages or ()]


class PushResult(_Frozen):
    """What a push returns: the stored version, and whether it is new (False: identical content existed)."""

    version: PromptVersion
    created: bool


class RolloutState(StrEnum):
    """States of the routing flag; ``ramping`` and ``paused`` mean a rollout is active."""

    IDLE = "idle"
    RAMPING = "ramping"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"

    @property
    def active(self) -> bool:
        """True while a canary may receive traffic."""
        return self in (RolloutState.RAMPING, RolloutState.PAUSED)


class Action(StrEnum):
    """Transitions of the rollout state machine."""

    START = "start"
    ADVANCE = "advance"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    REVERT = "revert"


class Route(_Frozen):
    """The routing flag of one prompt (field names are public, see ARCHITECTURE.md).

    ``canary_weight_bp`` is in basis points (0..10000). ``rollout_id`` names the active rollout, or the
    last finished one while ``state`` is ``promoted`` or ``rolled_back``. ``revision`` grows by one with
    every change. ``environment`` names the environment the flag routes (one flag per environment
    and prompt; revisions count per flag).
    """

    prompt: str
    environment: str = DEFAULT_ENVIRONMENT
    stable_version: int
    canary_version: int | None = None
    canary_weight_bp: int = Field(0, ge=0, le=10_000)
    rollout_id: str | None = None
    state: RolloutState = RolloutState.IDLE
    step: int = Field(0, ge=0)
    revision: int = Field(1, ge=1)
    ramp: tuple[float, ...] = ()
    updated_at: datetime

    @property
    def canary_percent(self) -> float:
        """The canary weight in percent."""
        return self.canary_weight_bp / 100


class Rollout(_Frozen):
    """One attempt to move a prompt from ``baseline_version`` to ``candidate_version``, in one
    ``environment``."""

    rollout_id: str
    prompt: str
    candidate_version: int
    baseline_version: int
    ramp: tuple[float, ...]
    state: RolloutState
    step: int
    started_at: datetime
    ended_at: datetime | None = None
    started_by: str
    policy: dict[str, JsonValue] | None = None
    environment: str = DEFAULT_ENVIRONMENT


class AuditRecord(_Frozen):
    """One applied transition of the routing flag: who, why, with what evidence, from what to what."""

    id: int
    prompt: str
    rollout_id: str | None
    action: Action
    actor: str
    reason: str
    evidence: JsonValue = None
    from_state: RolloutState | None
    to_state: RolloutState
    from_revision: int | None
    to_revision: int
    stable_version: int
    canary_version: int | None
    canary_weight_bp: int
    at: datetime
    environment: str = DEFAULT_ENVIRONMENT
    #: The principal of the credential that asked (None: the controller, or a record from before
    #: principals were recorded).
    principal: str | None = None


class PromptSummary(_Frozen):
    """One line of ``prompt list``: a prompt, its newest version and its routing state."""

    name: str
    latest_version: int
    versions: int
    route: Route


def percent_to_bp(percent: float) -> int:
    """Convert a ramp percentage to basis points, refusing finer than 0.01%."""
    bp = round(percent * 100)
    if abs(bp - percent * 100) > 1e-6:
        raise InvalidInputError(f"ramp step {percent}% is finer than 0.01%")
    return bp


def parse_ramp(ramp: str | list[float] | tuple[float, ...] | None) -> tuple[float, ...]:
    """Validate a ramp (``"1,5,20,50,100"`` or a list of percentages) and return it as a tuple.

    A ramp is strictly increasing, every step in (0, 100], ending at 100.
    """
    if ramp is None:
        return DEFAULT_RAMP
    if isinstance(ramp, str):
        parts = [p.strip().rstrip("%") for p in ramp.split(",")]
        try:
            steps = [float(p) for p in parts]
        except ValueError:
            raise InvalidInputError(
                f"invalid ramp {ramp!r}: give comma-separated percentages, e.g. 1,5,20,50,100"
            ) from None
    else:
        steps = [float(s) for s in ramp]
    if not steps:
        raise InvalidInputError("invalid ramp: it needs at least one step")
    for s in steps:
        if not 0 < s <= 100:
            raise InvalidInputError(f"invalid ramp {steps}: every step must be in (0, 100], got {s}")
        percent_to_bp(s)
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise InvalidInputError(f"invalid ramp {steps}: steps must be strictly increasing")
    if steps[-1] != 100:
        raise InvalidInputError(f"invalid ramp {steps}: the last step must be 100")
    return tuple(steps)
