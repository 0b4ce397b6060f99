"""Deletes that queries cannot show: hard deletes, records that stopped being activities, full-pull sweeps.

Soft deletes and merges arrive through queryAll with ``IsDeleted`` (and ``MasterRecordId``)
like any other change. Records purged from the recycle bin, or deleted with Bulk's hard
delete, only appear in the ``deleted/`` window, as ids with a deletion time. A full pull can
also sweep: whatever the store has that the full read did not return is gone from the org.
Every delete here is a soft delete in the store (``is_deleted``), so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import Connection, Table, and_, column, exists, select, text, update
from sqlalchemy import table as table_clause

from store.ids import to_18

CRM = "salesforce"
CHUNK = 500
SEEN_TABLE = "abm_seen_ids"


def flag_deleted(conn: Connection, table: Table, object_name: str, ids: Iterable[str], now: datetime) -> int:
    """Mark live rows of these ids deleted; returns how many changed."""
    pending = sorted({to_18(i) for i in ids})
    changed = 0
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        changed += conn.execute(
            update(table)
            .where(table.c.crm == CRM, table.c.object == object_name, table.c.crm_id.in_(chunk),
                   table.c.is_deleted.is_(False))
            .values(is_deleted=True, changed_at=now, synced_at=now)
        ).rowcount
    return changed


def flag_hard_deleted(
    conn: Connection, table: Table, object_name: str, deleted: Mapping[str, datetime], now: datetime
) -> int:
    """Flag ids from a ``deleted/`` window, unless the store saw the record modified after its deletion
    (it was undeleted since: the undelete bumped its modification time)."""
    by_id = {to_18(k): v for k, v in deleted.items()}
    pending = sorted(by_id)
    still_deleted: list[str] = []
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        rows = conn.execute(
            select(table.c.crm_id, table.c.modified_at).where(
                and_(table.c.crm == CRM, table.c.object == object_name, table.c.crm_id.in_(chunk),
                     table.c.is_deleted.is_(False))
            )
        )
        still_deleted += [crm_id for crm_id, modified in rows if modified is None or modified < by_id[crm_id]]
    return flag_deleted(conn, table, object_name, still_deleted, now)


class SeenIds:
    """Ids a full pull returned, in a temporary table on the pull's connection, for the sweep."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {SEEN_TABLE} (crm_id VARCHAR(64) PRIMARY KEY)"))
        conn.execute(text(f"DELETE FROM {SEEN_TABLE}"))

    def add(self, ids: Iterable[str]) -> None:
        values = [{"id": i} for i in ids]
        if values:
            self.conn.execute(text(f"INSERT INTO {SEEN_TABLE} (crm_id) VALUES (:id) ON CONFLICT DO NOTHING"), values)

    def sweep(self, table: Table, object_name: str, now: datetime) -> int:
        """Flag live rows of the object that the full pull did not return."""
        seen = table_clause(SEEN_TABLE, column("crm_id"))
        return self.conn.execute(
            update(table)
            .where(table.c.crm == CRM, table.c.object == object_name, table.c.is_deleted.is_(False),
                   ~exists().where(seen.c.crm_id == table.c.crm_id))
            .values(is_deleted=True, changed_at=now, synced_at=now)
        ).rowcount

    def close(self) -> None:
        self.conn.execute(text(f"DELETE FROM {SEEN_TABLE}"))
