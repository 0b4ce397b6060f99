"""Reading millions of rows as plain driver tuples, a batch at a time.

SQLAlchemy result rows cost about as much again as the driver's own fetch (an L org's 5.9 million
touches: 8 CPU seconds from the cursor, 16 through ``Result.partitions``), so the big reads of the
score stage take the driver's tuples. Two traps on the way, both handled here:

- ``stream_results`` (a server-side cursor on PostgreSQL, and on SQLite files) makes SQLAlchemy
  prefetch the first row into a buffer of its own: reading ``result.cursor`` alone then loses that
  row. The first batch is therefore read through the result (its rows become tuples), the rest from
  the cursor.
- SQLite's driver steps through the result as it is fetched, so there it needs no
  ``stream_results`` at all; PostgreSQL needs it, or the driver would hold every row at once.

Values are the driver's (an SQLite boolean is 0 or 1), except in the first batch, where
SQLAlchemy's result types have processed them: select plain strings and numbers, or convert.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlalchemy import Connection, Select


def driver_batches(conn: Connection, query: Select, size: int) -> Iterator[list[tuple]]:
    """The rows of ``query`` as lists of at most ``size`` tuples, in the order the database gives them."""
    if conn.dialect.name != "sqlite":
        # Options on the statement, not the connection: Connection.execution_options() changes the
        # connection itself, and a server-side cursor would then wrap later statements (even DDL).
        query = query.execution_options(stream_results=True)
    result = conn.execute(query)
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
