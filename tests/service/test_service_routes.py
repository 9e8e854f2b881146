"""``GET /v1/routes``: the ETag contract routers rely on (the long-poll runs on a real server)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.service_factories import error_of, started, two_versions
from tests.support.auth import AUTH


def test_empty_registry_has_a_revision(client: TestClient) -> None:
    response = client.get("/v1/routes")
    assert response.status_code == 200
    body = response.json()
    assert body["routes"] == []
    assert response.headers["ETag"] == f'"{body["revision"]}"'


def test_etag_is_strong_quoted_and_stable_while_nothing_changes(client: TestClient) -> None:
    two_versions(client, AUTH)
    first = client.get("/v1/routes")
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "no-cache"
    for _ in range(3):
        again = client.get("/v1/routes")
        assert again.headers["ETag"] == etag
        assert again.json() == first.json()
    # Reads and identical pushes change nothing either.
    client.get("/v1/prompts/greeter")
    client.post("/v1/prompts", json={"name": "greeter", "template": "Greet {{ name }} warmly."}, headers=AUTH)
    assert client.get("/v1/routes").headers["ETag"] == etag


def test_every_change_changes_the_etag(client: TestClient) -> None:
    seen = {client.get("/v1/routes").headers["ETag"]}
    two_versions(client, AUTH)  # a new prompt brings a new route
    seen.add(client.get("/v1/routes").headers["ETag"])
    started(client, AUTH, name="other")
    seen.add(client.get("/v1/routes").headers["ETag"])
    for action in ("advance", "pause", "resume", "rollback"):
        client.post(f"/v1/prompts/other/rollout/{action}", json={"reason": action}, headers=AUTH)
        seen.add(client.get("/v1/routes").headers["ETag"])
    assert len(seen) == 7


def test_routes_document_uses_the_routing_state_names(client: TestClient) -> None:
    route = started(client, AUTH)
    body = client.get("/v1/routes").json()
    assert set(body) == {"revision", "routes"}
    assert body["routes"] == [route]
    assert client.get("/v1/routes/greeter").json() == route
    missing = client.get("/v1/routes/nope")
    assert missing.status_code == 404
    assert error_of(missing) == ("NotFoundError", "unknown prompt 'nope'")


@pytest.mark.parametrize("form", ['"{rev}"', 'W/"{rev}"', "{rev}", '"other", "{rev}"', "*"])
def test_if_none_match_current_is_304(client: TestClient, form: str) -> None:
    two_versions(client, AUTH)
    revision = client.get("/v1/routes").json()["revision"]
    response = client.get("/v1/routes", headers={"If-None-Match": form.format(rev=revision)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == f'"{revision}"'


def test_if_none_match_stale_is_200(client: TestClient) -> None:
    two_versions(client, AUTH)
    stale = client.get("/v1/routes").headers["ETag"]
    started(client, AUTH, name="other")
    response = client.get("/v1/routes", headers={"If-None-Match": stale}, params={"wait": 30})
    assert response.status_code == 200
    assert response.headers["ETag"] != stale
    assert [r["prompt"] for r in response.json()["routes"]] == ["greeter", "other"]


def test_wait_zero_is_an_immediate_304(client: TestClient) -> None:
    etag = client.get("/v1/routes").headers["ETag"]
    response = client.get("/v1/routes", headers={"If-None-Match": etag}, params={"wait": 0})
    assert response.status_code == 304


@pytest.mark.parametrize(
    ("wait", "message"),
    [
        ("-1", "query.wait: Input should be greater than or equal to 0"),
        ("61", "query.wait: Input should be less than or equal to 60"),
        ("soon", "query.wait: Input should be a valid number"),
    ],
)
def test_wait_is_validated(client: TestClient, wait: str, message: str) -> None:
    response = client.get("/v1/routes", params={"wait": wait})
    assert response.status_code == 422
    type_, got = error_of(response)
    assert type_ == "InvalidInputError"
    assert got.startswith(message)
