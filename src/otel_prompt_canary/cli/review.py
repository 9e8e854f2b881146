"""``prompt-canary prompt approve | request-changes | reviews``: review a prompt version.

::

    prompt-canary prompt approve support 3 --comment "reads well"
    prompt-canary prompt request-changes support 3 --comment "keep the refund policy sentence"
    prompt-canary prompt reviews support 3

Against a control plane (``--registry https://...``) the reviewer is the principal of ``--token``
(it needs the ``review`` role); on a local store it is ``$USER``. The author of a version may not
approve it. With the control plane's ``--required-approvals``, a rollout of a version starts only
once it is approved (docs/reviews.md).
"""

from __future__ import annotations

from typing import Protocol

import click

from otel_prompt_canary.cli.group import State, common_options, default_actor
from otel_prompt_canary.cli.output import format_table, print_json, time_text
from otel_prompt_canary.registry.bounds import MAX_VERSION
from otel_prompt_canary.registry.models import validate_prompt_name
from otel_prompt_canary.registry.reviews import (
    MAX_COMMENT_CHARS,
    Review,
    ReviewStatus,
    ReviewVerdict,
    SqlReviews,
)
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.routing.control_plane import ControlPlaneClient
from otel_prompt_canary.routing.paging import read_pages

__all__ = ["REVIEW_COMMANDS", "approve", "request_changes", "reviews"]

_HEADERS = ("ID", "AT", "PRINCIPAL", "VERDICT", "COMMENT")


class _Reviews(Protocol):
    """The reviews of a registry: a local store's, or a control plane's over its API."""

    def record(self, prompt: str, version: int, verdict: ReviewVerdict, comment: str) -> Review: ...

    def list(self, prompt: str, version: int, *, limit: int | None) -> list[Review]: ...

    def status(self, prompt: str, version: int) -> ReviewStatus: ...


class _LocalReviews:
    """A local store's reviews; the reviewer is ``$USER``."""

    def __init__(self, registry: SqlRegistry) -> None:
        self._store = SqlReviews(registry)

    def record(self, prompt: str, version: int, verdict: ReviewVerdict, comment: str) -> Review:
        return self._store.record_review(prompt, version, verdict, principal=default_actor(), comment=comment)

    def list(self, prompt: str, version: int, *, limit: int | None) -> list[Review]:
        return self._store.list_reviews(prompt, version, limit=limit)

    def status(self, prompt: str, version: int) -> ReviewStatus:
        # A local store has no required approvals: that is the control plane's setting.
        return self._store.review_status(prompt, version)


class _RemoteReviews:
    """A control plane's reviews (``/v1/prompts/{name}/versions/{version}/reviews``)."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self._client = ControlPlaneClient(base_url, token=token)

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _path(prompt: str, version: int) -> str:
        # Names are validated here too: a name never becomes a path traversal.
        return f"/v1/prompts/{validate_prompt_name(prompt)}/versions/{int(version)}/reviews"

    def record(self, prompt: str, version: int, verdict: ReviewVerdict, comment: str) -> Review:
        body = {"verdict": verdict.value, "comment": comment}
        answer = self._client.request("POST", self._path(prompt, version), json=body)
        return self._client.parse(answer, Review)

    def list(self, prompt: str, version: int, *, limit: int | None) -> list[Review]:
        pages = read_pages(
            self._client,
            self._path(prompt, version),
            lambda answer: self._client.parse_list(answer, Review),
            limit=limit,
        )
        return [review for page in reversed(pages) for review in page]  # pages come newest first

    def status(self, prompt: str, version: int) -> ReviewStatus:
        answer = self._client.request("GET", self._path(prompt, version) + "/status")
        return self._client.parse(answer, ReviewStatus)


def _reviews_of(state: State) -> _Reviews:
    """The reviews beside the registry of ``state`` (closed with the command)."""
    if not state.names_a_control_plane:
        registry = state.registry()
        assert isinstance(registry, SqlRegistry)  # a target that is not a URL is a local store
        return _LocalReviews(registry)
    remote = _RemoteReviews(state.registry_target, state.token)
    click.get_current_context().call_on_close(remote.close)
    return remote


def _record(state: State, name: str, version: int, verdict: ReviewVerdict, comment: str) -> None:
    reviews = _reviews_of(state)
    review = reviews.record(validate_prompt_name(name), version, verdict, comment)
    status = reviews.status(name, version)
    if state.as_json:
        print_json({"review": review, "status": status})
        return
    did = "approved" if verdict is ReviewVerdict.APPROVE else "requested changes to"
    click.echo(f"{review.principal} {did} {name}@{version} (review {review.id})")
    click.echo(_status_line(status))


def _status_line(status: ReviewStatus) -> str:
    approvers = ", ".join(status.approvers) or "none"
    line = f"approvals: {approvers}"
    if status.required:
        line += f" ({len(status.approvers)} of {status.required} required)"
    if status.changes_requested_by:
        line += f"; changes requested by {', '.join(status.changes_requested_by)}"
    if status.required or status.changes_requested_by:
        line += "; may roll out" if status.approved else "; may not roll out yet"
    return line


_VERSION = click.IntRange(1, MAX_VERSION)
_COMMENT_HELP = f"Why (at most {MAX_COMMENT_CHARS} characters)."


@click.command("approve")
@click.argument("name")
@click.argument("version", type=_VERSION)
@click.option("--comment", default="", help=_COMMENT_HELP)
@common_options
@click.pass_obj
def approve(state: State, name: str, version: int, comment: str) -> None:
    """Approve VERSION of prompt NAME (its author may not)."""
    _record(state, name, version, ReviewVerdict.APPROVE, comment)


@click.command("request-changes")
@click.argument("name")
@click.argument("version", type=_VERSION)
@click.option("--comment", required=True, help="What to change (required). " + _COMMENT_HELP)
@common_options
@click.pass_obj
def request_changes(state: State, name: str, version: int, comment: str) -> None:
    """Request changes to VERSION of prompt NAME: no rollout of it starts while this stands."""
    _record(state, name, version, ReviewVerdict.REQUEST_CHANGES, comment)


@click.command("reviews")
@click.argument("name")
@click.argument("version", type=_VERSION)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N reviews.")
@common_options
@click.pass_obj
def reviews(state: State, name: str, version: int, limit: int | None) -> None:
    """List the reviews of VERSION of prompt NAME, oldest first, and where it stands."""
    store = _reviews_of(state)
    found = store.list(validate_prompt_name(name), version, limit=limit)
    status = store.status(name, version)
    if state.as_json:
        print_json({"reviews": found, "status": status})
        return
    if found:
        rows = ((r.id, time_text(r.at), r.principal, r.verdict.value, r.comment or "-") for r in found)
        click.echo(format_table(_HEADERS, rows))
    else:
        click.echo(f"no reviews of {name}@{version} yet: `prompt-canary prompt approve {name} {version}`")
    click.echo(_status_line(status))


#: The commands this module adds to ``prompt-canary prompt``.
REVIEW_COMMANDS = (approve, request_changes, reviews)
