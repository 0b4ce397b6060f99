"""A writeback pass over both CRMs: cross-CRM linked accounts, scoped passes, dropping the baseline,
and a worker killed halfway through (a real SIGKILL of the process writing)."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from test_writeback_support import (
    bump_engagement,
    change_scores,
    salesforce_mismatches,
    seed_hubspot,
    seed_salesforce,
    store_records,
    write_requests,
    writeback_config,
)

from connectors.hubspot.ratelimit import HubSpotRateLimiter
from connectors.retry import RetrySettings
from sandbox.clients import hubspot_client, simple_salesforce
from sandbox.runner import SandboxHandle, run_sandbox
from store.db import make_engine
from store.schema import AccountLink, Match, Score, WritebackState
from store.types import utcnow
from writeback import run as writeback_run
from writeback import source
from writeback.catalogue import Catalogue
from writeback.hubspot import HubSpotWriter
from writeback.provision import ProvisionReport
from writeback.provision_hubspot import provision_hubspot
from writeback.provision_salesforce import provision_salesforce
from writeback.run import run_writeback
from writeback.salesforce import SalesforceWriter
from writeback.state import drop_baseline

CONFIG = writeback_config()
CATALOGUE = Catalogue(CONFIG)
FAST = RetrySettings(attempts=5, initial_seconds=0.001, max_seconds=0.01)
COLLECTIONS = r"/composite/sobjects$"


@pytest.fixture(scope="module")
def provisioned() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        report = ProvisionReport(dry_run=False)
        provision_salesforce(simple_salesforce(handle), CATALOGUE, report)
        provision_hubspot(hubspot_client(handle), CATALOGUE, CONFIG, report)
        assert report.ok, report.fields
        yield handle


@pytest.fixture
def handle(provisioned: SandboxHandle) -> Iterator[SandboxHandle]:
    provisioned.reset()
    yield provisioned
    provisioned.reset()


def writers(handle: SandboxHandle) -> list[Any]:
    return [SalesforceWriter(simple_salesforce(handle), CATALOGUE, retry=FAST, bulk_poll_seconds=0.05),
            HubSpotWriter(hubspot_client(handle), CATALOGUE, retry=FAST, limiter=HubSpotRateLimiter(1000, 4.0))]


def scores_of(engine: Engine, kind: str, entity_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Score).where(Score.entity_kind == kind, Score.entity_id == entity_id)).one()


@pytest.fixture(params=[None, 1], ids=["one-chunk", "chunks-of-1"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int | None:
    """Records are read and diffed a chunk at a time (HubSpot's sent part by part as they are planned): the same
    writes whatever the chunk."""
    if request.param is not None:
        monkeypatch.setattr(source, "TARGET_CHUNK", request.param)
        monkeypatch.setattr(writeback_run, "STREAMED_CHUNK", request.param)
    return request.param


@pytest.mark.usefixtures("chunk")
def test_linked_accounts_show_the_canonical_scores_in_both_crms(handle: SandboxHandle, engine: Engine) -> None:
    sf_side = seed_salesforce(handle, engine, n_accounts=2)
    hs_side = seed_hubspot(handle, engine, n_companies=2, n_contacts=0)
    (sf_a, sf_a_id), (sf_b, _) = list(sf_side.accounts.items())
    (hs_a, hs_a_id), (hs_b, hs_b_id) = list(hs_side.accounts.items())
    # the seeded scores are random: company A's own are made unlike the account's whatever the draw
    seeded = scores_of(engine, "account", sf_a_id)
    change_scores(engine, "account", [hs_a_id], engagement=(seeded.engagement + 50) % 100,
                  grade=seeded.grade % 4 + 1)
    # HubSpot company A is the same business as Salesforce account A; the Salesforce one is canonical
    with engine.begin() as conn:
        conn.execute(insert(AccountLink).values(account_id=hs_a_id, canonical_account_id=sf_a_id, method="domain",
                                                confidence=0.97))
    # a HubSpot contact matched to the Salesforce account shows the HubSpot company it is linked to
    contact = store_records(engine, "hubspot", [], {"contacts": [("contact", _hubspot_contact(handle), None)]})
    contact_crm_id, contact_id = next(iter(contact.people["contacts"].items()))
    with engine.begin() as conn:
        conn.execute(insert(Match).values(person_id=contact_id, account_id=sf_a_id, decision="auto", confidence=0.95,
                                          reason="same email domain"))
    run_writeback(engine, CONFIG, writers(handle))

    canonical = scores_of(engine, "account", sf_a_id)
    own = scores_of(engine, "account", hs_a_id)
    assert abs(own.engagement - canonical.engagement) == pytest.approx(50)  # it kept scores of its own
    assert own.grade != canonical.grade
    sf = simple_salesforce(handle)
    sf_row = sf.query(f"SELECT ABM_Engagement_Score__c, ABM_Grade__c FROM Account WHERE Id = '{sf_a}'")["records"][0]
    hs = hubspot_client(handle)
    hs_row = hs.crm.companies.basic_api.get_by_id(hs_a, properties=["abm_engagement_score", "abm_grade"]).properties
    assert float(hs_row["abm_engagement_score"]) == sf_row["ABM_Engagement_Score__c"] == round(canonical.engagement, 1)
    assert int(hs_row["abm_grade"]) == sf_row["ABM_Grade__c"] == canonical.grade
    unlinked = hs.crm.companies.basic_api.get_by_id(hs_b, properties=["abm_engagement_score"]).properties
    assert float(unlinked["abm_engagement_score"]) == round(scores_of(engine, "account", hs_b_id).engagement, 1)
    person = hs.crm.contacts.basic_api.get_by_id(contact_crm_id, properties=["abm_matched_account"]).properties
    assert person["abm_matched_account"] == hs_a
    assert sf_b  # the other Salesforce account is written with its own scores (covered elsewhere)


def _hubspot_contact(handle: SandboxHandle) -> str:
    portal = handle.hubspot_portal
    email = f"linked-{uuid.uuid4().hex[:8]}@example.org"
    return str(portal.create(portal.object_type("contacts"), {"email": email})["hs_object_id"])


@pytest.mark.usefixtures("chunk")
def test_scoped_pass_and_dropped_baseline(handle: SandboxHandle, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=40, n_leads=10)
    chunks = [records for records, _ in source.iter_targets(engine, "salesforce", "Account", "account", chunk=7)]
    assert [len(c) for c in chunks] == [7] * 5 + [5]
    assert sorted(r.crm_id for c in chunks for r in c) == sorted(seeded.accounts)
    run_writeback(engine, CONFIG, writers(handle))
    one_account = next(iter(seeded.accounts.values()))
    handle.request_log.clear()
    scoped = run_writeback(engine, CONFIG, writers(handle)[:1], force=True, account_ids=[one_account])
    written = {o.object: o.written for o in scoped.objects}
    # the account, and the leads matched to it (every third lead is unmatched; 40 accounts take the others)
    assert written["Account"] == 1 and written["Lead"] <= 1
    assert handle.request_log.count("PATCH", COLLECTIONS) == 1 + written["Lead"]

    # a value cleared in the store must be cleared in the CRM after a rewrite, too
    change_scores(engine, "account", list(seeded.accounts.values()), predictive=None)
    assert drop_baseline(engine, crm="salesforce") > 0
    handle.request_log.clear()
    rewrite = run_writeback(engine, CONFIG, writers(handle)[:1])
    assert {o.object: o.written for o in rewrite.objects} == {"Account": 40, "Lead": 10, "Contact": 0}
    sf = simple_salesforce(handle)
    ids = ", ".join(f"'{i}'" for i in seeded.accounts)
    rows = sf.query_all(f"SELECT ABM_Predictive_Score__c FROM Account WHERE Id IN ({ids})")["records"]
    assert {r["ABM_Predictive_Score__c"] for r in rows} == {None}


def test_an_incremental_pass_reads_and_writes_only_what_changed_since(handle: SandboxHandle, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=20, n_leads=6)
    run_writeback(engine, CONFIG, writers(handle)[:1])
    since = utcnow()
    accounts = list(seeded.accounts.values())
    rescored, unscored = accounts[:2], accounts[2]
    bump_engagement(engine, "account", rescored, by=7)
    change_scores(engine, "account", rescored, scored_at=utcnow())
    bump_engagement(engine, "account", [unscored], by=7)  # changed, but not by a run after `since`
    matched = list(seeded.people["Lead"].values())[1]  # every third lead (the first) is unmatched
    with engine.begin() as conn:  # a match written since (its reason changed)
        found = conn.execute(update(Match).where(Match.person_id == matched)
                             .values(reason="same company name", matched_at=utcnow())).rowcount
    assert found == 1

    report = run_writeback(engine, CONFIG, writers(handle)[:1], changed_since=since)
    by = {o.object: o for o in report.objects}
    assert (by["Account"].records, by["Account"].written) == (2, 2)
    assert (by["Lead"].records, by["Lead"].written) == (1, 1)
    full = run_writeback(engine, CONFIG, writers(handle)[:1])
    assert {o.object: o.written for o in full.objects} == {"Account": 1, "Lead": 0, "Contact": 0}


# -- a worker killed halfway ------------------------------------------------------------------
def _write_in_child(database_url: str, base_url: str, ca_path: str, session: str) -> None:
    """The writing process: a plain simple-salesforce client on the sandbox, its own engine."""
    from simple_salesforce import Salesforce

    from sandbox.clients import sandbox_requests_session

    sf = Salesforce(instance_url=base_url, session_id=session, session=sandbox_requests_session(ca_path))
    engine = make_engine(database_url)
    run_writeback(engine, CONFIG, [SalesforceWriter(sf, CATALOGUE, retry=FAST)])


def test_killed_halfway_then_the_next_run_writes_only_what_is_missing(
    handle: SandboxHandle, engine: Engine, database_url: str
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=2000)
    handle.faults.delay(0.15, method="PATCH", path=COLLECTIONS, times=None)  # slow enough to kill mid-way
    context = multiprocessing.get_context("fork")  # the child inherits the imports: quick to start
    child = context.Process(target=_write_in_child, args=(database_url, handle.base_url, str(handle.ca_path),
                                                          handle.salesforce_session()))
    child.start()
    deadline = time.monotonic() + 60
    while handle.request_log.count("PATCH", COLLECTIONS) < 4 and time.monotonic() < deadline and child.is_alive():
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    sent = handle.request_log.count("PATCH", COLLECTIONS)
    assert 4 <= sent < 10

    handle.faults.clear()
    with engine.connect() as conn:
        recorded = set(conn.execute(select(WritebackState.crm_id).distinct()).scalars())
    assert len(recorded) % 200 == 0 and 0 < len(recorded) <= sent * 200  # whole batches, as they were answered
    handle.request_log.clear()
    resumed = run_writeback(engine, CONFIG, writers(handle)[:1])
    account = next(o for o in resumed.objects if o.object == "Account")
    assert account.written == 2000 - len(recorded)
    assert handle.request_log.count("PATCH", COLLECTIONS) == math.ceil((2000 - len(recorded)) / 200)
    handle.request_log.clear()
    assert run_writeback(engine, CONFIG, writers(handle)[:1]).total("changed") == 0
    assert write_requests(handle) == []
    assert salesforce_mismatches(simple_salesforce(handle), engine, CONFIG, "Account", list(seeded.accounts)) == []
