"""SQLite storage shared by every emulated CRM surface.

One table per emulated object with one column per field keeps a large org (millions of
activities) in modest memory and lets each surface compile its query language to SQL
instead of filtering Python dicts. The storage knows nothing about Salesforce or HubSpot:
surfaces name their tables (with their own prefix) and choose the column types.

The server handles requests on one event loop, but tests and the CLI read state from other
threads, so every statement runs under one re-entrant lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SQL_TYPES = ("TEXT", "INTEGER", "REAL")
# Statements that may change which columns a table name resolves to: running one forgets the
# cached column lists.
_SCHEMA_VERBS = ("ALTER", "CREATE", "DROP", "ATTACH", "DETACH")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier; names come from field registries, never straight from requests."""
    if not name or '"' in name or "\x00" in name:
        raise ValueError(f"invalid identifier: {name!r}")
    return f'"{name}"'


def _index_name(table: str, columns: Sequence[str]) -> str:
    return quote_ident("ix_" + table + "_" + "_".join(columns))


@dataclass(frozen=True, eq=False)
class TableColumns:
    """A table's columns: in table order, as a set, with their declared types, and the quoted list
    a ``SELECT`` of every column uses."""

    names: tuple[str, ...]
    name_set: frozenset[str]
    types: dict[str, str]
    select_list: str


NOT_KNOWN = object()
# Python types SQLite stores unchanged in a column of each declared type (then reads back as written).
_KEPT_AS_GIVEN = {"TEXT": str, "INTEGER": int, "REAL": float}


def read_back(sql_type: str | None, value: Any) -> Any:
    """What reading ``value`` back from a column declared ``sql_type`` returns, without reading it;
    ``NOT_KNOWN`` when the answer takes SQLite's type-affinity conversions (text in a REAL column...).

    Lets a writer compose the row it wrote instead of reading it again, and only when that is exact.
    """
    if value is None:
        return None
    if type(value) is not _KEPT_AS_GIVEN.get(sql_type or ""):
        return NOT_KNOWN
    if sql_type == "REAL" and value == 0.0:
        return 0.0  # a REAL column keeps whole numbers as integers on disk: -0.0 comes back as 0.0
    return value


def _changes_schema(sql: str) -> bool:
    return sql.lstrip()[:6].upper().startswith(_SCHEMA_VERBS)


class Storage:
    """A SQLite database: in memory, in a file that keeps state across restarts, or in a scratch
    file (``scratch=True``) that holds a large org without holding it in the process's memory.

    A scratch file lives only as long as the storage: whatever an earlier, killed run left there
    is discarded on open, and the file is deleted on close. Its pages sit in the operating
    system's file cache, which gives them back under memory pressure, while SQLite keeps only
    its page cache (256 MB) in the process; the L org is about 5 GB of tables and indexes.
    """

    def __init__(self, path: str | Path | None = None, scratch: bool = False) -> None:
        if scratch and not path:
            raise ValueError("a scratch storage needs a file path")
        self.path = str(path) if path else ":memory:"
        self.scratch = scratch
        if scratch:
            self._remove_files()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        # Column lists per table: record reads and writes need them on every call, and the
        # ``PRAGMA table_info`` that gave them cost more than the statement it served. Every schema
        # change made through this object (create_table, add_column, or any ALTER, CREATE, DROP,
        # ATTACH or DETACH through execute) forgets them.
        self._columns: dict[str, TableColumns] = {}
        # The sandbox trades crash-durability for speed: it is an emulator, not a system of record.
        persistent = self.path != ":memory:" and not scratch
        self._conn.execute("PRAGMA journal_mode=WAL" if persistent else "PRAGMA journal_mode=MEMORY")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.execute("PRAGMA temp_store=MEMORY")
        self._conn.execute("PRAGMA cache_size=-262144")  # 256 MB page cache

    @property
    def is_persistent(self) -> bool:
        return self.path != ":memory:" and not self.scratch

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self.scratch:
                self._remove_files()

    def _remove_files(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run several statements atomically (all-or-none writes, bulk loads)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Run many statements as one transaction, for speed rather than atomicity.

        Unlike :meth:`transaction`, what ran before an error is kept (committed), as it would have
        been statement by statement; inside a transaction already, it adds nothing. One commit
        instead of one per statement saves the journal work, and the lock is held throughout, so no
        other thread's statement lands between a read and the write built from it.
        """
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        with self._lock:
            if _changes_schema(sql):
                self._columns.clear()
            return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._conn.executemany(sql, rows)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def table_exists(self, table: str) -> bool:
        return self.fetchone("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)) is not None

    def columns(self, table: str) -> list[str]:
        return list(self.table_columns(table).names)

    def table_columns(self, table: str) -> TableColumns:
        """``table``'s columns, read once and kept until the schema changes through this storage."""
        with self._lock:
            found = self._columns.get(table)
            if found is None:
                info = self._conn.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
                names = tuple(row[1] for row in info)
                found = TableColumns(names, frozenset(names), {row[1]: row[2].upper() for row in info},
                                     ", ".join(quote_ident(name) for name in names))
                if info:  # a table that does not exist yet is not remembered as having no columns
                    self._columns[table] = found
            return found

    def create_table(self, table: str, columns: dict[str, str], key: str) -> None:
        """Create ``table`` unless it exists; ``key`` is a TEXT column with a unique index."""
        for sql_type in columns.values():
            if sql_type not in SQL_TYPES:
                raise ValueError(f"unsupported SQL type {sql_type!r} (expected one of {SQL_TYPES})")
        cols = ", ".join(f"{quote_ident(name)} {sql_type}" for name, sql_type in columns.items())
        self.execute(f"CREATE TABLE IF NOT EXISTS {quote_ident(table)} ({cols})")
        self.create_index(table, [key], unique=True)

    def create_index(self, table: str, columns: Sequence[str], unique: bool = False) -> None:
        cols = ", ".join(quote_ident(c) for c in columns)
        kind = "UNIQUE INDEX" if unique else "INDEX"
        self.execute(f"CREATE {kind} IF NOT EXISTS {_index_name(table, columns)} ON {quote_ident(table)} ({cols})")

    def drop_index(self, table: str, columns: Sequence[str]) -> None:
        """Drop the index :meth:`create_index` made on ``columns``, if there is one."""
        self.execute(f"DROP INDEX IF EXISTS {_index_name(table, columns)}")

    @contextmanager
    def deferred_indexes(self, *tables: str, unique_keeps_first: bool = False) -> Iterator[None]:
        """Bulk-load ``tables`` without their non-unique indexes, then build those indexes once.

        Keeping an index current through millions of inserts in random key order costs far more
        than one sort at the end. Unique indexes stay, so duplicate keys fail as before, unless
        ``unique_keeps_first`` (for loads that ``INSERT OR IGNORE``): then they are deferred too,
        and a key loaded twice keeps its first row, as ``INSERT OR IGNORE`` would have.
        Only empty tables are touched: an index on rows that exist would be rebuilt for nothing.
        Schemas create their indexes with ``IF NOT EXISTS`` at every start, so an org kept with
        ``--state`` whose load was interrupted gets them back on restart.
        """
        dropped: list[tuple[str, str, list[str]]] = []
        with self._lock:
            for table in tables:
                if self.fetchone(f"SELECT 1 FROM {quote_ident(table)} LIMIT 1") is not None:
                    continue
                for name, sql in self.fetchall(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    (table,),
                ):
                    if unique_keeps_first or not sql.upper().startswith("CREATE UNIQUE"):
                        columns = [row[2] for row in self.fetchall(f"PRAGMA index_info({quote_ident(name)})")]
                        self.execute(f"DROP INDEX {quote_ident(name)}")
                        dropped.append((table, sql, columns))
        try:
            yield
        finally:
            for table, sql, columns in dropped:
                with self._lock:
                    try:
                        self.execute(sql)
                    except sqlite3.IntegrityError:  # a unique key loaded twice: keep its first row
                        keys = ", ".join(quote_ident(c) for c in columns)
                        complete = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)  # NULLs never clash
                        self.execute(f"DELETE FROM {quote_ident(table)} WHERE {complete} AND rowid NOT IN "
                                     f"(SELECT MIN(rowid) FROM {quote_ident(table)} WHERE {complete} GROUP BY {keys})")
                        self.execute(sql)

    def add_column(self, table: str, column: str, sql_type: str) -> None:
        if sql_type not in SQL_TYPES:
            raise ValueError(f"unsupported SQL type {sql_type!r} (expected one of {SQL_TYPES})")
        if column not in self.table_columns(table).name_set:
            self.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column)} {sql_type}")

    def insert_many(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        cols = ", ".join(quote_ident(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        self.executemany(f"INSERT INTO {quote_ident(table)} ({cols}) VALUES ({marks})", rows)

    def fetch_by_rowids(
        self, table: str, columns: Sequence[str], rowids: Sequence[int], chunk: int = 2000
    ) -> list[tuple[Any, ...]]:
        """Rows for ``rowids`` in the order given (query cursors page through a rowid snapshot)."""
        cols = ", ".join(["rowid"] + [quote_ident(c) for c in columns])
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(rowids), chunk):
            part = list(rowids[start : start + chunk])
            marks = ",".join("?" for _ in part)
            found = {
                row[0]: row[1:]
                for row in self.fetchall(f"SELECT {cols} FROM {quote_ident(table)} WHERE rowid IN ({marks})", part)
            }
            out.extend(found[r] for r in part if r in found)
        return out
