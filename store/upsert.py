"""Batched upserts that touch only rows that changed, at tens of thousands of rows a second.

Row-by-row ORM upserts cap out at a few thousand rows a second, and SQLAlchemy's per-row
parameter processing costs more than the database itself. So the statement is compiled
once per column set and fed straight to the driver: ``executemany`` of one
``INSERT ... ON CONFLICT DO UPDATE`` on SQLite, ``COPY`` into a temporary staging table and
one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` on PostgreSQL.

Rows whose values are all unchanged are not rewritten at all (no WAL traffic, no
``changed_at`` bump), and ``changed_at`` only moves when a *content* column changes, so a
CRM stamp bumped by our own writeback does not trigger rescoring.

SQLite rewrites the entry of every index that reads a column an ``UPDATE`` sets, whether its
value changed or not (PostgreSQL's HOT updates compare the values). An edited touch whose
subject alone changed would so rewrite all nine of the touches' indexes: a page each, in
random places of a table of millions. On SQLite the conflict update therefore sets only the
columns no index reads (and ``changed_at``), and a second statement rewrites the indexed ones
of the rows where one of them differs, which few edits do.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Connection, Date, Dialect, Table, case, column, or_, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.visitors import iterate

from store.ids import to_18
from store.types import JsonText, UTCDateTime, ensure_utc, utcnow
from store.write_watch import note_write

DEFAULT_KEY = ("crm", "object", "crm_id")

# Bookkeeping columns: a change in these alone is not a change of the record's content.
NOT_CONTENT = frozenset({"id", "synced_at", "changed_at", "modified_at"})


def _is_salesforce_id_column(column: str) -> bool:
    return column == "crm_id" or column == "merged_into" or column.endswith("_crm_id")


def normalize_salesforce_ids(row: dict[str, Any], columns: Iterable[str] | None = None) -> dict[str, Any]:
    """Bring every Salesforce id in a row (the key and ``*_crm_id`` references) to 18 characters."""
    for name in columns if columns is not None else [c for c in row if _is_salesforce_id_column(c)]:
        value = row.get(name)
        if value and len(value) != 18:
            row[name] = to_18(value)  # converts 15 characters, raises a clear error otherwise
    return row


def _columns_in(clause: Any) -> set[str]:
    return {element.name for element in iterate(clause) if isinstance(element, Column)}


def indexed_columns(table: Table) -> frozenset[str]:
    """The columns some index or key of ``table`` reads, in its entries or in its condition."""
    names: set[str] = set()
    for index in table.indexes:
        for expression in index.expressions:
            names.update(_columns_in(expression))
        for dialect in ("sqlite", "postgresql"):
            where = index.dialect_options[dialect].get("where")
            if where is not None:
                names.update(_columns_in(where))
    for constraint in table.constraints:
        names.update(c.name for c in getattr(constraint, "columns", ()))
    return frozenset(names)


def _update_columns(columns: Sequence[str], key: Sequence[str], insert_only: frozenset[str]) -> list[str]:
    return [c for c in columns if c not in key and c != "id" and c not in insert_only]


def _compared(update_columns: Sequence[str]) -> list[str]:
    return [c for c in update_columns if c not in ("synced_at", "changed_at")]


def _derived(table: Table, sources: Iterable[str]) -> dict[str, str]:
    """Columns resolved from one of ``sources`` (a touch's person id from its person key), by name, with
    their source: such a value is void once its source changes, and resolved again later (see
    store.touch_refs)."""
    wanted = set(sources)
    return {c.name: c.info["resolved_from"] for c in table.c if c.info.get("resolved_from") in wanted}


def _indexed_update(table: Table, columns: Sequence[str], key: Sequence[str],
                    insert_only: frozenset[str]) -> list[str]:
    """The compared columns an index reads: on SQLite the second statement sets them (see the module
    docstring). ``synced_at`` and ``changed_at`` stay with the conflict update, which sets them only
    on the rows that changed."""
    indexed = indexed_columns(table)
    return [c for c in _compared(_update_columns(columns, key, insert_only)) if c in indexed]


def _conflict_clause(
    insert_stmt: Any, table: Table, columns: Sequence[str], key: Sequence[str], insert_only: frozenset[str],
    set_later: Sequence[str] = (), changed_when: tuple[str, ...] | None = None,
) -> Any:
    """The conflict update; ``set_later``: columns (and what is resolved from them) it leaves to a second
    statement; ``changed_when``: the columns whose change alone rewrites a row (default: every one it sets)."""
    excluded = insert_stmt.excluded
    update_columns = _update_columns(columns, key, insert_only)
    compared = _compared(update_columns)
    if not compared:
        return insert_stmt.on_conflict_do_nothing(index_elements=list(key))
    later = set(set_later) | set(_derived(table, set_later))
    set_: dict[str, Any] = {c: excluded[c] for c in update_columns if c not in later}
    for name, source in _derived(table, update_columns).items():
        if name not in set_ and name not in later and name not in update_columns:
            set_[name] = case((table.c[source].is_not_distinct_from(excluded[source]), table.c[name]), else_=None)
    content = [c for c in compared if c not in NOT_CONTENT]
    if "changed_at" in set_ and content:
        content_changed = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in content))
        set_["changed_at"] = case((content_changed, excluded["changed_at"]), else_=table.c.changed_at)
    changed_any = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in (changed_when or compared)))
    return insert_stmt.on_conflict_do_update(index_elements=list(key), set_=set_, where=changed_any)


# Converters never see None: the writer passes NULLs through untouched.
def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else ensure_utc(value)


def _sqlite_datetime(value: datetime) -> str:
    # The exact text SQLAlchemy's SQLite DateTime stores, so ORM reads and these writes agree.
    if value.tzinfo is not UTC:
        value = ensure_utc(value)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_date(value: date) -> str:
    return value.isoformat()


def _sqlite_bool(value: Any) -> int:
    return int(bool(value))


def _json_text(value: Any) -> str:
    if isinstance(value, JsonText):
        return str(value)  # a plain str: drivers adapt by exact type
    return json.dumps(value, ensure_ascii=False)


def _converters(table: Table, columns: Sequence[str], dialect: str) -> list[Callable[[Any], Any] | None]:
    """Per-column conversions to what the driver takes, decided once per table, not per value."""
    converters: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, UTCDateTime):
            converters.append(_sqlite_datetime if dialect == "sqlite" else _utc)
        elif isinstance(column_type, JSON) or isinstance(getattr(column_type, "impl", None), JSON):
            converters.append(_json_text)
        elif isinstance(column_type, Date) and dialect == "sqlite":
            converters.append(_sqlite_date)
        elif isinstance(column_type, Boolean) and dialect == "sqlite":
            converters.append(_sqlite_bool)
        else:
            converters.append(None)
    return converters


@lru_cache(maxsize=64)
def _sqlite_statement(dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...],
                      insert_only: frozenset[str], indexed_apart: bool = True,
                      changed_when: tuple[str, ...] | None = None,
                      ) -> tuple[str, list[str], tuple[str, list[int]] | None]:
    """The SQLite upsert's text and its bound columns in order, and the update of the indexed columns
    with the positions of its parameters in those (None when no indexed column is set), compiled once
    per column set: the writeback records each HubSpot batch of 100 records as it lands, and compiling
    the statement for each of an L run's 468 batches cost more than the rows themselves."""
    later = _indexed_update(table, columns, key, insert_only) if indexed_apart else []
    if set(later) >= set(_update_columns(columns, key, insert_only)):
        later = []  # every column to update is indexed (a match's account and decision): one statement sets them
    stmt = _conflict_clause(sqlite.insert(table), table, columns, key, insert_only, later, changed_when)
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    ordered = list(compiled.positiontup)
    assert sorted(ordered) == sorted(columns), "compiled upsert does not bind every column once"
    return compiled.string, ordered, (_indexed_statement(table, later, key, ordered) if later else None)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _indexed_statement(table: Table, indexed: Sequence[str], key: Sequence[str],
                       ordered: Sequence[str]) -> tuple[str, list[int]]:
    """``UPDATE`` of the indexed columns of the row with the key, when one of them differs, and the
    positions in ``ordered`` of the values it binds (numbered, each once). What is resolved from a
    changed column is voided (old values on the right of SET, as SQL reads them)."""
    params: list[int] = []

    def bound(name: str) -> str:
        position = ordered.index(name)
        if position not in params:
            params.append(position)
        return f"?{params.index(position) + 1}"

    sets = [f"{_quoted(name)} = {bound(name)}" for name in indexed]
    sets += [f"{_quoted(name)} = CASE WHEN {_quoted(source)} IS {bound(source)} THEN {_quoted(name)} END"
             for name, source in _derived(table, indexed).items() if name not in indexed and name not in ordered]
    where = " AND ".join(f"{_quoted(name)} = {bound(name)}" for name in key)
    differs = " OR ".join(f"{_quoted(name)} IS NOT {bound(name)}" for name in indexed)
    return f"UPDATE {_quoted(table.name)} SET {', '.join(sets)} WHERE {where} AND ({differs})", params


class _Writer:
    """Writes batches of tuples for one (table, column set) on one connection."""

    def __init__(
        self,
        conn: Connection,
        table: Table,
        columns: tuple[str, ...],
        key: Sequence[str],
        insert_only: frozenset[str] = frozenset(),
        indexed_apart: bool = True,
        changed_when: tuple[str, ...] | None = None,
    ) -> None:
        self.conn = conn
        self.table = table
        self.columns = columns
        self.key = tuple(key)
        self.key_of = itemgetter(*key)
        self.dialect = conn.dialect.name
        ordered: list[str] = list(columns)
        self.indexed: tuple[str, Callable[[list[Any]], tuple[Any, ...]]] | None = None
        if self.dialect == "sqlite":
            self.sql, ordered, indexed = _sqlite_statement(conn.dialect, table, columns, tuple(key), insert_only,
                                                           indexed_apart, changed_when)
            if indexed is not None:
                indexed_sql, positions = indexed
                self.indexed = indexed_sql, itemgetter(*positions)
        elif self.dialect == "postgresql":
            # One staging table per column set: temporary tables live as long as the pooled
            # connection, and two connectors may write the same table with different columns.
            digest = hashlib.sha1(",".join(columns).encode()).hexdigest()[:10]
            self.stage = f"abm_stage_{table.name}_{digest}"
            stage_columns = ", ".join(f'"{c}"' for c in columns)
            conn.exec_driver_sql(
                f'CREATE TEMPORARY TABLE IF NOT EXISTS "{self.stage}" '
                f'AS SELECT {stage_columns} FROM "{table.name}" WITH NO DATA'
            )
            stage_table = table_clause(self.stage, *(column(c) for c in columns))
            stmt = postgresql.insert(table).from_select(list(columns), select(*(stage_table.c[c] for c in columns)))
            self.sql = str(_conflict_clause(stmt, table, columns, key, insert_only, changed_when=changed_when)
                           .compile(dialect=conn.dialect))
            self.returning_sql = f"{self.sql} RETURNING {', '.join(_quoted(k) for k in key)}"
            self.copy_sql = f'COPY "{self.stage}" ({stage_columns}) FROM STDIN'
        else:
            raise ValueError(f"upserts support SQLite and PostgreSQL, not {self.dialect}")
        self.values_of = itemgetter(*ordered) if len(ordered) > 1 else (lambda row: (row[ordered[0]],))
        self.conversions = [
            (i, f) for i, f in enumerate(_converters(table, ordered, self.dialect)) if f is not None
        ]
        # A row's key read from its driver values, as from the row itself: when no key column is converted
        converted = {i for i, _ in self.conversions}
        positions = [ordered.index(k) for k in self.key]
        self.key_of_values: Callable[[Sequence[Any]], Any] | None = (
            itemgetter(*positions) if not converted & set(positions) else None)

    # A batch that only added rows, or changed none, needs no second statement: the upsert's count less
    # the rows it added (new rows take ids past the last one, and the transaction holds the write lock)
    # says whether it updated any. Rows that bring their own id leave that unknown: the statement runs.
    def _last_id(self, cursor: Any) -> int | None:
        if "id" in self.columns:
            return None
        return cursor.execute(f"SELECT coalesce(max(rowid), 0) FROM {_quoted(self.table.name)}").fetchone()[0]

    def _added_since(self, cursor: Any, last_id: int | None) -> int:
        if last_id is None:
            return 0
        added = cursor.execute(f"SELECT count(*) FROM {_quoted(self.table.name)} WHERE rowid > ?", (last_id,))
        return added.fetchone()[0]

    def _write_telling(self, raw: Any, keyed: tuple[Sequence[Any], Callable[[Any], Any]], values: list[list[Any]],
                       written_keys: list[Any]) -> int:
        """:meth:`write_values`, adding the keys of the rows written to ``written_keys`` (``keyed``: what to read
        them from, one item per row, and how): on SQLite a statement per row, each followed by the connection's
        count of changes (``executemany`` tells only the total: 1.1 µs a row more), on PostgreSQL the statement's
        ``RETURNING``."""
        if self.dialect == "sqlite":
            if self.indexed is not None:
                raise ValueError("written keys are told only by upserts that set their indexed columns at once "
                                 "(indexed_apart=False)")
            cursor = raw.cursor()
            try:
                before = len(written_keys)
                execute, sql = cursor.execute, self.sql
                sources, key_of = keyed
                last = raw.total_changes
                began = time.monotonic()
                for source, row_values in zip(sources, values, strict=True):
                    execute(sql, row_values)
                    if raw.total_changes != last:
                        last = raw.total_changes
                        written_keys.append(key_of(source))
                note_write(self.conn, self.table.name, began)
                return len(written_keys) - before
            finally:
                cursor.close()
        with raw.cursor() as cursor:
            self._stage_rows(cursor, values)
            found = cursor.execute(self.returning_sql).fetchall()
            written_keys.extend(found if len(self.key) > 1 else [k for (k,) in found])
            return len(found)

    def _driver_values(self, rows: list[dict[str, Any]]) -> list[list[Any]]:
        values_of, conversions = self.values_of, self.conversions
        # Many rows share one value object in a column (the run's timestamp in synced_at and
        # changed_at): converting it once per batch instead of once per row halves the cost.
        last_in: list[Any] = [None] * len(conversions)
        last_out: list[Any] = [None] * len(conversions)
        out = []
        for row in rows:
            values = list(values_of(row))
            for n, (i, convert) in enumerate(conversions):
                value = values[i]
                if value is None:
                    continue
                if value is last_in[n]:
                    values[i] = last_out[n]
                else:
                    last_in[n] = value
                    values[i] = last_out[n] = convert(value)
            out.append(values)
        return out

    def write(self, rows: list[dict[str, Any]], written_keys: list[Any] | None = None) -> int:
        """Write the rows; ``written_keys``: where to add the keys of the rows added or changed (a tuple each when
        the key has several columns)."""
        return self.write_values(self._driver_values(rows), written_keys, keyed=(rows, self.key_of))

    def write_values(self, values: list[list[Any]], written_keys: list[Any] | None = None,
                     keyed: tuple[Sequence[Any], Callable[[Any], Any]] | None = None) -> int:
        """Write rows given as driver values (:meth:`_driver_values`); ``keyed``: the rows they were converted
        from and how to read a row's key, for ``written_keys`` (default: the values and :attr:`key_of_values`)."""
        raw = self.conn.connection.driver_connection
        if written_keys is not None:
            if keyed is None:
                if self.key_of_values is None:
                    raise ValueError(f"upsert into {self.table.name}: a key column is converted, so the keys "
                                     "written cannot be read from the driver values")
                keyed = (values, self.key_of_values)
            return self._write_telling(raw, keyed, values, written_keys)
        if self.dialect == "sqlite":
            cursor = raw.cursor()
            try:
                last_id = self._last_id(cursor) if self.indexed is not None else None
                began = time.monotonic()
                cursor.executemany(self.sql, values)
                note_write(self.conn, self.table.name, began)  # logged when slow (store.write_watch)
                written = cursor.rowcount
                if self.indexed is not None and written > self._added_since(cursor, last_id):
                    # some existing rows changed: after the upsert, whose changed_at reads their old values
                    indexed_sql, params_of = self.indexed
                    cursor.executemany(indexed_sql, map(params_of, values))
                return written
            finally:
                cursor.close()
        with raw.cursor() as cursor:
            self._stage_rows(cursor, values)
            cursor.execute(self.sql)
            return cursor.rowcount

    def _stage_rows(self, cursor: Any, values: list[list[Any]]) -> None:
        """PostgreSQL: the rows into the staging table (emptied first), which the upsert then reads."""
        cursor.execute(f'TRUNCATE "{self.stage}"')
        with cursor.copy(self.copy_sql) as copy:
            for row_values in values:
                copy.write_row(row_values)


def _scalar_defaults(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        c.name: c.default.arg
        for c in table.c
        if c.name not in row and c.default is not None and c.default.is_scalar and not c.primary_key
    }


def upsert(
    conn: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str] = DEFAULT_KEY,
    now: datetime | None = None,
    batch_size: int = 10_000,
    indexed_apart: bool = True,
    changed_when: Sequence[str] | None = None,
    written_keys: list[Any] | None = None,
) -> int:
    """Insert or update ``rows`` (dicts with the same keys) in ``table``; return rows written.

    Rows with ``crm == "salesforce"`` have their ids normalized to 18 characters; when the
    same key appears twice in one call, the last row wins. When the table has
    ``synced_at``/``changed_at`` columns they are maintained here. Runs inside the caller's
    transaction: nothing is committed here.

    ``indexed_apart=False`` keeps the indexed columns in the conflict update (see the module
    docstring), for rows that each change an indexed column anyway (a match's ``matched_at``, a
    score's ``scored_at``): there the second statement would only add a lookup per row.

    ``changed_when`` names the columns whose change alone rewrites an existing row (a score's visible values,
    not its ``scored_at``, which is new on every row): the others are set only along with them, and the rows
    written (the count returned) are those added and those where one of them changed.

    ``written_keys`` (a list) gets the key of each row written, a tuple when the key has several columns.
    """
    now = now or utcnow()
    has_sync_columns = "changed_at" in table.c and "synced_at" in table.c
    written = 0
    columns: tuple[str, ...] | None = None
    column_set: set[str] = set()
    id_columns: list[str] = []
    writer: _Writer | None = None
    defaults: dict[str, Any] = {}
    pending: dict[tuple[Any, ...], dict[str, Any]] = {}

    def flush() -> int:
        if not pending:
            return 0
        assert writer is not None
        count = writer.write(list(pending.values()), written_keys)
        pending.clear()
        return count

    for raw in rows:
        row = dict(raw)
        if has_sync_columns:
            row.setdefault("synced_at", now)
            row.setdefault("changed_at", now)
        if columns is None:
            # Columns the rows leave out but that have a Python-side default (is_deleted=False):
            # filled in for new rows, never written over an existing row's value.
            defaults = _scalar_defaults(table, row)
            insert_only = frozenset(defaults)
            row.update(defaults)
            columns = tuple(row)
            unknown = [c for c in columns if c not in table.c]
            if unknown:
                raise ValueError(f"upsert into {table.name}: no such column(s) {unknown}")
            column_set = set(columns)
            not_set = sorted(set(changed_when or ()) - set(_update_columns(columns, key, insert_only)))
            if not_set:
                raise ValueError(f"upsert into {table.name}: changed_when names column(s) the rows do not update: "
                                 f"{not_set}")
            id_columns = [c for c in columns if _is_salesforce_id_column(c)]
            writer = _Writer(conn, table, columns, key, insert_only, indexed_apart,
                             tuple(changed_when) if changed_when is not None else None)
        elif defaults:
            row = {**defaults, **row}
        if row.keys() != column_set:
            raise ValueError(
                f"upsert into {table.name}: every row must have the same columns; "
                f"got {sorted(set(row) ^ set(columns))} in some rows only"
            )
        if row.get("crm") == "salesforce":
            normalize_salesforce_ids(row, id_columns)
        pending[tuple(row[k] for k in key)] = row
        if len(pending) >= batch_size:
            written += flush()
    written += flush()
    return written


class PreparedUpsert:
    """:func:`upsert` of one table's rows with one column set, split in two: converting rows to the driver's
    values, which needs no connection and so runs in a process forked to build the rows beside the writes (the
    score stage's save, see :mod:`worker.score_store`), and writing those values, which is then all the writing
    process does per row: saving the 182,000 entities an L increment rescored took it 8.3-10.1 CPU s with the
    rows given to :func:`upsert`, 4.8-6.5 s given their values.

    The rows must be what :func:`upsert` writes as given: every row the same columns, each key once, no
    bookkeeping column (``synced_at``, ``changed_at``) or default to fill in, no Salesforce id to normalize.
    """

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str], *, key: Sequence[str],
                 indexed_apart: bool = True, changed_when: Sequence[str] | None = None) -> None:
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"upsert into {table.name}: no such column(s) {unknown}")
        filled_in = [c for c in ("synced_at", "changed_at", "crm") if c in table.c]
        if filled_in:
            raise ValueError(f"upsert into {table.name}: its rows need upsert() ({filled_in} are filled in or "
                             "normalized there)")
        defaults = [c.name for c in table.c if c.name not in columns and c.default is not None and
                    c.default.is_scalar and not c.primary_key]
        if defaults:
            raise ValueError(f"upsert into {table.name}: columns with a default the rows leave out: {defaults}")
        self.columns = frozenset(columns)
        self._writer = _Writer(conn, table, tuple(columns), key, frozenset(), indexed_apart,
                               tuple(changed_when) if changed_when is not None else None)

    def driver_values(self, rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The rows as the driver takes them, in the statement's order (no database work)."""
        for row in rows:
            if row.keys() != self.columns:
                raise ValueError(f"upsert into {self._writer.table.name}: every row must have the columns "
                                 f"{sorted(self.columns)}; got {sorted(row)}")
        return self._writer._driver_values(list(rows))

    def write(self, values: list[list[Any]], written_keys: list[Any] | None = None) -> int:
        """Write :meth:`driver_values`' rows; ``written_keys``: as for :func:`upsert`."""
        return self._writer.write_values(values, written_keys)
