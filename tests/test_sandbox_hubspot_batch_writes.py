"""HubSpot batch writes on the sandbox answer and store, input by input, what writing each input on
its own would, though a batch now reads its records in one query, commits once, and composes each
updated record instead of reading it back."""

from __future__ import annotations

import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicMergeInput,
    SimplePublicObjectInputForCreate,
)

from sandbox.clients import hubspot_client
from sandbox.faults import FaultInjector
from sandbox.hubspot.batch_records import BatchRecords, plain_id
from sandbox.hubspot.portal import HubSpotPortal
from sandbox.hubspot.schema import HsProperty
from sandbox.runner import SandboxHandle
from sandbox.storage import Storage


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    return hubspot_client(clean_sandbox)


def new_contact(hs: HubSpot, **props: str) -> str:
    props.setdefault("email", f"t{uuid.uuid4().hex[:10]}@example.com")
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props)).id


def test_a_conflict_mid_batch_keeps_the_writes_before_it(hs: HubSpot) -> None:
    first, second = new_contact(hs, jobtitle="Before"), new_contact(hs)
    taken = hs.crm.contacts.basic_api.get_by_id(first, properties=["email"]).properties["email"]
    with pytest.raises(Exception) as err:  # noqa: B017 - the status is checked below
        hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
            {"id": first, "properties": {"jobtitle": "After"}},
            {"id": second, "properties": {"email": taken}},
        ]))
    assert getattr(err.value, "status", None) == 409
    assert hs.crm.contacts.basic_api.get_by_id(first, properties=["jobtitle"]).properties["jobtitle"] == "After"
    assert hs.crm.contacts.basic_api.get_by_id(second, properties=["email"]).properties["email"] != taken


def test_a_record_named_twice_in_a_batch_gets_both_writes_in_order(hs: HubSpot) -> None:
    contact = new_contact(hs)
    email = hs.crm.contacts.basic_api.get_by_id(contact, properties=["email"]).properties["email"]
    response = hs.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        {"id": contact, "properties": {"jobtitle": "CTO", "lastname": "First"}},
        {"id": email, "idProperty": "email", "properties": {"firstname": "Ada"}},
        {"id": contact, "properties": {"lastname": "Second"}, "objectWriteTraceId": "t-3"},
    ]))
    assert [r.id for r in response.results] == [contact] * 3
    assert [r.properties.get("lastname") for r in response.results] == ["First", None, "Second"]
    stored = hs.crm.contacts.basic_api.get_by_id(contact, properties=["jobtitle", "firstname", "lastname"])
    assert {k: stored.properties[k] for k in ("jobtitle", "firstname", "lastname")} == {
        "jobtitle": "CTO", "firstname": "Ada", "lastname": "Second"}
    assert stored.updated_at == response.results[2].updated_at

def test_batch_read_answers_merged_ids_with_their_record_and_archived_ones_on_request(hs: HubSpot) -> None:
    winner, loser, plain, gone = (new_contact(hs) for _ in range(4))
    hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=winner, object_id_to_merge=loser))
    hs.crm.contacts.basic_api.archive(gone)
    ids = [plain, loser, gone, plain, "999999999996"]
    live = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids]))
    assert [r.id for r in live.results] == [plain, winner]
    assert live.errors[0].context == {"ids": [gone, "999999999996"]}
    archived = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids]),
                                              archived=True)
    assert sorted(r.id for r in archived.results) == sorted([loser, gone])

def test_property_registered_after_reads_is_written_and_returned() -> None:
    portal = HubSpotPortal(Storage(), FaultInjector())
    contacts = portal.object_type("contacts")
    record = portal.create(contacts, {"email": "a@example.com", "jobtitle": "CTO"})
    record_id = int(record["hs_object_id"])
    assert "abm_fit" not in portal.row(contacts, record_id)  # the column list is cached now
    portal.schema.save_property(contacts, HsProperty(name="abm_fit", type="number", field_type="number",
                                                     group_name="contactinformation", hubspot_defined=False))
    updated = portal.update(contacts, record_id, {"abm_fit": "42.5"})
    assert updated["abm_fit"] == 42.5 and updated["jobtitle"] == "CTO"
    assert portal.row(contacts, record_id) == updated
    assert portal.rows_by_ids(contacts, [record_id])[record_id]["abm_fit"] == 42.5
    props = portal.returned_properties(contacts, ["abm_fit"])
    assert portal.to_json(contacts, updated, props)["properties"]["abm_fit"] == "42.5"


def _custom(name: str, type_: str, field_type: str) -> HsProperty:
    return HsProperty(name=name, type=type_, field_type=field_type, group_name="contactinformation",
                      hubspot_defined=False)


@pytest.fixture
def portal() -> HubSpotPortal:
    portal = HubSpotPortal(Storage(), FaultInjector())
    contacts = portal.object_type("contacts")
    for prop in (_custom("abm_score", "number", "number"), _custom("abm_day", "date", "date"),
                 _custom("abm_when", "datetime", "date"), _custom("abm_flag", "bool", "booleancheckbox")):
        portal.schema.save_property(contacts, prop)
    # a number property over a column that was TEXT already: SQLite converts what is written to it
    portal.storage.add_column(contacts.table, "legacy_score", "TEXT")
    portal.schema.save_property(contacts, _custom("legacy_score", "number", "number"))
    return portal


@pytest.mark.parametrize("values", [
    {"abm_score": "-0"},
    {"abm_score": "12.345678901234567", "associatedcompanyid": "3"},
    {"abm_score": "1e400"},
    {"legacy_score": "42.5"},
    {"legacy_score": "0.30000000000000004"},
    {"email": "  Mixed.Case@Example.COM "},
    {"abm_day": "2024-05-01", "abm_when": "1714560000123"},
    {"abm_when": "2024-05-01T10:20:30.123+02:00", "abm_flag": "TRUE"},
    {"jobtitle": "nul\x00 tab\t é ☃", "phone": "", "lifecyclestage": "lead", "hubspot_owner_id": "123"},
])
def test_update_returns_exactly_the_row_a_read_returns(portal: HubSpotPortal, values: dict[str, str]) -> None:
    contacts = portal.object_type("contacts")
    record_id = int(portal.create(contacts, {"email": "x@example.com", "phone": "+1 555", "abm_score": "7"})[
        "hs_object_id"])
    for current in (None, portal.row(contacts, record_id)):  # read by update, or handed over by a batch
        updated = portal.update(contacts, record_id, values, current)
        assert repr(updated) == repr(portal.row(contacts, record_id))  # types and the sign of zero included


def test_deal_update_returns_derived_properties_as_stored(portal: HubSpotPortal) -> None:
    deals = portal.object_type("deals")
    record_id = int(portal.create(deals, {"dealname": "Big one", "amount": "10"})["hs_object_id"])
    updated = portal.update(deals, record_id, {"dealstage": "closedwon", "amount": "1000.50"},
                            portal.row(deals, record_id))
    assert updated["hs_is_closed_won"] == "true"
    assert repr(updated) == repr(portal.row(deals, record_id))


def test_batch_records_read_once_and_follow_the_batch_writes(portal: HubSpotPortal) -> None:
    contacts = portal.object_type("contacts")
    first, second = (int(portal.create(contacts, {"email": f"{n}@example.com"})["hs_object_id"]) for n in "ab")
    portal.archive(contacts, second)
    records = BatchRecords(portal, contacts, [{"id": str(first)}, {"id": f" {second} "}, {"id": "12"},
                                              {"id": "a@example.com", "idProperty": "email"}])
    assert records.get(first) == portal.row(contacts, first)
    assert records.get(second) is None and records.get(12) is None  # archived, unknown
    assert records.get(first + 1000) is None  # not named by a plain id: read when asked
    updated = portal.update(contacts, first, {"jobtitle": "CTO"}, records.get(first))
    records.written(first, updated)
    assert records.get(first) == portal.row(contacts, first) and records.get(first)["jobtitle"] == "CTO"


@pytest.mark.parametrize(("item", "expected"), [
    ({"id": "1000001"}, 1000001),
    ({"id": 1000001, "idProperty": "hs_object_id"}, 1000001),
    ({"id": " 42 "}, 42),
    ({"id": "a@example.com", "idProperty": "email"}, None),
    ({"id": "²"}, None),  # isdigit() but int() raises: left to the input's turn
    ({"id": "9" * 20}, None),  # beyond SQLite's integers: left to the input's turn
    ({"id": "-5"}, None),
    ({}, None),
])
def test_plain_id_reads_ids_as_resolve_id_does(item: dict, expected: int | None) -> None:
    assert plain_id(item) == expected
