"""Reads the console needs that no API endpoint makes: the audit trail of every prompt at once,
with the reviews among the routing flag's records, and the reviews of a page of versions in one
query (the review rules are those of :mod:`otel_prompt_canary.registry.reviews`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from otel_prompt_canary.registry import rows
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.database import newest_first
from otel_prompt_canary.registry.models import AuditRecord
from otel_prompt_canary.registry.reviews import Review, ReviewStatus, ReviewVerdict, SqlReviews
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "TrailEntry",
    "TrailPage",
    "VersionReview",
    "audit_trail",
    "review_of",
    "review_summaries",
    "trail_page",
]


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
    query = newest_first(
        select(t.audit).where(a.environment == environment), a.id, before=before, limit=limit
    )
    with registry.database.read() as conn:
        newest = list(conn.execute(query).mappings())
    return [rows.audit_record(row) for row in reversed(newest)]


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One line of the console's audit trail: a change of a routing flag, or a review."""

    at: datetime
    record: AuditRecord | None = None
    review: Review | None = None


@dataclass(frozen=True, slots=True)
class TrailPage:
    """A page of the audit trail, newest first, and where the next one starts (None: the last
    page): below audit record ``next_before`` and below review ``next_before_review``."""

    entries: list[TrailEntry]
    more: bool
    next_before: int | None
    next_before_review: int | None


def trail_page(
    registry: Registry,
    environment: str,
    prompt: str | None,
    *,
    limit: int,
    before: int | None = None,
    before_review: int | None = None,
) -> TrailPage:
    """The newest ``limit`` entries of the audit trail of ``prompt`` (of every prompt when None)
    in ``environment``: its routing flag's audit records and the reviews of its versions (which
    belong to no environment: every environment's trail shows them), interleaved by time. The
    audit records are those whose id is below ``before``, the reviews those below
    ``before_review``, when given: the cursors of the page before."""
    if prompt is not None:
        records = registry.history(prompt, limit=limit + 1, before=before, environment=environment)
    elif isinstance(registry, SqlRegistry):
        records = audit_trail(registry, environment, limit=limit + 1, before=before)
    else:
        records = []
    reviews: list[Review] = []
    if isinstance(registry, SqlRegistry):
        reviews = SqlReviews(registry).trail(prompt, before=before_review, limit=limit + 1)
    entries = [TrailEntry(at=r.at, record=r) for r in records]
    entries += [TrailEntry(at=r.at, review=r) for r in reviews]
    # Newest first; at the same instant, the later written (a review's id and a record's id are
    # of different tables: a record first, as a rollout starts after the approval it needs).
    entries.sort(key=lambda e: (e.at, e.review is None, _id(e)), reverse=True)
    shown, more = entries[:limit], len(entries) > limit
    shown_records = [e.record.id for e in shown if e.record is not None]
    shown_reviews = [e.review.id for e in shown if e.review is not None]
    return TrailPage(
        entries=shown,
        more=more,
        # The next page continues below what this one showed of each kind (where it was, for a
        # kind this page showed none of).
        next_before=min(shown_records) if shown_records else before,
        next_before_review=min(shown_reviews) if shown_reviews else before_review,
    )


def _id(entry: TrailEntry) -> int:
    if entry.record is not None:
        return entry.record.id
    assert entry.review is not None
    return entry.review.id


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
