"""Every role against every kind of endpoint, over the real API (uvicorn on loopback).

A principal may do what its roles allow (``admin`` everything; ``operate`` and ``review`` read too;
``report`` reads what applications read); anything else is refused with 403 naming the principal
and the role it lacks, and changes nothing. An unknown or missing credential is 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from tests.service.loop_factories import alertmanager_payload, prometheus_alert, proportion, report_envelope
from tests.service.service_factories import error_of, text_spec
from tests.support.auth import (
    ALERTMANAGER_TOKEN,
    AUTH,
    READ_AUTH,
    READ_TOKEN,
    REPORT_AUTH,
    REPORT_TOKEN,
    TOKEN,
    Credential,
    write_credentials,
)
from tests.support.loopback import running_server

READER = Credential("ana-reader", ["read"])
REPORTER = Credential("app-reporter", ["report"])
ALERTER = Credential("am-alerter", ["alert"])
OPERATOR = Credential("olga-operator", ["operate"])
REVIEWER = Credential("rui-reviewer", ["review"])
ROOT = Credential("root", ["admin"])
FILE_PRINCIPALS = (READER, REPORTER, ALERTER, OPERATOR, REVIEWER, ROOT)

#: Every credential: its header, and the roles it holds (implied ones included).
CREDENTIALS: dict[str, tuple[dict[str, str], set[str]]] = {
    c.principal: (c.auth, set(c.roles)) for c in FILE_PRINCIPALS
} | {
    "admin": (AUTH, {"admin"}),
    "reader": (READ_AUTH, {"read"}),
    "reporter": (REPORT_AUTH, {"report"}),
    "alertmanager": ({"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}, {"alert"}),
}
_IMPLIED = {
    "operate": {"read"},
    "review": {"read"},
    "admin": {"read", "report", "alert", "operate", "review"},
}


def _holds(roles: set[str]) -> set[str]:
    return roles | {implied for role in roles for implied in _IMPLIED.get(role, set())}


@dataclass(frozen=True)
class Endpoint:
    """One kind of request: what it sends, and the roles that may send it (any of them)."""

    kind: str
    method: str
    path: str
    roles: frozenset[str]
    body: Any = None


def _endpoints(rollout_id: str) -> list[Endpoint]:
    read, app_read = frozenset({"read"}), frozenset({"read", "report"})
    report = report_envelope(rollout_id, stable={"prompt_canary.check.ok": {"0": proportion(4, 4)}})
    return [
        Endpoint("list prompts", "GET", "/v1/prompts", read),
        Endpoint("show a version's diff", "GET", "/v1/prompts/greeter/diff?from=1&to=2", read),
        Endpoint("rollout status", "GET", "/v1/prompts/greeter/rollout", read),
        Endpoint("audit trail", "GET", "/v1/prompts/greeter/rollout/history", read),
        Endpoint("alert log", "GET", "/v1/alerts", read),
        Endpoint("reviews of a version", "GET", "/v1/prompts/greeter/versions/2/reviews", read),
        Endpoint("routing flags", "GET", "/v1/routes", app_read),
        Endpoint("one routing flag", "GET", "/v1/routes/greeter", app_read),
        Endpoint("one version", "GET", "/v1/prompts/greeter/versions/1", app_read),
        Endpoint("active policies", "GET", "/v1/policies", app_read),
        Endpoint(
            "push a version",
            "POST",
            "/v1/prompts",
            frozenset({"operate"}),
            text_spec(template="Hi {{ name }}!"),
        ),
        Endpoint(
            "start a rollout",
            "POST",
            "/v1/prompts/greeter/rollouts",
            frozenset({"operate"}),
            {"version": 2, "reason": "again"},
        ),
        Endpoint(
            "pause a rollout",
            "POST",
            "/v1/prompts/greeter/rollout/pause",
            frozenset({"operate"}),
            {"reason": "hold"},
        ),
        Endpoint("push a dataset", "POST", "/v1/prompts/greeter/datasets", frozenset({"operate"}), {}),
        Endpoint(
            "approve a version",
            "POST",
            "/v1/prompts/greeter/versions/2/reviews",
            frozenset({"review"}),
            {"verdict": "approve", "comment": "fine"},
        ),
        Endpoint("post a report", "POST", "/v1/reports", frozenset({"report"}), report),
        Endpoint(
            "post an alert",
            "POST",
            "/v1/alerts/alertmanager",
            frozenset({"alert"}),
            alertmanager_payload(prometheus_alert(action="pause")),
        ),
    ]


@pytest.fixture
def control_plane(registry: SqlRegistry, tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    settings = ServiceSettings(
        token=TOKEN,
        read_token=READ_TOKEN,
        report_token=REPORT_TOKEN,
        alertmanager_token=ALERTMANAGER_TOKEN,
        credentials_file=write_credentials(tmp_path, FILE_PRINCIPALS),
        controller=False,
    )
    with running_server(registry, settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        # The operator pushes both versions: the legacy admin is not their author and may approve.
        for template in ("Greet {{ name }} warmly.", "Greet {{ name }} briefly."):
            pushed = client.post("/v1/prompts", json=text_spec(template=template), headers=OPERATOR.auth)
            assert pushed.status_code == 201, pushed.text
        started = client.post(
            "/v1/prompts/greeter/rollouts", json={"version": 2, "reason": "try it"}, headers=OPERATOR.auth
        )
        assert started.status_code == 201, started.text
        yield client, started.json()["rollout_id"]


def _state(client: httpx.Client) -> tuple[Any, ...]:
    """Everything a request of the matrix could change, read by the write token."""
    return tuple(
        client.get(path, headers=AUTH).json()
        for path in (
            "/v1/routes/greeter",
            "/v1/prompts/greeter/versions",
            "/v1/prompts/greeter/rollout/history",
            "/v1/prompts/greeter/versions/2/reviews",
            "/v1/prompts/greeter/datasets",
            "/v1/alerts",
        )
    )


def _send(client: httpx.Client, endpoint: Endpoint, headers: dict[str, str]) -> httpx.Response:
    if endpoint.method == "GET":
        return client.get(endpoint.path, headers=headers)
    return client.post(endpoint.path, json=endpoint.body, headers=headers)


def test_every_role_against_every_kind_of_endpoint(control_plane: tuple[httpx.Client, str]) -> None:
    client, rollout_id = control_plane
    endpoints = _endpoints(rollout_id)
    wrong: list[str] = []
    refused = allowed = 0
    for principal, (headers, roles) in CREDENTIALS.items():
        held = _holds(roles)
        for endpoint in endpoints:
            may = bool(held & endpoint.roles)
            before = None if may else _state(client)
            answer = _send(client, endpoint, headers)
            what = f"{principal} -> {endpoint.kind}: {answer.status_code} {answer.text[:200]}"
            if may:
                allowed += 1
                if answer.status_code in (401, 403):
                    wrong.append("refused, should pass: " + what)
                continue
            refused += 1
            if answer.status_code != 403:
                wrong.append("should be 403: " + what)
                continue
            type_, message = error_of(answer)
            needed = " or ".join(repr(r) for r in sorted(endpoint.roles))  # 'read' or 'report'
            if type_ != "PermissionDeniedError" or f"principal {principal!r} may not" not in message:
                wrong.append("unclear refusal: " + what)
            elif f"that needs the role {needed} " not in message:
                wrong.append("role not named: " + what)
            if _state(client) != before:
                wrong.append("a refused request changed something: " + what)
    assert wrong == []
    assert allowed > 40 and refused > 60  # the matrix holds both sides


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer " + "x" * 30}, "invalid bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "unsupported authorization scheme 'Basic'"),
    ],
)
def test_without_a_known_credential_every_endpoint_is_401(
    control_plane: tuple[httpx.Client, str], headers: dict[str, str], message: str
) -> None:
    client, rollout_id = control_plane
    before = _state(client)
    for endpoint in _endpoints(rollout_id):
        answer = _send(client, endpoint, headers)
        assert answer.status_code == 401, (endpoint.kind, answer.text)
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert error_of(answer)[0] == "AuthenticationError"
        if not endpoint.path.startswith(("/v1/reports", "/v1/alerts/")):  # receivers say their own
            assert message in error_of(answer)[1], (endpoint.kind, answer.text)
    assert _state(client) == before
    assert client.get("/healthz").status_code == 200  # health stays open
