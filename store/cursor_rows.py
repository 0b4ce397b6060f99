"""Reading millions of rows as plain driver tuples, a batch at a time.

SQLAlchemy result rows cost about as much again as the driver's own fetch (an L org's 5.9 million
touches: 8 CPU seconds from the cursor, 16 through ``Result.partitions``), so the big reads take the
driver's tuples. The two databases differ:

- SQLite's driver steps through the result as it is fetched, so it needs no ``stream_results``, and
  without it SQLAlchemy reads nothing ahead: every batch comes from the cursor. (The first batch used to
  come through the result: an L increment's write-back targets, 20,000-65,000 rows an object, all fit in
  one batch, and SQLAlchemy's rows and their processing took 1.2 s of the Salesforce write-back.)
- PostgreSQL needs ``stream_results`` (a server-side cursor), or the driver would hold every row at
  once; SQLAlchemy then prefetches the first row into a buffer of its own, which reading
  ``result.cursor`` alone would lose. The first batch is read through the result there (its rows
  become tuples), the rest from the cursor.

Values are the driver's (an SQLite boolean is 0 or 1, a timestamp its text), except in PostgreSQL's
first batch, where SQLAlchemy's result types have processed them: select plain strings and numbers, or
convert (:func:`store.types.stored_utc`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlalchemy import Connection, Select


def driver_batches(conn: Connection, query: Select, size: int) -> Iterator[list[tuple]]:
    """The rows of ``query`` as lists of at most ``size`` tuples, in the order the database gives them."""
    if conn.dialect.name == "sqlite":
        result = conn.execute(query)
        try:
            cursor = result.cursor
            while rows := cursor.fetchmany(size):
                yield rows
        finally:
            result.close()
        return
    # Options on the statement, not the connection: Connection.execution_options() changes the
    # connection itself, and a server-side cursor would then wrap later statements (even DDL).
    result = conn.execute(query.execution_options(stream_results=True))
    try:
        first = [tuple(row) for row in result.fetchmany(size)]
        if first:
            yield first
        if len(first) < size:  # the result is exhausted (and may have closed its cursor)
            return
        cursor = result.cursor
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        result.close()


IN_LIST = 900  # values per IN list: under every SQLite's limit on bound parameters


def in_lists(values: Collection, size: int = IN_LIST) -> Iterator[list]:
    """``values`` sorted, ``size`` at a time: the lists of an ``IN`` read by many values."""
    ordered = sorted(values)
    for begin in range(0, len(ordered), size):
        yield ordered[begin:begin + size]
