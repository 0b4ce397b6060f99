"""Batched ``INSERT ... ON CONFLICT DO UPDATE`` that touches only rows that changed.

Row-by-row upserts cap out at a few thousand rows a second; a multi-row statement per
batch runs at tens of thousands on both SQLite and PostgreSQL. Rows whose values are all
unchanged are not rewritten at all (no WAL traffic, no ``changed_at`` bump), and
``changed_at`` only moves when a *content* column changes, so a CRM stamp bumped by our
own writeback does not trigger rescoring.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Table, case, or_
from sqlalchemy.dialects import postgresql, sqlite

from store.ids import to_18
from store.types import utcnow

DEFAULT_KEY = ("crm", "object", "crm_id")

# Bookkeeping columns: a change in these alone is not a change of the record's content.
NOT_CONTENT = frozenset({"id", "synced_at", "changed_at", "modified_at"})

# SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535.
_MAX_PARAMS = {"sqlite": 32_000, "postgresql": 60_000}


def normalize_salesforce_ids(row: dict[str, Any]) -> dict[str, Any]:
    """Bring every Salesforce id in a row (the key and ``*_crm_id`` references) to 18 characters."""
    for column, value in row.items():
        if (column == "crm_id" or column.endswith("_crm_id") or column == "merged_into") and value:
            if len(value) == 15:
                row[column] = to_18(value)
            elif len(value) != 18:
                to_18(value)  # raises with a clear message
    return row


def _batches(rows: Iterable[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def upsert(
    conn: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str] = DEFAULT_KEY,
    now: datetime | None = None,
) -> int:
    """Insert or update ``rows`` (dicts with the same keys) in ``table``; return rows written.

    Rows with ``crm == "salesforce"`` have their ids normalized to 18 characters. When the
    table has ``synced_at``/``changed_at`` columns they are maintained here.
    """
    now = now or utcnow()
    dialect = conn.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    has_sync_columns = "changed_at" in table.c and "synced_at" in table.c
    written = 0
    columns: tuple[str, ...] | None = None
    pending: list[dict[str, Any]] = []

    def flush() -> int:
        if not pending:
            return 0
        assert columns is not None
        stmt = insert(table).values(pending)
        excluded = stmt.excluded
        update_columns = [c for c in columns if c not in key and c != "id"]
        content = [c for c in update_columns if c not in NOT_CONTENT]
        set_: dict[str, Any] = {c: excluded[c] for c in update_columns}
        compared = [c for c in update_columns if c not in ("synced_at", "changed_at")]
        changed_any = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in compared))
        if has_sync_columns and content:
            content_changed = or_(*(table.c[c].is_distinct_from(excluded[c]) for c in content))
            set_["changed_at"] = case((content_changed, excluded["changed_at"]), else_=table.c.changed_at)
        if not compared:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        else:
            stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=set_, where=changed_any)
        result = conn.execute(stmt.execution_options(preserve_rowcount=True))
        count = result.rowcount
        assert count >= 0, f"{dialect} did not report how many rows the upsert wrote"
        pending.clear()
        return count

    batch_size = 1000
    for raw in rows:
        row = dict(raw)
        if row.get("crm") == "salesforce":
            normalize_salesforce_ids(row)
        if has_sync_columns:
            row.setdefault("synced_at", now)
            row.setdefault("changed_at", now)
        if columns is None:
            columns = tuple(row)
            batch_size = max(1, min(1000, _MAX_PARAMS.get(dialect, 30_000) // len(columns)))
        elif tuple(row) != columns:
            if set(row) != set(columns):
                raise ValueError(
                    f"upsert into {table.name}: every row must have the same columns; "
                    f"got {sorted(set(row) ^ set(columns))} in some rows only"
                )
            row = {c: row[c] for c in columns}
        pending.append(row)
        if len(pending) >= batch_size:
            written += flush()
    written += flush()
    return written
