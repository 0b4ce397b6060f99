"""Properties v3 on the sandbox: custom properties are at once readable, writable and searchable."""

from __future__ import annotations

import json
import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import PublicObjectSearchRequest, SimplePublicObjectInput, SimplePublicObjectInputForCreate
from hubspot.crm.properties import BatchReadInputPropertyName, PropertyCreate, PropertyGroupCreate, PropertyUpdate

from sandbox.clients import hubspot_client
from sandbox.runner import SandboxHandle


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    clean_sandbox.hubspot_limits.configure(search_per_second=1000)
    yield hubspot_client(clean_sandbox)
    clean_sandbox.hubspot_limits.configure(search_per_second=5)


def name() -> str:
    return "abm_" + uuid.uuid4().hex[:10]


def test_list_and_read_standard_properties(hs: HubSpot) -> None:
    names = {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"email", "firstname", "lastname", "lastmodifieddate", "hs_object_id", "salesforcecontactid"} <= names
    email = hs.crm.properties.core_api.get_by_name("contacts", "email")
    assert email.type == "string" and email.has_unique_value is True and email.hubspot_defined is True
    stage = hs.crm.properties.core_api.get_by_name("deals", "dealstage")
    assert stage.type == "enumeration" and "closedwon" in {o.value for o in stage.options}
    modified = hs.crm.properties.core_api.get_by_name("companies", "hs_lastmodifieddate")
    assert modified.modification_metadata.read_only_value is True


def test_create_property_then_write_read_and_search(hs: HubSpot) -> None:
    prop = name()
    created = hs.crm.properties.core_api.create("companies", PropertyCreate(
        name=prop, label="ABM score", type="number", field_type="number", group_name="companyinformation"))
    assert created.name == prop and created.hubspot_defined is False and created.type == "number"
    assert hs.crm.properties.core_api.get_by_name("companies", prop).label == "ABM score"
    company = hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={"name": prop}))
    hs.crm.companies.basic_api.update(company.id, SimplePublicObjectInput(properties={prop: "87.5"}))
    got = hs.crm.companies.basic_api.get_by_id(company.id, properties=[prop])
    assert got.properties[prop] == "87.5"
    found = hs.crm.companies.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": prop, "operator": "GT", "value": "80"}]}], properties=[prop]))
    assert [r.id for r in found.results] == [company.id]


def test_enumeration_property_validates_options(hs: HubSpot) -> None:
    prop = name()
    hs.crm.properties.core_api.create("contacts", PropertyCreate(
        name=prop, label="ABM tier", type="enumeration", field_type="select", group_name="contactinformation",
        options=[{"label": "Tier 1", "value": "tier_1"}, {"label": "Tier 2", "value": "tier_2"}]))
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": f"{prop}@example.com", prop: "tier_1"}))
    assert contact.properties[prop] == "tier_1"
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={prop: "tier_9"}))
    assert err.value.status == 400 and '"error":"INVALID_OPTION"' in json.loads(err.value.body)["message"]
    hs.crm.properties.core_api.update("contacts", prop, PropertyUpdate(options=[
        {"label": "Tier 1", "value": "tier_1"}, {"label": "Tier 9", "value": "tier_9"}]))
    hs.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={prop: "tier_9"}))


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"label": "x", "type": "string", "fieldType": "text", "groupName": "companyinformation", "name": "Bad Name"},
     400, "invalid"),
    ({"label": "x", "type": "string", "fieldType": "select", "groupName": "companyinformation"}, 400, "fieldType"),
    ({"label": "x", "type": "string", "fieldType": "text", "groupName": "no_such_group"}, 400, "does not exist"),
    ({"label": "x", "type": "enumeration", "fieldType": "select", "groupName": "companyinformation"}, 400, "options"),
    ({"label": "x", "type": "string", "fieldType": "text", "groupName": "companyinformation", "name": "name"},
     409, "already exists"),
])
def test_invalid_property_definitions(hs: HubSpot, body: dict, status: int, fragment: str) -> None:
    body = {"name": name(), **body}
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.properties.core_api.create("companies", body)
    assert err.value.status == status and fragment in json.loads(err.value.body)["message"]


def test_groups_create_list_read(hs: HubSpot) -> None:
    group = name()
    created = hs.crm.properties.groups_api.create("deals", PropertyGroupCreate(name=group, label="ABM"))
    assert created.name == group and created.archived is False
    assert group in {g.name for g in hs.crm.properties.groups_api.get_all("deals").results}
    assert hs.crm.properties.groups_api.get_by_name("deals", group).label == "ABM"
    prop = name()
    hs.crm.properties.core_api.create("deals", PropertyCreate(name=prop, label="Fit", type="string",
                                                              field_type="text", group_name=group))
    assert hs.crm.properties.core_api.get_by_name("deals", prop).group_name == group


def test_batch_read_and_archive(hs: HubSpot) -> None:
    prop = name()
    hs.crm.properties.core_api.create("contacts", PropertyCreate(name=prop, label="x", type="string",
                                                                 field_type="text", group_name="contactinformation"))
    found = hs.crm.properties.batch_api.read("contacts", BatchReadInputPropertyName(
        archived=False, inputs=[{"name": prop}, {"name": "email"}, {"name": "nope_" + prop}]))
    assert {p.name for p in found.results} == {prop, "email"} and found.num_errors == 1
    hs.crm.properties.core_api.archive("contacts", prop)
    assert prop not in {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert prop in {p.name for p in hs.crm.properties.core_api.get_all("contacts", archived=True).results}
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={prop: "x"}))
    assert err.value.status == 400 and "PROPERTY_DOESNT_EXIST" in err.value.body


def test_custom_properties_survive_a_restart(tmp_path) -> None:
    from sandbox.runner import run_sandbox

    state = tmp_path / "state.db"
    prop = name()
    with run_sandbox(state_path=state) as handle:
        hs = hubspot_client(handle)
        hs.crm.properties.core_api.create("companies", PropertyCreate(
            name=prop, label="x", type="string", field_type="text", group_name="companyinformation"))
        company = hs.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={prop: "kept"}))
    with run_sandbox(state_path=state) as handle:
        hs = hubspot_client(handle)
        assert hs.crm.properties.core_api.get_by_name("companies", prop).name == prop
        assert hs.crm.companies.basic_api.get_by_id(company.id, properties=[prop]).properties[prop] == "kept"
