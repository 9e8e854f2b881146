"""``GET /v1/alerts``: the alert log, every alert received and what became of it.

The receivers that fill it (``POST /v1/alerts/<sender>``) are in :mod:`otel_prompt_canary.service.receivers`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary import cursors
from otel_prompt_canary.loop.alerts import AlertRecord
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.service.deps import LoopStoreDep
from otel_prompt_canary.service.pages import PAGE_RESPONSE, PageDep, link_next
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get(
    "",
    summary="The alert log",
    responses={
        **PAGE_RESPONSE,
        404: {"model": ErrorResponse, "description": "Unknown prompt"},
        422: {"model": ErrorResponse, "description": "Invalid input"},
    },
)
async def list_alerts(
    request: Request,
    response: Response,
    store: LoopStoreDep,
    page: PageDep,
    prompt: Annotated[str | None, Query(description="Only the alerts of this prompt")] = None,
    rollout_id: Annotated[
        str | None, Query(min_length=1, max_length=256, description="Only the alerts of this rollout")
    ] = None,
) -> list[AlertRecord]:
    """Every alert received and what became of it (applied, duplicate, ignored, recorded), newest
    page first, each page oldest first (see the API's description of pages)."""
    if prompt is not None:
        validate_prompt_name(prompt)
    records = await run_in_threadpool(
        store.list_alerts,
        prompt,
        rollout_id=rollout_id,
        limit=page.limit + 1,
        before=page.before(cursors.ALERTS),
    )
    return link_next(request, response, records, page, cursors.ALERTS, lambda r: r.id, newest_first=True)
