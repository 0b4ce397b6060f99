"""Long write transactions on SQLite, reported: one writer at a time, and every other one waits.

SQLite lets one connection write at a time; another that wants to write waits for it, up to the busy
timeout (``store.db.SQLITE_BUSY_TIMEOUT_MS``), and then fails with "database is locked". The stages of a run
write side by side (the two pulls, each with several lanes), so one transaction that holds the write lock for
long makes the others wait, and past the timeout fails them. Which one it was is what an admin (or we) need to
know then: each transaction that held the lock longer than ``SLOW_WRITE_S`` after its first write, and each
write statement that took that long (waiting for the lock, or writing), is logged at WARNING with the tables
it wrote, never the values. A write that waited long while no transaction held the lock long means many short
ones took it in turn: SQLite's waiting is a poll (every 100 ms at last), and whoever asks in between gets in.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

SLOW_WRITE_S = 10.0
_WRITE = re.compile(r"\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+\"?(\w+)",
                    re.IGNORECASE)
_STARTED, _SINCE, _TABLES = "abm_statement_started", "abm_write_since", "abm_write_tables"
_watched: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()  # engine -> its slow_s


def written_table(statement: str) -> str | None:
    """The table a write statement writes; None for any other statement."""
    found = _WRITE.match(statement)
    return found.group(1) if found else None


def watch_writes(engine: Engine, slow_s: float | None = None) -> None:
    """Log the write transactions of ``engine`` that hold the write lock past ``slow_s`` (default
    ``SLOW_WRITE_S``), and its slow writes."""
    slow = SLOW_WRITE_S if slow_s is None else slow_s

    @event.listens_for(engine, "before_cursor_execute")
    def started(conn: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        conn.info[_STARTED] = time.monotonic()

    @event.listens_for(engine, "after_cursor_execute")
    def done(conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, many: bool) -> None:
        table = written_table(statement)
        if table is not None:
            _noted(conn, table, conn.info.get(_STARTED, time.monotonic()), slow)

    def ended(conn: Any) -> None:
        since = conn.info.pop(_SINCE, None)
        tables = conn.info.pop(_TABLES, {})
        if since is not None and (held := time.monotonic() - since) > slow:
            log.warning("a write transaction held the database's write lock for %.1f s after its first write "
                        "(statements: %s)", held,
                        ", ".join(f"{n} on {t}" for t, n in tables.items()))

    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    _watched[engine] = slow


def note_write(conn: Any, table: str, began: float) -> None:
    """Count a write sent to the driver's own cursor (:mod:`store.upsert`), which the engine's events do not see:
    ``conn`` is the SQLAlchemy connection it went through, ``began`` its ``time.monotonic()`` start."""
    slow = _watched.get(conn.engine)
    if slow is not None:
        _noted(conn, table, began, slow)


def _noted(conn: Any, table: str, began: float, slow: float) -> None:
    took = time.monotonic() - began
    if _SINCE not in conn.info:
        # the first write took the lock at some point of its run (after waiting for it, maybe): counted as held
        # from its end, and the write itself is reported when it was slow
        conn.info[_SINCE] = time.monotonic()
        conn.info[_TABLES] = {}
    tables: dict[str, int] = conn.info[_TABLES]
    tables[table] = tables.get(table, 0) + 1
    if took > slow:
        log.warning("a write to %s took %.1f s (waiting for another writer's lock, or writing)", table, took)
