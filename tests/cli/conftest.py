"""Fixtures of the CLI tests: a registry file, and a control plane on loopback in front of another
store (on SQLite and on PostgreSQL, see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.registry import SqlRegistry
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service import server as service_server
from tests.cli.cli_helpers import SPEC_V1, SPEC_V2, Cli, write
from tests.support.auth import TOKEN
from tests.support.loopback import running_server


@pytest.fixture
def specs(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "v1.yaml", SPEC_V1), write(tmp_path / "v2.yaml", SPEC_V2)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly instead of blocking if a refused ``serve`` started a server after all."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(service_server, "run_server", refuse)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "registry.db")


@pytest.fixture
def local(db_path: str) -> Cli:
    """The CLI on a registry file (created with its folder on first use)."""
    return Cli(db_path)


@pytest.fixture
def direct(store_backend: str, db_path: str, new_store_target: Callable[[str], str]) -> Cli:
    """The CLI on a store directly: the registry file, or a PostgreSQL database by its URL."""
    return Cli(db_path if store_backend == "sqlite" else new_store_target("direct"))


@pytest.fixture
def served_store(new_store: Callable[[str], SqlRegistry]) -> SqlRegistry:
    """The store the control plane serves: another than the CLI's own, on the same backend."""
    return new_store("served")


@pytest.fixture
def server_url(served_store: SqlRegistry) -> Iterator[str]:
    with running_server(served_store, ServiceSettings(token=TOKEN)) as url:
        yield url


@pytest.fixture
def remote(server_url: str) -> Cli:
    return Cli(server_url, token=TOKEN)


@pytest.fixture(params=["path", "url"])
def any_cli(request: pytest.FixtureRequest, store_backend: str) -> Cli:
    """The same commands on a store directly and through a running control plane, each on SQLite
    and on PostgreSQL (``store_backend``, asked for here so that both variants are parametrised)."""
    cli: Cli = request.getfixturevalue("direct" if request.param == "path" else "remote")
    return cli
