"""Full then incremental pull of the generator's orgs (``run_sandbox(seed=1, size=...)``): the store equals
the org, counts and field by field for a random sample of 1,000 records per object. S runs in the suite
on both backends; M (200,000 activities) is marked slow and runs on PostgreSQL only (its volume, not the
backend, is what it adds; ``test_sync_hubspot_generated``'s M runs on SQLite)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from test_sync_salesforce_support import OBJECTS, assert_store_equals_org, client, sf_config, stamped_before

from connectors.salesforce import pull_salesforce
from sandbox.runner import SandboxHandle, run_sandbox


def _change_a_little(handle: SandboxHandle) -> None:
    """Edits, creations, deletes and a merge, as a working day brings them."""
    sf = client(handle)
    org = handle.sandbox.salesforce.org
    rng = random.Random(3)
    accounts = sorted(r["Id"] for r in sf.query_all_iter("SELECT Id FROM Account"))
    contacts = sorted(r["Id"] for r in sf.query_all_iter("SELECT Id FROM Contact"))
    for account in rng.sample(accounts, 5):
        sf.Account.update(account, {"Industry": "Biotechnology", "NumberOfEmployees": 321})
    for contact in rng.sample(contacts, 3):
        sf.Contact.delete(contact)
    lead = sf.Lead.create({"LastName": "Nakamura", "Company": "新しい会社", "Email": "n@shin.jp"})["id"]
    sf.Task.create({"WhoId": lead, "TaskSubtype": "Call", "Type": "Call", "Status": "Completed",
                    "CallDurationInSeconds": 420, "Subject": "Discovery call", "ActivityDate": "2026-01-05"})
    master, loser = rng.sample(accounts, 2)
    org.merge(org.object("Account"), master, [loser], org.integration_user_id)


def _full_then_incremental(seed: int, size: str, engine: Engine, tmp_path) -> None:
    with run_sandbox(seed=seed, size=size, crms=("salesforce",)) as handle:
        config = sf_config(handle, tmp_path)
        full_start = datetime.now(UTC)
        full = pull_salesforce(engine, config, full=True)
        assert not full.paused and full.warnings == []
        sf = client(handle)
        in_window = {o: sf.query(f"SELECT COUNT() FROM {o}{stamped_before(full_start)}")["totalSize"] for o in OBJECTS}
        assert {o: full.objects[o].read for o in OBJECTS} == in_window
        assert_store_equals_org(engine, handle, full_start)
        _change_a_little(handle)
        incremental_start = datetime.now(UTC)
        incremental = pull_salesforce(engine, config)
        assert not incremental.paused and incremental.objects["Account"].upserted >= 6
        assert_store_equals_org(engine, handle, incremental_start)


def test_generated_s_org_full_then_incremental_equals_the_org(engine: Engine, tmp_path) -> None:
    _full_then_incremental(1, "S", engine, tmp_path)


@pytest.mark.slow
@pytest.mark.backends("postgresql")
def test_generated_m_org_full_then_incremental_equals_the_org(engine: Engine, tmp_path) -> None:
    _full_then_incremental(1, "M", engine, tmp_path)
