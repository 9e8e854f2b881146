"""Read access: with a read token, reads need a credential; without one, they are open (local
development); ``--insecure-dev`` serves loopback only; every write endpoint has its credentials."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.access import Access, access_of
from otel_prompt_canary.service.app import create_app
from otel_prompt_canary.service.server import build_server, is_loopback
from tests.service.service_factories import error_of, started
from tests.support.auth import AUTH, REPORT_AUTH, REPORT_TOKEN, TOKEN

READ_TOKEN = "read-token-0123456789abcdef"
READ_AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}

#: What applications and the Collector read, and what only readers may.
APPLICATION_READS = ("/v1/routes", "/v1/routes/greeter", "/v1/policies", "/v1/prompts/greeter/versions/1")
OTHER_READS = (
    "/v1/prompts",
    "/v1/prompts/greeter",
    "/v1/prompts/greeter/versions",
    "/v1/prompts/greeter/rollout",
    "/v1/prompts/greeter/rollout/history",
    "/v1/alerts",
)


@pytest.fixture
def settings() -> ServiceSettings:
    return ServiceSettings(token=TOKEN, read_token=READ_TOKEN, report_token=REPORT_TOKEN)


@pytest.fixture
def closed(client: TestClient) -> TestClient:
    started(client, AUTH)
    return client


@pytest.mark.parametrize("path", APPLICATION_READS + OTHER_READS)
def test_reads_need_a_credential_when_a_read_token_is_set(closed: TestClient, path: str) -> None:
    refused = closed.get(path)
    assert refused.status_code == 401
    assert error_of(refused) == (
        "AuthenticationError",
        "missing credentials: reads need the header 'Authorization: Bearer <read token>'",
    )
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = closed.get(path, headers={"Authorization": "Bearer " + "x" * 30})
    assert wrong.status_code == 401 and error_of(wrong)[1] == "invalid bearer token"
    assert closed.get(path, headers=READ_AUTH).status_code == 200
    assert closed.get(path, headers=AUTH).status_code == 200  # the write token reads too


@pytest.mark.parametrize("path", APPLICATION_READS)
def test_the_reporting_credential_reads_what_applications_need(closed: TestClient, path: str) -> None:
    assert closed.get(path, headers=REPORT_AUTH).status_code == 200


@pytest.mark.parametrize("path", OTHER_READS)
def test_the_reporting_credential_reads_nothing_else(closed: TestClient, path: str) -> None:
    refused = closed.get(path, headers=REPORT_AUTH)
    assert refused.status_code == 403  # a known credential beyond its role: forbidden, not unknown
    type_, message = error_of(refused)
    assert type_ == "PermissionDeniedError"
    assert f"principal 'reporter' may not read {path}" in message
    assert "that needs the role 'read' (it has report)" in message


def test_health_and_the_api_description_stay_open(closed: TestClient) -> None:
    assert closed.get("/healthz").status_code == 200
    document = closed.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["components"]["securitySchemes"]


def test_the_read_token_does_not_write(closed: TestClient) -> None:
    refused = closed.post("/v1/prompts/greeter/rollout/pause", json={"reason": "no"}, headers=READ_AUTH)
    assert refused.status_code == 403
    assert "principal 'reader' may not" in error_of(refused)[1]
    assert closed.get("/v1/routes/greeter", headers=READ_AUTH).json()["state"] == "ramping"


def test_without_a_read_token_reads_are_open(registry: SqlRegistry) -> None:
    with TestClient(create_app(registry, ServiceSettings(token=TOKEN))) as client:
        started(client, AUTH)
        for path in APPLICATION_READS + OTHER_READS:
            assert client.get(path).status_code == 200, path


def test_a_weak_read_token_is_refused() -> None:
    with pytest.raises(ValueError, match="read_token is too short"):
        ServiceSettings(token=TOKEN, read_token="short")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.internal"])
def test_insecure_dev_refuses_any_host_but_loopback(registry: SqlRegistry, host: str) -> None:
    with pytest.raises(InvalidInputError, match="--insecure-dev listens on loopback only"):
        build_server(registry, ServiceSettings(insecure_dev=True), host=host, port=0)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


def test_every_write_endpoint_has_its_credentials(registry: SqlRegistry) -> None:
    """A new write endpoint must be added to the access table, or its body would be read unchecked."""
    app = create_app(registry, ServiceSettings(token=TOKEN))
    writes = [
        path
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method == "post"
    ]
    assert len(writes) >= 8
    for path in writes:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        assert access_of("POST", concrete) is not Access.UNKNOWN, path


def test_a_router_with_the_reporting_credential_follows_a_closed_control_plane(registry: SqlRegistry) -> None:
    from otel_prompt_canary.routing import PromptRouter
    from tests.support.loopback import running_server

    settings = ServiceSettings(token=TOKEN, read_token=READ_TOKEN, report_token=REPORT_TOKEN)
    with running_server(registry, settings) as url:
        with TestClient(create_app(registry, settings)) as client:
            started(client, AUTH)
        with PromptRouter(url, token=REPORT_TOKEN, initial_timeout=30) as router:
            assert router.select("greeter").version in (1, 2)
            assert router.status().last_error is None
        with PromptRouter(url, token=None, initial_timeout=2, fallbacks={"greeter": "hi"}) as anonymous:
            assert anonymous.select("greeter").version == 0  # refused: only the fallback
            assert "missing credentials" in str(anonymous.status().last_error)
