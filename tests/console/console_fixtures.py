"""Fixtures of the console's page and action tests: a control plane on 127.0.0.1 (uvicorn in a
thread, SQLite) serving staging and production, one approval required before a rollout, and people
of every role; and helpers that set up prompts and rollouts through the API.

Test modules import the fixtures they use (``from tests.console.console_fixtures import ...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_prompt_canary.registry.sql import SqlRegistry, open_store
from otel_prompt_canary.service.settings import ServiceSettings
from tests.console.console_client import ConsolePerson, people_file
from tests.support.auth import REPORT_TOKEN, TOKEN
from tests.support.loopback import running_server


@dataclass(frozen=True)
class Someone:
    """A principal of the served control plane and its token."""

    principal: str
    token: str
    roles: tuple[str, ...]
    environments: tuple[str, ...] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


ALICE = Someone("alice", "alice-token-0123456789abcdef", ("operate", "review"))  # the author
RITA = Someone("rita", "rita-token-0123456789abcdef", ("review",))
OMAR = Someone("omar", "omar-token-0123456789abcdef", ("operate",))
SAM = Someone("sam", "sam-token-0123456789abcdef", ("operate",), ("staging",))
RHEA = Someone("rhea", "rhea-token-0123456789abcdef", ("read",))
PEOPLE = (ALICE, RITA, OMAR, SAM, RHEA)
ADMIN_AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENVIRONMENTS = ("staging", "production")


@dataclass
class Console:
    """The served control plane: its URL, its registry and an API client with the admin token."""

    url: str
    registry: SqlRegistry
    api: httpx.Client
    clients: list[httpx.Client]

    def person(self) -> ConsolePerson:
        """A new visitor (a client of its own, with its own cookies)."""
        client = httpx.Client(timeout=30)
        self.clients.append(client)
        return ConsolePerson(client, self.url)

    def signed_in(self, who: Someone | None = None) -> ConsolePerson:
        """A visitor signed in as ``who`` (the admin token by default)."""
        person = self.person()
        page = person.sign_in(TOKEN if who is None else who.token)
        assert page.status == 200, page.text
        return person

    def push(self, name: str, template: str, *, by: Someone = ALICE, **extra: Any) -> int:
        """Push a version of ``name`` as ``by``; its number."""
        response = self.api.post(
            "/v1/prompts", json={"name": name, "template": template, **extra}, headers=by.auth
        )
        assert response.status_code in (200, 201), response.text
        number: int = response.json()["version"]["version"]
        return number

    def approve(self, name: str, version: int, *, by: Someone = RITA) -> None:
        response = self.api.post(
            f"/v1/prompts/{name}/versions/{version}/reviews",
            json={"verdict": "approve", "comment": "fine"},
            headers=by.auth,
        )
        assert response.status_code == 201, response.text

    def route(self, name: str, environment: str = "production") -> dict[str, Any]:
        response = self.api.get(f"/v1/routes/{name}", params={"environment": environment})
        assert response.status_code == 200, response.text
        route: dict[str, Any] = response.json()
        return route

    def history(self, name: str, environment: str = "production") -> list[dict[str, Any]]:
        response = self.api.get(f"/v1/prompts/{name}/rollout/history", params={"environment": environment})
        assert response.status_code == 200, response.text
        records: list[dict[str, Any]] = response.json()
        return records

    def start(
        self, name: str, version: int, environment: str = "production", ramp: str = "1,5,20,50,100"
    ) -> None:
        """Start a rollout of ``version`` through the API (approved by Rita first)."""
        self.approve(name, version)
        response = self.api.post(
            f"/v1/prompts/{name}/rollouts",
            params={"environment": environment},
            json={"version": version, "ramp": ramp, "reason": "try it"},
        )
        assert response.status_code == 201, response.text


def console_settings(folder: Path, **extra: Any) -> ServiceSettings:
    """The settings of the served console: the admin and reporting tokens, :data:`PEOPLE`, two
    environments, one approval required, no controller (the tests move rollouts themselves)."""
    credentials = people_file(
        folder,
        [
            {"principal": p.principal, "token": p.token, "roles": p.roles}
            | ({"environments": p.environments} if p.environments else {})
            for p in PEOPLE
        ],
    )
    options: dict[str, Any] = {
        "token": TOKEN,
        "report_token": REPORT_TOKEN,
        "credentials_file": credentials,
        "environments": ENVIRONMENTS,
        "required_approvals": 1,
        "controller": False,
        "drift": "off",
    }
    return ServiceSettings(**(options | extra))


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """The control plane of :func:`console_settings` on 127.0.0.1, with its console."""
    with (
        open_store(tmp_path / "console.db") as registry,
        running_server(registry, console_settings(tmp_path)) as url,
        httpx.Client(base_url=url, timeout=30, headers=ADMIN_AUTH) as api,
    ):
        served = Console(url=url, registry=registry, api=api, clients=[])
        try:
            yield served
        finally:
            for client in served.clients:
                client.close()
