"""The alert receivers: Alertmanager, Grafana and the Collector processor, behind one receive function.

A :class:`Receiver` turns one request of its sender into alert notices: it authenticates the request
first, then reads the whole payload, and refuses it (401, 422) before anything is decided.
:func:`receive` then decides each notice (:meth:`~otel_prompt_canary.loop.store.LoopStore.receive_alert`):
one transition per alert at most, ever, however often it is delivered. An alert naming an unknown
prompt is refused with 404 and decides nothing, so a request is understood whole or changes nothing.
The answer lists every decision; docs/alerts.md has the details.

Each alert carries its sender's principal (the request guard's): the audit record of what it
applies names it, and a sender whose ``alert`` role is limited to some environments acts only
there: an alert about another environment (its rollout's, else its ``environment`` label, else
the default one) is logged as ``ignored``, with why, and changes nothing.

Each receiver is served at ``POST /v1/alerts/<name>``; adding a sender is adding a receiver to
:data:`RECEIVERS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.errors import NotFoundError
from otel_prompt_canary.loop.alerts import AlertNotice, AlertOutcome, AlertRecord
from otel_prompt_canary.loop.store import LoopStore
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.service.deps import LoopStoreDep, RegistryDep, RouteWatchDep, SettingsDep
from otel_prompt_canary.service.environments import check_served
from otel_prompt_canary.service.principals import Principal, get_principal
from otel_prompt_canary.service.receivers.alertmanager import AlertmanagerReceiver
from otel_prompt_canary.service.receivers.collector import CollectorReceiver
from otel_prompt_canary.service.receivers.grafana import GrafanaReceiver
from otel_prompt_canary.service.schemas import ErrorResponse
from otel_prompt_canary.service.settings import ServiceSettings
from otel_prompt_canary.service.watch import RouteWatches

__all__ = ["RECEIVERS", "AlertsAnswer", "Receiver", "receive", "router", "sent_by"]


class Receiver(Protocol):
    """What one sender's webhook needs: its name (the path and the alerts' source) and a reader."""

    @property
    def name(self) -> str:
        """``alertmanager``, ``grafana``, ``collector``: served at ``/v1/alerts/<name>``."""
        ...

    @property
    def summary(self) -> str:
        """One line for the API's documentation."""
        ...

    def notices(
        self, headers: Mapping[str, str], body: bytes, settings: ServiceSettings
    ) -> list[AlertNotice]:
        """The alerts of one request; raises (401, 422) when it cannot be trusted or understood whole."""
        ...


RECEIVERS: tuple[Receiver, ...] = (AlertmanagerReceiver(), GrafanaReceiver(), CollectorReceiver())


class AlertsAnswer(BaseModel):
    """What became of every alert of the request."""

    received: int = Field(description="Alerts in the request")
    applied: int = Field(description="Alerts that moved a rollout (rolled back or paused it)")
    decisions: list[AlertRecord] = Field(description="One per alert, in request order")


def _decide_all(
    store: LoopStore, registry: Registry, notices: Sequence[AlertNotice], settings: ServiceSettings
) -> list[AlertRecord]:
    # Every prompt and environment must exist before anything is decided: a payload is understood
    # whole or refused.
    for notice in notices:
        if notice.environment is not None:
            try:
                check_served(settings, notice.environment)
            except NotFoundError as exc:
                raise NotFoundError(f"{exc} (alert {notice.key!r}): nothing was decided") from None
        try:
            registry.get_route(notice.prompt)
        except NotFoundError:
            raise NotFoundError(
                f"unknown prompt {notice.prompt!r} (alert {notice.key!r}): nothing was decided; "
                "check the alert's 'prompt' label"
            ) from None
    return [store.receive_alert(notice) for notice in notices]


def sent_by(notice: AlertNotice, principal: Principal) -> AlertNotice:
    """``notice`` as sent by ``principal``: named in the audit record of what it applies, and
    limited to the environments ``principal`` may act in."""
    return notice.model_copy(
        update={"principal": principal.name, "principal_environments": principal.environments}
    )


async def receive(
    receiver: Receiver,
    request: Request,
    settings: ServiceSettings,
    registry: Registry,
    store: LoopStore,
    watch: RouteWatches,
) -> AlertsAnswer:
    """Read one request of ``receiver``'s sender and decide each alert it carries, as sent by the
    request's principal."""
    principal = await get_principal(request)
    body = await request.body()
    notices = [sent_by(n, principal) for n in receiver.notices(request.headers, body, settings)]
    records = await run_in_threadpool(_decide_all, store, registry, notices, settings)
    applied = sum(r.outcome is AlertOutcome.APPLIED for r in records)
    if applied:
        await watch.notify()
    return AlertsAnswer(received=len(records), applied=applied, decisions=records)


def _endpoint(receiver: Receiver) -> Callable[..., Awaitable[AlertsAnswer]]:
    async def endpoint(
        request: Request,
        settings: SettingsDep,
        registry: RegistryDep,
        store: LoopStoreDep,
        watch: RouteWatchDep,
    ) -> AlertsAnswer:
        return await receive(receiver, request, settings, registry, store, watch)

    return endpoint


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong credentials or signature"},
    404: {"model": ErrorResponse, "description": "An alert names an unknown prompt: nothing decided"},
    413: {"model": ErrorResponse, "description": "Body over the size limit"},
    415: {"model": ErrorResponse, "description": "Body not sent as application/json"},
    422: {"model": ErrorResponse, "description": "Malformed payload: nothing decided"},
}
_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
}

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
for _receiver in RECEIVERS:
    router.add_api_route(
        f"/{_receiver.name}",
        _endpoint(_receiver),
        methods=["POST"],
        name=f"{_receiver.name}_webhook",
        summary=_receiver.summary,
        description=type(_receiver).__doc__ or "",
        response_model=AlertsAnswer,
        responses=_ERRORS,
        openapi_extra=_JSON_BODY,
    )
