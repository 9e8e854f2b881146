"""One control plane serving staging and production: ``?environment=`` on the routes, rollouts and
history endpoints, promotion from staging to production, and an unknown environment refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import PromptSpec, SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.support.auth import AUTH, TOKEN

STAGING = {"environment": "staging"}
UNKNOWN = "unknown environment 'qa': this control plane serves staging, production"


@pytest.fixture
def client(registry: SqlRegistry) -> Iterator[TestClient]:
    for text in ("Hello {{ name }}.", "Hi {{ name }}!", "Good day, {{ name }}."):
        registry.push(PromptSpec(name="greeter", template=text))
    settings = ServiceSettings(token=TOKEN, environments="staging,production", controller=False)
    with TestClient(create_app(registry, settings)) as test_client:
        yield test_client


def _ok(answer: Any) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


def _start(client: TestClient, body: dict[str, Any], environment: str) -> Any:
    return client.post(
        "/v1/prompts/greeter/rollouts", json=body, headers=AUTH, params={"environment": environment}
    )


def test_each_environment_has_its_own_flags_and_revision(client: TestClient) -> None:
    before = client.get("/v1/routes", params=STAGING)
    production = client.get("/v1/routes")
    _ok(_start(client, {"version": 2, "reason": "try"}, "staging"))

    staged = _ok(client.get("/v1/routes", params=STAGING))
    assert [(r["environment"], r["state"], r["canary_version"]) for r in staged["routes"]] == [
        ("staging", "ramping", 2)
    ]
    assert staged["revision"] != before.json()["revision"]
    # Production's answer, ETag and flag did not move.
    again = client.get("/v1/routes", headers={"If-None-Match": production.headers["etag"]})
    assert again.status_code == 304
    assert _ok(client.get("/v1/routes/greeter"))["state"] == "idle"
    assert _ok(client.get("/v1/routes/greeter", params=STAGING))["state"] == "ramping"
    assert (
        _ok(client.get("/v1/prompts/greeter/rollout", params=STAGING))["rollout"]["environment"] == "staging"
    )
    assert _ok(client.get("/v1/prompts/greeter/rollout"))["rollout"] is None


def test_a_version_is_promoted_from_staging_to_production(client: TestClient) -> None:
    _ok(_start(client, {"version": 3, "reason": "try"}, "staging"))
    _ok(
        client.post(
            "/v1/prompts/greeter/rollout/promote", json={"reason": "good"}, headers=AUTH, params=STAGING
        )
    )
    route = _ok(_start(client, {"from_environment": "staging", "reason": "ship"}, "production"))
    assert (route["environment"], route["canary_version"], route["state"]) == ("production", 3, "ramping")

    production = _ok(client.get("/v1/prompts/greeter/rollout/history"))
    assert [r["action"] for r in production] == ["start"]
    start = production[0]
    assert start["evidence"]["promotion"]["from_environment"] == "staging"
    assert start["evidence"]["promotion"]["version"] == 3
    assert "promoted from staging" in start["reason"]
    # The authenticated principal is recorded beside the actor (no actor header: "api").
    assert (start["principal"], start["actor"]) == ("admin", "api")
    staging = _ok(client.get("/v1/prompts/greeter/rollout/history", params=STAGING))
    assert [(r["action"], r["environment"]) for r in staging] == [
        ("start", "staging"),
        ("promote", "staging"),
    ]


@pytest.mark.parametrize(
    ("environment", "body", "status", "message"),
    [
        (
            "staging",
            {"from_environment": "production", "reason": "x"},
            422,
            "staging is promoted into from no",
        ),
        ("production", {"from_environment": "staging", "reason": "x"}, 422, "nothing to promote"),
        ("production", {"from_environment": "qa", "reason": "x"}, 404, UNKNOWN),
        ("qa", {"version": 2, "reason": "x"}, 404, UNKNOWN),
        ("Prod", {"version": 2, "reason": "x"}, 422, "invalid environment name 'Prod'"),
        ("production", {"reason": "x"}, 422, "give 'version', or 'from_environment'"),
    ],
)
def test_bad_environments_are_refused_with_nothing_changed(
    client: TestClient, environment: str, body: dict[str, Any], status: int, message: str
) -> None:
    routes = {
        env: client.get("/v1/routes", params={"environment": env}).json() for env in ("staging", "production")
    }
    answer = _start(client, body, environment)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]
    for env, before in routes.items():
        assert client.get("/v1/routes", params={"environment": env}).json() == before
        assert client.get("/v1/prompts/greeter/rollout/history", params={"environment": env}).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/routes"),
        ("GET", "/v1/routes/greeter"),
        ("GET", "/v1/prompts/greeter/rollout"),
        ("GET", "/v1/prompts/greeter/rollout/history"),
        ("GET", "/v1/prompts/greeter/rollout/verdict"),
        ("GET", "/v1/prompts"),
        ("GET", "/v1/policies"),
        ("POST", "/v1/prompts/greeter/rollout/pause"),
    ],
)
def test_every_endpoint_refuses_an_environment_it_does_not_serve(
    client: TestClient, method: str, path: str
) -> None:
    answer = client.request(method, path, params={"environment": "qa"}, json={"reason": "x"}, headers=AUTH)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["message"] == UNKNOWN


def test_a_long_poll_of_one_environment_wakes_on_its_change_only(client: TestClient) -> None:
    # Once changed in staging, the flag is staging's own: production's changes no longer move it.
    _ok(_start(client, {"version": 3, "reason": "try"}, "staging"))
    staging = client.get("/v1/routes", params=STAGING)
    production = client.get("/v1/routes")
    _ok(_start(client, {"version": 2, "reason": "try"}, "production"))
    held = client.get(
        "/v1/routes", params={**STAGING, "wait": 0.3}, headers={"If-None-Match": staging.headers["etag"]}
    )
    assert held.status_code == 304
    woken = client.get(
        "/v1/routes", params={"wait": 5}, headers={"If-None-Match": production.headers["etag"]}
    )
    assert woken.status_code == 200
    assert woken.json()["routes"][0]["canary_version"] == 2
