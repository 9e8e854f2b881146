"""``/v1/prompts``: push, read, diff, and precise 4xx answers that change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.errors import RegistryUnavailableError
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.service.service_factories import chat_spec, error_of, text_spec, two_versions
from tests.support.auth import AUTH


def test_push_creates_then_finds_identical_content(client: TestClient) -> None:
    first = client.post("/v1/prompts", json=text_spec(), headers=AUTH)
    assert first.status_code == 201
    body = first.json()
    assert body["created"] is True
    assert body["version"]["name"] == "greeter"
    assert body["version"]["version"] == 1
    assert body["version"]["variables"] == ["name"]
    assert body["version"]["content_hash"].startswith("sha256:")

    again = client.post("/v1/prompts", json=text_spec(commit_message="same content"), headers=AUTH)
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["version"]["version"] == 1


def test_push_records_the_principal_as_author(client: TestClient, registry: SqlRegistry) -> None:
    # The author is who pushed, as the credential says, not a name the request states: a reviewer
    # who may not approve their own version cannot approve it under another name.
    headers = AUTH | {"X-Prompt-Canary-Actor": "ana"}
    response = client.post("/v1/prompts", json=chat_spec(), headers=headers)
    assert response.status_code == 201
    assert response.json()["version"]["author"] == "admin"
    named = client.post("/v1/prompts", json=chat_spec(system="v2", author="bo"), headers=headers)
    assert named.json()["version"]["author"] == "admin"
    # With open writes (local development) no credential says who: the request does.
    with TestClient(create_app(registry, ServiceSettings(insecure_dev=True))) as open_client:
        stated = open_client.post("/v1/prompts", json=chat_spec(system="v3"), headers=headers)
        assert stated.json()["version"]["author"] == "ana"
        own = open_client.post("/v1/prompts", json=chat_spec(system="v4", author="bo"), headers=headers)
        assert own.json()["version"]["author"] == "bo"


def test_reads(client: TestClient) -> None:
    two_versions(client, AUTH)
    client.post("/v1/prompts", json=chat_spec(), headers=AUTH)

    listed = client.get("/v1/prompts").json()
    assert [p["name"] for p in listed] == ["greeter", "support"]
    assert listed[0]["latest_version"] == 2
    assert listed[0]["versions"] == 2
    assert listed[0]["route"]["state"] == "idle"

    detail = client.get("/v1/prompts/greeter").json()
    assert detail["name"] == "greeter"
    assert detail["latest_version"] == 2
    assert detail["versions"] == 2
    assert detail["latest"]["template"] == "Greet {{ name }} briefly."
    assert detail["route"]["stable_version"] == 1

    versions = client.get("/v1/prompts/greeter/versions").json()
    assert [v["version"] for v in versions] == [1, 2]

    assert client.get("/v1/prompts/greeter/versions/1").json()["template"] == "Greet {{ name }} warmly."
    assert client.get("/v1/prompts/greeter/versions/latest").json()["version"] == 2


def test_diff(client: TestClient) -> None:
    two_versions(client, AUTH)
    response = client.get("/v1/prompts/greeter/diff", params={"from": 1, "to": 2})
    assert response.status_code == 200
    diff = response.json()
    assert diff["from_version"] == 1
    assert diff["to_version"] == 2
    assert diff["blast_radius"] == "system"
    assert diff["summary"].startswith("greeter@1 -> greeter@2: system prompt changed")
    assert "-Greet {{ name }} warmly." in diff["template_diff"]


@pytest.mark.parametrize(
    ("path", "status", "type_", "message"),
    [
        ("/v1/prompts/nope", 404, "NotFoundError", "unknown prompt 'nope'"),
        ("/v1/prompts/nope/versions", 404, "NotFoundError", "unknown prompt 'nope'"),
        ("/v1/prompts/greeter/versions/9", 404, "NotFoundError", "has no version 9"),
        ("/v1/prompts/greeter/versions/0", 422, "InvalidInputError", "invalid version '0'"),
        ("/v1/prompts/greeter/versions/two", 422, "InvalidInputError", "invalid version 'two'"),
        ("/v1/prompts/bad%20name", 422, "InvalidInputError", "invalid prompt name 'bad name'"),
        ("/v1/prompts/greeter/diff?from=1&to=7", 404, "NotFoundError", "has no version 7"),
        ("/v1/prompts/greeter/diff?from=1", 422, "InvalidInputError", "query.to: Field required"),
        ("/v1/prompts/greeter/diff?from=x&to=2", 422, "InvalidInputError", "query.from"),
        ("/v1/nothing", 404, "NotFoundError", "no such endpoint: GET /v1/nothing"),
    ],
)
def test_read_errors(client: TestClient, path: str, status: int, type_: str, message: str) -> None:
    two_versions(client, AUTH)
    response = client.get(path)
    assert response.status_code == status
    got_type, got_message = error_of(response)
    assert got_type == type_
    assert message in got_message


def test_method_not_allowed(client: TestClient) -> None:
    response = client.delete("/v1/prompts")
    assert response.status_code == 405
    assert error_of(response) == ("MethodNotAllowedError", "method DELETE is not allowed on /v1/prompts")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"template": "hi"}, "body.name: Field required"),
        ({"name": "bad name", "template": "hi"}, "body.name: invalid prompt name 'bad name'"),
        ({"name": "x", "template": "hi", "colour": "red"}, "body.colour: unknown field"),
        (
            text_spec() | {"messages": [{"role": "user", "content": "hi"}]},
            "give exactly one of 'template' (text) or 'messages' (chat)",
        ),
        ({"name": "x"}, "give exactly one of 'template' (text) or 'messages' (chat)"),
        ({"name": "x", "template": "  "}, "'template' must not be empty"),
        ({"name": "x", "messages": [{"role": "boss", "content": "hi"}]}, "body.messages.0.role"),
        ({"name": "x", "template": "hi", "config": "hot"}, "body.config"),
        (
            {"name": "x", "template": "hi", "output": {"format": "json", "schema": {"type": "objekt"}}},
            "body.output.schema: invalid schema at type: 'objekt' is not valid under any of the given",
        ),
        (
            {"name": "x", "template": "hi", "output": {"format": "yaml"}},
            "body.output.format: Input should be 'json'",
        ),
        ([1, 2], "body"),
    ],
)
def test_push_validation_errors(
    client: TestClient, registry: SqlRegistry, body: object, message: str
) -> None:
    response = client.post("/v1/prompts", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    type_, got = error_of(response)
    assert type_ == "InvalidInputError"
    assert message in got
    assert registry.list_prompts() == []


def test_malformed_json_and_wrong_content_type(client: TestClient, registry: SqlRegistry) -> None:
    headers = AUTH | {"Content-Type": "application/json"}
    response = client.post("/v1/prompts", content=b'{"name": "x", "template": ', headers=headers)
    assert response.status_code == 422
    assert error_of(response) == (
        "InvalidInputError",
        "malformed JSON body at character 26: Expecting value",
    )

    response = client.post("/v1/prompts", content=b"", headers=headers)
    assert response.status_code == 422
    assert error_of(response)[1] == "the request needs a JSON body"

    form = AUTH | {"Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/v1/prompts", content=b"name=x&template=y", headers=form)
    assert response.status_code == 415
    type_, message = error_of(response)
    assert type_ == "InvalidInputError"
    assert "Content-Type: application/json" in message
    assert registry.list_prompts() == []


def test_template_over_the_limit_is_413(client: TestClient, registry: SqlRegistry) -> None:
    big = "x" * (256 * 1024 + 1)
    response = client.post("/v1/prompts", json=text_spec(template=big), headers=AUTH)
    assert response.status_code == 413
    type_, message = error_of(response)
    assert type_ == "TooLargeError"
    assert "262145 bytes, over the limit of 262144 bytes" in message

    chat = chat_spec(system="y" * (200 * 1024)) | {
        "messages": [
            {"role": "system", "content": "y" * (200 * 1024)},
            {"role": "user", "content": "z" * (100 * 1024)},
        ]
    }
    assert client.post("/v1/prompts", json=chat, headers=AUTH).status_code == 413
    assert registry.list_prompts() == []


def test_body_over_the_limit_is_413_before_parsing(client: TestClient, registry: SqlRegistry) -> None:
    # Not even JSON: the size is checked before anything parses the body.
    junk = b"{" * (1024 * 1024 + 1)
    response = client.post("/v1/prompts", content=junk, headers=AUTH | {"Content-Type": "application/json"})
    assert response.status_code == 413
    type_, message = error_of(response)
    assert type_ == "TooLargeError"
    assert "the limit is 1048576 bytes" in message


def test_chunked_body_over_the_limit_is_413(client: TestClient, registry: SqlRegistry) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    response = client.post(
        "/v1/prompts", content=chunks(), headers=AUTH | {"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)[0] == "TooLargeError"
    assert "more than 1048576 bytes" in error_of(response)[1]
    assert registry.list_prompts() == []


def test_healthz_and_openapi(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/v1/prompts",
        "/v1/prompts/{name}",
        "/v1/prompts/{name}/versions",
        "/v1/prompts/{name}/versions/{version}",
        "/v1/prompts/{name}/diff",
        "/v1/prompts/{name}/rollouts",
        "/v1/prompts/{name}/rollout",
        "/v1/prompts/{name}/rollout/{action}",
        "/v1/prompts/{name}/rollout/history",
        "/v1/routes",
        "/v1/routes/{name}",
        "/healthz",
    } <= paths
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_healthz_reports_a_broken_store(settings: ServiceSettings) -> None:
    class Broken:
        def list_routes(self) -> list[object]:
            raise RegistryUnavailableError("database is down")

    with TestClient(create_app(Broken(), settings)) as broken:  # type: ignore[arg-type]
        response = broken.get("/healthz")
    assert response.status_code == 503
    assert error_of(response) == (
        "RegistryUnavailableError",
        "the store is unreachable: database is down",
    )
