"""``/v1/reports``: statistics of rollouts, from the Collector processor or from applications.

A report (``schemas/report.schema.json``) carries increments of per-cohort statistics; the service
adds each one into its rollout's totals exactly once (by report id), in the store, so a restart
loses nothing. The rollout controller judges the totals. Reports are signed like the Collector's
alerts (Standard Webhooks), or sent with a bearer token: the reporting credential (``report_token``,
what applications hold) or the write token.

Signal attributes keep the kind their prefix says: ``prompt_canary.check.*`` are proportions,
``prompt_canary.score.*`` and ``gen_ai.usage.*`` means; a report breaking that is refused (422).

A report's ``origin`` (``application`` or ``collector``) says which path sent it: a rollout counts
the reports of the first origin that reported for it and acknowledges the other's as ``ignored``
(:mod:`otel_prompt_canary.loop.reports`), since both paths report the same calls.

A report whose rollout id is ``live:<version>`` carries calls served with no rollout: it goes to drift
monitoring (:mod:`otel_prompt_canary.service.drift_reports`), as do the ``response_models`` of a
rollout's stable cohort.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.loop.live import live_version
from otel_prompt_canary.loop.reports import ReportOutcome, ReportReceipt, check_kinds
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.bounds import check_storable
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.service import signatures
from otel_prompt_canary.service.bodies import parse_json, validate_payload
from otel_prompt_canary.service.deps import LoopStoreDep, RegistryDep, SettingsDep
from otel_prompt_canary.service.drift_reports import record_live_report, record_rollout_models
from otel_prompt_canary.service.environments import check_served
from otel_prompt_canary.service.payloads import ReportEnvelope
from otel_prompt_canary.service.principals import PrincipalDep
from otel_prompt_canary.service.report_scope import require_reporter
from otel_prompt_canary.service.schemas import ErrorResponse

__all__ = ["router"]

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.post(
    "",
    summary="Report statistics of a rollout",
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong signature or token"},
        404: {"model": ErrorResponse, "description": "Unknown prompt"},
        413: {"model": ErrorResponse, "description": "Body over the size limit"},
        415: {"model": ErrorResponse, "description": "Body not sent as application/json"},
        422: {"model": ErrorResponse, "description": "Malformed report: nothing stored"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
async def post_report(
    request: Request,
    settings: SettingsDep,
    store: LoopStoreDep,
    registry: RegistryDep,
    principal: PrincipalDep,
) -> ReportReceipt:
    """Add a report into its rollout's totals; a repeated report id adds nothing (``duplicate``).

    A report of an unknown rollout of a known prompt, or of the origin whose reports its rollout
    does not count, is acknowledged and not counted (``ignored``, with the reason). A credential
    limited to some environments reports only for rollouts of those (403 otherwise, nothing counted).
    """
    body = await request.body()
    message = signatures.authenticate(request.headers, body, settings, reporting=True)
    raw = parse_json(body)
    check_storable(raw, "body")
    envelope = validate_payload(ReportEnvelope, raw, "report")
    signatures.check_message_id(message, envelope.id)
    try:
        prompt = validate_prompt_name(envelope.prompt)
    except InvalidInputError as exc:
        raise InvalidInputError(f"body.prompt: {exc}") from None
    report = envelope.report()
    check_kinds(report)
    environment = check_served(settings, envelope.environment or DEFAULT_ENVIRONMENT)
    await run_in_threadpool(
        lambda: require_reporter(
            request, principal, registry, prompt, envelope.rollout_id, environment, doing="report statistics"
        )
    )
    drift = getattr(request.app.state, "drift_monitor", None)
    if live_version(envelope.rollout_id) is not None:  # calls of no rollout: for drift monitoring
        if environment != DEFAULT_ENVIRONMENT:
            # Drift monitoring watches the default environment's stable versions only: the calls of
            # another environment must not move its baselines (docs/environments.md).
            return ReportReceipt(
                report_id=envelope.id,
                rollout_id=envelope.rollout_id,
                outcome=ReportOutcome.IGNORED,
                reason=f"not counted: drift monitoring watches the {DEFAULT_ENVIRONMENT} environment "
                f"only, and this live report is of {environment}",
            )
        return await run_in_threadpool(record_live_report, drift, envelope, report, prompt)
    receipt: ReportReceipt = await run_in_threadpool(
        store.record_report,
        report,
        source=envelope.source,
        prompt=prompt,
        report_id=envelope.id,
        origin=envelope.origin,
    )
    await run_in_threadpool(record_rollout_models, drift, request.app.state.registry, envelope, receipt)
    controller = getattr(request.app.state, "controller", None)
    if controller is not None:
        controller.wake()
    return receipt
