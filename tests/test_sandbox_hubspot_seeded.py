"""A sandbox seeded by the org generator serves its HubSpot view: records, associations, events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest

from sandbox.clients import httpx_client, hubspot_client
from sandbox.runner import SandboxHandle, run_sandbox
from sandbox.seed import generate

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def seeded() -> Iterator[SandboxHandle]:
    with run_sandbox(seed=11, size="S", as_of=AS_OF) as handle:
        handle.hubspot_limits.configure(search_per_second=1000)
        yield handle


@pytest.fixture
def hs(seeded: SandboxHandle) -> HubSpot:
    seeded.reset()
    return hubspot_client(seeded)


def test_counts_match_the_generator(seeded: SandboxHandle, hs: HubSpot) -> None:
    view = generate(seed=11, size="S", as_of=AS_OF).hubspot
    assert seeded.seeded["hubspot.companies"] == sum(1 for _ in view.records("companies"))
    assert seeded.seeded["hubspot.email_events"] > 0 and seeded.seeded["hubspot.web_events"] > 0
    listed, after = 0, None
    while True:
        page = hs.crm.companies.basic_api.get_page(limit=100, after=after)
        listed += len(page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert listed == seeded.seeded["hubspot.companies"]
    total = hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=1)).total
    assert total == seeded.seeded["hubspot.contacts"]


def test_records_keep_generated_values_and_timestamps(seeded: SandboxHandle, hs: HubSpot) -> None:
    view = generate(seed=11, size="S", as_of=AS_OF).hubspot
    record = next(r for r in view.records("companies") if r["properties"].get("salesforceaccountid"))
    got = hs.crm.companies.basic_api.get_by_id(record["id"], properties=["name", "domain", "salesforceaccountid"])
    assert got.properties["name"] == record["properties"]["name"]
    assert got.properties["salesforceaccountid"] == record["properties"]["salesforceaccountid"]
    assert got.updated_at == record["updatedAt"] and got.created_at == record["createdAt"]
    assert got.properties["hs_lastmodifieddate"] == record["properties"]["hs_lastmodifieddate"]


def test_contacts_are_associated_with_their_company(seeded: SandboxHandle, hs: HubSpot) -> None:
    view = generate(seed=11, size="S", as_of=AS_OF).hubspot
    contact_id, company_id = next((f, t) for ft, f, tt, t in view.associations() if (ft, tt) == ("contacts",
                                                                                                  "companies"))
    links = hs.crm.associations.v4.basic_api.get_page("contacts", contact_id, "companies").results
    assert [str(link.to_object_id) for link in links] == [company_id]
    assert links[0].association_types[0].type_id == 279


def test_events_are_served(seeded: SandboxHandle, hs: HubSpot) -> None:
    view = generate(seed=11, size="S", as_of=AS_OF).hubspot
    email = next(iter(view.email_events()))
    with httpx_client(seeded, headers={"Authorization": f"Bearer {seeded.hubspot_access_token}"}) as http:
        events = http.get("/email/public/v1/events", params={"recipient": email["recipient"]}).json()["events"]
    assert email["id"] in {e["id"] for e in events}
    web = next(iter(view.web_events()))
    page = hs.events.events_api.get_page(object_type="contact", object_id=int(web["objectId"]), limit=100)
    assert web["id"] in {e.id for e in page.results}


def test_a_kept_portal_is_not_seeded_twice(tmp_path) -> None:
    state = tmp_path / "state.db"
    with run_sandbox(seed=3, size="S", as_of=AS_OF, state_path=state) as first:
        assert first.seeded["hubspot.companies"] > 0
    with run_sandbox(seed=3, size="S", as_of=AS_OF, state_path=state) as again:
        assert again.seeded == {}
        assert hubspot_client(again).crm.companies.basic_api.get_page(limit=1).results
