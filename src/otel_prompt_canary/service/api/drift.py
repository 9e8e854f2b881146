"""Drift monitoring over HTTP: each prompt's live stable version, its alerts, and their metrics.

- ``GET /v1/drift``: every prompt's drift monitoring (a list of
  :class:`~otel_prompt_canary.loop.drift_models.PromptDrift`, by name, a page at a time);
- ``GET /v1/prompts/{name}/drift``: one prompt's;
- ``POST /v1/prompts/{name}/drift/baseline``: pin a baseline period (operate, audited);
- ``GET /v1/drift/alerts``: drift alerts, paged like the alert log (``?prompt=``, ``?open=true``);
- ``POST /v1/drift/alerts/{id}/acknowledge``: acknowledge one (operate, audited): it re-baselines;
- ``GET /v1/drift/metrics``: the same as Prometheus metrics, for the Grafana dashboard.

Drift watches the default environment's stable versions, so the two writes need the ``operate``
role there (403 for a credential limited to other environments); the alert log records them as
done by the request's principal, and an ``X-Prompt-Canary-Actor`` header, when given, only as a
note in the reason.

Every endpoint answers 501 when the control plane runs without drift monitoring (``--drift off``, or a
registry that stores no statistics).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.errors import InvalidInputError, PermissionDeniedError
from otel_prompt_canary.loop.drift import DriftMonitor
from otel_prompt_canary.loop.drift_models import DriftAlert, PromptDrift, SignalStatus
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.service.access import log_refusal
from otel_prompt_canary.service.deps import AuthorDep, NotSupportedError, PromptNameDep, WriterDep
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.principals import Principal, PrincipalDep, Role, require_role
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["DriftOverview", "prompt_router", "render_metrics", "router"]

router = APIRouter(prefix="/v1/drift", tags=["drift"])
prompt_router = APIRouter(prefix="/v1/prompts/{name}", tags=["drift"])

_READ_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorResponse, "description": "Unknown prompt or alert"},
    422: {"model": ErrorResponse, "description": "Invalid input"},
    501: {"model": ErrorResponse, "description": "Drift monitoring is off on this control plane"},
}
_WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    **_READ_ERRORS,
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token"},
    409: {"model": ErrorResponse, "description": "Acknowledged before, or the stable version changed"},
}


async def get_drift_monitor(request: Request) -> DriftMonitor:
    """The control plane's drift monitor (501 when drift monitoring is off)."""
    monitor: DriftMonitor | None = getattr(request.app.state, "drift_monitor", None)
    if monitor is None:
        raise NotSupportedError(
            "drift monitoring is off on this control plane (serve --drift off, or a registry that "
            "stores no statistics)"
        )
    return monitor


DriftMonitorDep = Annotated[DriftMonitor, Depends(get_drift_monitor)]

#: The longest reason the alert log keeps for a person's drift action.
_MAX_REASON_CHARS = 2000


def _operator(request: Request, principal: Principal, doing: str) -> str:
    """Refuse (403, logged) ``principal`` unless it may operate in the environment drift watches;
    the name the alert log records."""
    try:
        require_role(principal, Role.OPERATE, DEFAULT_ENVIRONMENT, doing=doing)
    except PermissionDeniedError as exc:
        log_refusal(request.method, request.url.path, principal.name, str(exc))
        raise
    return principal.name


def _noted(reason: str, actor_header: str | None, principal: Principal) -> str:
    """``reason``, with the actor the request named when it is not its principal: a note only."""
    if actor_header is None or actor_header == principal.name:
        return reason
    note = f" [actor named by the request: {actor_header}]"
    return reason[: _MAX_REASON_CHARS - len(note)] + note  # the note never makes a reason too long


class DriftOverview(BaseModel):
    """``GET /v1/drift``: the detector's settings and every prompt's drift monitoring."""

    model_config = ConfigDict(frozen=True)

    settings: str = Field(description="The detector's settings, as serve --drift reads them")
    threshold: float = Field(description="ln A: a signal alarms when its statistic reaches it")
    prompts: list[PromptDrift]


class AcknowledgeRequest(BaseModel):
    """Body of ``POST /v1/drift/alerts/{id}/acknowledge``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=_MAX_REASON_CHARS, description="Why, for the alert log")


class PinBaselineRequest(BaseModel):
    """Body of ``POST /v1/prompts/{name}/drift/baseline``: the baseline period ``[start, end)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(min_length=1, max_length=_MAX_REASON_CHARS, description="Why, for the alert log")


@router.get("", summary="Drift monitoring of every prompt", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def drift_overview(
    request: Request, response: Response, monitor: DriftMonitorDep, page: PageDep
) -> DriftOverview:
    """Each prompt's live stable version, its signals against their baselines, the models that
    answered it and its open drift alerts; the prompts by name, a page at a time (the ``Link``
    header names the next page, as for every list)."""
    prompts = await run_in_threadpool(monitor.status, after=page.after(cursors.PROMPTS), limit=page.limit + 1)
    shown = link_next(
        request, response, prompts, page, cursors.PROMPTS, lambda p: p.prompt, newest_first=False
    )
    return DriftOverview(
        settings=monitor.config.describe(), threshold=monitor.config.threshold, prompts=shown
    )


@router.get("/alerts", summary="Drift alerts", responses={**PAGE_RESPONSE, **_READ_ERRORS})
async def drift_alerts(
    request: Request,
    response: Response,
    monitor: DriftMonitorDep,
    page: PageDep,
    prompt: Annotated[str | None, Query(description="Only the alerts of this prompt")] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only the alerts not acknowledged")] = False,
) -> list[DriftAlert]:
    """Drift alerts, newest page first, each page oldest first (see the API's description of pages)."""
    if prompt is not None:
        validate_prompt_name(prompt)
    alerts = await run_in_threadpool(
        monitor.list_alerts,
        prompt,
        open_only=open_only,
        limit=page.limit + 1,
        before=page.before(cursors.DRIFT_ALERTS),
    )
    return link_next(request, response, alerts, page, cursors.DRIFT_ALERTS, lambda a: a.id, newest_first=True)


@router.post("/alerts/{id}/acknowledge", summary="Acknowledge a drift alert", responses=_WRITE_ERRORS)
async def acknowledge(
    request: Request,
    alert_id: Annotated[int, Path(alias="id", ge=1, le=2**63 - 1, description="The alert's id")],
    body: AcknowledgeRequest,
    monitor: DriftMonitorDep,
    principal: PrincipalDep,
    _writer: WriterDep,
    actor_header: AuthorDep,
) -> DriftAlert:
    """Record who acknowledged the alert (the request's principal) and why; its signal
    re-baselines from now (a model is accepted for the version). 403 without ``operate`` in the
    default environment; 409 when it was acknowledged before."""
    by = _operator(request, principal, "acknowledge drift alerts")
    reason = _noted(body.reason, actor_header, principal)
    return await run_in_threadpool(monitor.acknowledge, alert_id, actor=by, reason=reason)


@router.get(
    "/metrics",
    summary="Drift metrics (Prometheus)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **_READ_ERRORS},
)
async def drift_metrics(monitor: DriftMonitorDep) -> PlainTextResponse:
    """Every watched signal's statistic, threshold, baseline and current value, its alarm, and the
    open drift alerts per prompt, in the Prometheus text format (version 0.0.4)."""
    prompts = await run_in_threadpool(monitor.status)
    return PlainTextResponse(render_metrics(prompts), media_type="text/plain; version=0.0.4; charset=utf-8")


@prompt_router.get("/drift", summary="Drift monitoring of a prompt", responses=_READ_ERRORS)
async def prompt_drift(name: PromptNameDep, monitor: DriftMonitorDep) -> PromptDrift:
    """The prompt's live stable version, its signals against their baselines, models and open alerts."""
    return await run_in_threadpool(monitor.prompt_status, name)


@prompt_router.post("/drift/baseline", summary="Pin the drift baseline", responses=_WRITE_ERRORS)
async def pin_baseline(
    request: Request,
    name: PromptNameDep,
    body: PinBaselineRequest,
    monitor: DriftMonitorDep,
    principal: PrincipalDep,
    _writer: WriterDep,
    actor_header: AuthorDep,
) -> PromptDrift:
    """Make ``[start, end)`` the baseline of every signal of the live stable version; each is judged
    again from the end of the period. A period with too few samples of a signal gives it no verdict.
    403 without ``operate`` in the default environment, whose stable versions drift watches."""
    by = _operator(request, principal, "pin drift baselines")
    if body.end <= body.start:
        raise InvalidInputError("body.end must be after body.start")
    reason = _noted(body.reason, actor_header, principal)
    return await run_in_threadpool(
        monitor.pin_baseline, name, start=body.start, end=body.end, actor=by, reason=reason
    )


# -- the Prometheus text format ---------------------------------------------------------------------

_METRICS: tuple[tuple[str, str], ...] = (
    ("prompt_canary_drift_alarm", "1 while the signal's drift alert waits for acknowledgement"),
    ("prompt_canary_drift_statistic", "ln M of the last window judged; the signal alarms at the threshold"),
    ("prompt_canary_drift_threshold", "ln A, the detector's threshold"),
    ("prompt_canary_drift_baseline", "The signal's baseline value (a proportion or a mean)"),
    ("prompt_canary_drift_value", "The signal's value over the samples judged since its baseline"),
    ("prompt_canary_drift_samples", "Samples judged since the baseline"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def render_metrics(prompts: list[PromptDrift]) -> str:
    """The drift monitoring of ``prompts`` as Prometheus gauges.

    Labels: ``gen_ai_prompt_name``, ``gen_ai_prompt_version`` and ``signal`` (the attribute), as the
    project's other metrics name prompts; ``prompt_canary_drift_open_alerts`` counts open alerts per
    prompt, model alerts included.
    """
    lines: dict[str, list[str]] = {name: [] for name, _ in _METRICS}
    open_alerts: list[str] = []
    for prompt in prompts:
        base = f'gen_ai_prompt_name="{_label(prompt.prompt)}",gen_ai_prompt_version="{prompt.version}"'
        open_alerts.append(f"prompt_canary_drift_open_alerts{{{base}}} {len(prompt.alerts)}")
        for signal in prompt.signals:
            labels = f'{{{base},signal="{_label(signal.attribute)}"}}'
            values: dict[str, float | None] = {
                "prompt_canary_drift_alarm": 1.0 if signal.status is SignalStatus.ALARM else 0.0,
                "prompt_canary_drift_statistic": signal.statistic,
                "prompt_canary_drift_threshold": signal.threshold,
                "prompt_canary_drift_baseline": None if signal.baseline is None else signal.baseline.estimate,
                "prompt_canary_drift_value": None
                if signal.since_baseline is None
                else signal.since_baseline.estimate,
                "prompt_canary_drift_samples": None
                if signal.since_baseline is None
                else float(signal.since_baseline.n),
            }
            for name, value in values.items():
                if value is not None:
                    lines[name].append(f"{name}{labels} {_number(value)}")
    out: list[str] = []
    for name, help_text in _METRICS:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines[name]]
    out += [
        "# HELP prompt_canary_drift_open_alerts Drift alerts of the prompt not acknowledged",
        "# TYPE prompt_canary_drift_open_alerts gauge",
        *open_alerts,
    ]
    return "\n".join(out) + "\n"
