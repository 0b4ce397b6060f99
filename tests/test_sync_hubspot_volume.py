"""Volume and pacing: 25,000 contacts sharing one modification timestamp, and a full sync against a
portal limited to 100 requests per 10 seconds. Slow by nature (tens of seconds each): marked ``slow``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from test_sync_hubspot import (
    hubspot_config,
    make_store,
    now_ms,
    seed_portal,
    store_rows,
)

from connectors.hubspot import HubSpotSyncTuning, pull_hubspot
from sandbox.runner import SandboxHandle, run_sandbox
from store.schema import SyncCursor

pytestmark = pytest.mark.slow


@pytest.fixture
def hs() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        handle.hubspot_limits.configure(per_ten_seconds=1000, search_per_second=10)
        yield handle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_store(tmp_path / "abm.db")
    yield engine
    engine.dispose()


def test_25000_contacts_sharing_one_timestamp_are_read_once_each(hs: SandboxHandle, store: Engine,
                                                                 tmp_path: Path) -> None:
    config = hubspot_config(hs, tmp_path)
    tuning = HubSpotSyncTuning(association_sweep_hours=None)
    pull_hubspot(store, config, objects=["contacts"], tuning=tuning)  # an empty portal: the cursor is set
    tied = now_ms() - 60_000  # inside the next run's lookback window
    hs.hubspot_portal.load("contacts", ({"id": str(7_000_000 + i), "createdAt": tied, "updatedAt": tied,
                                         "properties": {"email": f"tie{i}@bulk.example"}} for i in range(25_000)))
    hs.request_log.clear()
    result = pull_hubspot(store, config, objects=["contacts"], tuning=tuning)
    people = store_rows(store, "people", "contacts")
    assert len(people) == 25_000 and result.objects["contacts"].done
    searches = hs.request_log.count("POST", r"/search$")
    assert searches <= 25_000 // 200 + 3  # one tie page of overlap, no loop, never past the 10,000 cap
    assert not [e for e in hs.request_log.entries() if e.status and e.status >= 400]
    with store.connect() as conn:
        cursor = conn.execute(select(SyncCursor.state, SyncCursor.cursor_ts).where(
            SyncCursor.crm == "hubspot", SyncCursor.object == "contacts")).one()
    assert "search" not in cursor.state and cursor.cursor_ts is not None


# -- pacing -----------------------------------------------------------------------------------
def test_a_full_sync_at_100_requests_per_10_seconds_meets_no_429(tmp_path: Path, store: Engine) -> None:
    with run_sandbox() as handle:
        handle.hubspot_limits.configure(per_ten_seconds=100, search_per_second=5)
        seed_portal(handle, contacts=11_000, engagements=10, events=50)
        config = hubspot_config(handle, tmp_path, requests_per_10s=100, search_requests_per_second=4.0)
        full = pull_hubspot(store, config)
        assert full.api_calls > 110
        handle.hubspot_portal.load("contacts", ({"id": str(8_000_000 + i), "updatedAt": now_ms() - 1000,
                                                 "createdAt": now_ms() - 1000, "properties": {}}
                                                for i in range(1_500)))
        pull_hubspot(store, config, objects=["contacts"])  # search pages too, under their own limit
        answers = [e.status for e in handle.request_log.entries()]
        assert len(answers) > 130 and 429 not in answers
        assert len(store_rows(store, "people", "contacts")) == 12_500
    with store.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM sync_cursors WHERE crm = 'hubspot'")).scalar() >= 8

