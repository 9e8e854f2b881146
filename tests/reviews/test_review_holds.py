"""The review cannot be gone around: a revert goes only to a version that was stable or is approved,
and the approvals (and the flag a promotion comes from) are read inside the start's transaction.

Over the real API (uvicorn on loopback), and on the ``registry`` fixture (SQLite and PostgreSQL),
where a concurrent request is made to land between the first reads and the start's write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.errors import ConflictError
from otel_prompt_canary.loop.start import start_rollout
from otel_prompt_canary.registry import Action, PromptSpec, SqlRegistry
from otel_prompt_canary.registry.reviews import ReviewVerdict, SqlReviews
from otel_prompt_canary.service import ServiceSettings
from tests.service.service_factories import error_of, text_spec
from tests.support.auth import AUTH, TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

ALICE = Credential("alice", ["operate"])
BOB = Credential("bob", ["review"])
CAROL = Credential("carol", ["review"])


@pytest.fixture
def client(registry: SqlRegistry, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        token=TOKEN,
        credentials_file=write_credentials(tmp_path, [ALICE, BOB, CAROL]),
        required_approvals=1,
        controller=False,
    )
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _push(client: httpx.Client, template: str) -> int:
    pushed = client.post("/v1/prompts", json=text_spec(template=template), headers=ALICE.auth)
    assert pushed.status_code == 201, pushed.text
    version: int = pushed.json()["version"]["version"]
    return version


def _review(client: httpx.Client, version: int, who: Credential, verdict: str = "approve") -> None:
    answer = client.post(
        f"/v1/prompts/greeter/versions/{version}/reviews",
        json={"verdict": verdict, "comment": "not this one" if verdict != "approve" else ""},
        headers=who.auth,
    )
    assert answer.status_code == 201, answer.text


def _ship(client: httpx.Client, version: int) -> None:
    """Approve, start and promote ``version``."""
    _review(client, version, BOB)
    started = client.post(
        "/v1/prompts/greeter/rollouts",
        json={"version": version, "reason": "ship", "ramp": "100"},
        headers=ALICE.auth,
    )
    assert started.status_code == 201, started.text
    promoted = client.post("/v1/prompts/greeter/rollout/promote", json={"reason": "good"}, headers=ALICE.auth)
    assert promoted.status_code == 200, promoted.text


def _revert(client: httpx.Client, version: int) -> httpx.Response:
    return client.post(
        "/v1/prompts/greeter/rollout/revert",
        json={"reason": "back", "to_version": version},
        headers=ALICE.auth,
    )


def _state(client: httpx.Client) -> tuple[Any, ...]:
    return (
        client.get("/v1/routes/greeter", headers=AUTH).json(),
        client.get("/v1/prompts/greeter/rollout/history", headers=AUTH).json(),
    )


def test_a_revert_may_not_make_an_unreviewed_version_stable(client: httpx.Client) -> None:
    for template in ("One {{ name }}.", "Two {{ name }}.", "Three {{ name }}."):
        _push(client, template)
    _ship(client, 2)
    unreviewed = _push(client, "EVIL {{ name }}")
    before = _state(client)
    refused = _revert(client, unreviewed)
    assert refused.status_code == 409, refused.text
    assert error_of(refused) == (
        "ConflictError",
        "cannot revert 'greeter' to version 4: it has never been stable there and is not approved "
        "(version 4 of greeter needs 1 approval by someone other than its author alice; it has 0). "
        "Revert to a version that was stable, or review it first: prompt-canary prompt approve greeter 4",
    )
    assert _state(client) == before

    # Approved, it may be the version a revert goes to.
    _review(client, unreviewed, CAROL)
    assert _revert(client, unreviewed).status_code == 200
    assert client.get("/v1/routes/greeter", headers=AUTH).json()["stable_version"] == unreviewed


def test_a_revert_may_go_back_to_a_version_that_was_stable_there(client: httpx.Client) -> None:
    for template in ("One {{ name }}.", "Two {{ name }}.", "Three {{ name }}."):
        _push(client, template)
    _ship(client, 2)
    _review(client, 2, CAROL, "request_changes")  # no longer approved, but it was stable
    _ship(client, 3)
    reverted = _revert(client, 2)
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["stable_version"] == 2


def _two_versions(registry: SqlRegistry) -> None:
    registry.push(PromptSpec(name="g", template="one"), author="alice")
    registry.push(PromptSpec(name="g", template="two"), author="alice")


def test_a_request_for_changes_landing_during_the_start_stops_it(
    registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_versions(registry)
    reviews = SqlReviews(registry)
    reviews.record_review("g", 2, ReviewVerdict.APPROVE, principal="bob")
    write = SqlRegistry.start_rollout

    def meanwhile(self: SqlRegistry, *args: Any, **kwargs: Any) -> Any:
        # A reviewer's request lands after the start read the approvals, before its write.
        reviews.record_review("g", 2, ReviewVerdict.REQUEST_CHANGES, principal="carol", comment="leaks PII")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(SqlRegistry, "start_rollout", meanwhile)
    with pytest.raises(ConflictError, match="carol requested changes"):
        start_rollout(registry, "g", 2, actor="alice", reason="go", required_approvals=1, principal="alice")
    route = registry.get_route("g")
    assert (route.state.value, route.stable_version, route.revision) == ("idle", 1, 1)
    assert registry.history("g") == []


def test_a_promotion_whose_source_moved_meanwhile_is_refused(
    registry: SqlRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_versions(registry)
    order = ("staging", "production")
    start_rollout(
        registry, "g", 2, actor="a", reason="s", environment="staging", environments=order, ramp="100"
    )
    registry.transition("g", Action.PROMOTE, actor="a", reason="p", environment="staging")
    write = SqlRegistry.start_rollout

    def meanwhile(self: SqlRegistry, *args: Any, **kwargs: Any) -> Any:
        # Staging is reverted after the promotion read its flag, before the start's write.
        monkeypatch.setattr(SqlRegistry, "start_rollout", write)
        registry.transition(
            "g", Action.REVERT, actor="oncall", reason="v2 broke staging", environment="staging"
        )
        return write(self, *args, **kwargs)

    monkeypatch.setattr(SqlRegistry, "start_rollout", meanwhile)
    with pytest.raises(ConflictError) as refused:
        start_rollout(
            registry,
            "g",
            None,
            actor="a",
            reason="promote",
            environment="production",
            from_environment="staging",
            environments=order,
        )
    assert str(refused.value) == (
        "cannot promote 'g' into production: its flag in staging moved from revision 3 (version 2 "
        "stable) to revision 4 (version 1 stable, rolled_back) meanwhile; look at it again and promote again"
    )
    assert registry.get_route("g", environment="production").state.value == "idle"
    assert registry.history("g", environment="production") == []


def test_a_version_without_an_author_says_any_approval_counts(registry: SqlRegistry) -> None:
    registry.push(PromptSpec(name="g", template="one"))
    registry.push(PromptSpec(name="g", template="two"))
    reviews = SqlReviews(registry)
    assert reviews.review_status("g", 2, required=1).explain() == (
        "version 2 of g needs 1 approval (author unknown: any approval counts); it has 0"
    )
    reviews.record_review("g", 2, ReviewVerdict.APPROVE, principal="whoever-pushed-it")
    assert reviews.review_status("g", 2, required=1).approved
