"""HubSpot CRM v3 objects on the sandbox, driven through hubspot-api-client over HTTPS."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)

from sandbox.clients import hubspot_client
from sandbox.hubspot.associations import ASSOCIATION_TYPES
from sandbox.runner import SandboxHandle


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    return hubspot_client(clean_sandbox)


@contextmanager
def answers(status: int) -> Iterator[pytest.ExceptionInfo]:
    """Each hubspot-api-client module has its own exception classes; match on the HTTP status."""
    with pytest.raises(Exception) as err:  # noqa: B017 - checked below
        yield err
    assert getattr(err.value, "status", None) == status, err.value


def tag() -> str:
    return "t" + uuid.uuid4().hex[:10]


def new_contact(hs: HubSpot, **props: str) -> str:
    props.setdefault("email", f"{tag()}@example.com")
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id


def test_create_get_update_archive_maintain_timestamps(hs: HubSpot) -> None:
    name = tag()
    created = hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"name": name, "domain": f"{name}.example", "numberofemployees": "250"}))
    assert created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] == created.properties["hs_lastmodifieddate"]
    got = hs.crm.companies.basic_api.get_by_id(created.id, properties=["name", "numberofemployees", "industry"])
    assert got.properties["name"] == name and got.properties["numberofemployees"] == "250"
    assert got.properties["industry"] is None  # asked-for properties without a value come back as null
    assert got.archived is False and got.created_at == created.created_at
    time.sleep(0.01)
    updated = hs.crm.companies.basic_api.update(created.id, SimplePublicObjectInput(properties={"city": "Lyon"}))
    assert updated.properties["city"] == "Lyon" and updated.updated_at > created.updated_at
    assert updated.properties["hs_lastmodifieddate"] > created.properties["hs_lastmodifieddate"]
    hs.crm.companies.basic_api.archive(created.id)
    with answers(404):
        hs.crm.companies.basic_api.get_by_id(created.id)
    archived = hs.crm.companies.basic_api.get_by_id(created.id, archived=True)
    assert archived.archived is True and archived.archived_at is not None


def test_default_properties_and_values_are_strings(hs: HubSpot) -> None:
    deal = hs.crm.deals.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "dealname": tag(), "amount": "1200.50", "dealstage": "closedwon", "closedate": "2026-03-01T10:00:00Z"}))
    got = hs.crm.deals.basic_api.get_by_id(deal.id)
    assert set(got.properties) == {"amount", "closedate", "createdate", "dealname", "dealstage",
                                   "hs_lastmodifieddate", "hs_object_id", "pipeline"}
    assert got.properties["amount"] == "1200.5" and got.properties["closedate"] == "2026-03-01T10:00:00.000Z"
    closed = hs.crm.deals.basic_api.get_by_id(deal.id, properties=["hs_is_closed_won", "hs_is_closed"])
    assert closed.properties["hs_is_closed_won"] == "true" and closed.properties["hs_is_closed"] == "true"


def test_list_pages_follow_after_and_limit(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    ids = {new_contact(hs, jobtitle="Pager") for _ in range(7)}
    seen: list[str] = []
    after = None
    calls = 0
    while True:
        page = hs.crm.contacts.basic_api.get_page(limit=3, after=after, properties=["jobtitle"])
        calls += 1
        seen.extend(r.id for r in page.results)
        assert len(page.results) <= 3
        if page.paging is None:
            break
        after = page.paging.next.after
    assert ids <= set(seen) and len(seen) == len(set(seen))
    assert seen == sorted(seen, key=int)
    assert clean_sandbox.request_log.count("GET", r"^/crm/v3/objects/contacts$") == calls


def test_list_limit_is_capped_at_100(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    portal = clean_sandbox.hubspot_portal
    base = 900_000_000 + int(uuid.uuid4().int % 1_000_000) * 1000
    portal.load("notes", ({"id": str(base + i), "properties": {"hs_note_body": "bulk"}} for i in range(150)))
    page = hs.crm.objects.notes.basic_api.get_page(limit=500, after=str(base))
    assert len(page.results) == 100 and page.paging.next.after == str(base + 100)


def test_archived_listing_only_shows_archived(hs: HubSpot) -> None:
    live, gone = new_contact(hs), new_contact(hs)
    hs.crm.contacts.basic_api.archive(gone)
    archived_ids = {r.id for r in hs.crm.contacts.basic_api.get_page(limit=100, archived=True).results}
    assert gone in archived_ids and live not in archived_ids


def test_unknown_property_answers_validation_error(hs: HubSpot) -> None:
    contact = new_contact(hs)
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties={"no_such_prop": "x"}))
    assert err.value.status == 400
    body = json.loads(err.value.body)
    assert body["category"] == "VALIDATION_ERROR" and body["status"] == "error" and body["correlationId"]
    assert body["message"].startswith("Property values were not valid: ")
    assert '"error":"PROPERTY_DOESNT_EXIST"' in body["message"] and '"name":"no_such_prop"' in body["message"]


@pytest.mark.parametrize(("props", "code"), [
    ({"hs_lead_status": "NOT_AN_OPTION"}, "INVALID_OPTION"),
    ({"associatedcompanyid": "many"}, "INVALID_LONG"),
    ({"hs_object_id": "5"}, "READ_ONLY_VALUE"),
    ({"lastmodifieddate": "2020-01-01T00:00:00Z"}, "READ_ONLY_VALUE"),
])
def test_invalid_values_answer_validation_errors(hs: HubSpot, props: dict, code: str) -> None:
    contact = new_contact(hs)
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties=props))
    assert err.value.status == 400 and f'"error":"{code}"' in json.loads(err.value.body)["message"]


def test_duplicate_email_conflicts(hs: HubSpot) -> None:
    email = f"{tag()}@Example.com"
    existing = new_contact(hs, email=email)
    with pytest.raises(ApiException) as err:
        new_contact(hs, email=email.upper())
    assert err.value.status == 409 and f"Existing ID: {existing}" in err.value.body


def test_get_by_unique_id_property(hs: HubSpot) -> None:
    email = f"{tag()}@example.com"
    contact = new_contact(hs, email=email)
    assert hs.crm.contacts.basic_api.get_by_id(email, id_property="email").id == contact


def test_batch_read_207_lists_missing_ids(hs: HubSpot) -> None:
    a, b = new_contact(hs, firstname="A"), new_contact(hs, firstname="B")
    response = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": a}, {"id": b}, {"id": "999999999999"}], properties=["firstname"]))
    assert {r.id: r.properties["firstname"] for r in response.results} == {a: "A", b: "B"}
    assert response.num_errors == 1 and response.errors[0].category == "OBJECT_NOT_FOUND"
    assert response.errors[0].context == {"ids": ["999999999999"]}
    with answers(404):
        hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": "999999999998"}]))


def test_batch_create_update_upsert_archive(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    emails = [f"{tag()}@example.com" for _ in range(3)]
    created = hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[{"properties": {"email": e, "lifecyclestage": "lead"}} for e in emails]))
    assert created.status == "COMPLETE" and len(created.results) == 3
    ids = [r.id for r in created.results]
    updated = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": i, "properties": {"jobtitle": "CTO"}} for i in ids]))
    assert {r.properties["jobtitle"] for r in updated.results} == {"CTO"} and updated.status == "COMPLETE"
    assert clean_sandbox.request_log.entries("POST", "batch/update")[-1].fields_written == ("jobtitle",)
    fresh = f"{tag()}@example.com"
    upserted = hs.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        {"id": emails[0], "idProperty": "email", "properties": {"firstname": "Old"}},
        {"id": fresh, "idProperty": "email", "properties": {"firstname": "New"}},
    ]))
    by_new = {r.new: r for r in upserted.results}
    assert by_new[False].id == ids[0] and by_new[True].properties["email"] == fresh
    hs.crm.contacts.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[{"id": i} for i in ids]))
    assert hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in ids]), archived=True).results


def test_batch_update_207_per_input_errors(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    good, rejected = new_contact(hs), new_contact(hs)
    clean_sandbox.faults.reject_writes([rejected], message="Blocked by a validation rule", fields=["jobtitle"])
    response = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        {"id": good, "properties": {"jobtitle": "VP"}},
        {"id": rejected, "properties": {"jobtitle": "VP"}},
        {"id": "999999999997", "properties": {"jobtitle": "VP"}},
        {"id": good, "properties": {"hs_lead_status": "BOGUS"}, "objectWriteTraceId": "trace-1"},
    ]))
    assert [r.id for r in response.results] == [good]
    categories = sorted((e.category, tuple(sorted(e.context))) for e in response.errors)
    assert categories == [("OBJECT_NOT_FOUND", ("ids",)), ("VALIDATION_ERROR", ("ids",)),
                          ("VALIDATION_ERROR", ("objectWriteTraceId",))]
    assert response.num_errors == 3


def test_batch_unknown_property_rejects_whole_batch(hs: HubSpot) -> None:
    contact = new_contact(hs, jobtitle="Before")
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
            {"id": contact, "properties": {"jobtitle": "After"}},
            {"id": contact, "properties": {"not_a_property": "x"}},
        ]))
    assert err.value.status == 400 and "PROPERTY_DOESNT_EXIST" in err.value.body
    assert hs.crm.contacts.basic_api.get_by_id(contact, properties=["jobtitle"]).properties["jobtitle"] == "Before"


def test_batch_over_100_inputs_is_rejected(hs: HubSpot) -> None:
    with pytest.raises(ApiException) as err:
        hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": str(i)} for i in
                                                                                   range(1, 102)]))
    assert err.value.status == 400 and "VALIDATION_ERROR" in err.value.body


def test_merge_archives_loser_and_moves_associations(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    winner, loser = new_contact(hs, firstname="Win"), new_contact(hs, jobtitle="Loser title")
    company = hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={"name": tag()})).id
    portal = clean_sandbox.hubspot_portal
    portal.associations.add("contacts", int(loser), "companies", int(company), ASSOCIATION_TYPES[279])
    merged = hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=winner, object_id_to_merge=loser))
    assert merged.id == winner
    got = hs.crm.contacts.basic_api.get_by_id(winner, properties=["jobtitle", "hs_merged_object_ids"],
                                             associations=["companies"])
    assert got.properties["jobtitle"] == "Loser title" and got.properties["hs_merged_object_ids"] == loser
    assert [a.id for a in got.associations["companies"].results] == [company]
    assert hs.crm.contacts.basic_api.get_by_id(loser).id == winner  # a merged id answers with the winner
    assert hs.crm.contacts.basic_api.get_by_id(loser, archived=True).archived is True
