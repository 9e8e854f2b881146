"""``GET /v1/alerts``: the alert log, every alert received and what became of it.

The receivers that fill it (``POST /v1/alerts/<sender>``) are in :mod:`otel_prompt_canary.service.receivers`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from otel_prompt_canary.loop.alerts import AlertRecord
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.service.deps import LoopStoreDep
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


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
