"""Request and response bodies of the control-plane API that are not registry models themselves.

Registry models (:class:`~otel_prompt_canary.registry.models.PromptSpec`, ``PromptVersion``,
``Route``, ``Rollout``, ``AuditRecord``...) travel as they are; this module adds the envelopes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from otel_prompt_canary.analysis.verdict import Verdict
from otel_prompt_canary.loop.assessment import Assessment
from otel_prompt_canary.loop.reports import RolloutOrigin
from otel_prompt_canary.loop.start import policy_document
from otel_prompt_canary.registry.bounds import MAX_INTEGER, MAX_VERSION, storable_problem
from otel_prompt_canary.registry.models import (
    Action,
    PromptVersion,
    Rollout,
    Route,
)

__all__ = [
    "ErrorBody",
    "ErrorResponse",
    "PromptDetail",
    "RolloutStatus",
    "RolloutVerdict",
    "RoutesDocument",
    "StartRolloutRequest",
    "TransitionAction",
    "TransitionRequest",
]


class _Request(BaseModel):
    """A request body: unknown fields refused, and text the store cannot hold (a lone surrogate, a
    NUL) or a NaN anywhere in it refused, naming the field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: object) -> object:
        problem = storable_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class StartRolloutRequest(_Request):
    """Body of ``POST /v1/prompts/{name}/rollouts``."""

    version: int | None = Field(
        None,
        ge=1,
        le=MAX_VERSION,
        description="The candidate version to canary; may be left out with from_environment",
    )
    from_environment: str | None = Field(
        None,
        description="Promote: the candidate is the version stable in this environment, the one before "
        "?environment= in the control plane's order (docs/environments.md)",
        json_schema_extra={"examples": ["staging"]},
    )
    ramp: list[float] | str | None = Field(
        None,
        description="Percent of traffic at each step, as a list or '1,5,20,50,100' (default: the "
        "policy's ramp.steps, else 1,5,20,50,100); must agree with the policy's ramp.steps when both "
        "are given",
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why, for the audit log")
    policy: dict[str, JsonValue] | None = Field(
        None,
        description="The rollout's policy document (validated; stored in full). Default: the default policy",
    )
    expected_revision: int | None = Field(
        None, ge=1, le=MAX_INTEGER, description="Apply only if the routing flag is still at this revision"
    )
    skip_gate: bool = Field(
        False,
        description="Start even if the candidate does not pass the policy's evaluation gate; the audit "
        "record says so (docs/evaluations.md)",
    )

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _reason_given(value)

    @model_validator(mode="after")
    def _candidate_named(self) -> StartRolloutRequest:
        if self.version is None and self.from_environment is None:
            raise ValueError("give 'version', or 'from_environment' to promote the version stable there")
        return self


class TransitionAction(StrEnum):
    """The actions of ``POST /v1/prompts/{name}/rollout/{action}``."""

    ADVANCE = "advance"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    REVERT = "revert"

    def to_action(self) -> Action:
        """The registry's action of the same name."""
        return Action(self.value)


class TransitionRequest(_Request):
    """Body of ``POST /v1/prompts/{name}/rollout/{action}``."""

    reason: str = Field(min_length=1, max_length=2000, description="Why, for the audit log")
    evidence: JsonValue = Field(None, description="What supports the decision (any JSON)")
    expected_revision: int | None = Field(
        None, ge=1, le=MAX_INTEGER, description="Apply only if the routing flag is still at this revision"
    )
    rollout_id: str | None = Field(
        None, min_length=1, max_length=256, description="Apply only if this rollout is the current one"
    )
    to_version: int | None = Field(
        None,
        ge=1,
        le=MAX_VERSION,
        description="revert only: the version everyone goes back to (default: the promoted rollout's "
        "baseline, the stable version before the promotion)",
    )

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _reason_given(value)


def _reason_given(value: str) -> str:
    """Refuse a blank reason: every transition, a start included, records why in the audit log."""
    if not value.strip():
        raise ValueError("give a reason: it is recorded in the audit log")
    return value


class PromptDetail(BaseModel):
    """``GET /v1/prompts/{name}``: a prompt, its newest version and its routing flag."""

    name: str
    latest_version: int
    versions: int
    route: Route
    latest: PromptVersion


class RolloutStatus(BaseModel):
    """``GET /v1/prompts/{name}/rollout``: the routing flag and the current (or last) rollout."""

    route: Route
    rollout: Rollout | None = Field(description="null when the prompt never had a rollout")


class RolloutVerdict(BaseModel):
    """``GET /v1/prompts/{name}/rollout/verdict``: the judge's verdict on the active rollout, now."""

    prompt: str
    rollout_id: str
    state: str = Field(description="ramping or paused")
    step: int
    ramp: tuple[float, ...]
    step_started_at: datetime
    elapsed_seconds: float = Field(description="How long the step has run, in policy seconds (scaled)")
    time_scale: float
    acknowledged_rules: list[str] = Field(
        description="Rules whose pause a person acknowledged by resuming: they no longer pause"
    )
    policy: dict[str, JsonValue]
    verdict: Verdict
    report_origin: RolloutOrigin | None = Field(
        None,
        description="Whose reports the statistics come from (application or collector: the first "
        "origin that reported) and how many reports of the other origin were ignored; null until a "
        "report with an origin arrived",
    )

    @classmethod
    def of(cls, assessment: Assessment, report_origin: RolloutOrigin | None = None) -> RolloutVerdict:
        """The document of one judgement (:func:`~otel_prompt_canary.loop.assess`), with where its
        statistics come from (:meth:`~otel_prompt_canary.loop.LoopStore.report_origin`)."""
        route = assessment.route
        assert route.rollout_id is not None  # assess() refuses a route without an active rollout
        return cls(
            prompt=route.prompt,
            rollout_id=route.rollout_id,
            state=route.state.value,
            step=route.step,
            ramp=route.ramp,
            step_started_at=assessment.step_started_at,
            elapsed_seconds=assessment.elapsed_seconds,
            time_scale=assessment.time_scale,
            acknowledged_rules=sorted(assessment.acknowledged),
            policy=policy_document(assessment.policy),
            verdict=assessment.verdict,
            report_origin=report_origin,
        )


class RoutesDocument(BaseModel):
    """``GET /v1/routes``: every routing flag, and an opaque revision of the whole set (the ETag)."""

    revision: str = Field(description="Opaque; the ETag header is this value in double quotes")
    routes: list[Route]


class ErrorBody(BaseModel):
    """What went wrong: ``type`` names the error class, ``message`` says what and where."""

    type: str
    message: str


class ErrorResponse(BaseModel):
    """Every error answer of the API."""

    error: ErrorBody
