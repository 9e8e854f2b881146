"""Fixtures of the CLI tests: a registry file, and a control plane on loopback in front of another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import SPEC_V1, SPEC_V2, TOKEN, Cli, write

from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.testing import running_server


@pytest.fixture
def specs(tmp_path: Path) -> tuple[str, str]:
    return write(tmp_path / "v1.yaml", SPEC_V1), write(tmp_path / "v2.yaml", SPEC_V2)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "store" / "registry.db")


@pytest.fixture
def local(db_path: str) -> Cli:
    return Cli(db_path)


@pytest.fixture
def served_store(tmp_path: Path) -> Iterator[SqlRegistry]:
    store = open_store(tmp_path / "served.db")
    yield store
    store.close()


@pytest.fixture
def server_url(served_store: SqlRegistry) -> Iterator[str]:
    with running_server(served_store, ServiceSettings(token=TOKEN)) as url:
        yield url


@pytest.fixture
def remote(server_url: str) -> Cli:
    return Cli(server_url, token=TOKEN)


@pytest.fixture(params=["path", "url"])
def any_cli(request: pytest.FixtureRequest) -> Cli:
    """The same commands against a registry file and against a running control plane."""
    cli: Cli = request.getfixturevalue("local" if request.param == "path" else "remote")
    return cli
