"""Reads the console needs that no API endpoint makes: the audit trail of every prompt at once,
and the reviews of a page of versions in one query (the review rules are those of
:mod:`otel_prompt_canary.registry.reviews`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from otel_prompt_canary.registry import rows
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import AuditRecord
from otel_prompt_canary.registry.reviews import Review, ReviewStatus, ReviewVerdict, SqlReviews
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = ["VersionReview", "audit_trail", "review_of", "review_summaries"]


@dataclass(frozen=True, slots=True)
class VersionReview:
    """A version's reviews, where it stands and that in words."""

    status: ReviewStatus
    records: list[Review]
    summary: str


def audit_trail(
    registry: SqlRegistry, environment: str, *, limit: int, before: int | None = None
) -> list[AuditRecord]:
    """The audit records of every prompt in ``environment``, oldest first: the newest ``limit``
    ones whose id is below ``before``, when given (one query, by the audit table's key)."""
    a = t.audit.c
    query = select(t.audit).where(a.environment == environment).order_by(a.id.desc()).limit(limit)
    if before is not None:
        query = query.where(a.id < before)
    with registry.database.read() as conn:
        newest_first = list(conn.execute(query).mappings())
    return [rows.audit_record(row) for row in reversed(newest_first)]


def review_summaries(registry: Registry, prompt: str, versions: Sequence[int]) -> dict[int, str]:
    """Each version's standing with its reviewers in words (``approved by bob``, ``changes
    requested by carol``), for the versions that have reviews; one query for them all."""
    if not isinstance(registry, SqlRegistry) or not versions:
        return {}
    r = t.reviews.c
    latest = (
        select(func.max(r.id))
        .where(r.prompt == prompt, r.version.in_(list(versions)))
        .group_by(r.version, r.principal)
    )
    with registry.database.read() as conn:
        found = conn.execute(select(r.version, r.principal, r.verdict).where(r.id.in_(latest))).all()
    by_version: dict[int, dict[str, list[str]]] = {}
    for version, principal, verdict in found:
        by_version.setdefault(version, {}).setdefault(verdict, []).append(principal)
    summaries: dict[int, str] = {}
    for version, verdicts in by_version.items():
        parts = []
        if verdicts.get(ReviewVerdict.REQUEST_CHANGES.value):
            parts.append("changes requested by " + ", ".join(sorted(verdicts["request_changes"])))
        if verdicts.get(ReviewVerdict.APPROVE.value):
            parts.append("approved by " + ", ".join(sorted(verdicts["approve"])))
        summaries[version] = "; ".join(parts)
    return summaries


def review_of(
    registry: Registry, settings: ServiceSettings, prompt: str, version: int
) -> VersionReview | None:
    """The reviews of ``version`` and where it stands against the approvals the service requires
    (None when the registry keeps no reviews)."""
    if not isinstance(registry, SqlRegistry):
        return None
    reviews = SqlReviews(registry)
    required = settings.required_approvals
    status = reviews.review_status(prompt, version, required=required)
    records = list(reversed(reviews.list_reviews(prompt, version, limit=50)))
    if status.changes_requested_by:
        summary = f"Changes requested by {', '.join(status.changes_requested_by)}."
    elif required == 0:
        summary = "No approval is required to roll out on this control plane" + (
            f"; approved by {', '.join(status.approvers)}." if status.approvers else "."
        )
    elif status.approved:
        summary = f"Approved by {', '.join(status.approvers)}: it may roll out."
    else:
        summary = status.explain() + "."
    return VersionReview(status=status, records=records, summary=summary)
