"""driver_batches: every row exactly once as plain tuples, whatever the batch size (the first row
used to be lost to SQLAlchemy's prefetch buffer when the cursor was read directly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from store.cursor_rows import driver_batches
from store.schema import Activity
from store.upsert import upsert

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("size", [1, 3, 7, 10, 50])
def test_every_row_once_in_batches(engine: Engine, size: int) -> None:
    rows = [{"crm": "hubspot", "object": "calls", "crm_id": f"C{i}", "activity_type": "call_connected",
             "occurred_at": START + timedelta(hours=i), "person_crm_id": f"P{i}"} for i in range(10)]
    with engine.begin() as conn:
        upsert(conn, Activity.__table__, rows)
    table = Activity.__table__
    query = select(table.c.crm_id, table.c.person_crm_id).order_by(table.c.id)
    with engine.connect() as conn:
        batches = list(driver_batches(conn, query, size))
        assert all(0 < len(batch) <= size for batch in batches)
        got = [row for batch in batches for row in batch]
        assert got == [(f"C{i}", f"P{i}") for i in range(10)]
        assert all(type(row) is tuple for row in got)
        # The connection is usable afterwards (the result was closed), and an empty result gives no batch.
        assert list(driver_batches(conn, query.where(table.c.crm == "salesforce"), size)) == []
