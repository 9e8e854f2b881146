"""The reviews of a store (SQLite and PostgreSQL): latest review per reviewer, the author's own
approval refused, the rollout gate, and the reviews table append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from otel_prompt_canary.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from otel_prompt_canary.loop.start import start_rollout
from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.reviews import ReviewVerdict, SqlReviews, check_approvals

APPROVE, CHANGES = ReviewVerdict.APPROVE, ReviewVerdict.REQUEST_CHANGES


@pytest.fixture
def reviews(registry: SqlRegistry) -> SqlReviews:
    for template in ("Answer {{ question }}.", "Answer {{ question }} briefly."):
        registry.push(PromptSpec(name="support", template=template), author="alice")
    return SqlReviews(registry)


def test_the_latest_review_of_each_reviewer_counts(reviews: SqlReviews) -> None:
    status = reviews.review_status("support", 2, required=1)
    assert (status.approved, status.approvers, status.author) == (False, [], "alice")
    assert (
        status.explain()
        == "version 2 of support needs 1 approval by someone other than its author alice; it has 0"
    )
    reviews.record_review("support", 2, APPROVE, principal="bob", comment="reads well")
    assert reviews.review_status("support", 2, required=1).approved
    reviews.record_review("support", 2, CHANGES, principal="bob", comment="keep the refund sentence")
    status = reviews.review_status("support", 2, required=1)
    assert (status.approved, status.approvers, status.changes_requested_by) == (False, [], ["bob"])
    assert status.explain().endswith("it has 0; bob requested changes")
    reviews.record_review("support", 2, APPROVE, principal="carol")
    blocked = reviews.review_status("support", 2, required=1)
    assert (blocked.approved, blocked.approvers) == (False, ["carol"])  # bob's request still stands
    reviews.record_review("support", 2, APPROVE, principal="bob", comment="fixed in place")
    status = reviews.review_status("support", 2, required=2)
    assert (status.approved, status.approvers, status.changes_requested_by) == (True, ["bob", "carol"], [])
    assert not reviews.review_status("support", 2, required=3).approved
    assert reviews.review_status("support", 1, required=0).approved  # none required, none asked
    assert [r.principal for r in reviews.list_reviews("support", 2)] == ["bob", "bob", "carol", "bob"]


def test_the_author_may_not_approve_but_may_request_changes(reviews: SqlReviews) -> None:
    with pytest.raises(
        PermissionDeniedError,
        match="principal 'alice' may not approve version 2 of support: it is its author",
    ):
        reviews.record_review("support", 2, APPROVE, principal="alice")
    assert reviews.list_reviews("support", 2) == []
    reviews.record_review("support", 2, CHANGES, principal="alice", comment="not ready yet")
    assert reviews.review_status("support", 2).changes_requested_by == ["alice"]


@pytest.mark.parametrize(
    ("prompt", "version", "verdict", "comment", "error", "message"),
    [
        ("support", 9, APPROVE, "", NotFoundError, "unknown version 9 of prompt 'support'"),
        ("nobody", 1, APPROVE, "", NotFoundError, "unknown prompt 'nobody'"),
        ("support", 2, CHANGES, "  ", InvalidInputError, "a request for changes needs a comment"),
        ("support", 2, APPROVE, "x" * 4001, InvalidInputError, "over the 4000 character limit"),
        ("support", 2, "merge", "", InvalidInputError, "invalid verdict 'merge'"),
        ("support", 0, APPROVE, "", InvalidInputError, "version"),
        ("support", 2, APPROVE, "nul \x00 here", InvalidInputError, "comment"),
    ],
)
def test_bad_reviews_are_refused_and_nothing_is_recorded(
    reviews: SqlReviews,
    prompt: str,
    version: int,
    verdict: ReviewVerdict,
    comment: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        reviews.record_review(prompt, version, verdict, principal="bob", comment=comment)
    assert reviews.list_reviews("support", 2) == []


def test_reviews_come_in_pages(reviews: SqlReviews) -> None:
    for n in range(5):
        reviews.record_review("support", 2, APPROVE, principal=f"r{n}")
    newest = reviews.list_reviews("support", 2, limit=2)
    assert [r.principal for r in newest] == ["r3", "r4"]
    before = reviews.list_reviews("support", 2, limit=2, before=newest[0].id)
    assert [r.principal for r in before] == ["r1", "r2"]


def test_the_reviews_table_is_append_only(registry: SqlRegistry, reviews: SqlReviews) -> None:
    review = reviews.record_review("support", 2, CHANGES, principal="bob", comment="no")
    for statement in (
        update(t.reviews).where(t.reviews.c.id == review.id).values(verdict="approve"),
        delete(t.reviews).where(t.reviews.c.id == review.id),
    ):
        with pytest.raises(DatabaseError, match="immutable"), registry.database.transaction() as conn:
            conn.execute(statement)
    assert reviews.list_reviews("support", 2) == [review]


def test_the_gate_refuses_a_start_until_the_version_is_approved(
    registry: SqlRegistry, reviews: SqlReviews
) -> None:
    with pytest.raises(ConflictError) as refused:
        start_rollout(registry, "support", 2, actor="alice", reason="ship it", required_approvals=1)
    assert str(refused.value).startswith(
        "version 2 of support needs 1 approval by someone other than its author alice; it has 0. "
    )
    assert registry.get_route("support").state == "idle"
    assert registry.history("support") == []
    reviews.record_review("support", 2, APPROVE, principal="bob")
    assert check_approvals(reviews, "support", 2, required=0) == ""
    route = start_rollout(registry, "support", 2, actor="alice", reason="ship it", required_approvals=1)
    assert route.state == "ramping"
    assert registry.history("support")[-1].reason == "ship it [approved by bob]"
