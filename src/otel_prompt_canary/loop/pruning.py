"""Deleting many rows without holding writers up: a batch of rows per transaction.

Retention (:mod:`otel_prompt_canary.loop.retention`) deletes what grows with traffic in small
transactions, so that a report or an alert never waits long behind a pruning, and so that several
processes may prune at once (each batch deletes only rows that its condition still selects).

- :func:`delete_in_batches`: rows of a table with a one-column key, :data:`BATCH` keys at a time;
- :func:`delete_in_slices`: rows of a table read by an index ending in a time column (a window's
  start), the oldest :data:`BATCH` rows at a time.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Column, ColumnElement, Connection, delete, select

from otel_prompt_canary.registry.database import Database

__all__ = ["BATCH", "delete_in_batches", "delete_in_slices"]

#: Rows deleted per transaction: small enough that a writer never waits long behind one.
BATCH: Final = 5000


def delete_in_batches(
    database: Database, key: Column[Any], where: ColumnElement[bool], *, oldest_first: bool = False
) -> int:
    """Delete the rows of ``key``'s table that ``where`` selects, :data:`BATCH` keys per
    transaction; how many were deleted. ``oldest_first`` takes the smallest keys first (an
    autoincrement id: the oldest rows, at the start of the table)."""
    table = key.table
    batch = select(key).where(where).limit(BATCH)
    if oldest_first:
        batch = batch.order_by(key)

    def attempt(conn: Connection) -> int:
        return int(conn.execute(delete(table).where(key.in_(batch))).rowcount)

    removed = 0
    while True:
        count = database.write(attempt, contended=f"could not prune {table.name}: too many concurrent writes")
        removed += count
        if count < BATCH:
            return removed


def delete_in_slices(database: Database, start: Column[Any], where: ColumnElement[bool]) -> int:
    """Delete the rows of ``start``'s table that ``where`` selects, oldest ``start`` first, about
    :data:`BATCH` rows per transaction; how many were deleted.

    For tables without a one-column key (per-window statistics): each transaction finds the start
    of the :data:`BATCH`-th row still selected and deletes the rows up to it, so it deletes at most
    :data:`BATCH` rows and those sharing that start. ``where`` should be served by an index
    ending in ``start``.
    """
    table = start.table

    def attempt(conn: Connection) -> tuple[int, bool]:
        boundary = conn.execute(
            select(start).where(where).order_by(start).offset(BATCH - 1).limit(1)
        ).scalar()
        if boundary is None:  # fewer than a batch left: the last slice
            return int(conn.execute(delete(table).where(where)).rowcount), True
        return int(conn.execute(delete(table).where(where, start <= boundary)).rowcount), False

    removed = 0
    while True:
        count, last = database.write(
            attempt, contended=f"could not prune {table.name}: too many concurrent writes"
        )
        removed += count
        if last:
            return removed
