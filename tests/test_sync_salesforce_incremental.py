"""Incremental correctness of the Salesforce pull: timestamp ties across pages, changes during a run,
deletes (soft, undelete, hard), merges, an expired query locator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from test_sync_salesforce_support import client, cursors, sf_config, store_rows

from connectors.result import Progress
from connectors.salesforce import pull_salesforce
from sandbox.runner import SandboxHandle, run_sandbox
from sandbox.salesforce.context import API_LIMIT

TIED = 5000


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        yield handle


def _load_tied_accounts(handle: SandboxHandle, stamp: datetime) -> dict[str, str]:
    """5,000 accounts with one SystemModstamp; returns their names by id."""
    org = handle.sandbox.salesforce.org
    accounts = [{"Id": org.new_id(org.object("Account")), "Name": f"Tied {i:05d}", "SystemModstamp": stamp,
                 "CreatedDate": stamp, "LastModifiedDate": stamp} for i in range(TIED)]
    org.load("Account", accounts)
    return {a["Id"]: a["Name"] for a in accounts}


def test_5000_records_sharing_one_stamp_page_through_without_loss_or_loop(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    config = sf_config(fresh_sandbox, tmp_path, sync={"page_size": 500, "bulk_threshold_rows": 100_000},
                       pull={"objects": ["Account"]})
    pull_salesforce(engine, config)
    ids = _load_tied_accounts(fresh_sandbox, datetime.now(UTC) - timedelta(minutes=1))
    fresh_sandbox.request_log.clear()
    result = pull_salesforce(engine, config)
    assert result.objects["Account"].method == "rest" and result.objects["Account"].read == TIED
    assert fresh_sandbox.request_log.count(path="/query") == TIED // 500  # first page + 9 next pages, no loop
    assert set(store_rows(engine, "Account")) == set(ids)


def test_ties_resume_exactly_after_a_pause_mid_stamp(fresh_sandbox: SandboxHandle, engine: Engine, tmp_path) -> None:
    """The daily limit ends the run inside the 5,000 tied records; the next run resumes by (stamp, id)."""
    config = sf_config(fresh_sandbox, tmp_path, sync={"page_size": 500, "bulk_threshold_rows": 100_000,
                                                       "lookback_minutes": 0, "max_api_share": 1.0},
                       pull={"objects": ["Account"]})
    pull_salesforce(engine, config)
    stamp = datetime.now(UTC)  # after the first run's start: with no lookback, the next window starts there
    ids = sorted(_load_tied_accounts(fresh_sandbox, stamp))
    limits = fresh_sandbox.limits
    limits.set_maximum(API_LIMIT, limits.used(API_LIMIT) + 4)  # limits, the first page and two more
    paused = pull_salesforce(engine, config)
    assert paused.paused and paused.objects["Account"].read == 1500
    ts, cursor_id, state = cursors(engine)["Account"]
    assert ts == stamp.replace(microsecond=stamp.microsecond // 1000 * 1000) and cursor_id == ids[1499]
    assert state["window"]["moved"] is True
    limits.set_maximum(API_LIMIT, 100_000)
    fresh_sandbox.request_log.clear()
    resumed = pull_salesforce(engine, config)
    assert not resumed.paused and resumed.objects["Account"].read == TIED - 1500
    query = fresh_sandbox.request_log.entries(path="/queryAll")[0].query
    assert "Id+%3E+%27" + ids[1499] in query  # keyset: SystemModstamp = ts AND Id > last id
    assert set(store_rows(engine, "Account")) == set(ids)
    ts, cursor_id, state = cursors(engine)["Account"]
    assert cursor_id is None and "window" not in state


def test_an_expired_query_locator_continues_from_the_committed_position(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    config = sf_config(fresh_sandbox, tmp_path, sync={"page_size": 1000, "bulk_threshold_rows": 100_000},
                       pull={"objects": ["Account"]})
    pull_salesforce(engine, config)
    ids = _load_tied_accounts(fresh_sandbox, datetime.now(UTC) - timedelta(minutes=1))
    forgotten: list[int] = []

    def forget_locators(event: Progress) -> None:
        if event.event == "records" and not forgotten:
            fresh_sandbox.sandbox.salesforce.context.cursors.clear()  # like Salesforce expiring the cursor
            forgotten.append(event.read)

    result = pull_salesforce(engine, config, progress=forget_locators)
    assert forgotten == [1000] and not result.paused
    assert result.objects["Account"].read == TIED and set(store_rows(engine, "Account")) == set(ids)


def test_a_record_modified_during_the_run_is_read_again_by_the_next_run(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    config = sf_config(fresh_sandbox, tmp_path, sync={"page_size": 500, "bulk_threshold_rows": 100_000,
                                                       "lookback_minutes": 0}, pull={"objects": ["Account"]})
    pull_salesforce(engine, config)
    names = _load_tied_accounts(fresh_sandbox, datetime.now(UTC))
    ids = sorted(names)
    sf = client(fresh_sandbox)
    read_already, not_read_yet = ids[10], ids[-10]  # in the first page / in the last page

    def edit_mid_run(event: Progress) -> None:
        if event.event == "records" and event.read == 500:
            sf.Account.update(read_already, {"Name": "Edited after it was read"})
            sf.Account.update(not_read_yet, {"Name": "Edited before it was read"})

    during = pull_salesforce(engine, config, progress=edit_mid_run)
    assert not during.paused and during.objects["Account"].read == TIED
    rows = store_rows(engine, "Account")
    assert rows[read_already]["name"] == names[read_already]
    assert rows[not_read_yet]["name"] == "Edited before it was read"  # served with its new values
    after = pull_salesforce(engine, config)  # both edits are stamped after the first run's start
    assert after.objects["Account"].read == 2
    rows = store_rows(engine, "Account")
    assert rows[read_already]["name"] == "Edited after it was read"
    assert rows[not_read_yet]["name"] == "Edited before it was read"


def test_deleted_undeleted_and_hard_deleted(fresh_sandbox: SandboxHandle, engine: Engine, tmp_path) -> None:
    sf = client(fresh_sandbox)
    org = fresh_sandbox.sandbox.salesforce.org
    account_object = org.object("Account")
    kept, churned, purged = (sf.Account.create({"Name": n})["id"] for n in ("Kept", "Churned", "Purged"))
    config = sf_config(fresh_sandbox, tmp_path, pull={"objects": ["Account"], "hard_delete_check_minutes": 0})
    pull_salesforce(engine, config)

    sf.Account.delete(churned)
    result = pull_salesforce(engine, config)
    assert store_rows(engine, "Account")[churned]["is_deleted"] is True and result.objects["Account"].deleted >= 1

    org.undelete(account_object, churned, org.integration_user_id)
    pull_salesforce(engine, config)
    assert store_rows(engine, "Account")[churned]["is_deleted"] is False

    org.hard_delete(account_object, purged)  # no query returns it any more; only deleted/ lists it
    fresh_sandbox.request_log.clear()
    # deleted/ windows end on a whole second (Salesforce: a whole minute); a delete in the run's last
    # second belongs to the next run's window, so let this one fall inside the window.
    time.sleep(1.1)
    result = pull_salesforce(engine, config)
    rows = store_rows(engine, "Account")
    assert rows[purged]["is_deleted"] is True and result.objects["Account"].deleted == 1
    assert rows[churned]["is_deleted"] is False and rows[kept]["is_deleted"] is False
    assert fresh_sandbox.request_log.count(path="/sobjects/Account/deleted") == 1


def test_hard_deletes_are_checked_at_most_as_often_as_configured(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    config = sf_config(fresh_sandbox, tmp_path, pull={"objects": ["Account"], "hard_delete_check_minutes": 60})
    pull_salesforce(engine, config)
    fresh_sandbox.request_log.clear()
    pull_salesforce(engine, config)
    assert fresh_sandbox.request_log.count(path="/deleted") == 0


def test_a_full_pull_sweeps_away_records_the_org_no_longer_has(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    sf = client(fresh_sandbox)
    org = fresh_sandbox.sandbox.salesforce.org
    gone, stays = sf.Account.create({"Name": "Gone"})["id"], sf.Account.create({"Name": "Stays"})["id"]
    config = sf_config(fresh_sandbox, tmp_path, pull={"objects": ["Account"]})
    pull_salesforce(engine, config)
    org.hard_delete(org.object("Account"), gone)
    result = pull_salesforce(engine, config, full=True)
    rows = store_rows(engine, "Account")
    assert rows[gone]["is_deleted"] is True and rows[stays]["is_deleted"] is False
    assert result.objects["Account"].deleted == 1


def test_a_merge_flags_the_loser_and_keeps_the_master_id(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    sf = client(fresh_sandbox)
    org = fresh_sandbox.sandbox.salesforce.org
    master, loser = sf.Account.create({"Name": "Acme"})["id"], sf.Account.create({"Name": "ACME Inc"})["id"]
    contact = sf.Contact.create({"LastName": "Moved", "AccountId": loser})["id"]
    config = sf_config(fresh_sandbox, tmp_path, pull={"objects": ["Account", "Contact"]})
    pull_salesforce(engine, config)
    org.merge(org.object("Account"), master, [loser], org.integration_user_id)
    pull_salesforce(engine, config)
    accounts = store_rows(engine, "Account")
    assert accounts[loser]["is_deleted"] is True and accounts[loser]["merged_into"] == master
    assert accounts[master]["is_deleted"] is False and accounts[master]["merged_into"] is None
    assert store_rows(engine, "Contact")[contact]["account_crm_id"] == master


def test_a_large_increment_continues_in_bulk_after_the_first_rest_page(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    config = sf_config(fresh_sandbox, tmp_path, sync={"page_size": 200, "bulk_threshold_rows": 300},
                       pull={"objects": ["Account"], "bulk_page_records": 1000})
    pull_salesforce(engine, config)
    ids = _load_tied_accounts(fresh_sandbox, datetime.now(UTC) - timedelta(minutes=1))
    fresh_sandbox.request_log.clear()
    result = pull_salesforce(engine, config)
    counts = result.objects["Account"]
    assert counts.method == "rest+bulk" and counts.read == TIED and counts.upserted == TIED
    assert fresh_sandbox.request_log.count(path="/queryAll") == 1  # the first page told the size
    assert fresh_sandbox.request_log.count("POST", r"/jobs/query$") == 1
    assert fresh_sandbox.request_log.count("GET", r"/results$") == 5  # 4,800 records in pages of 1,000
    assert set(store_rows(engine, "Account")) == set(ids)
    _, cursor_id, state = cursors(engine)["Account"]
    assert cursor_id is None and "bulk" not in state and "window" not in state


def test_bulk_result_pages_resume_at_the_saved_locator(fresh_sandbox: SandboxHandle, engine: Engine, tmp_path) -> None:
    ids = _load_tied_accounts(fresh_sandbox, datetime.now(UTC) - timedelta(days=1))
    config = sf_config(fresh_sandbox, tmp_path, sync={"max_api_share": 1.0},
                       pull={"objects": ["Account"], "bulk_page_records": 1000})
    limits = fresh_sandbox.limits
    # limits, describe, job, status, two result pages: the third page's download hits the limit
    limits.set_maximum(API_LIMIT, limits.used(API_LIMIT) + 6)
    paused = pull_salesforce(engine, config, full=True)
    assert paused.paused and paused.objects["Account"].read == 2000
    saved = cursors(engine)["Account"][2]["bulk"]
    assert saved["locator"] and cursors(engine)["Account"][0] is None  # no high-water mark before the end
    limits.set_maximum(API_LIMIT, 100_000)
    fresh_sandbox.request_log.clear()
    resumed = pull_salesforce(engine, config)
    results = fresh_sandbox.request_log.entries("GET", r"/results$")
    assert len(results) == 3 and f"locator={saved['locator']}" in results[0].query
    assert resumed.objects["Account"].read == 3000  # the rest of the job, then an empty next window
    assert resumed.objects["Account"].method == "bulk+rest" and set(store_rows(engine, "Account")) == set(ids)
