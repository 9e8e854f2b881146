"""Fixtures shared by every suite: registry stores, each test once on SQLite and once on PostgreSQL.

``registry`` is the store a test works on; ``loop_store`` is the loop's view of the same database;
``store_target`` is its path or URL, for tests that open it again (two replicas, a restart).
A test that needs a second, independent store on the same backend asks ``new_store`` for it.
``store_backend`` is the one parameter: the PostgreSQL runs are marked ``postgres``, and the server
is started once per session on loopback.

In CI (``CI=true``) a skipped test fails the run, whatever skipped it (a framework not installed, a
service missing): the test command installs everything the suites use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from otel_prompt_canary.loop import SqlLoopStore
from otel_prompt_canary.registry import SqlRegistry, open_store
from tests.support.services import in_ci, postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server started for this test session on loopback."""
    with postgres_server() as url:
        yield url


def fresh_postgres_database(server_url: str) -> str:
    """Create an empty database on the session's server and return its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request: pytest.FixtureRequest) -> str:
    """The backend of the test's stores. A test that must stay on one pins it explicitly, saying
    why: ``@pytest.mark.parametrize("store_backend", ["sqlite"])``."""
    backend: str = request.param
    return backend


@pytest.fixture
def new_store_target(
    store_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], str]:
    """Make the target (path or URL) of a new, empty store on the test's backend.

    ``name`` names the SQLite file; on PostgreSQL each call creates a database.
    """
    if store_backend == "sqlite":
        return lambda name: str(tmp_path / f"{name}.db")
    server: str = request.getfixturevalue("postgres_url")
    return lambda name: fresh_postgres_database(server)


@pytest.fixture
def new_store(new_store_target: Callable[[str], str]) -> Iterator[Callable[[str], SqlRegistry]]:
    """Open a new, empty store on this test's backend; closed at the end of the test."""
    opened: list[SqlRegistry] = []

    def new(name: str) -> SqlRegistry:
        store = open_store(new_store_target(name))
        opened.append(store)
        return store

    yield new
    for store in opened:
        store.close()


@pytest.fixture
def store_target(new_store_target: Callable[[str], str]) -> str:
    """The target of the test's store (the one ``registry`` opens), to open it again."""
    return new_store_target("registry")


@pytest.fixture
def registry(store_target: str) -> Iterator[SqlRegistry]:
    """The test's store, empty, on SQLite and on PostgreSQL."""
    with open_store(store_target) as store:
        yield store


@pytest.fixture
def loop_store(registry: SqlRegistry) -> SqlLoopStore:
    """The loop's tables (alerts, reports, statistics) of the test's store."""
    return SqlLoopStore(registry)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI, fail a run that skipped anything, naming what was skipped and why."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if not in_ci() or not skipped:
        return
    reporter.write_sep("=", f"CI must not skip: {len(skipped)} skipped", red=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reporter.write_line(f"{report.nodeid}: {reason}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
