"""The console's session store (schema version 9), on SQLite and PostgreSQL: a session is found by
its id (never stored as such), ended for good, pruned once ended or expired; a store of version 8
opens into version 9."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, select, update

from otel_prompt_canary.registry import SqlRegistry, open_store
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.console_sessions import ConsoleSessions, StoredSession
from tests.loop.factories import as_written_by


def _session(session_id: str, **extra: object) -> StoredSession:
    return StoredSession.signed_in(
        session_id, "sam", ("operate", "read"), ("staging",), credential="f" * 32, lasts=3600, **extra
    )


def test_a_session_is_found_by_its_id_and_ended_for_good(registry: SqlRegistry) -> None:
    sessions = ConsoleSessions(registry.database)
    sessions.open(_session("id-one"))
    found = sessions.find("id-one")
    assert found is not None
    assert (found.principal, found.roles, found.environments) == ("sam", ("operate", "read"), ("staging",))
    assert found.credential == "f" * 32 and found.ended_at is None
    assert found.expires_at - found.issued_at == timedelta(seconds=3600)
    assert sessions.find("id-two") is None
    # The table holds a hash of the id, never the id a browser presents.
    with registry.database.read() as conn:
        keys = conn.execute(select(t.console_sessions.c.id)).scalars().all()
    assert keys == [hashlib.sha256(b"id-one").hexdigest()]

    assert sessions.end("id-one") is True
    ended = sessions.find("id-one")
    assert ended is not None and ended.ended_at is not None
    assert sessions.end("id-one") is False  # once


def test_sessions_ended_or_expired_are_pruned_and_others_kept(registry: SqlRegistry) -> None:
    sessions = ConsoleSessions(registry.database)
    for session_id in ("alive", "ended", "expired"):
        sessions.open(_session(session_id))
    sessions.end("ended")
    with registry.database.transaction() as conn:
        conn.execute(
            update(t.console_sessions)
            .where(t.console_sessions.c.principal == "sam", t.console_sessions.c.ended_at.is_(None))
            .where(t.console_sessions.c.id != hashlib.sha256(b"alive").hexdigest())
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert sessions.prune() == 2
    assert sessions.find("alive") is not None
    assert sessions.find("ended") is None and sessions.find("expired") is None


def test_a_store_of_schema_8_opens_into_version_9_with_the_session_table(
    registry: SqlRegistry, store_target: str
) -> None:
    as_written_by(registry, 8)
    with registry.database.engine.connect() as conn:
        assert not inspect(conn).has_table("console_sessions")
        assert conn.execute(select(t.schema_version.c.version)).scalar() == 8
    registry.close()
    with open_store(store_target) as reopened:
        with reopened.database.engine.connect() as conn:
            assert conn.execute(select(t.schema_version.c.version)).scalar() == t.SCHEMA_VERSION == 9
            assert inspect(conn).has_table("console_sessions")
        sessions = ConsoleSessions(reopened.database)
        sessions.open(_session("after-upgrade"))
        assert sessions.find("after-upgrade") is not None
