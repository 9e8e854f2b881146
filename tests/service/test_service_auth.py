"""Writes need the bearer token (401 and no state change otherwise); reads are open."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.service.service_factories import error_of, started, text_spec
from tests.support.auth import AUTH

WRITES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/prompts", text_spec(template="Greet {{ name }} in verse.")),
    ("/v1/prompts/greeter/rollouts", {"version": 2, "reason": "again"}),
    ("/v1/prompts/greeter/rollout/advance", {"reason": "fine"}),
    ("/v1/prompts/greeter/rollout/pause", {"reason": "hold"}),
    ("/v1/prompts/greeter/rollout/resume", {"reason": "go"}),
    ("/v1/prompts/greeter/rollout/promote", {"reason": "good"}),
    ("/v1/prompts/greeter/rollout/rollback", {"reason": "bad"}),
]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials: writes need the header 'Authorization: Bearer <token>'"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unsupported authorization scheme 'Basic'"),
        ({"Authorization": "Bearer"}, "empty bearer token"),
        ({"Authorization": "Bearer not-the-token-at-all"}, "invalid bearer token"),
    ],
)
def test_every_write_needs_the_token(
    client: TestClient, registry: SqlRegistry, headers: dict[str, str], message: str
) -> None:
    started(client, AUTH)
    routes_before = registry.list_routes()
    versions_before = registry.list_versions("greeter")
    history_before = registry.history("greeter")
    for path, body in WRITES:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        type_, got = error_of(response)
        assert type_ == "AuthenticationError"
        assert message in got
    assert registry.list_routes() == routes_before
    assert registry.list_versions("greeter") == versions_before
    assert registry.history("greeter") == history_before


def test_token_scheme_is_case_insensitive(client: TestClient) -> None:
    token = AUTH["Authorization"].split(" ", 1)[1]
    response = client.post("/v1/prompts", json=text_spec(), headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 201


def test_reads_are_open(client: TestClient) -> None:
    started(client, AUTH)
    for path in (
        "/v1/prompts",
        "/v1/prompts/greeter",
        "/v1/prompts/greeter/versions",
        "/v1/prompts/greeter/versions/latest",
        "/v1/prompts/greeter/diff?from=1&to=2",
        "/v1/prompts/greeter/rollout",
        "/v1/prompts/greeter/rollout/history",
        "/v1/routes",
        "/v1/routes/greeter",
        "/healthz",
        "/openapi.json",
    ):
        assert client.get(path).status_code == 200, path


def test_insecure_dev_without_token_opens_writes(registry: SqlRegistry) -> None:
    app = create_app(registry, ServiceSettings(insecure_dev=True))
    with TestClient(app) as open_client:
        assert open_client.post("/v1/prompts", json=text_spec()).status_code == 201


def test_insecure_dev_with_a_token_still_checks_it(registry: SqlRegistry) -> None:
    app = create_app(registry, ServiceSettings(insecure_dev=True, token="t" * 20))
    with TestClient(app) as dev_client:
        assert dev_client.post("/v1/prompts", json=text_spec()).status_code == 401


def test_actor_header(client: TestClient, registry: SqlRegistry) -> None:
    started(client, AUTH)
    response = client.post(
        "/v1/prompts/greeter/rollout/pause",
        json={"reason": "hold"},
        headers=AUTH | {"X-Prompt-Canary-Actor": "alertmanager"},
    )
    assert response.status_code == 200
    assert [(r.action, r.actor) for r in registry.history("greeter")] == [
        ("start", "api"),
        ("pause", "alertmanager"),
    ]

    bad = client.post(
        "/v1/prompts/greeter/rollout/resume",
        json={"reason": "go"},
        headers=AUTH | {"X-Prompt-Canary-Actor": "x" * 200},
    )
    assert bad.status_code == 422
    assert "invalid X-Prompt-Canary-Actor header" in error_of(bad)[1]
    assert registry.get_route("greeter").state == "paused"
