"""Engines for the embedded default (SQLite) and production (PostgreSQL), from one URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from store.json_codec import loads as json_loads

DEFAULT_DATABASE_URL = "sqlite:///abm.db"
# How long a SQLite statement waits for another connection's write lock. SQLite's wait is a poll whose interval
# grows to 100 ms, so a writer that has waited long asks least often: while the two pulls of a full run keep the
# lock busy, a Salesforce pull's write waited past 30 s once in four full runs of the L org (the run failed,
# "database is locked"), and the lease's heartbeat 10.6 and 14.4 s in another (store.write_watch logs the
# upserts that wait that long). Two minutes leave that a wait, not a failure.
SQLITE_BUSY_TIMEOUT_MS = 120_000


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown without anything after the scheme
        return url.split(":", 1)[0] + ":***"


# Page cache per connection, in KiB. SQLite's default (2 MB) holds a few hundred of the index pages an upsert walks:
# inserting the L org's new touches (five indexes a row, in random places of a table of millions) read most pages
# again from the file, at 91 µs a row in transactions of 5,000; with 64 MB, 67 µs (256 MB: 61). The cache fills
# only as pages are read, and only the connections that touch many pages fill it.
SQLITE_CACHE_KIB = 64 * 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the admin page read while a run writes; NORMAL is durable across app
    # crashes (only a power loss can lose the last transaction).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def make_engine(url: str = DEFAULT_DATABASE_URL, **kwargs: Any) -> Engine:
    """Create an engine; ``postgresql://`` URLs use psycopg 3. JSON columns decode with orjson (see
    :mod:`store.json_codec`)."""
    kwargs.setdefault("json_deserializer", json_loads)
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)
