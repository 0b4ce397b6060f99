"""Full then incremental pull of the generator's orgs (``run_sandbox(seed=..., size=...)``) from HubSpot:
the store equals the portal, counts and every mapped field of every record, associations and events
included (``assert_store_matches_portal``). The sandbox's rate limits are lifted and the client paces
itself at the most its configuration allows, so the time spent is the pull's own. S runs in the
suite on both backends; M (5,000 accounts' worth of companies, 20,000 contacts, their engagements and
events) is marked slow and runs on SQLite only (its volume, not the backend, is what it adds), as
``test_sync_salesforce_generated``'s runs on PostgreSQL only."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from test_sync_hubspot import assert_store_matches_portal, hubspot_config, now_ms, store_rows

from connectors.hubspot import pull_hubspot
from sandbox.clients import hubspot_client
from sandbox.hubspot.associations import ASSOCIATION_TYPES
from sandbox.runner import SandboxHandle, run_sandbox

# The CRM objects the default activity rules pull, with their seeded counts' keys.
PULLED = ("companies", "contacts", "deals", "calls", "emails", "meetings")


def _live_ids(handle: SandboxHandle, object_type: str) -> list[int]:
    portal = handle.hubspot_portal
    rows, _ = portal.page(portal.object_type(object_type), 0, 10**9, False)
    return [int(r["hs_object_id"]) for r in rows]


def _change_a_little(handle: SandboxHandle) -> dict[str, int]:
    """A working day: edits through the API, a new contact linked to a company, archived contacts, a
    merge of two companies, an association added without touching either record, new events.
    Returns the ids the test looks at afterwards."""
    client = hubspot_client(handle)
    portal = handle.hubspot_portal
    rng = random.Random(3)
    companies, contacts, deals = (_live_ids(handle, t) for t in ("companies", "contacts", "deals"))
    for company in rng.sample(companies, 5):
        client.crm.companies.basic_api.update(str(company), {"properties": {"industry": "BIOTECHNOLOGY",
                                                                          "numberofemployees": "321"}})
    for contact in rng.sample(contacts, 5):
        client.crm.contacts.basic_api.update(str(contact), {"properties": {"jobtitle": "Head of Revenue"}})
    for deal in rng.sample(deals, 3):
        client.crm.deals.basic_api.update(str(deal), {"properties": {"dealstage": "closedwon", "amount": "4321"}})
    archived = rng.sample(contacts, 3)
    for contact in archived:
        client.crm.contacts.basic_api.archive(str(contact))
    created = client.crm.contacts.basic_api.create({"properties": {"email": "nakamura@shin.example",
                                                                  "firstname": "Aiko", "lastname": "Nakamura"}})
    linked_company = rng.choice(companies)
    portal.associations.add("contacts", int(created.id), "companies", linked_company, ASSOCIATION_TYPES[1])
    untouched = rng.choice([c for c in contacts if c not in archived])
    extra_company = rng.choice(companies)
    client.crm.associations.v4.basic_api.create_default("contacts", str(untouched), "companies", str(extra_company))
    winner, loser = rng.sample([c for c in companies if c != linked_company], 2)
    portal.merge(portal.object_type("companies"), winner, loser)
    stamp = now_ms() - 1000
    handle.hubspot_events.load_email_events([{"id": "day-open", "type": "OPEN", "created": stamp,
                                              "recipient": "nakamura@shin.example"}])
    handle.hubspot_events.load_web_events([{"id": "day-visit", "objectType": "contacts", "objectId": created.id,
                                            "eventType": "e_visited_page", "occurredAt": stamp,
                                            "properties": {"hs_url": "https://www.abm-sandbox.example/pricing"}}])
    return {"created": int(created.id), "archived": archived[0], "loser": loser}


def _full_then_incremental(seed: int, size: str, engine: Engine, tmp_path) -> None:
    with run_sandbox(seed=seed, size=size, crms=("hubspot",)) as handle:
        handle.hubspot_limits.configure(per_ten_seconds=100_000, search_per_second=1_000)
        config = hubspot_config(handle, tmp_path)
        full_start = datetime.now(UTC)
        full = pull_hubspot(engine, config, full=True)
        assert not full.paused and all(full.objects[o].done for o in PULLED)
        assert {o: full.objects[o].read for o in PULLED} == {o: len(_live_ids(handle, o)) for o in PULLED}
        assert_store_matches_portal(handle, engine, full_start)

        changed = _change_a_little(handle)
        incremental_start = datetime.now(UTC)
        incremental = pull_hubspot(engine, config)
        assert not incremental.full and not incremental.paused
        assert incremental.objects["companies"].upserted >= 6 and incremental.objects["contacts"].upserted >= 6
        assert_store_matches_portal(handle, engine, incremental_start)
        contacts = store_rows(engine, "people", "contacts", live=False)
        assert contacts[str(changed["archived"])]["is_deleted"]
        assert store_rows(engine, "activities", "email_events")["day-open"]["person_crm_id"] == str(changed["created"])
        loser = store_rows(engine, "accounts", "companies", live=False)[str(changed["loser"])]
        assert loser["is_deleted"] and loser["merged_into"] is not None


def test_generated_s_org_full_then_incremental_equals_the_portal(engine: Engine, tmp_path) -> None:
    _full_then_incremental(3, "S", engine, tmp_path)


@pytest.mark.slow
@pytest.mark.backends("sqlite")
def test_generated_m_org_full_then_incremental_equals_the_portal(engine: Engine, tmp_path) -> None:
    _full_then_incremental(1, "M", engine, tmp_path)
