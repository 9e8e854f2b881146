"""The review workflow over the real API (uvicorn on loopback): reviews by the principal of the
credential, the author's own approval refused, and ``--required-approvals`` holding a rollout back
until the version is approved."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.service.service_factories import error_of, text_spec
from tests.support.auth import AUTH, TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

ALICE = Credential("alice", ["operate", "review"])  # writes the prompt, and reviews others'
BOB = Credential("bob", ["review"])
CAROL = Credential("carol", ["operate"])
REVIEWS = "/v1/prompts/greeter/versions/2/reviews"
START = "/v1/prompts/greeter/rollouts"


@pytest.fixture
def client(registry: SqlRegistry, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = ServiceSettings(
        token=TOKEN,
        credentials_file=write_credentials(tmp_path, [ALICE, BOB, CAROL]),
        required_approvals=1,
        controller=False,
    )
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            pushed = http.post("/v1/prompts", json=text_spec(template=template), headers=ALICE.auth)
            assert pushed.status_code == 201 and pushed.json()["version"]["author"] == "alice"
        yield http


def _review(client: httpx.Client, who: Credential, verdict: str, comment: str = "") -> httpx.Response:
    return client.post(REVIEWS, json={"verdict": verdict, "comment": comment}, headers=who.auth)


def _start(client: httpx.Client) -> httpx.Response:
    return client.post(START, json={"version": 2, "reason": "ship the brief greeting"}, headers=CAROL.auth)


def _unchanged(client: httpx.Client) -> tuple[Any, ...]:
    return client.get("/v1/routes/greeter", headers=AUTH).json(), client.get(
        "/v1/prompts/greeter/rollout/history", headers=AUTH
    ).json()


def test_a_rollout_waits_for_an_approval_by_someone_else(client: httpx.Client) -> None:
    before = _unchanged(client)
    refused = _start(client)
    assert refused.status_code == 409, refused.text
    assert error_of(refused) == (
        "ConflictError",
        "version 2 of greeter needs 1 approval by someone other than its author alice; it has 0. "
        "Review it first: prompt-canary prompt approve greeter 2",
    )
    own = _review(client, ALICE, "approve", "mine looks fine")
    assert own.status_code == 403
    assert error_of(own) == (
        "PermissionDeniedError",
        "principal 'alice' may not approve version 2 of greeter: it is its author; ask another reviewer",
    )
    assert client.get(REVIEWS, headers=AUTH).json() == []
    assert _review(client, BOB, "approve", "reads well").status_code == 201
    assert _review(client, BOB, "request_changes", "keep the warmth").status_code == 201
    blocked = _start(client)
    assert blocked.status_code == 409
    assert "it has 0; bob requested changes" in error_of(blocked)[1]
    assert _unchanged(client) == before
    status = client.get(REVIEWS + "/status", headers=CAROL.auth).json()
    assert status == {
        "prompt": "greeter",
        "version": 2,
        "author": "alice",
        "required": 1,
        "approvers": [],
        "changes_requested_by": ["bob"],
        "approved": False,
    }
    assert _review(client, BOB, "approve", "warm enough now").status_code == 201
    started = _start(client)
    assert started.status_code == 201, started.text
    record = client.get("/v1/prompts/greeter/rollout/history", headers=AUTH).json()[-1]
    assert (record["action"], record["principal"]) == ("start", "carol")
    assert record["reason"] == "ship the brief greeting [approved by bob]"


def test_reviews_are_listed_in_pages(client: httpx.Client) -> None:
    for n, verdict in enumerate(("approve", "request_changes", "approve")):
        answer = _review(client, BOB, verdict, f"round {n}")
        assert answer.status_code == 201
        assert answer.json()["principal"] == "bob" and answer.json()["verdict"] == verdict
    first = client.get(REVIEWS, params={"limit": 2}, headers=CAROL.auth)
    assert [r["comment"] for r in first.json()] == ["round 1", "round 2"]
    second = client.get(first.links["next"]["url"], headers=CAROL.auth)
    assert [r["comment"] for r in second.json()] == ["round 0"] and "next" not in second.links


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (REVIEWS, {"verdict": "merge"}, 422, "verdict"),
        (REVIEWS, {"verdict": "request_changes"}, 422, "a request for changes needs a comment"),
        (REVIEWS, {"verdict": "approve", "extra": 1}, 422, "extra: unknown field"),
        ("/v1/prompts/greeter/versions/9/reviews", {"verdict": "approve"}, 404, "unknown version 9"),
        ("/v1/prompts/greeter/versions/latest/reviews", {"verdict": "approve"}, 422, "not 'latest'"),
        ("/v1/prompts/nobody/versions/1/reviews", {"verdict": "approve"}, 404, "unknown prompt 'nobody'"),
    ],
)
def test_bad_reviews_are_refused_and_change_nothing(
    client: httpx.Client, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    answer = client.post(path, json=body, headers=BOB.auth)
    assert answer.status_code == status, answer.text
    assert message in error_of(answer)[1]
    assert client.get(REVIEWS, headers=AUTH).json() == []
