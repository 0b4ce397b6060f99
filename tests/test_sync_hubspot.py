"""The HubSpot pull against the sandbox over HTTPS, through hubspot-api-client and httpx.

Each test gets its own sandbox (a third of a second to start) and seeds it through the portal's
bulk loader, so tests never see each other's records. The expected store is computed here from
the portal's own records and associations, independently of the connector's mapping code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, event, select, text
from typer.testing import CliRunner

from config.connections import HubSpotConfig
from config.model import AbmConfig
from connectors.hubspot import pull_hubspot
from connectors.hubspot.client import HubSpotApi
from connectors.hubspot.record_pull import HubSpotSyncTuning
from connectors.result import SyncResult
from connectors.retry import RetrySettings
from sandbox.clients import httpx_client, hubspot_client
from sandbox.hubspot.associations import ASSOCIATION_TYPES, default_type
from sandbox.runner import SandboxHandle, run_sandbox
from store import migrate
from store.db import make_engine
from store.schema import CRM_RECORD_TABLES, Activity, Person
from store.touch_refs import resolve_touch_refs
from worker.cli import app

DAY_MS = 86_400_000
FAST = {"requests_per_10s": 1000, "search_requests_per_second": 10.0}


# -- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture
def hs() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        handle.hubspot_limits.configure(per_ten_seconds=1000, search_per_second=10)
        yield handle


def make_store(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def store(engine: Engine) -> Engine:
    """The conftest database: SQLite here, and PostgreSQL too where it is configured (CI)."""
    return engine


def hubspot_config(handle: SandboxHandle, tmp_path: Path, **overrides: Any) -> AbmConfig:
    """A configuration whose ``hubspot`` section points at the sandbox (token in a file, CA trusted)."""
    token = tmp_path / "hubspot-token"
    token.write_text(handle.hubspot_token)
    values: dict[str, Any] = {"enabled": True, "base_url": handle.base_url, "ca_file": handle.ca_path,
                              "access_token_file": token, **FAST}
    values.update(overrides)
    return AbmConfig(hubspot=HubSpotConfig(**values))


def now_ms() -> int:
    return int(time.time() * 1000)


def seed_portal(handle: SandboxHandle, seed: int = 7, companies: int = 30, contacts: int = 90, deals: int = 20,
                engagements: int = 40, events: int = 120) -> dict[str, list[str]]:
    """A small portal: companies (half linked to Salesforce), contacts with primary and extra companies,
    deals, calls, emails and meetings on contacts and companies, email and web events. Ids by object."""
    rng = random.Random(seed)
    portal = handle.hubspot_portal
    base = now_ms() - 5 * DAY_MS

    def stamp() -> int:
        return base + rng.randrange(0, 4 * DAY_MS)

    def record(record_id: int, props: dict[str, Any]) -> dict[str, Any]:
        created = stamp()
        return {"id": str(record_id), "properties": props, "createdAt": created,
                "updatedAt": created + rng.randrange(0, 3_600_000)}

    company_ids = [3_000_000 + i for i in range(companies)]
    portal.load("companies", [record(i, {
        "name": f"Company {n}", "domain": f"company{n}.example", "website": f"https://www.company{n}.example",
        "industry": rng.choice(["Software", "Retail", "Banking"]), "city": "Lyon", "country": "France",
        "numberofemployees": rng.randrange(5, 5000), "annualrevenue": rng.randrange(10**5, 10**8),
        "salesforceaccountid": f"001{n:015d}" if n % 2 == 0 else None,
    }) for n, i in enumerate(company_ids)])
    contact_ids = [4_000_000 + i for i in range(contacts)]
    portal.load("contacts", [record(i, {
        "firstname": f"First{n}", "lastname": f"Last{n}", "email": f"person{n}@company{n % companies}.example",
        "jobtitle": rng.choice(["CFO", "Engineer", "VP Sales"]), "hs_lead_status": rng.choice(["NEW", "OPEN"]),
    }) for n, i in enumerate(contact_ids)])
    links: list[tuple[str, int, str, int, Any]] = []
    for n, contact in enumerate(contact_ids):
        if n % 10 == 9:
            continue  # some contacts have no company
        links.append(("contacts", contact, "companies", company_ids[n % companies], ASSOCIATION_TYPES[1]))
        links.append(("contacts", contact, "companies", company_ids[n % companies], ASSOCIATION_TYPES[279]))
        if n % 4 == 0:
            links.append(("contacts", contact, "companies", company_ids[(n + 1) % companies], ASSOCIATION_TYPES[279]))
    deal_ids = [5_000_000 + i for i in range(deals)]
    portal.load("deals", [record(i, {
        "dealname": f"Deal {n}", "dealstage": rng.choice(["qualifiedtobuy", "closedwon", "closedlost"]),
        "amount": rng.randrange(1000, 90000), "closedate": stamp(), "pipeline": "default",
    }) for n, i in enumerate(deal_ids)])
    for n, deal in enumerate(deal_ids):
        links.append(("deals", deal, "companies", company_ids[n % companies], ASSOCIATION_TYPES[5]))
    ids: dict[str, list[str]] = {"companies": [str(i) for i in company_ids], "contacts": [str(i) for i in contact_ids],
                                 "deals": [str(i) for i in deal_ids]}
    for k, (object_type, props_of) in enumerate([
        ("calls", lambda n: {"hs_call_title": f"Call {n}", "hs_call_duration": rng.choice([0, 90_000, 900_000]),
                             "hs_call_disposition": rng.choice(["f240bbac-87c9-4f6e-bf70-924b57d47db7", "busy"])}),
        ("emails", lambda n: {"hs_email_subject": f"Re: {n}",
                              "hs_email_direction": rng.choice(["EMAIL", "INCOMING_EMAIL"])}),
        ("meetings", lambda n: {"hs_meeting_title": f"Meeting {n}",
                                "hs_meeting_outcome": rng.choice(["SCHEDULED", "COMPLETED", "CANCELED"])}),
    ]):
        object_ids = [6_000_000 + 100_000 * k + i for i in range(engagements)]
        portal.load(object_type, [record(i, {"hs_timestamp": stamp(), **props_of(n)})
                                  for n, i in enumerate(object_ids)])
        for n, engagement in enumerate(object_ids):
            contact = contact_ids[(7 * n) % contacts]
            links.append((object_type, engagement, "contacts", contact, default_type(object_type, "contacts")))
            if n % 3:
                company = company_ids[n % companies]
                links.append((object_type, engagement, "companies", company, default_type(object_type, "companies")))
        ids[object_type] = [str(i) for i in object_ids]
    portal.associations.add_many(links)
    emails = [f"person{n}@company{n % companies}.example" for n in range(contacts)] + ["stranger@nowhere.example"]
    handle.hubspot_events.load_email_events({
        "id": f"em-{n}", "type": rng.choice(["OPEN", "CLICK", "DELIVERED"]), "created": stamp(),
        "recipient": rng.choice(emails), "emailCampaignId": 900 + n % 3, "subject": "Newsletter",
    } for n in range(events))
    handle.hubspot_events.load_web_events({
        "id": f"web-{n}", "objectType": "contacts", "objectId": rng.choice(contact_ids), "occurredAt": stamp(),
        "eventType": "e_visited_page" if n % 4 else "e_submitted_form",
        "properties": {"hs_url": rng.choice(["https://x.example/pricing", "https://x.example/"]),
                       "hs_form_title": "Newsletter signup"},
    } for n in range(events))
    return ids


def store_rows(engine: Engine, table: str, object_name: str, *, live: bool = True,
               columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Store rows by crm_id: every column, or ``crm_id`` and ``columns`` (an M org's rows read whole, every
    column converted, took half of :func:`assert_store_matches_portal`)."""
    t = CRM_RECORD_TABLES[table]
    chosen = [t] if columns is None else [t.c.crm_id, *(t.c[c] for c in columns)]
    query = select(*chosen).where(t.c.crm == "hubspot", t.c.object == object_name)
    if live:
        query = query.where(t.c.is_deleted.is_(False))
    with engine.connect() as conn:
        return {r.crm_id: dict(r._mapping) for r in conn.execute(query)}


def store_snapshot(engine: Engine) -> dict[str, list[tuple]]:
    """Every HubSpot row of every table, without the columns that say when it was written."""
    out = {}
    with engine.connect() as conn:
        for name, table in CRM_RECORD_TABLES.items():
            cols = [c for c in table.c if c.name not in ("id", "synced_at", "changed_at")]
            rows = conn.execute(select(*cols).where(table.c.crm == "hubspot").order_by(table.c.object,
                                                                                        table.c.crm_id)).all()
            out[name] = [tuple(r) for r in rows]
    return out


def portal_truth(handle: SandboxHandle, object_type: str) -> dict[str, dict[str, Any]]:
    """Live records as HubSpot sends them, every property included."""
    portal = handle.hubspot_portal
    obj = portal.object_type(object_type)
    rows, _ = portal.page(obj, 0, 10**9, False)
    props = list(obj.properties.values())
    return {str(r["hs_object_id"]): portal.to_json(obj, r, props)["properties"] for r in rows}


def expected_links(handle: SandboxHandle, from_type: str, ids: list[str], to_type: str,
                   primary: int | None = None) -> dict[str, str | None]:
    """The id the store should point at: the primary association, else the lowest associated id."""
    found = handle.hubspot_portal.associations.targets_for(from_type, [int(i) for i in ids], to_type)
    out: dict[str, str | None] = {}
    for record_id in ids:
        targets = found.get(int(record_id), [])
        chosen = [a for a in targets if primary in a.type_ids] or sorted(targets, key=lambda a: a.to_id)
        out[record_id] = str(chosen[0].to_id) if chosen else None
    return out


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def clean(value: str | None) -> str | None:
    """A property as the store keeps text: stripped, empty as None."""
    return value.strip() or None if value is not None else None


def number(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def expected_type(object_type: str, props: dict[str, Any], as_of: datetime | None = None) -> str | None:
    """The default rules, restated: calls by duration, emails by direction, meetings by outcome and end
    (held once the end is past ``as_of``, the start of the last pull, or else now)."""
    if object_type == "calls":
        seconds = int(number(props.get("hs_call_duration")) or 0) // 1000
        return "meaningful_conversation" if seconds >= 300 else "call_connected" if seconds >= 30 else "call"
    if object_type == "emails":
        return "email_reply" if props.get("hs_email_direction") == "INCOMING_EMAIL" else "email_sent"
    outcome = props.get("hs_meeting_outcome")
    if outcome in ("CANCELED", "NO_SHOW"):
        return None
    end = when(props.get("hs_meeting_end_time"))
    held = outcome == "COMPLETED" or (end is not None and end <= (as_of or datetime.now(UTC)))
    return "meeting_completed" if held else "meeting_scheduled"


def assert_store_matches_portal(handle: SandboxHandle, engine: Engine, as_of: datetime | None = None) -> None:
    """Counts and every mapped field of every record, associations included; ``as_of`` is when the last
    pull started, which decides whether a scheduled meeting has been held."""
    companies = portal_truth(handle, "companies")
    accounts = store_rows(engine, "accounts", "companies", columns=(
        "name", "website", "industry", "city", "country", "domain", "employees", "annual_revenue",
        "linked_salesforce_id", "modified_at", "created_at"))
    assert set(accounts) == set(companies)
    for crm_id, props in companies.items():
        row = accounts[crm_id]
        assert (row["name"], row["website"], row["industry"], row["city"], row["country"]) == tuple(
            clean(props.get(k)) for k in ("name", "website", "industry", "city", "country")), crm_id
        if props.get("domain"):
            assert row["domain"] == props["domain"].strip().lower()
        employees = number(props.get("numberofemployees"))
        assert row["employees"] == (int(employees) if employees is not None else None)
        assert row["annual_revenue"] == number(props.get("annualrevenue"))
        assert row["linked_salesforce_id"] == clean(props.get("salesforceaccountid"))
        assert row["modified_at"] == when(props["hs_lastmodifieddate"])
        assert row["created_at"] == when(props["createdate"])

    contacts = portal_truth(handle, "contacts")
    people = store_rows(engine, "people", "contacts", columns=(
        "kind", "first_name", "last_name", "email", "title", "status", "account_crm_id", "modified_at"))
    assert set(people) == set(contacts)
    primary = expected_links(handle, "contacts", list(contacts), "companies", primary=1)
    for crm_id, props in contacts.items():
        row = people[crm_id]
        assert row["kind"] == "contact"
        assert (row["first_name"], row["last_name"], row["email"], row["title"], row["status"]) == tuple(
            clean(props.get(k)) for k in ("firstname", "lastname", "email", "jobtitle", "hs_lead_status")), crm_id
        assert row["account_crm_id"] == (primary[crm_id] or clean(props.get("associatedcompanyid"))), crm_id
        assert row["modified_at"] == when(props["lastmodifieddate"])

    deals = portal_truth(handle, "deals")
    opportunities = store_rows(engine, "opportunities", "deals",
                               columns=("name", "stage", "amount", "is_won", "is_closed", "account_crm_id"))
    assert set(opportunities) == set(deals)
    deal_company = expected_links(handle, "deals", list(deals), "companies", primary=5)
    for crm_id, props in deals.items():
        row = opportunities[crm_id]
        assert (row["name"], row["stage"], row["amount"]) == (clean(props.get("dealname")),
                                                                clean(props.get("dealstage")),
                                                                number(props.get("amount")))
        assert row["is_won"] == (props.get("hs_is_closed_won") == "true")
        assert row["is_closed"] == (props.get("hs_is_closed") == "true")
        assert row["account_crm_id"] == deal_company[crm_id]

    for object_type in ("calls", "emails", "meetings"):
        truth = portal_truth(handle, object_type)
        rows = store_rows(engine, "activities", object_type,
                          columns=("activity_type", "occurred_at", "person_crm_id", "account_crm_id"))
        kept = {i for i, p in truth.items() if expected_type(object_type, p, as_of) is not None}
        assert set(rows) == kept, object_type
        person = expected_links(handle, object_type, list(kept), "contacts")
        company = expected_links(handle, object_type, list(kept), "companies")
        for crm_id in kept:
            row = rows[crm_id]
            assert row["activity_type"] == expected_type(object_type, truth[crm_id], as_of), crm_id
            assert row["occurred_at"] == (when(truth[crm_id]["hs_timestamp"]) or when(truth[crm_id]["hs_createdate"]))
            assert (row["person_crm_id"], row["account_crm_id"]) == (person[crm_id], company[crm_id])

    # An event keeps the contact it was read for when that contact is archived later (the store
    # marks the person deleted), so recipients resolve against archived contacts too.
    portal = handle.hubspot_portal
    archived, _ = portal.page(portal.object_type("contacts"), 0, 10**9, True)
    emails = {str(r["email"]).lower(): str(r["hs_object_id"]) for r in archived if r.get("email")}
    emails |= {p["email"].lower(): i for i, p in contacts.items() if p.get("email")}
    email_rows = store_rows(engine, "activities", "email_events", columns=("activity_type", "person_crm_id"))
    with handle.hubspot_portal.storage.transaction() as conn:
        stored = conn.execute("SELECT id, type, recipient FROM hs_email_events").fetchall()
    wanted = {event_id: (kind, recipient) for event_id, kind, recipient in stored if kind in ("OPEN", "CLICK")}
    assert set(email_rows) == set(wanted)
    for event_id, (kind, recipient) in wanted.items():
        row = email_rows[event_id]
        assert row["activity_type"] == {"OPEN": "email_open", "CLICK": "email_click"}[kind]
        assert row["person_crm_id"] == emails.get(recipient)
    with handle.hubspot_portal.storage.transaction() as conn:
        web = conn.execute("SELECT id, object_id FROM hs_web_events WHERE object_type = 'contacts' AND "
                           "event_type IN ('e_visited_page', 'e_submitted_form')").fetchall()
    web_rows = store_rows(engine, "activities", "web_events", columns=("person_crm_id",))
    assert {i: r["person_crm_id"] for i, r in web_rows.items()} == {i: o for i, o in web}


QUICK_RETRIES = RetrySettings(initial_seconds=0.05, max_seconds=0.5)


def quick_pull(engine: Engine, config: AbmConfig, **kwargs: Any) -> SyncResult:
    """A pull whose retries back off in tenths of seconds, not seconds, and whose reads time out after
    2 s, not 60 (same policy otherwise)."""
    api = HubSpotApi(config.hubspot, retry=QUICK_RETRIES, timeout_s=2.0)
    try:
        return pull_hubspot(engine, config, api=api, **kwargs)
    finally:
        api.close()


def full_then_incremental(engine: Engine, config: AbmConfig) -> list[SyncResult]:
    return [quick_pull(engine, config), quick_pull(engine, config)]


# -- full and incremental ---------------------------------------------------------------------
def testfull_then_incremental_sync_equals_the_portal(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    ids = seed_portal(hs)
    config = hubspot_config(hs, tmp_path)
    full = pull_hubspot(store, config)
    assert not full.paused and full.warnings == [
        "hubspot contacts: the portal has no property numemployees; skipped (the columns they fill stay empty)"]
    assert all(c.done for c in full.objects.values())
    assert_store_matches_portal(hs, store)
    assert full.api_calls == hs.request_log.count()

    # Changes between runs: edits, a new contact with a company, an archived deal, new events.
    client = hubspot_client(hs)
    client.crm.contacts.basic_api.update(ids["contacts"][3], {"properties": {"jobtitle": "Chief Data Officer"}})
    client.crm.companies.basic_api.update(ids["companies"][2], {"properties": {"name": "Renamed SA"}})
    created = client.crm.contacts.basic_api.create({"properties": {"email": "new@company1.example",
                                                                  "firstname": "New"}})
    hs.hubspot_portal.associations.add("contacts", int(created.id), "companies", int(ids["companies"][1]),
                                      ASSOCIATION_TYPES[1])
    client.crm.deals.basic_api.archive(ids["deals"][0])
    hs.hubspot_events.load_email_events([{"id": "late-open", "type": "OPEN", "created": now_ms() - 1000,
                                          "recipient": "new@company1.example"}])
    hs.request_log.clear()

    incremental = pull_hubspot(store, config)
    assert not incremental.full and not incremental.paused
    assert_store_matches_portal(hs, store)
    assert store_rows(store, "opportunities", "deals", live=False)[ids["deals"][0]]["is_deleted"]
    assert store_rows(store, "activities", "email_events")["late-open"]["person_crm_id"] == created.id
    counters = hs.request_log.counters()
    assert counters.get("POST /crm/v3/objects/{objectType}/search") == 6  # one page per CRM object
    assert "GET /crm/v3/properties/{objectType}" not in counters  # the property lists are cached for a day
    assert incremental.objects["contacts"].method == "search"


def test_an_object_most_of_which_changed_is_listed_not_searched(hs: SandboxHandle, store: Engine,
                                                                tmp_path: Path) -> None:
    """The run after a full run re-reads every record its write-back stamped: when the first search page's
    total says that listing the object takes less of the portal's time (here 400 of 450 contacts: 5 list
    pages against another search, at the test's rates), the pull lists it, associations inline."""
    ids = seed_portal(hs, contacts=450)
    config = hubspot_config(hs, tmp_path, sync={"lookback_minutes": 0})  # each window: the changes since the last
    assert not pull_hubspot(store, config).paused
    portal = hs.hubspot_portal
    contacts = portal.object_type("contacts")
    for n, contact_id in enumerate(ids["contacts"][:400]):
        portal.update(contacts, int(contact_id), {"jobtitle": f"Title {n}"})
    portal.update(portal.object_type("companies"), int(ids["companies"][0]), {"name": "Renamed AG"})
    hs.request_log.clear()

    listed = pull_hubspot(store, config)
    assert not listed.paused and listed.objects["contacts"].done
    assert listed.objects["contacts"].method == "list" and listed.objects["companies"].method == "search"
    assert_store_matches_portal(hs, store)
    assert hs.request_log.count("POST", r"/crm/v3/objects/contacts/search$") == 1  # the page that told the total
    assert hs.request_log.count(path=r"^/crm/v4/associations/contacts/") == 0  # inline in the list pages
    assert len([e for e in hs.request_log.entries("GET", r"/crm/v3/objects/contacts$")
                if "archived=False" in e.query]) == 5

    # the window is complete: the next run searches again from its end
    portal.update(contacts, int(ids["contacts"][0]), {"jobtitle": "Chief Data Officer"})
    again = pull_hubspot(store, config)
    assert again.objects["contacts"].method == "search" and again.objects["contacts"].upserted == 1
    assert_store_matches_portal(hs, store)


def test_objects_are_pulled_side_by_side_and_all_land(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    """While one object's search waits on HubSpot, the next objects' pages are read; the store still
    equals the portal and every call is counted once."""
    ids = seed_portal(hs)
    config = hubspot_config(hs, tmp_path)
    assert not pull_hubspot(store, config).paused
    client = hubspot_client(hs)
    client.crm.companies.basic_api.update(ids["companies"][2], {"properties": {"name": "Renamed GmbH"}})
    client.crm.contacts.basic_api.update(ids["contacts"][3], {"properties": {"jobtitle": "Head of Data"}})
    hs.request_log.clear()
    hs.faults.delay(2.0, method="POST", path="/crm/v3/objects/companies/search$", times=1)
    try:
        incremental = pull_hubspot(store, config)
    finally:
        hs.faults.clear()
    assert not incremental.paused and all(c.done for c in incremental.objects.values())
    assert_store_matches_portal(hs, store)
    assert incremental.api_calls == hs.request_log.count()
    [slow] = [e for e in hs.request_log.entries("POST", "/crm/v3/objects/companies/search$") if e.fault]
    others = hs.request_log.entries(path="/crm/v3/objects/(contacts|deals)")
    assert others and min(e.seq for e in others) < slow.seq  # answered while companies' search was held


def test_incremental_with_nothing_changed_rewrites_nothing(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    seed_portal(hs, contacts=30, engagements=10, events=20)
    config = hubspot_config(hs, tmp_path)
    pull_hubspot(store, config)
    before = store_snapshot(store)
    again = pull_hubspot(store, config)
    assert again.totals()["upserted"] == 0 and again.totals()["deleted"] == 0
    assert store_snapshot(store) == before

def test_a_scheduled_meeting_is_held_once_its_end_passes(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    """As on Salesforce: the meeting is not read again for having taken place, the pull after its end
    completes it in the store all the same."""
    stamped = now_ms() - 2 * DAY_MS
    ends = (now_ms() // 1000 + 3) * 1000
    hs.hubspot_portal.load("meetings", [
        {"id": meeting, "createdAt": stamped, "updatedAt": stamped,
         "properties": {"hs_meeting_title": "Intro", "hs_meeting_outcome": "SCHEDULED", "hs_timestamp": end - 1_800_000,
                        "hs_meeting_start_time": end - 1_800_000, "hs_meeting_end_time": end}}
        for meeting, end in (("7100", ends), ("7200", ends + DAY_MS))])
    config = hubspot_config(hs, tmp_path)
    no_sweep = HubSpotSyncTuning(association_sweep_hours=None)  # which would read the meeting again
    first = pull_hubspot(store, config, objects=["meetings"], tuning=no_sweep)
    assert store_rows(store, "activities", "meetings")["7100"]["activity_type"] == "meeting_scheduled"
    assert first.meetings_held == 0
    time.sleep(max(ends - now_ms(), 0) / 1000 + 0.05)
    again = pull_hubspot(store, config, objects=["meetings"], tuning=no_sweep)
    rows = store_rows(store, "activities", "meetings")
    assert again.objects["meetings"].read == 0 and again.meetings_held == 1
    assert rows["7100"]["activity_type"] == "meeting_completed" and rows["7200"]["activity_type"] == "meeting_scheduled"


# -- deletes, merges, associations, properties ------------------------------------------------
def test_archive_and_restore(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    ids = seed_portal(hs, contacts=20, engagements=5, events=0)
    config = hubspot_config(hs, tmp_path)
    pull_hubspot(store, config)
    contact = ids["contacts"][4]
    hubspot_client(hs).crm.contacts.basic_api.archive(contact)
    result = pull_hubspot(store, config)
    row = store_rows(store, "people", "contacts", live=False)[contact]
    assert row["is_deleted"] and result.objects["contacts"].deleted == 1
    hs.hubspot_portal.restore(hs.hubspot_portal.object_type("contacts"), int(contact))
    pull_hubspot(store, config)
    assert not store_rows(store, "people", "contacts", live=False)[contact]["is_deleted"]
    assert_store_matches_portal(hs, store)
    # A restore that leaves the modification stamp alone is found too: the record left the archive.
    company = ids["companies"][3]
    hubspot_client(hs).crm.companies.basic_api.archive(company)
    pull_hubspot(store, config)
    assert store_rows(store, "accounts", "companies", live=False)[company]["is_deleted"]
    table = hs.hubspot_portal.object_type("companies").table
    hs.hubspot_portal.storage.execute(f'UPDATE "{table}" SET "_archived" = 0 WHERE "hs_object_id" = ?',
                                      (int(company),))
    hs.request_log.clear()
    pull_hubspot(store, config)
    assert not store_rows(store, "accounts", "companies", live=False)[company]["is_deleted"]
    assert hs.request_log.count("POST", r"/crm/v3/objects/companies/batch/read$") == 1
    assert_store_matches_portal(hs, store)


def test_a_merge_flags_the_loser_and_moves_what_pointed_at_it(hs: SandboxHandle, store: Engine,
                                                               tmp_path: Path) -> None:
    ids = seed_portal(hs, contacts=20, engagements=30, events=0)
    config = hubspot_config(hs, tmp_path)
    pull_hubspot(store, config)
    resolve_touch_refs(store)  # as each pull stage does as it ends
    calls = store_rows(store, "activities", "calls")
    loser = next(r["person_crm_id"] for r in calls.values() if r["person_crm_id"])
    winner = next(i for i in ids["contacts"] if i != loser)
    with httpx_client(hs, headers={"Authorization": f"Bearer {hs.hubspot_token}"}) as http:
        http.post("/crm/v3/objects/contacts/merge", json={"primaryObjectId": winner,
                                                          "objectIdToMerge": loser}).raise_for_status()
    # small flushes: the merge is flagged again by each flush after the winner's, its touches moved once
    statements: list[str] = []
    listen = event.listens_for(store, "before_cursor_execute")(
        lambda conn, cursor, statement, *rest: statements.append(statement))
    pull_hubspot(store, config, tuning=HubSpotSyncTuning(flush_rows=3))
    event.remove(store, "before_cursor_execute", listen)
    assert len([s for s in statements if s.startswith("UPDATE activities SET person_crm_id")]) == 1
    lost = store_rows(store, "people", "contacts", live=False)[loser]
    assert lost["is_deleted"] and lost["merged_into"] == winner
    assert store_rows(store, "people", "contacts")[winner]["extra"]["merged_object_ids"] == [loser]
    moved = [r for r in store_rows(store, "activities", "calls").values() if r["person_crm_id"] == winner]
    assert moved and not [r for r in store_rows(store, "activities", "calls").values()
                          if r["person_crm_id"] == loser]
    resolve_touch_refs(store)
    with store.connect() as conn:
        person_ids = dict(conn.execute(select(Person.crm_id, Person.id).where(Person.crm == "hubspot")).all())
        refs = set(conn.execute(select(Activity.person_ref).where(Activity.person_crm_id == winner)).scalars())
    assert refs == {person_ids[winner]}  # the touches count for the winner now, not for the merged-away loser
    assert_store_matches_portal(hs, store)


def test_an_association_added_without_a_modification_date_is_picked_up(hs: SandboxHandle, store: Engine,
                                                                         tmp_path: Path) -> None:
    ids = seed_portal(hs, contacts=30, engagements=10, events=0)
    config = hubspot_config(hs, tmp_path)
    pull_hubspot(store, config)
    orphan = ids["contacts"][9]  # seeded without a company
    assert store_rows(store, "people", "contacts")[orphan]["account_crm_id"] is None
    before = portal_truth(hs, "contacts")[orphan]["lastmodifieddate"]
    hubspot_client(hs).crm.associations.v4.basic_api.create_default("contacts", orphan, "companies",
                                                                     ids["companies"][5])
    assert portal_truth(hs, "contacts")[orphan]["lastmodifieddate"] == before  # HubSpot does not bump it
    pull_hubspot(store, config)
    assert store_rows(store, "people", "contacts")[orphan]["account_crm_id"] == ids["companies"][5]
    assert_store_matches_portal(hs, store)


def test_a_property_the_portal_lacks_is_reported_and_skipped(hs: SandboxHandle, store: Engine,
                                                              tmp_path: Path) -> None:
    """The sandbox's contacts have no ``numemployees`` (many real portals hide or lack some standard
    properties, and ``salesforce*`` ones exist only with the Salesforce integration)."""
    seed_portal(hs, contacts=10, engagements=3, events=0)
    portal_properties = hubspot_client(hs).crm.properties.core_api.get_all("contacts").results
    assert "numemployees" not in {p.name for p in portal_properties}
    result = pull_hubspot(store, hubspot_config(hs, tmp_path))
    assert not result.paused and result.objects["contacts"].done
    assert result.warnings == ["hubspot contacts: the portal has no property numemployees; skipped "
                               "(the columns they fill stay empty)"]
    people = store_rows(store, "people", "contacts")
    assert len(people) == 10 and all(r["employees"] is None and r["email"] for r in people.values())
    reads = [e for e in hs.request_log.entries("GET", r"/crm/v3/objects/contacts$") if "archived=False" in e.query]
    assert reads and all("numemployees" not in e.query and "jobtitle" in e.query for e in reads)


def test_abm_sync_command(hs: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_portal(hs, contacts=12, engagements=4, events=10)
    config = hubspot_config(hs, tmp_path).model_dump(mode="json", exclude_defaults=True)
    config_file = tmp_path / "abm.yaml"
    config_file.write_text(yaml.safe_dump({"hubspot": config["hubspot"]}))
    monkeypatch.setenv("ABM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(config_file), "db", "upgrade"]).exit_code == 0
    full = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "hubspot", "--full",
                               "--objects", "companies", "--objects", "contacts"])
    assert full.exit_code == 0, full.output
    assert "companies" in full.output and "contacts" in full.output and "deals" not in full.output
    assert "API calls" in full.output and "numemployees" in full.output  # the missing property, as a warning
    again = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "hubspot"])
    assert again.exit_code == 0 and "succeeded" in again.output and "web_events" in again.output
    unknown = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "hubspot", "--objects", "tickets"])
    assert unknown.exit_code == 2 and "unknown HubSpot object" in unknown.output
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT kind, state FROM runs ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("full", "succeeded"), ("incremental", "succeeded")]
