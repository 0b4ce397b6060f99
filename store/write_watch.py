"""Slow upserts on SQLite, reported: one writer at a time, and every other one waits.

SQLite lets one connection write at a time; another that wants to write waits for it, up to the busy
timeout (``store.db.SQLITE_BUSY_TIMEOUT_MS``), and then fails with "database is locked". The stages of a run
write side by side (the two pulls, each with several lanes), so a transaction that holds the write lock for
long, or many short ones in turn, keep the others waiting. An upsert (:mod:`store.upsert`: the rows of the
pulls, the matches, the scores and the write-back ledger) that took longer than ``SLOW_WRITE_S``, waiting for
the lock or writing, is logged at WARNING with its table, never the values: which stage was kept waiting, and
when.

Only the upserts are timed, where they reach the driver: any listener on the engine's connection events, even
one that only hears commits, sends every statement down SQLAlchemy's slower path (measured: an insert took
59-74 µs with a commit listener against 47-69 µs without).
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger(__name__)

SLOW_WRITE_S = 10.0


def note_write(conn: Any, table: str, began: float) -> None:
    """An upsert into ``table`` through ``conn`` (a SQLAlchemy connection) begun at ``began``
    (``time.monotonic()``) has ended: logged if it was slow, on SQLite (PostgreSQL has a lock per row)."""
    if conn.dialect.name == "sqlite" and (took := time.monotonic() - began) > SLOW_WRITE_S:
        log.warning("an upsert into %s took %.1f s (waiting for another writer's lock, or writing)", table, took)
