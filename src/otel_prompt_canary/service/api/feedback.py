"""``/v1/feedback``: a user's feedback on one answer, from any process that holds the answer's key.

The application stores the call's feedback key (``Selection.feedback_key``) with the answer; later a
web front end, a support tool or a batch job posts the feedback here with the reporting credential.
The key says which rollout, cohort and version answered; the control plane checks the key's
signature and lifetime, that its rollout is still running and serves that version, and adds one
sample to the rollout's statistics, exactly once per feedback id (by default one per key and
signal name). The rollout controller then judges it like any signal (docs/reporting.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.feedback import feedback_signal
from otel_prompt_canary.loop.feedback import feedback_id, record_feedback
from otel_prompt_canary.loop.reports import ReportReceipt
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.service import signatures
from otel_prompt_canary.service.bodies import parse_json, validate_payload
from otel_prompt_canary.service.deps import LoopStoreDep, RegistryDep, SettingsDep
from otel_prompt_canary.service.payloads import FeedbackBody
from otel_prompt_canary.service.principals import PrincipalDep
from otel_prompt_canary.service.report_scope import require_reporter
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


@router.post(
    "",
    summary="Record a user's feedback on one answer",
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong reporting credential"},
        404: {"model": ErrorResponse, "description": "The key's rollout is unknown"},
        409: {
            "model": ErrorResponse,
            "description": "The key's rollout has ended, or serves another version",
        },
        413: {"model": ErrorResponse, "description": "Body over the size limit"},
        415: {"model": ErrorResponse, "description": "Body not sent as application/json"},
        422: {
            "model": ErrorResponse,
            "description": "Malformed body; a key forged, altered or expired; a score or name out of range",
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": FeedbackBody.model_json_schema()}},
        }
    },
)
async def post_feedback(
    request: Request,
    settings: SettingsDep,
    registry: RegistryDep,
    store: LoopStoreDep,
    principal: PrincipalDep,
) -> ReportReceipt:
    """Add the feedback to its rollout's statistics; a repeated feedback id adds nothing (``duplicate``).

    A credential limited to some environments posts feedback only on calls of their rollouts (403).
    """
    body = await request.body()
    message = signatures.authenticate(request.headers, body, settings, reporting=True)
    feedback = validate_payload(FeedbackBody, parse_json(body), "feedback")
    signal = feedback_signal(feedback.score, feedback.name)
    key = settings.feedback_keys().read(feedback.key)
    identifier = feedback.id or feedback_id(feedback.key, signal.name)
    signatures.check_message_id(message, identifier)
    await run_in_threadpool(
        lambda: require_reporter(
            request,
            principal,
            registry,
            key.prompt,
            key.rollout_id,
            DEFAULT_ENVIRONMENT,  # a key names a rollout: its environment counts
            doing="post feedback",
        )
    )
    receipt: ReportReceipt = await run_in_threadpool(
        record_feedback, registry, store, key, signal, feedback_id=identifier
    )
    controller = getattr(request.app.state, "controller", None)
    if controller is not None:
        controller.wake()
    return receipt
