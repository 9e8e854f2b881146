"""Reviews of prompt versions: approvals and requests for changes, and whether a version may roll out.

A prompt diff is reviewed like a code change. A principal (a person or a credential, the name the
control plane knows it by) approves a version or requests changes, with a comment; each review is
one row of the append-only ``reviews`` table (the database refuses to change or delete one), so the
table is the reviews' audit trail::

    reviews = SqlReviews(open_store(".prompt-canary/registry.db"))
    reviews.record_review("support", 3, ReviewVerdict.APPROVE, principal="bob", comment="reads well")
    reviews.review_status("support", 3, required=1).approved        # True

The rules:

- a principal's **latest** review of a version is the one that counts: an approval followed by a
  request for changes blocks again, and a new approval lifts it;
- the version's **author** (the principal who pushed it, :attr:`PromptVersion.author`) may not
  approve it (:class:`~otel_prompt_canary.errors.PermissionDeniedError`, 403); the author may
  request changes;
- a version is **approved** when at least ``required`` principals other than its author approve it
  and no one's latest review requests changes.

:func:`check_approvals` is the rollout gate: the control plane's ``required_approvals`` setting asks
it before any rollout starts (:func:`otel_prompt_canary.loop.start.start_rollout`), and it refuses
(:class:`~otel_prompt_canary.errors.ConflictError`, 409) with what is missing: ``version 3 of
support needs 1 approval by someone other than its author alice; it has 0; bob requested changes``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, RowMapping, func, select

from otel_prompt_canary.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.bounds import MAX_VERSION, check_integer, check_storable
from otel_prompt_canary.registry.database import aware, inserted_id, newest_first, utc_now
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.sql import SqlRegistry

__all__ = [
    "MAX_COMMENT_CHARS",
    "Review",
    "ReviewStatus",
    "ReviewVerdict",
    "SqlReviews",
    "check_approvals",
]

#: The longest review comment kept, in characters.
MAX_COMMENT_CHARS = 4000
_MAX_PRINCIPAL_CHARS = 256


class ReviewVerdict(StrEnum):
    """What a review says of a version."""

    APPROVE = "approve"
    REQUEST_CHANGES = "request_changes"


class Review(BaseModel):
    """One review of a prompt version, as recorded."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="The review's number, increasing in the order reviews were recorded")
    prompt: str
    version: int
    verdict: ReviewVerdict
    principal: str = Field(description="Who reviewed (the principal of the credential used)")
    comment: str
    at: datetime


class ReviewStatus(BaseModel):
    """Where a version stands with its reviewers: each principal's latest review counts."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    version: int
    author: str | None = Field(description="Who pushed the version (may not approve it)")
    required: int = Field(description="Approvals the version needs, by principals other than its author")
    approvers: list[str] = Field(description="Principals whose latest review approves, by name")
    changes_requested_by: list[str] = Field(
        description="Principals whose latest review requests changes, by name"
    )
    approved: bool = Field(description="Enough approvals, and no request for changes standing")

    def explain(self) -> str:
        """Why the version is not approved (or that it is), in one line."""
        noun = "approval" if self.required == 1 else "approvals"
        # A version pushed without an author (or before authors were kept): no one can be shown to
        # be its author, so any approval counts, and the status says so.
        unknown = "(author unknown: any approval counts)"
        by = f"by someone other than its author {self.author}" if self.author else unknown
        text = f"version {self.version} of {self.prompt} needs {self.required} {noun} {by}; it has "
        text += str(len(self.approvers))
        if self.approvers:
            text += f" ({', '.join(self.approvers)})"
        if self.changes_requested_by:
            text += f"; {', '.join(self.changes_requested_by)} requested changes"
        return text


class SqlReviews:
    """The reviews of the versions of an :class:`~otel_prompt_canary.registry.sql.SqlRegistry`, in
    its database. Safe to share between threads."""

    def __init__(self, registry: SqlRegistry) -> None:
        self.database = registry.database

    def record_review(
        self, prompt: str, version: int, verdict: ReviewVerdict, *, principal: str, comment: str = ""
    ) -> Review:
        """Record ``principal``'s review of ``version`` of ``prompt``; the review as stored.

        Refuses an unknown version (404), an approval by the version's author (403), a request for
        changes without a comment, and a comment over :data:`MAX_COMMENT_CHARS` (422).
        """
        verdict = _verdict(verdict)
        _check_key(prompt, version)
        if not principal or len(principal) > _MAX_PRINCIPAL_CHARS:
            raise InvalidInputError(f"principal must be 1-{_MAX_PRINCIPAL_CHARS} characters")
        check_storable(principal, "principal")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise InvalidInputError(
                f"comment: {len(comment)} characters, over the {MAX_COMMENT_CHARS} character limit"
            )
        check_storable(comment, "comment")
        if verdict is ReviewVerdict.REQUEST_CHANGES and not comment:
            raise InvalidInputError("a request for changes needs a comment: say what to change")

        def attempt(conn: Connection) -> Review:
            author = _author(conn, prompt, version)
            if verdict is ReviewVerdict.APPROVE and author is not None and author == principal:
                raise PermissionDeniedError(
                    f"principal {principal!r} may not approve version {version} of {prompt}: it is "
                    "its author; ask another reviewer"
                )
            at = utc_now()
            values = {
                "prompt": prompt,
                "version": version,
                "verdict": verdict.value,
                "principal": principal,
                "comment": comment,
                "at": at,
            }
            review_id = inserted_id(conn.execute(t.reviews.insert().values(**values)))
            return Review(id=review_id, **values)

        return self.database.write(attempt, contended=f"could not record a review of {prompt}@{version}")

    def list_reviews(
        self, prompt: str, version: int, *, before: int | None = None, limit: int | None = None
    ) -> list[Review]:
        """The reviews of ``version`` of ``prompt``, oldest first (the newest ``limit`` ones whose
        id is below ``before``, when given); 404 for an unknown version."""
        _check_key(prompt, version)
        query = newest_first(
            select(t.reviews).where(t.reviews.c.prompt == prompt, t.reviews.c.version == version),
            t.reviews.c.id,
            before=before,
            limit=limit,
        )
        with self.database.read() as conn:
            _author(conn, prompt, version)
            rows = list(conn.execute(query).mappings())
        return [_review(row) for row in reversed(rows)]

    def trail(
        self, prompt: str | None = None, *, before: int | None = None, limit: int | None = None
    ) -> list[Review]:
        """The reviews of every version of ``prompt`` (of every prompt when None), newest first:
        the newest ``limit`` ones whose id is below ``before``, when given. The audit trail shows
        them among the routing flag's records (one query, by the reviews table's key)."""
        r = t.reviews.c
        query = select(t.reviews)
        if prompt is not None:
            query = query.where(r.prompt == validate_prompt_name(prompt))
        if before is not None:
            check_integer(before, "before", low=1, high=2**63 - 1)
        if limit is not None:
            check_integer(limit, "limit", low=1, high=10_000)
        query = newest_first(query, r.id, before=before, limit=limit)
        with self.database.read() as conn:
            rows = list(conn.execute(query).mappings())
        return [_review(row) for row in rows]

    def review_status(self, prompt: str, version: int, *, required: int = 0) -> ReviewStatus:
        """Where ``version`` of ``prompt`` stands: its approvers and those requesting changes (each
        principal's latest review), and whether it has ``required`` approvals and no standing
        request for changes; 404 for an unknown version."""
        _check_key(prompt, version)
        check_integer(required, "required", low=0, high=1000)
        latest = (
            select(func.max(t.reviews.c.id))
            .where(t.reviews.c.prompt == prompt, t.reviews.c.version == version)
            .group_by(t.reviews.c.principal)
        )
        with self.database.read() as conn:
            author = _author(conn, prompt, version)
            rows = conn.execute(
                select(t.reviews.c.principal, t.reviews.c.verdict).where(t.reviews.c.id.in_(latest))
            ).all()
        approvers = sorted(p for p, v in rows if v == ReviewVerdict.APPROVE and p != author)
        changes = sorted(p for p, v in rows if v == ReviewVerdict.REQUEST_CHANGES)
        return ReviewStatus(
            prompt=prompt,
            version=version,
            author=author,
            required=required,
            approvers=approvers,
            changes_requested_by=changes,
            approved=len(approvers) >= required and not changes,
        )


def check_approvals(reviews: SqlReviews, prompt: str, version: int, *, required: int) -> str:
    """The rollout gate: refuses (:class:`~otel_prompt_canary.errors.ConflictError`, 409) a version
    that is not approved (see the module docstring); else the note the start's audit reason ends
    with (``[approved by bob, carol]``, or nothing when no approval is required)."""
    if required <= 0:
        return ""
    status = reviews.review_status(prompt, version, required=required)
    if not status.approved:
        raise ConflictError(
            f"{status.explain()}. Review it first: prompt-canary prompt approve {prompt} {version}"
        )
    return f" [approved by {', '.join(status.approvers)}]"


def _verdict(verdict: ReviewVerdict | str) -> ReviewVerdict:
    try:
        return ReviewVerdict(verdict)
    except ValueError:
        raise InvalidInputError(
            f"invalid verdict {str(verdict)[:40]!r}: give 'approve' or 'request_changes'"
        ) from None


def _check_key(prompt: str, version: int) -> None:
    validate_prompt_name(prompt)
    check_integer(version, "version", low=1, high=MAX_VERSION)


def _author(conn: Connection, prompt: str, version: int) -> str | None:
    """The author of the version; 404 when there is no such version."""
    body = conn.execute(
        select(t.versions.c.body).where(t.versions.c.name == prompt, t.versions.c.version == version)
    ).scalar()
    if body is None:
        if not SqlRegistry.prompt_exists(conn, prompt):
            raise NotFoundError(f"unknown prompt {prompt!r}")
        raise NotFoundError(f"unknown version {version} of prompt {prompt!r}")
    author = body.get("author")
    return author if isinstance(author, str) else None


def _review(row: RowMapping) -> Review:
    return Review.model_validate({**row, "at": aware(row["at"])})
