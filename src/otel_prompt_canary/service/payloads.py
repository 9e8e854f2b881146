"""The payloads the loop's senders post: the Collector's alerts, statistics reports, user feedback.

The schemas are ``schemas/collector-alert.schema.json`` and ``schemas/report.schema.json`` (the
processor's contract, documented in its README; applications post reports in the same format); the
models here follow them field for field, unknown fields refused. Both are signed as
:mod:`otel_prompt_canary.service.signatures` describes, and ``webhook-id`` equals the payload's
``id``. The processor retries on network errors, 408, 425, 429 and 5xx; any other 4xx is final.

A feedback (``POST /v1/feedback``, :class:`FeedbackBody`) is usually sent with a bearer token; it may
be signed alike, its ``id`` then being the ``webhook-id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from otel_prompt_canary.analysis.stats import MeanStats, ProportionStats, Report
from otel_prompt_canary.errors import InvalidInputError, describe_validation_errors
from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice
from otel_prompt_canary.loop.reports import ReportOrigin
from otel_prompt_canary.registry.bounds import MAX_INTEGER
from otel_prompt_canary.registry.models import ENVIRONMENT_NAME_PATTERN, validate_prompt_name

__all__ = ["CollectorAlert", "FeedbackBody", "ReportEnvelope"]

# [0-9], not \d: \d also takes other scripts' digits.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with a time zone, e.g. 2026-11-27T04:00:00.000Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def _no_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null")
    return value


_NotNull = BeforeValidator(_no_null)
_Number = Annotated[StrictFloat | None, _NotNull]
_Count = Annotated[StrictInt | None, _NotNull, Field(ge=0)]
_Text = Annotated[StrictStr | None, _NotNull]


class _CohortEvidence(_Open):
    version: _Text = None
    n: _Count = None
    successes: _Count = None
    mean: _Number = None
    estimate: _Number = None


class _Cohorts(_Open):
    stable: Annotated[_CohortEvidence | None, _NotNull] = None
    canary: Annotated[_CohortEvidence | None, _NotNull] = None


class _Evidence(_Open):
    """The conventional fields of an alert's evidence are typed; any other field is kept as is."""

    signal: _Text = None
    kind: Annotated[Literal["proportion", "mean"] | None, _NotNull] = None
    cohorts: Annotated[_Cohorts | None, _NotNull] = None
    estimate: _Number = None
    threshold: _Number = None
    statistic: _Number = None
    bound: _Number = None
    window_start: Annotated[Timestamp | None, _NotNull] = None
    window_end: Annotated[Timestamp | None, _NotNull] = None


class CollectorAlert(_Strict):
    """Body of ``POST /v1/alerts/collector`` (``schemas/collector-alert.schema.json``)."""

    id: str = Field(pattern=r"^pca_[0-9a-f]{32}$")
    type: Literal["prompt_canary.alert"]
    source: Annotated[StrictStr, _NotNull, Field(min_length=1)] = ""
    prompt: str = Field(min_length=1, max_length=256)
    rollout_id: str = Field(min_length=1, max_length=256)
    action: Literal["rollback", "pause", "alert"]
    rule: str = Field(min_length=1)
    reason: str
    evidence: dict[str, JsonValue]
    created_at: Timestamp

    @field_validator("prompt")
    @classmethod
    def _valid_prompt(cls, value: str) -> str:
        try:
            return validate_prompt_name(value)
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("evidence")
    @classmethod
    def _typed_evidence(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _Evidence.model_validate(value)
        return value

    def notice(self, raw: Mapping[str, Any]) -> AlertNotice:
        """The notice this alert makes; ``raw`` (the body as received) is its evidence."""
        source = f"collector {self.source}" if self.source else "collector"
        reason = self.reason.strip() or f"the Collector's judge proved rule {self.rule!r}"
        return AlertNotice(
            source="collector",
            key=f"collector:{self.id}",
            prompt=self.prompt,
            action=AlertAction(self.action),
            rollout_id=self.rollout_id,
            fired_at=self.created_at,
            actor=source[:256],
            reason=f"{reason} (rule {self.rule}, {source})"[:2000],
            alert=dict(raw),
        )


# Counts are the store's 64-bit integers.
class _WireProportion(_Strict):
    kind: Literal["proportion"]
    n: StrictInt = Field(ge=0, le=MAX_INTEGER)
    successes: StrictInt = Field(ge=0, le=MAX_INTEGER)


class _WireMean(_Strict):
    kind: Literal["mean"]
    n: StrictInt = Field(ge=0, le=MAX_INTEGER)
    sum: str = Field(pattern=r"^-?[0-9]+$", max_length=200)
    sum_sq: str = Field(pattern=r"^[0-9]+$", max_length=400)


_WireStats = Annotated[_WireProportion | _WireMean, Field(discriminator="kind")]


def _window_start(value: str) -> str:
    if not -MAX_INTEGER - 1 <= int(value) <= MAX_INTEGER:
        raise ValueError(f"window start {value} is out of range: Unix seconds fit 64 bits")
    return value


_WindowKey = Annotated[str, Field(pattern=r"^-?[0-9]+$", max_length=20), AfterValidator(_window_start)]
_Cohort = dict[Annotated[str, Field(max_length=256)], dict[_WindowKey, _WireStats]]


class _Versions(_Strict):
    stable: str | None = None
    canary: str | None = None


_ModelName = Annotated[str, Field(min_length=1, max_length=256)]
_ModelCalls = dict[_ModelName, dict[_WindowKey, Annotated[StrictInt, Field(ge=0, le=MAX_INTEGER)]]]


class _ResponseModels(_Strict):
    """``gen_ai.response.model`` of the calls, per cohort: model -> window start -> calls."""

    stable: _ModelCalls = Field(default_factory=dict)
    canary: _ModelCalls = Field(default_factory=dict)

    def of(self, cohort: Literal["stable", "canary"]) -> dict[str, dict[int, int]]:
        """One cohort's calls per model and window start."""
        calls: _ModelCalls = self.stable if cohort == "stable" else self.canary
        return {model: {int(start): n for start, n in windows.items()} for model, windows in calls.items()}


_WHEN_NULL = {
    "versions": "must be an object; leave the field out when no version is known",
    "origin": "must be 'application' or 'collector'; leave the field out when unknown",
    "response_models": "must be an object; leave the field out when no response model is known",
    "environment": "must be an environment name; leave the field out for the default environment",
}


class ReportEnvelope(_Strict):
    """Body of ``POST /v1/reports`` (``schemas/report.schema.json``)."""

    id: str = Field(pattern=r"^pcr_[0-9a-f]{32}$")
    type: Literal["prompt_canary.report"]
    source: str = Field(min_length=1, max_length=256)
    # Optional so that senders older than the field stay valid; their reports count as before.
    origin: ReportOrigin | None = None
    prompt: str = Field(min_length=1, max_length=256)
    rollout_id: str = Field(min_length=1, max_length=256)
    # Optional: the environment whose routing flag routed the calls (default: the default one).
    environment: str | None = Field(None, pattern=ENVIRONMENT_NAME_PATTERN.pattern)
    window_seconds: StrictInt = Field(ge=1, le=366 * 86_400)
    versions: _Versions | None = None
    stable: _Cohort
    canary: _Cohort
    # Optional (drift monitoring's model watch): senders older than the field stay valid.
    response_models: _ResponseModels | None = None
    window_start: Timestamp
    window_end: Timestamp
    created_at: Timestamp

    @field_validator("versions", "origin", "response_models", "environment", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        # Optional means "may be left out", as in the schema: an explicit null is malformed.
        if value is None:
            raise ValueError(_WHEN_NULL[info.field_name or ""])
        return value

    def report(self) -> Report:
        """The statistics as the analysis engine's :class:`Report`; 422 when inconsistent."""

        def stats(wire: _WireProportion | _WireMean) -> ProportionStats | MeanStats:
            if isinstance(wire, _WireProportion):
                return ProportionStats(n=wire.n, successes=wire.successes)
            return MeanStats(n=wire.n, sum=int(wire.sum), sum_sq=int(wire.sum_sq))

        def cohort(wire: _Cohort) -> dict[str, dict[int, ProportionStats | MeanStats]]:
            return {
                attribute: {int(start): stats(s) for start, s in series.items()}
                for attribute, series in wire.items()
            }

        try:
            return Report(
                rollout_id=self.rollout_id,
                window_seconds=self.window_seconds,
                stable=cohort(self.stable),
                canary=cohort(self.canary),
            )
        except ValidationError as exc:
            problems = describe_validation_errors(exc.errors())
            raise InvalidInputError(f"inconsistent report statistics: {problems}") from None


class FeedbackBody(_Strict):
    """Body of ``POST /v1/feedback``: a user's feedback on one answer, named by its feedback key."""

    key: str = Field(min_length=1, max_length=1024, description="The answer's feedback key")
    score: StrictBool | StrictInt | StrictFloat = Field(
        description="A number in [0, 1] (a score), or a bool (a check when 'name' is given)"
    )
    name: str | None = Field(
        None, description="The signal: a score or check name ([a-z0-9_], 1-64); default user_feedback"
    )
    id: str | None = Field(
        None,
        pattern=r"^pcf_[0-9a-f]{32}$",
        description="Counted once per id (retries); default: one per key and name",
    )
