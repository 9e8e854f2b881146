"""The console's signed-in sessions, kept in the control plane's store so that signing out (or a
session's expiry) ends it for good, on every replica sharing the database.

A session is known by the SHA-256 of its id: the browser's cookie carries the id, the table only its
hash, so reading the table gives no one a session to present. Each console request reads its
session with one primary-key lookup (:meth:`ConsoleSessions.find`)::

    sessions = ConsoleSessions(registry.database)
    sessions.open(StoredSession.signed_in(sid, "omar", ("operate",), None, credential=fp, lasts=8 * 3600))
    sessions.find(sid)          # the session, with when it expires and whether it ended
    sessions.end(sid)           # signed out: find(sid).ended_at is set from now on

Rows ended or expired are deleted by :meth:`ConsoleSessions.prune` (the console calls it when
someone signs in, so the table holds about one row per session alive).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.database import Database, aware, utc_now

__all__ = ["ConsoleSessions", "StoredSession"]

_SEPARATOR = ","


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A signed-in console session as stored: who (``principal``, its ``roles`` and
    ``environments``, None for all), the keyed fingerprint of the ``credential`` signed in with
    (None: signed in without one, on a service with open writes), when it was issued and expires,
    and when it ended (None while it lasts)."""

    id: str
    principal: str
    roles: tuple[str, ...]
    environments: tuple[str, ...] | None
    credential: str | None
    issued_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None

    @classmethod
    def signed_in(
        cls,
        session_id: str,
        principal: str,
        roles: tuple[str, ...],
        environments: tuple[str, ...] | None,
        *,
        credential: str | None,
        lasts: float,
    ) -> StoredSession:
        """A session issued now that lasts ``lasts`` seconds."""
        now = utc_now()
        return cls(
            id=session_id,
            principal=principal,
            roles=roles,
            environments=environments,
            credential=credential,
            issued_at=now,
            expires_at=now + timedelta(seconds=lasts),
        )


class ConsoleSessions:
    """The console sessions stored in ``database`` (a registry's, :attr:`SqlRegistry.database`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def open(self, session: StoredSession) -> None:
        """Store a new session."""
        values = {
            "id": _key(session.id),
            "credential": session.credential,
            "principal": session.principal,
            "roles": _SEPARATOR.join(session.roles),
            "environments": None if session.environments is None else _SEPARATOR.join(session.environments),
            "issued_at": session.issued_at,
            "expires_at": session.expires_at,
            "ended_at": None,
        }
        with self.database.transaction() as conn:
            conn.execute(t.console_sessions.insert().values(**values))

    def find(self, session_id: str) -> StoredSession | None:
        """The session ``session_id`` (ended or expired too, until pruned: the caller says which to
        whom); None when it was never stored or was pruned."""
        with self.database.read() as conn:
            row = (
                conn.execute(select(t.console_sessions).where(t.console_sessions.c.id == _key(session_id)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        expires_at = aware(row["expires_at"])
        assert expires_at is not None  # NOT NULL
        environments = row["environments"]
        issued_at = aware(row["issued_at"])
        assert issued_at is not None  # NOT NULL
        return StoredSession(
            id=session_id,
            principal=row["principal"],
            roles=_split(row["roles"]),
            environments=None
            if environments is None
            else tuple(e for e in environments.split(_SEPARATOR) if e),
            credential=row["credential"],
            issued_at=issued_at,
            expires_at=expires_at,
            ended_at=aware(row["ended_at"]),
        )

    def end(self, session_id: str) -> bool:
        """End the session ``session_id`` now (signing out); whether it was still going."""
        with self.database.transaction() as conn:
            result = conn.execute(
                update(t.console_sessions)
                .where(t.console_sessions.c.id == _key(session_id), t.console_sessions.c.ended_at.is_(None))
                .values(ended_at=utc_now())
            )
        return bool(result.rowcount)

    def prune(self) -> int:
        """Delete the sessions ended or expired; how many."""
        sessions = t.console_sessions
        done = or_(sessions.c.ended_at.is_not(None), sessions.c.expires_at <= utc_now())
        with self.database.transaction() as conn:
            result = conn.execute(delete(sessions).where(done))
        return int(result.rowcount)


def _split(joined: str) -> tuple[str, ...]:
    return tuple(part for part in joined.split(_SEPARATOR) if part)


def _key(session_id: str) -> str:
    # The stored key is a hash: the table never holds a session id a browser could present.
    return hashlib.sha256(session_id.encode()).hexdigest()
