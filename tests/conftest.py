"""Fixtures shared by every suite: registries on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.registry import SqlRegistry, open_store
from tests.support.services import postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server started for this test session on loopback."""
    with postgres_server() as url:
        yield url


def fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on the session's server and return its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def sqlite_registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    reg = open_store(tmp_path / "registry.db")
    yield reg
    reg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A registry target (path or URL) on each backend; the store suite runs against both."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.db")
    server: str = request.getfixturevalue("postgres_url")
    return fresh_postgres_database(server)


@pytest.fixture
def registry(store_target: str) -> Iterator[SqlRegistry]:
    reg = open_store(store_target)
    yield reg
    reg.close()
