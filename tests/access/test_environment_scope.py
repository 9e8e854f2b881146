"""Credentials limited to some environments: their environment-bound roles (routing flags and
rollouts) hold there only; prompts, versions and reviews belong to no environment.

Over the real API (uvicorn on loopback), with ``?environment=``; and the guard's decision alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.errors import AuthenticationError, PermissionDeniedError
from otel_prompt_canary.feedback import FeedbackKeys
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.access import Access, access_of, check_access, environment_bound
from otel_prompt_canary.service.app import create_app
from tests.service.loop_factories import report_envelope
from tests.service.service_factories import error_of, text_spec
from tests.support.auth import AUTH, TOKEN, Credential, write_credentials
from tests.support.loopback import running_server

CI = Credential("ci-staging", ["operate"], environments=["staging"])
WATCHER = Credential("staging-watcher", ["read"], environments=["staging"])
APP = Credential("staging-app", ["report"], environments=["staging"])


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        token=TOKEN,
        environments="staging,production",
        credentials_file=write_credentials(tmp_path, [CI, WATCHER, APP]),
        controller=False,
    )


@pytest.fixture
def client(registry: SqlRegistry, settings: ServiceSettings) -> Iterator[httpx.Client]:
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            assert (
                http.post("/v1/prompts", json=text_spec(template=template), headers=AUTH).status_code == 201
            )
        yield http


def _state(client: httpx.Client) -> tuple[Any, ...]:
    return tuple(
        client.get(f"/v1/prompts/greeter/rollout/history?environment={env}", headers=AUTH).json()
        for env in ("staging", "production")
    ) + tuple(
        client.get(f"/v1/routes/greeter?environment={env}", headers=AUTH).json()
        for env in ("staging", "production")
    )


def test_an_operator_of_staging_moves_staging_only(client: httpx.Client) -> None:
    start = {"version": 2, "reason": "try it in staging"}
    for query in ("", "?environment=production"):
        before = _state(client)
        refused = client.post(f"/v1/prompts/greeter/rollouts{query}", json=start, headers=CI.auth)
        assert refused.status_code == 403, refused.text
        assert error_of(refused) == (
            "PermissionDeniedError",
            "principal 'ci-staging' may not POST /v1/prompts/greeter/rollouts in environment "
            "'production': that needs the role 'operate' (it has operate in staging)",
        )
        assert _state(client) == before
    started = client.post("/v1/prompts/greeter/rollouts?environment=staging", json=start, headers=CI.auth)
    assert started.status_code == 201, started.text
    assert started.json()["environment"] == "staging"
    paused = client.post(
        "/v1/prompts/greeter/rollout/pause?environment=staging", json={"reason": "look"}, headers=CI.auth
    )
    assert paused.status_code == 200, paused.text
    record = client.get("/v1/prompts/greeter/rollout/history?environment=staging", headers=AUTH).json()[-1]
    assert (record["action"], record["environment"], record["principal"]) == (
        "pause",
        "staging",
        "ci-staging",
    )
    production = client.get("/v1/routes/greeter", headers=AUTH).json()
    assert (production["state"], production["revision"]) == ("idle", 1)
    # Versions belong to no environment: the staging operator pushes them.
    pushed = client.post("/v1/prompts", json=text_spec(template="Hi {{ name }}."), headers=CI.auth)
    assert pushed.status_code == 201 and pushed.json()["version"]["author"] == "ci-staging"


@pytest.mark.parametrize(
    "path",
    ["/v1/routes", "/v1/routes/greeter", "/v1/prompts", "/v1/prompts/greeter", "/v1/prompts/greeter/rollout"],
)
def test_a_reader_of_staging_reads_staging_flags_only(client: httpx.Client, path: str) -> None:
    assert client.get(f"{path}?environment=staging", headers=WATCHER.auth).status_code == 200
    for query in ("", "?environment=production"):
        refused = client.get(path + query, headers=WATCHER.auth)
        assert refused.status_code == 403, refused.text
        assert "in environment 'production': that needs the role 'read'" in error_of(refused)[1]


def test_what_belongs_to_no_environment_is_read_anywhere(client: httpx.Client) -> None:
    for path in ("/v1/prompts/greeter/versions", "/v1/prompts/greeter/diff?from=1&to=2", "/v1/alerts"):
        assert client.get(path, headers=WATCHER.auth).status_code == 200, path
    # An application limited to staging reads its routing flags and versions there.
    assert client.get("/v1/routes?environment=staging", headers=APP.auth).status_code == 200
    assert client.get("/v1/prompts/greeter/versions/1", headers=APP.auth).status_code == 200
    assert client.get("/v1/routes", headers=APP.auth).status_code == 403


def test_an_application_of_staging_reports_for_staging_rollouts_only(client: httpx.Client) -> None:
    start = {"version": 2, "reason": "canary"}
    rollouts = {
        env: client.post(f"/v1/prompts/greeter/rollouts?environment={env}", json=start, headers=AUTH).json()[
            "rollout_id"
        ]
        for env in ("staging", "production")
    }
    stats = {"prompt_canary.check.json_valid": {"60": {"kind": "proportion", "n": 10, "successes": 9}}}

    def report(rollout_id: str, **named: str) -> httpx.Response:
        envelope = report_envelope(rollout_id, canary=stats, origin="application") | named
        return client.post("/v1/reports", json=envelope, headers=APP.auth)

    # The rollout's environment counts, whatever the report names.
    for refused in (report(rollouts["production"]), report(rollouts["production"], environment="staging")):
        assert refused.status_code == 403, refused.text
        assert error_of(refused) == (
            "PermissionDeniedError",
            "principal 'staging-app' may not report statistics in environment 'production': that needs "
            "the role 'report' (it has report in staging)",
        )

    def origin(environment: str) -> str | None:
        """The origin whose reports the rollout counts: None until one is counted."""
        verdict = client.get(f"/v1/prompts/greeter/rollout/verdict?environment={environment}", headers=AUTH)
        owner = verdict.json()["report_origin"]
        return None if owner is None else str(owner["origin"])

    assert origin("production") is None  # nothing counted
    counted = report(rollouts["staging"], environment="staging")
    assert (counted.status_code, counted.json()["outcome"]) == (200, "merged"), counted.text
    assert origin("staging") == "application"


def test_an_application_of_staging_gives_feedback_on_staging_calls_only(client: httpx.Client) -> None:
    """Its keys are minted under its own token, which the control plane knows only by its SHA-256."""
    start = {"version": 2, "reason": "canary"}
    rollouts = {
        env: client.post(f"/v1/prompts/greeter/rollouts?environment={env}", json=start, headers=AUTH).json()[
            "rollout_id"
        ]
        for env in ("staging", "production")
    }
    keys = FeedbackKeys([APP.token])  # what the application's router mints with

    def feedback(environment: str) -> httpx.Response:
        key = keys.mint("greeter", 2, "canary", rollouts[environment])
        return client.post("/v1/feedback", json={"key": key, "score": 0.5}, headers=APP.auth)

    refused = feedback("production")
    assert refused.status_code == 403, refused.text
    assert error_of(refused)[1] == (
        "principal 'staging-app' may not post feedback in environment 'production': that needs the "
        "role 'report' (it has report in staging)"
    )
    counted = feedback("staging")
    assert (counted.status_code, counted.json()["outcome"]) == (200, "merged"), counted.text


def test_an_unknown_environment_is_refused_to_whoever_may_not_use_it(client: httpx.Client) -> None:
    refused = client.get("/v1/routes?environment=qa", headers=WATCHER.auth)
    assert refused.status_code == 403 and "in environment 'qa'" in error_of(refused)[1]
    unknown = client.get("/v1/routes?environment=qa", headers=AUTH)
    assert (
        unknown.status_code == 404 and "this control plane serves staging, production" in error_of(unknown)[1]
    )


def test_the_table_binds_exactly_the_endpoints_that_take_an_environment(
    registry: SqlRegistry, settings: ServiceSettings
) -> None:
    """A new endpoint with ``?environment=`` must be environment-bound in the access table."""
    document = create_app(registry, settings).openapi()
    bound, unbound = [], []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            takes = any(
                p["in"] == "query" and p["name"] == "environment" for p in operation.get("parameters", [])
            )
            concrete = (
                path.replace("{name}", "greeter").replace("{version}", "2").replace("{action}", "pause")
            )
            concrete = concrete.replace("{id}", "1").replace("{dataset}", "d").replace("{run_id}", "r")
            (bound if takes else unbound).append((method.upper(), concrete))
    assert len(bound) >= 8
    assert [b for b in bound if not environment_bound(*b)] == []
    assert [u for u in unbound if environment_bound(*u)] == []


def test_the_guard_decides_the_environment_from_the_query(settings: ServiceSettings) -> None:
    headers = {"authorization": f"Bearer {CI.token}"}
    path = "/v1/prompts/greeter/rollout/advance"
    granted = check_access("POST", path, headers, settings, "environment=staging")
    assert (granted.access, granted.environment, granted.principal and granted.principal.name) == (
        Access.WRITE,
        "staging",
        "ci-staging",
    )
    with pytest.raises(PermissionDeniedError, match=f"in environment '{DEFAULT_ENVIRONMENT}'"):
        check_access("POST", path, headers, settings, "")
    with pytest.raises(PermissionDeniedError, match="in environment 'production'"):
        # Starlette reads the last of repeated parameters; so does the guard.
        check_access("POST", path, headers, settings, "environment=staging&environment=production")
    with pytest.raises(AuthenticationError, match="missing credentials"):
        check_access("POST", path, {}, settings, "environment=staging")
    granted = check_access("POST", "/v1/prompts", headers, settings, "environment=production")
    assert granted.environment is None  # a push belongs to no environment
    assert access_of("GET", "/console/prompts") is Access.CONSOLE
    session = {"cookie": "prompt_canary_session=s"}  # the console checks it; the guard needs it there
    assert check_access("POST", "/console/sign-in", session, settings).principal is None
    with pytest.raises(PermissionDeniedError, match="without the console's session cookie"):
        check_access("POST", "/console/sign-in", {}, settings)
