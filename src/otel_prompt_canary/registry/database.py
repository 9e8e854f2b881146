"""The store's database: an SQLAlchemy engine on SQLite or PostgreSQL, and how transactions run on it.

Every write is one transaction run by :meth:`Database.write`: the attempt either commits whole or
changes nothing. An attempt that loses a race to a concurrent writer (a unique key taken meanwhile,
or a compare-and-set that found the row moved, signalled by raising :class:`Raced`) is run again from
the start, after a short randomised pause, up to :data:`WRITE_ATTEMPTS` times: a retry re-reads the
state, so a write that became illegal meanwhile is refused for the right reason.

SQLite runs in WAL mode and takes the write lock at ``BEGIN`` (``BEGIN IMMEDIATE``), so concurrent
writers queue instead of failing on lock upgrades; readers begin deferred and never wait for writers.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, CursorResult, Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from otel_prompt_canary.errors import ConflictError, RegistryUnavailableError
from otel_prompt_canary.registry import schema
from otel_prompt_canary.registry.base import store_url

__all__ = [
    "WRITE_ATTEMPTS",
    "Database",
    "Raced",
    "aware",
    "inserted_id",
    "newest_first",
    "open_database",
    "utc_now",
]

#: How many times a write that keeps losing races is attempted before it is refused (HTTP 409).
WRITE_ATTEMPTS = 100
#: The pause before a retry is drawn from [0, min(cap, first * 2**attempt)] seconds.
_FIRST_PAUSE = 0.001
_PAUSE_CAP = 0.05

_T = TypeVar("_T")


class Raced(Exception):
    """Raised inside a write when a compare-and-set found the row moved: the write is run again."""


def utc_now() -> datetime:
    """The current time, in UTC: everything stored is UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """``value`` with its UTC time zone (SQLite returns naive datetimes)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_Row = TypeVar("_Row", bound=tuple[Any, ...])


def newest_first(
    query: Select[_Row], key: ColumnElement[int], *, before: int | None = None, limit: int | None = None
) -> Select[_Row]:
    """``query`` ordered by ``key``, newest (largest) first: a page of a keyset pagination, only
    keys below ``before`` and at most ``limit`` rows when given. Callers reverse the rows they read
    to answer oldest first."""
    query = query.order_by(key.desc())
    if before is not None:
        query = query.where(key < before)
    if limit is not None:
        query = query.limit(limit)
    return query


def inserted_id(result: CursorResult[Any]) -> int:
    """The autoincrement key of the one row an INSERT added."""
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row with an autoincrement key
    return int(key[0])


class Database:
    """An engine and the rules its transactions follow; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (no write lock); store errors become ``RegistryUnavailableError``."""
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(prompt_canary_read_only=True)
        except OperationalError as exc:
            raise RegistryUnavailableError(f"registry store error: {exc.orig or exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction, without retries (:meth:`write` is what writers use)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise RegistryUnavailableError(f"registry store error: {exc.orig or exc}") from exc

    def write(self, attempt: Callable[[Connection], _T], *, contended: str) -> _T:
        """Run ``attempt`` in one transaction until it does not lose a race; its result.

        A race is an :class:`~sqlalchemy.exc.IntegrityError` (a key taken by a concurrent writer) or
        :class:`Raced`. After :data:`WRITE_ATTEMPTS` lost races, raises
        :class:`~otel_prompt_canary.errors.ConflictError` with the message ``contended``. Any other
        error ends the write at once, with nothing written.
        """
        jitter = random.Random()
        for number in range(WRITE_ATTEMPTS):
            try:
                with self.transaction() as conn:
                    return attempt(conn)
            except (Raced, IntegrityError):
                # Someone else committed meanwhile; a short random pause spreads the retries out.
                time.sleep(jitter.uniform(0, min(_PAUSE_CAP, _FIRST_PAUSE * 2**number)))
        raise ConflictError(contended)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: no deadlock-prone upgrade from a read lock
        # mid-transaction. Readers begin deferred, so they never wait for writers (WAL).
        if conn.get_execution_options().get("prompt_canary_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_database(target: str | os.PathLike[str]) -> Database:
    """Open the database at a path or URL, creating or upgrading its schema as needed."""
    url = store_url(target)
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        schema.migrate(engine)
    except ModuleNotFoundError as exc:
        raise RegistryUnavailableError(
            f"cannot open {url.split('://')[0]} registry: {exc}; install otel-prompt-canary[postgres]"
        ) from exc
    except SQLAlchemyError as exc:
        raise RegistryUnavailableError(f"cannot open registry {target!s}: {exc}") from exc
    return Database(engine)
