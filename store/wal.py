"""Keeping SQLite's write-ahead log small while a run's stages write side by side.

SQLite checkpoints the log into the database after commits, but starts it again from its
beginning only at a moment when no reader still reads from it. The two pulls of a run write
and read all the time, so that moment never came: on the L benchmark org the log grew to
21 GB beside a 4 GB database before the pulls were done, and every read slowed with it. While
a run lasts, :func:`wal_kept_small` watches the log's size and, past ``limit_bytes``, asks for a
``TRUNCATE`` checkpoint, which waits for the readers to finish and empties the log.

The checkpoint holds the write lock while it waits, so it gives up quickly (``busy_ms``) rather
than make a stage's writer wait towards its own busy timeout, and after each time it gave up it
waits twice as long (up to ``MAX_BACKOFF_S``) before it asks again: readers that never leave the
log room must not stall the writers a little every second. PostgreSQL and in-memory databases
need none of this: for them it does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from store.db import SQLITE_BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

DEFAULT_LIMIT_BYTES = 512 * 2**20
MAX_BACKOFF_S = 30.0
DEFAULT_BUSY_MS = 250  # how long a checkpoint waits for readers and writers before it gives up


def wal_path(engine: Engine) -> Path | None:
    """The log file of a SQLite database on disk, None for other databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-wal")


def checkpoint(engine: Engine, busy_ms: int = DEFAULT_BUSY_MS) -> bool:
    """Checkpoint the whole log and empty it; False when readers or a writer kept it busy past ``busy_ms``."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
        try:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        finally:  # the pooled connection's next user waits as long as every other one
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    return not busy


def next_wait(wait: float, every: float, gave_up: bool) -> float:
    """Seconds before the next look: ``every``, doubled after each checkpoint that gave up, at most
    ``MAX_BACKOFF_S`` (or ``every`` if that is longer)."""
    return min(wait * 2, max(every, MAX_BACKOFF_S)) if gave_up else every


@contextmanager
def wal_kept_small(
    engine: Engine, limit_bytes: int = DEFAULT_LIMIT_BYTES, every: float = 1.0, busy_ms: int = DEFAULT_BUSY_MS
) -> Iterator[None]:
    """While the block runs, empty the log whenever it outgrows ``limit_bytes`` (see the module docstring)."""
    path = wal_path(engine)
    if path is None:
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        wait = every
        while not stop.wait(wait):
            try:
                gave_up = path.exists() and path.stat().st_size > limit_bytes and not checkpoint(engine, busy_ms)
            except Exception:  # a hiccup (the database closed under us): the next tick tries again
                log.debug("write-ahead log checkpoint failed", exc_info=True)
                gave_up = False
            wait = next_wait(wait, every, gave_up)
            if gave_up:
                log.debug("the write-ahead log is busy; checkpointing it again in %.0f s", wait)

    thread = threading.Thread(target=watch, name="wal-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + busy_ms / 1000 + 5)
