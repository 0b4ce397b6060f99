"""``abm init``'s provisioning on fresh sandboxes: Salesforce custom fields (Metadata API) and HubSpot
properties in their group; idempotent, dry run, incompatible fields reported and left alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot.crm.properties import PropertyCreate
from test_writeback_support import writeback_config

from config.writeback import WritebackConfig
from sandbox.clients import hubspot_client, simple_salesforce
from sandbox.runner import SandboxHandle, run_sandbox
from writeback.catalogue import Catalogue
from writeback.provision import ProvisionReport
from writeback.provision_hubspot import provision_hubspot
from writeback.provision_salesforce import metadata_spec, provision_salesforce

CONFIG = writeback_config()
CATALOGUE = Catalogue(CONFIG)
METADATA = r"/services/Soap/m/"
PROPERTIES = r"/crm/v3/properties/"


@pytest.fixture
def fresh() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        yield handle


def provision(handle: SandboxHandle, dry_run: bool = False, config: WritebackConfig = CONFIG) -> ProvisionReport:
    catalogue = Catalogue(config)
    report = ProvisionReport(dry_run=dry_run)
    provision_salesforce(simple_salesforce(handle), catalogue, report)
    provision_hubspot(hubspot_client(handle), catalogue, config, report)
    return report


def every_field(catalogue: Catalogue = CATALOGUE) -> set[tuple[str, str, str]]:
    return {(crm, obj, f.api_name) for crm in ("salesforce", "hubspot") for obj in catalogue.objects(crm)
            for f in catalogue.fields(crm, obj)}


def statuses(report: ProvisionReport) -> dict[tuple[str, str, str], str]:
    return {(f.crm, f.object, f.name): f.status for f in report.fields}


def test_init_creates_every_field_then_nothing(fresh: SandboxHandle) -> None:
    preview = provision(fresh, dry_run=True)
    assert set(statuses(preview).values()) == {"would_create"} and set(statuses(preview)) == every_field()
    assert fresh.request_log.count("POST", METADATA) == 0 and fresh.request_log.count("POST", PROPERTIES) == 0

    first = provision(fresh)
    assert statuses(first) == {key: "created" for key in every_field()}
    assert first.ok and any("permission set" in step for step in first.admin_steps)
    assert any("Field-level permissions" in step for step in first.admin_steps)
    salesforce_fields = [k for k in every_field() if k[0] == "salesforce"]
    assert fresh.request_log.count("POST", METADATA) == -(-len(salesforce_fields) // 10)  # ten per call
    sf = simple_salesforce(fresh)
    described = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert described["ABM_Engagement_Score__c"]["type"] == "double"
    assert (described["ABM_Engagement_Score__c"]["precision"], described["ABM_Engagement_Score__c"]["scale"]) == (5, 1)
    assert described["ABM_Top_Reasons__c"]["length"] == 255
    assert described["ABM_Last_Scored_At__c"]["type"] == "datetime"
    hs = hubspot_client(fresh)
    grade = hs.crm.properties.core_api.get_by_name("companies", "abm_grade")
    assert (grade.type, grade.group_name) == ("number", "abm_scoring")
    assert {g.name for g in hs.crm.properties.groups_api.get_all("contacts").results} >= {"abm_scoring"}

    fresh.request_log.clear()
    second = provision(fresh)
    assert statuses(second) == {key: "exists" for key in every_field()}
    assert second.admin_steps == []
    assert fresh.request_log.count("POST", METADATA) == 0 and fresh.request_log.count("POST", PROPERTIES) == 0
    assert second.api_calls == {"salesforce": 3, "hubspot": 4}  # a describe per object; groups + properties


def test_incompatible_existing_fields_are_reported_not_changed(fresh: SandboxHandle) -> None:
    sf = simple_salesforce(fresh)
    sf.mdapi.CustomField.create([sf.mdapi.CustomField(fullName="Account.ABM_Grade__c", label="Grade",
                                                      type="Text", length=10)])
    hs = hubspot_client(fresh)
    hs.crm.properties.core_api.create("companies", PropertyCreate(
        name="abm_engagement_score", label="Engagement", type="string", field_type="text",
        group_name="companyinformation"))
    report = provision(fresh)
    found = {(f.crm, f.object, f.name): f for f in report.fields}
    assert found[("salesforce", "Account", "ABM_Grade__c")].status == "incompatible"
    assert "string" in found[("salesforce", "Account", "ABM_Grade__c")].detail
    assert found[("hubspot", "companies", "abm_engagement_score")].status == "incompatible"
    assert not report.ok
    others = every_field() - {("salesforce", "Account", "ABM_Grade__c"), ("hubspot", "companies",
                                                                          "abm_engagement_score")}
    assert {statuses(report)[k] for k in others} == {"created"}
    # left exactly as they were
    assert {f["name"]: f["type"] for f in sf.Account.describe()["fields"]}["ABM_Grade__c"] == "string"
    assert hs.crm.properties.core_api.get_by_name("companies", "abm_engagement_score").type == "string"


def test_one_field_refused_does_not_stop_the_others(fresh: SandboxHandle) -> None:
    """The default catalogue makes the matched account a Lookup to Account on Salesforce. Whether or not a
    given org (or the sandbox) accepts it, every field gets its own outcome and the rest are created."""
    config = WritebackConfig()
    report = provision(fresh, config=config)
    lookups = [f for f in report.fields if f.name == "ABM_Matched_Account__c" and f.crm == "salesforce"]
    assert {f.object for f in lookups} == {"Lead", "Contact"}
    for f in lookups:
        assert f.status == "created" or (f.status == "failed" and "Lookup" in f.detail)
    rest = [f for f in report.fields if f not in lookups]
    assert {f.status for f in rest} == {"created"}
    sent = {name for e in fresh.request_log.entries("POST", METADATA) for name in e.fields_written}
    assert {"Lead.ABM_Matched_Account__c", "Contact.ABM_Matched_Account__c"} <= sent


def test_lookup_metadata_names_its_relationship_per_object() -> None:
    catalogue = Catalogue(WritebackConfig())
    lead = next(f for f in catalogue.fields("salesforce", "Lead") if f.source == "matched_account")
    contact = next(f for f in catalogue.fields("salesforce", "Contact") if f.source == "matched_account")
    spec = metadata_spec(lead)
    assert spec["type"] == "Lookup" and spec["referenceTo"] == "Account" and spec["deleteConstraint"] == "SetNull"
    assert spec["relationshipName"] != metadata_spec(contact)["relationshipName"]  # unique on Account
