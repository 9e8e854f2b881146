"""Scoring configuration: which checks and scorers run for a prompt, and with what parameters.

A :class:`ScoringConfig` is one prompt's configuration; every section has a default, so ``{}`` is a
valid configuration that runs the default set (see docs/checks.md):

- inline, on every response: ``json_valid`` (only when the request asked for JSON), ``max_output_tokens``
  (budget 4096), ``truncation``, ``refusal``;
- off until configured: ``json_schema``, ``regex``, ``escalation``, ``safety``, the ``output_tokens``
  score and the LLM ``judge``.

:class:`ScoringSettings` holds a default configuration plus per-prompt overrides; an override replaces
the sections it names and keeps the default's others. Both load from YAML or a dict and turn every
validation error into :class:`~otel_prompt_canary.errors.InvalidInputError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.scoring._detectors import DEFAULT_ESCALATION_PHRASES, DEFAULT_ESCALATION_TOOLS
from otel_prompt_canary.scoring._judge import DEFAULT_RUBRIC
from otel_prompt_canary.scoring._outcomes import validate_evaluation_name
from otel_prompt_canary.scoring._phrases import REFUSAL_LANGUAGES

__all__ = [
    "BackgroundConfig",
    "EscalationConfig",
    "JsonSchemaConfig",
    "JsonValidConfig",
    "JudgeConfig",
    "MaxOutputTokensConfig",
    "ModerationConfig",
    "OutputTokensConfig",
    "RefusalConfig",
    "RegexConfig",
    "SafetyConfig",
    "ScoringConfig",
    "ScoringSettings",
    "TruncationConfig",
    "load_scoring_config",
    "load_scoring_settings",
]


def _name(value: str) -> str:
    try:
        return validate_evaluation_name(value)
    except InvalidInputError as exc:
        raise ValueError(str(exc)) from None


EvaluationName = Annotated[str, AfterValidator(_name)]
SampleRate = Annotated[float, Field(ge=0.0, le=1.0)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JsonValidConfig(_Section):
    """``json_valid``: the output parses as JSON."""

    enabled: bool | Literal["auto"] = Field(
        "auto", description="true, false, or auto: only when the request asks for JSON (response_format)"
    )
    name: EvaluationName = "json_valid"
    allow_fence: bool = Field(False, description="Accept an output that is one ```json fenced block")
    require_object: bool = Field(False, description="Fail unless the document is a JSON object")


class JsonSchemaConfig(_Section):
    """``json_schema``: the output is JSON valid against ``schema``.

    A prompt version whose output contract declares a schema is checked against that schema instead
    (under this section's ``name`` and ``allow_fence``); ``enabled: false`` turns the check off, the
    contract's too, and needs no ``schema``.
    """

    enabled: bool = True
    name: EvaluationName = "json_schema"
    json_schema: dict[str, JsonValue] = Field(alias="schema", description="The JSON Schema")
    allow_fence: bool = False

    @model_validator(mode="before")
    @classmethod
    def _off_needs_no_schema(cls, data: Any) -> Any:
        # A section that only turns the check off has nothing to check against.
        if isinstance(data, dict) and data.get("enabled") is False and "schema" not in data:
            return {**data, "schema": {}}
        return data


class RegexConfig(_Section):
    """One ``regex`` check: the output matches ``pattern`` (or, with ``must_match: false``, does not)."""

    name: EvaluationName
    pattern: str
    must_match: bool = True
    ignore_case: bool = False
    multiline: bool = False
    dot_all: bool = False
    full_match: bool = Field(False, description="The whole output must match, not just a part")
    max_chars: int | None = Field(None, ge=1, description="Search only the first max_chars characters")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class MaxOutputTokensConfig(_Section):
    """``max_output_tokens``: the response used at most ``budget`` output tokens."""

    enabled: bool = True
    name: EvaluationName = "max_output_tokens"
    budget: int = Field(4096, ge=1)


class TruncationConfig(_Section):
    """``truncation``: no choice stopped at the token limit."""

    enabled: bool = True
    name: EvaluationName = "truncation"


class OutputTokensConfig(_Section):
    """The ``output_tokens`` score (off by default: ``gen_ai.usage.output_tokens`` and the
    ``prompt_canary.token.usage`` histogram already carry the count per cohort)."""

    enabled: bool = False
    name: EvaluationName = "output_tokens"


class RefusalConfig(_Section):
    """``refusal``: the model answered rather than refused."""

    enabled: bool = True
    name: EvaluationName = "refusal"
    languages: list[str] | None = Field(
        None, description=f"Built-in phrase languages (default all: {', '.join(REFUSAL_LANGUAGES)})"
    )
    extra_phrases: list[str] = Field(default_factory=list)
    scan_chars: int = Field(300, ge=1, description="Read only the first scan_chars characters")

    @field_validator("languages")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - set(REFUSAL_LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language(s) {unknown}; built-in: {', '.join(REFUSAL_LANGUAGES)}")
        return value


class EscalationConfig(_Section):
    """``escalation``: the model kept the conversation rather than handing it to a person."""

    enabled: bool = False
    name: EvaluationName = "escalation"
    tool_names: list[str] = Field(default_factory=lambda: list(DEFAULT_ESCALATION_TOOLS))
    phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_ESCALATION_PHRASES))

    @model_validator(mode="after")
    def _has_a_signal(self) -> EscalationConfig:
        if self.enabled and not any(t.strip() for t in self.tool_names + self.phrases):
            raise ValueError("escalation needs at least one tool name or phrase")
        return self


class _EndpointConfig(_Section):
    base_url: str = Field(description="OpenAI-compatible API root, e.g. https://api.openai.com/v1")
    api_key: SecretStr | None = Field(None, description="Prefer api_key_env: keep keys out of files")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key")
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> _EndpointConfig:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        return self

    def resolve_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The API key: ``api_key``, else the value of ``api_key_env``; None when neither is set.

        Raises :class:`InvalidInputError` when ``api_key_env`` names an unset variable.
        """
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.api_key_env)
        if not value:
            raise InvalidInputError(f"the environment variable {self.api_key_env} (api_key_env) is not set")
        return value


class ModerationConfig(_EndpointConfig):
    """An OpenAI-compatible moderation endpoint (``POST {base_url}/moderations``)."""

    model: str | None = "omni-moderation-latest"
    timeout_s: float = Field(5.0, gt=0)
    max_chars: int = Field(32_000, ge=1)


class SafetyConfig(_Section):
    """``safety``: a classifier does not flag the output.

    The classifier is either the application's own (passed to ``build_scoring``; runs inline) or the
    ``moderation`` endpoint (runs in the background worker on a ``sample_rate`` of responses).
    """

    enabled: bool = False
    name: EvaluationName = "safety"
    moderation: ModerationConfig | None = None
    sample_rate: SampleRate = 1.0


class JudgeConfig(_EndpointConfig):
    """The LLM ``judge`` score, sampled and run in the background worker."""

    enabled: bool = True
    name: EvaluationName = "judge"
    model: str = Field(min_length=1)
    rubric: str = Field(DEFAULT_RUBRIC, min_length=1)
    sample_rate: SampleRate = 0.05
    timeout_s: float = Field(30.0, gt=0)
    max_context_chars: int = Field(12_000, ge=0)
    max_output_chars: int = Field(8_000, ge=1)
    max_tokens: int = Field(200, ge=1)
    json_mode: bool = False


class BackgroundConfig(_Section):
    """The background worker shared by the late evaluations (judge, moderation)."""

    queue_size: int = Field(1000, ge=1, le=1_000_000, description="Waiting evaluations; more are dropped")
    shutdown_timeout_s: float = Field(5.0, ge=0, description="How long close() lets the queue drain")


class ScoringConfig(_Section):
    """One prompt's scoring: every section optional, defaults as in the module docstring."""

    json_valid: JsonValidConfig = Field(default_factory=JsonValidConfig)
    json_schema: JsonSchemaConfig | None = None
    regex: list[RegexConfig] = Field(default_factory=list)
    max_output_tokens: MaxOutputTokensConfig = Field(default_factory=MaxOutputTokensConfig)
    truncation: TruncationConfig = Field(default_factory=TruncationConfig)
    refusal: RefusalConfig = Field(default_factory=RefusalConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    output_tokens: OutputTokensConfig = Field(default_factory=OutputTokensConfig)
    judge: JudgeConfig | None = None
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)

    def check_names(self) -> list[str]:
        """The names of the checks this configuration enables (inline and late), in run order."""
        names: list[str] = []
        if self.json_valid.enabled is not False:
            names.append(self.json_valid.name)
        if self.json_schema is not None and self.json_schema.enabled:
            names.append(self.json_schema.name)
        names.extend(r.name for r in self.regex)
        for section in (self.max_output_tokens, self.truncation, self.refusal, self.escalation, self.safety):
            if section.enabled:
                names.append(section.name)
        return names

    def score_names(self) -> list[str]:
        """The names of the scores this configuration enables (inline and late)."""
        names = [self.output_tokens.name] if self.output_tokens.enabled else []
        if self.judge is not None and self.judge.enabled:
            names.append(self.judge.name)
        return names

    @model_validator(mode="after")
    def _unique_names(self) -> ScoringConfig:
        for kind, names in (("check", self.check_names()), ("score", self.score_names())):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"two {kind}s are named {', '.join(duplicates)}: give each its own name")
        return self


class ScoringSettings(_Section):
    """A default configuration plus per-prompt overrides, keyed by prompt name."""

    default: ScoringConfig = Field(default_factory=ScoringConfig)
    prompts: dict[str, ScoringConfig] = Field(default_factory=dict)

    def for_prompt(self, prompt_name: str | None) -> ScoringConfig:
        """The configuration of ``prompt_name``: the default, with the sections its override names."""
        override = self.prompts.get(prompt_name) if prompt_name is not None else None
        if override is None:
            return self.default
        merged: dict[str, Any] = {name: getattr(self.default, name) for name in ScoringConfig.model_fields}
        merged.update({name: getattr(override, name) for name in override.model_fields_set})
        try:
            return ScoringConfig(**merged)
        except ValidationError as exc:
            problems = describe_validation_errors(exc.errors())
            raise InvalidInputError(f"scoring for prompt {prompt_name!r}: {problems}") from None


def _read(source: str | Path | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read {what} file {str(source)!r}: {exc}") from None
    elif isinstance(source, str):
        text = source
    else:
        raise InvalidInputError(f"{what}: expected YAML text, a pathlib.Path or a mapping")
    # Imported on first use: the instrumentation loads this module, and an application that
    # configures scoring with a mapping (or not at all) should not pay for PyYAML.
    import yaml

    from otel_prompt_canary.yaml_documents import YamlLimitError, load_yaml

    try:
        data = load_yaml(text)  # aliases bounded: a small text cannot expand to gigabytes
    except YamlLimitError as exc:
        raise InvalidInputError(f"{what} refused: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{what} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        hint = " (to load a file, pass a pathlib.Path)" if isinstance(source, str) else ""
        raise InvalidInputError(f"{what} must be a mapping, got {type(data).__name__}{hint}")
    return data


def load_scoring_config(source: str | Path | Mapping[str, Any]) -> ScoringConfig:
    """Load one prompt's :class:`ScoringConfig` from YAML text, a YAML file (``Path``) or a mapping."""
    data = _read(source, "scoring configuration")
    try:
        return ScoringConfig.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors())
        raise InvalidInputError(f"invalid scoring configuration: {problems}") from None


def load_scoring_settings(source: str | Path | Mapping[str, Any]) -> ScoringSettings:
    """Load :class:`ScoringSettings` (``default`` + ``prompts``) from YAML text, a file or a mapping."""
    data = _read(source, "scoring settings")
    try:
        settings = ScoringSettings.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors())
        raise InvalidInputError(f"invalid scoring settings: {problems}") from None
    for prompt in settings.prompts:
        settings.for_prompt(prompt)  # a merge can still collide names: fail at load, not at use
    return settings
