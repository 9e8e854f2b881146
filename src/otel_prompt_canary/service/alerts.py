"""``/v1/alerts``: the alert receivers (Alertmanager, Grafana, the Collector) and the alert log.

Each receiver authenticates the request first, then parses the whole payload, then decides each
alert it carries (:meth:`~otel_prompt_canary.registry.sql.SqlRegistry.receive_alert`): one
transition per alert at most, ever, however often it is delivered. A request that cannot be
understood whole (malformed JSON, a missing label, an unknown prompt) is refused with a 4xx and
decides nothing. The answer lists every decision; docs/alerts.md has the details.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.registry.alerts import AlertNotice, AlertOutcome, AlertRecord
from otel_prompt_canary.registry.base import LoopStore, Registry
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.service import alertmanager, collector, grafana
from otel_prompt_canary.service.alerting import notice_of, parse_json, validate_payload
from otel_prompt_canary.service.deps import LoopStoreDep, RegistryDep, RouteWatchDep, SettingsDep
from otel_prompt_canary.service.schemas import ErrorResponse
from otel_prompt_canary.service.watch import RouteWatch

__all__ = ["AlertsAnswer", "router"]

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

_RECEIVER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong credentials or signature"},
    404: {"model": ErrorResponse, "description": "An alert names an unknown prompt: nothing decided"},
    413: {"model": ErrorResponse, "description": "Body over the size limit"},
    415: {"model": ErrorResponse, "description": "Body not sent as application/json"},
    422: {"model": ErrorResponse, "description": "Malformed payload: nothing decided"},
}
_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}


class AlertsAnswer(BaseModel):
    """What became of every alert of the request."""

    received: int = Field(description="Alerts in the request")
    applied: int = Field(description="Alerts that moved a rollout (rolled back or paused it)")
    decisions: list[AlertRecord] = Field(description="One per alert, in request order")


def _decide_all(store: LoopStore, registry: Registry, notices: Sequence[AlertNotice]) -> list[AlertRecord]:
    # Every prompt must exist before anything is decided: a payload is understood whole or refused.
    for notice in notices:
        try:
            registry.get_route(notice.prompt)
        except NotFoundError:
            raise NotFoundError(
                f"unknown prompt {notice.prompt!r} (alert {notice.key!r}): nothing was decided; "
                "check the alert's 'prompt' label"
            ) from None
    return [store.receive_alert(notice) for notice in notices]


async def _answer(
    store: LoopStore, registry: Registry, watch: RouteWatch, notices: Sequence[AlertNotice]
) -> AlertsAnswer:
    records = await run_in_threadpool(_decide_all, store, registry, notices)
    applied = sum(r.outcome is AlertOutcome.APPLIED for r in records)
    if applied:
        await watch.notify()
    return AlertsAnswer(received=len(records), applied=applied, decisions=records)


async def _answer_labelled(
    source: Literal["alertmanager", "grafana"],
    payload: alertmanager.AlertmanagerPayload | grafana.GrafanaPayload,
    store: LoopStore,
    registry: Registry,
    watch: RouteWatch,
) -> AlertsAnswer:
    """The answer to a notification whose alerts name their prompt and action by labels."""
    context = payload.context()
    notices = [notice_of(source, a, i, context=context) for i, a in enumerate(payload.alerts)]
    return await _answer(store, registry, watch, notices)


@router.post(
    "/alertmanager",
    summary="Prometheus Alertmanager webhook (version 4)",
    responses=_RECEIVER_ERRORS,
    openapi_extra=_JSON_BODY,
)
async def alertmanager_webhook(
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    store: LoopStoreDep,
    watch: RouteWatchDep,
) -> AlertsAnswer:
    """Alertmanager's webhook payload; labels ``prompt`` and ``action`` (and ``rollout_id``)."""
    body = await request.body()
    alertmanager.authenticate(request.headers, settings)
    payload = validate_payload(alertmanager.AlertmanagerPayload, parse_json(body), "Alertmanager payload")
    return await _answer_labelled("alertmanager", payload, store, registry, watch)


@router.post(
    "/grafana",
    summary="Grafana alerting webhook (HMAC signed)",
    responses=_RECEIVER_ERRORS,
    openapi_extra=_JSON_BODY,
)
async def grafana_webhook(
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    store: LoopStoreDep,
    watch: RouteWatchDep,
) -> AlertsAnswer:
    """Grafana's webhook contact point payload; labels ``prompt`` and ``action`` (and ``rollout_id``)."""
    body = await request.body()
    grafana.authenticate(request.headers, body, settings)
    payload = validate_payload(grafana.GrafanaPayload, parse_json(body), "Grafana payload")
    return await _answer_labelled("grafana", payload, store, registry, watch)


@router.post(
    "/collector",
    summary="The Collector processor's signed alert",
    responses=_RECEIVER_ERRORS,
    openapi_extra=_JSON_BODY,
)
async def collector_webhook(
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    store: LoopStoreDep,
    watch: RouteWatchDep,
) -> AlertsAnswer:
    """One alert of schemas/collector-alert.schema.json, signed with Standard Webhooks headers."""
    body = await request.body()
    message = collector.authenticate(request.headers, body, settings)
    raw = parse_json(body)
    alert = validate_payload(collector.CollectorAlert, raw, "Collector alert")
    collector.check_message_id(message, alert.id)
    return await _answer(store, registry, watch, [alert.notice(raw)])


@router.get(
    "",
    summary="The alert log",
    responses={404: {"model": ErrorResponse, "description": "Unknown prompt"}},
)
def list_alerts(
    store: LoopStoreDep,
    prompt: Annotated[str | None, Query(description="Only the alerts of this prompt")] = None,
    rollout_id: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Only the alerts of this rollout")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="Only the newest N records")] = None,
) -> list[AlertRecord]:
    """Every alert received and what became of it (applied, duplicate, ignored, recorded), oldest first."""
    if prompt is not None:
        validate_prompt_name(prompt)
    return store.list_alerts(prompt, rollout_id=rollout_id, limit=limit)
