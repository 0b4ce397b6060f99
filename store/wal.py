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
log room must not stall the writers a little every second. It also holds the write lock while it
copies what the log still holds, and ``busy_ms`` does not bound that: a long read keeps every
frame written after its snapshot from being copied, and the ``TRUNCATE`` that came once it ended
would copy that whole backlog with every writer waiting. So the watcher asks for it only once a
``PASSIVE`` copy, which holds no lock, has left at most ``LOCKED_COPY_MAX_FRAMES`` to copy (not
none: the stages commit while it copies, so a busy log is never found all copied). PostgreSQL
and in-memory databases need none of this: for them it does nothing.

SQLite also copies the log into the database after a commit that leaves it past 1,000 pages,
in the committing thread, syncing the file twice (``wal_autocheckpoint``). A stage's writer
then waits for the copy of every page it just wrote: on the L org's 1% increment, 4.7 of the
7 seconds the pulls spent in commits. While the watcher runs, the connections the engine hands
out leave that copy to it: each second it copies what the log holds (a ``PASSIVE`` checkpoint,
which waits for nobody), beside the stages instead of in their way.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

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


def copy_log(engine: Engine) -> int:
    """Copy what the log holds into the database, waiting for no reader or writer (``PASSIVE``); returns how
    many frames are left to copy: those committed meanwhile, and those a reader's older snapshot kept back."""
    with engine.connect() as conn:
        _, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return max(0, int(frames) - int(copied))


LOCKED_COPY_MAX_FRAMES = 16_384  # pages left for an emptying to copy under the write lock: 64 MB of 4 KB pages
LOCK_HELD_NOTICE_S = 1.0  # an emptying that held the writers this long is worth a line in the log


def empty_log(engine: Engine, busy_ms: int = DEFAULT_BUSY_MS) -> bool:
    """:func:`checkpoint`, timed: a stage's writers wait while it runs, so a long one is reported."""
    started = time.monotonic()
    emptied = checkpoint(engine, busy_ms)
    held = time.monotonic() - started
    if held > LOCK_HELD_NOTICE_S:
        log.info("emptying the write-ahead log held the database's writers for %.1f s", held)
    return emptied


def empty_now(log_bytes: int, limit_bytes: int, frames_left: int, waited: float, wait: float) -> bool:
    """Whether the watcher asks to empty the log now: it is past its limit, the backoff is over, and a
    ``PASSIVE`` copy has just left little for the emptying to copy under the write lock."""
    return frames_left <= LOCKED_COPY_MAX_FRAMES and log_bytes > limit_bytes and waited >= wait


SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
_watched: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()
_AUTOCHECKPOINT_SET = "abm_wal_autocheckpoint"  # a pooled connection's info: the value it was last given


def _copy_after_commits(engine: Engine) -> list[int]:
    """How many watchers run on ``engine`` (a list of one count), with the checkout hook that tells each
    connection whether its commits copy the log themselves: only when none runs."""
    watchers = _watched.get(engine)
    if watchers is None:
        watchers = _watched[engine] = [0]

        def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
            # set only when it differs from what this connection was last given: checkouts come by the
            # thousand in a run (0.9 s of an L increment's CPU when each one set it)
            pages = 0 if watchers[0] > 0 else SQLITE_AUTOCHECKPOINT_PAGES
            if record.info.get(_AUTOCHECKPOINT_SET) == pages:
                return
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA wal_autocheckpoint={pages}")
            finally:
                cursor.close()
            record.info[_AUTOCHECKPOINT_SET] = pages

        event.listen(engine, "checkout", on_checkout)
    return watchers


def log_watched(engine: Engine) -> bool:
    """Whether a :func:`wal_kept_small` watcher runs on ``engine`` in this process."""
    watchers = _watched.get(engine)
    return bool(watchers and watchers[0] > 0)


def leave_log_copy_to_watcher(engine: Engine) -> None:
    """Have ``engine``'s commits leave the log's copy to a watcher running in another process on the same
    database: a stage in a process of its own, while the worker's watcher copies the log each second. Its
    commits copied the log themselves otherwise: on the L org's 1% increment, the pulls spent 4.2 s in
    commits in their processes against 2.1 s when they ran in the worker, beside its watcher."""
    _copy_after_commits(engine)[0] += 1


def next_wait(wait: float, every: float, gave_up: bool) -> float:
    """Seconds before the next look: ``every``, doubled after each checkpoint that gave up, at most
    ``MAX_BACKOFF_S`` (or ``every`` if that is longer)."""
    return min(wait * 2, max(every, MAX_BACKOFF_S)) if gave_up else every


@contextmanager
def wal_kept_small(
    engine: Engine, limit_bytes: int = DEFAULT_LIMIT_BYTES, every: float = 1.0, busy_ms: int = DEFAULT_BUSY_MS
) -> Iterator[None]:
    """While the block runs, copy the log into the database each ``every`` seconds in place of the
    commits, and empty it whenever it outgrows ``limit_bytes`` (see the module docstring)."""
    path = wal_path(engine)
    if path is None:
        yield
        return
    stop = threading.Event()
    watchers = _copy_after_commits(engine)
    watchers[0] += 1

    def watch() -> None:
        wait = every  # between two attempts to empty the log (longer after each that gave up)
        waited = 0.0
        while not stop.wait(every):
            waited += every
            try:
                if not path.exists() or (log_bytes := path.stat().st_size) == 0:
                    continue
                frames_left = copy_log(engine)  # the copy the stages' commits leave to this thread
                if empty_now(log_bytes, limit_bytes, frames_left, waited, wait):
                    gave_up = not empty_log(engine, busy_ms)
                    wait, waited = next_wait(wait, every, gave_up), 0.0
                    if gave_up:
                        log.debug("the write-ahead log is busy; emptying it again in %.0f s", wait)
            except Exception:  # a hiccup (the database closed under us): the next tick tries again
                log.debug("write-ahead log checkpoint failed", exc_info=True)

    thread = threading.Thread(target=watch, name="wal-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + busy_ms / 1000 + 5)
        watchers[0] -= 1
        try:
            copy_log(engine)  # what the last commits left, before commits copy the log themselves again
        except Exception:
            log.debug("write-ahead log checkpoint failed", exc_info=True)
