"""Every audit record, version and review names the principal of the credential that asked; every
refusal is logged (who, what, why) and changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.app import create_app
from tests.service.service_factories import error_of, text_spec
from tests.support.auth import AUTH, REPORT_AUTH, REPORT_TOKEN, TOKEN, Credential, write_credentials

OLGA = Credential("olga", ["operate"])
RUI = Credential("rui", ["review"])
ANA = Credential("ana", ["read"])


@pytest.fixture
def client(registry: SqlRegistry, tmp_path: Path) -> Iterator[TestClient]:
    settings = ServiceSettings(
        token=TOKEN, credentials_file=write_credentials(tmp_path, [OLGA, RUI, ANA]), controller=False
    )
    with TestClient(create_app(registry, settings)) as test_client:
        yield test_client


def test_audit_records_versions_and_reviews_name_the_principal(client: TestClient) -> None:
    for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
        pushed = client.post("/v1/prompts", json=text_spec(template=template), headers=OLGA.auth)
        assert pushed.status_code == 201 and pushed.json()["version"]["author"] == "olga"
    start = client.post("/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "r"}, headers=OLGA.auth)
    assert start.status_code == 201, start.text
    assert (
        client.post("/v1/prompts/greeter/rollout/pause", json={"reason": "p"}, headers=AUTH).status_code
        == 200
    )
    review = client.post(
        "/v1/prompts/greeter/versions/2/reviews",
        json={"verdict": "approve", "comment": "ok"},
        headers=RUI.auth,
    )
    assert review.status_code == 201 and review.json()["principal"] == "rui"
    history = client.get("/v1/prompts/greeter/rollout/history", headers=ANA.auth).json()
    assert [(r["action"], r["principal"]) for r in history] == [("start", "olga"), ("pause", "admin")]


def test_refusals_are_logged_and_change_nothing(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    assert client.post("/v1/prompts", json=text_spec(), headers=OLGA.auth).status_code == 201
    before = (
        client.get("/v1/prompts/greeter/versions", headers=AUTH).json(),
        client.get("/v1/routes", headers=AUTH).json(),
    )
    caplog.set_level(logging.WARNING, logger="otel_prompt_canary.service.access")
    forbidden = client.post("/v1/prompts", json=text_spec(template="Other {{ name }}"), headers=ANA.auth)
    unknown = client.post(
        "/v1/prompts/greeter/rollout/pause",
        json={"reason": "x"},
        headers={"Authorization": "Bearer " + "n" * 30},
    )
    own = client.post(
        "/v1/prompts/greeter/versions/1/reviews", json={"verdict": "approve"}, headers=OLGA.auth
    )
    assert (forbidden.status_code, unknown.status_code, own.status_code) == (403, 401, 403)
    refusals = [r for r in caplog.records if r.name == "otel_prompt_canary.service.access"]
    assert all(r.levelno == logging.WARNING for r in refusals)
    lines = [r.getMessage() for r in refusals]
    assert lines[0].startswith("refused POST /v1/prompts for principal ana: principal 'ana' may not")
    assert lines[1] == "refused POST /v1/prompts/greeter/rollout/pause for principal -: invalid bearer token"
    assert lines[2].startswith("refused POST /v1/prompts/greeter/versions/1/reviews for principal olga")
    assert "that needs the role 'review' (it has operate)" in error_of(own)[1]
    after = (
        client.get("/v1/prompts/greeter/versions", headers=AUTH).json(),
        client.get("/v1/routes", headers=AUTH).json(),
    )
    assert after == before
    assert client.get("/v1/prompts/greeter/versions/1/reviews", headers=AUTH).json() == []


def test_open_reads_stay_open_whatever_credential_comes_with_them(registry: SqlRegistry) -> None:
    """Without a read token or credentials file reads are open: a credential that may not read
    (the reporting credential, an unknown token) reads all the same."""
    settings = ServiceSettings(token=TOKEN, report_token=REPORT_TOKEN, controller=False)
    with TestClient(create_app(registry, settings)) as client:
        assert client.post("/v1/prompts", json=text_spec(), headers=AUTH).status_code == 201
        for headers in (REPORT_AUTH, {"Authorization": "Bearer " + "u" * 30}, {}):
            for path in ("/v1/prompts", "/v1/prompts/greeter/rollout/history", "/v1/routes"):
                assert client.get(path, headers=headers).status_code == 200, (path, headers)
        refused = client.post("/v1/prompts", json=text_spec(template="x {{ name }}"), headers=REPORT_AUTH)
        assert refused.status_code == 403  # writes are not open
