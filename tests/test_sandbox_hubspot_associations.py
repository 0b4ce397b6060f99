"""Associations v4 (and v3-style associations on object reads) through hubspot-api-client."""

from __future__ import annotations

import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from sandbox.clients import hubspot_client
from sandbox.runner import SandboxHandle


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    return hubspot_client(clean_sandbox)


def contact(hs: HubSpot) -> str:
    email = f"a{uuid.uuid4().hex[:10]}@example.com"
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email})).id


def company(hs: HubSpot) -> str:
    return hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"name": uuid.uuid4().hex})).id


def test_create_with_associations_and_read_both_directions(hs: HubSpot) -> None:
    account = company(hs)
    person = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": f"b{uuid.uuid4().hex[:10]}@example.com"},
        associations=[{"to": {"id": account}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279},
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}])).id
    forward = hs.crm.associations.v4.basic_api.get_page("contacts", person, "companies")
    assert [str(r.to_object_id) for r in forward.results] == [account]
    assert sorted((t.type_id, t.label) for t in forward.results[0].association_types) == [(1, "Primary"), (279, None)]
    backward = hs.crm.associations.v4.basic_api.get_page("companies", account, "contacts")
    assert [str(r.to_object_id) for r in backward.results] == [person]
    assert {t.type_id for t in backward.results[0].association_types} == {2, 280}
    listed = hs.crm.contacts.basic_api.get_by_id(person, associations=["companies"])
    assert {(a.id, a.type) for a in listed.associations["companies"].results} == {
        (account, "contact_to_company"), (account, "contact_to_company_unlabeled")}


def test_associations_do_not_bump_modification_dates(hs: HubSpot) -> None:
    person, account = contact(hs), company(hs)
    person_before = hs.crm.contacts.basic_api.get_by_id(person).updated_at
    company_before = hs.crm.companies.basic_api.get_by_id(account).updated_at
    hs.crm.associations.v4.basic_api.create_default("contacts", person, "companies", account)
    hs.crm.associations.v4.basic_api.archive("contacts", person, "companies", account)
    hs.crm.associations.v4.basic_api.create("contacts", person, "companies", account, [
        AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=279)])
    assert [str(r.to_object_id) for r in hs.crm.associations.v4.basic_api.get_page(
        "contacts", person, "companies").results] == [account]
    assert hs.crm.contacts.basic_api.get_by_id(person).updated_at == person_before
    assert hs.crm.companies.basic_api.get_by_id(account).updated_at == company_before


def test_batch_create_read_and_archive(hs: HubSpot) -> None:
    people = [contact(hs) for _ in range(3)]
    account = company(hs)
    created = hs.crm.associations.v4.batch_api.create("contacts", "companies", BatchInputPublicAssociationMultiPost(
        inputs=[{"from": {"id": p}, "to": {"id": account},
                 "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]} for p in people]))
    assert len(created.results) == 3 and str(created.results[0].to_object_id) == account
    lonely = contact(hs)
    read = hs.crm.associations.v4.batch_api.get_page("contacts", "companies",
                                                     BatchInputPublicFetchAssociationsBatchRequest(
                                                         inputs=[{"id": p} for p in [*people, lonely]]))
    assert sorted(r._from.id for r in read.results) == sorted(people)
    assert read.num_errors == 1 and read.errors[0].context == {"fromObjectId": [lonely]}
    hs.crm.associations.v4.batch_api.archive("contacts", "companies", BatchInputPublicAssociationMultiArchive(
        inputs=[{"from": {"id": people[0]}, "to": [{"id": account}]}]))
    remaining = hs.crm.associations.v4.basic_api.get_page("companies", account, "contacts")
    assert sorted(str(r.to_object_id) for r in remaining.results) == sorted(people[1:])


def test_batch_create_207_for_missing_records(hs: HubSpot) -> None:
    person = contact(hs)
    response = hs.crm.associations.v4.batch_api.create("contacts", "companies", BatchInputPublicAssociationMultiPost(
        inputs=[{"from": {"id": person}, "to": {"id": "999999999999"},
                 "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]))
    assert response.num_errors == 1 and response.errors[0].category == "OBJECT_NOT_FOUND"


def test_batch_default_and_engagement_associations(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    person, account = contact(hs), company(hs)
    call = hs.crm.objects.calls.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "hs_timestamp": "2026-01-05T10:00:00Z", "hs_call_title": "Intro"})).id
    hs.crm.associations.v4.batch_api.create_default("calls", "contacts", BatchInputPublicDefaultAssociationMultiPost(
        inputs=[{"from": {"id": call}, "to": {"id": person}}]))
    hs.crm.associations.v4.batch_api.create_default("calls", "companies", BatchInputPublicDefaultAssociationMultiPost(
        inputs=[{"from": {"id": call}, "to": {"id": account}}]))
    page = hs.crm.objects.calls.basic_api.get_page(limit=100, associations=["contacts", "companies"],
                                                   after=call)
    got = page.results[0]
    assert got.id == call
    assert [(a.id, a.type) for a in got.associations["contacts"].results] == [(person, "call_to_contact")]
    assert [(a.id, a.type) for a in got.associations["companies"].results] == [(account, "call_to_company")]


def test_read_pages_through_many_associations(hs: HubSpot, clean_sandbox: SandboxHandle) -> None:
    from sandbox.hubspot.associations import ASSOCIATION_TYPES

    account = company(hs)
    base = 600_000_000 + (uuid.uuid4().int % 100_000) * 1000
    portal = clean_sandbox.hubspot_portal
    portal.load("contacts", ({"id": str(base + i), "properties": {"email": f"p{base + i}@example.com"}}
                             for i in range(7)))
    portal.associations.add_many(("companies", int(account), "contacts", base + i, ASSOCIATION_TYPES[280])
                                 for i in range(7))
    seen, after = [], None
    while True:
        page = hs.crm.associations.v4.basic_api.get_page("companies", account, "contacts", limit=3, after=after)
        seen.extend(int(r.to_object_id) for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == [base + i for i in range(7)]


def test_labels_between_types(clean_sandbox: SandboxHandle) -> None:
    from sandbox.clients import httpx_client

    with httpx_client(clean_sandbox) as http:
        answer = http.get("/crm/v4/associations/deals/companies/labels",
                          headers={"Authorization": f"Bearer {clean_sandbox.hubspot_access_token}"})
    assert answer.status_code == 200
    assert {(r["typeId"], r["label"]) for r in answer.json()["results"]} == {(5, "Primary"), (341, None)}
