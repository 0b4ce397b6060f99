"""The sandbox's Metadata API through simple-salesforce's ``mdapi`` (zeep SOAP over HTTPS)."""

from __future__ import annotations

import uuid

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.clients import simple_salesforce
from sandbox.runner import SandboxHandle


@pytest.fixture
def sf(clean_sandbox: SandboxHandle) -> Salesforce:
    return simple_salesforce(clean_sandbox)


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}__c"


def test_created_fields_are_readable_described_queryable_and_writable(sf: Salesforce) -> None:
    md = sf.mdapi
    score, grade, account = _name("Score"), _name("Grade"), _name("Acct")
    md.CustomField.create([
        md.CustomField(fullName=f"Lead.{score}", label="Score", type="Number", precision=5, scale=1),
        md.CustomField(fullName=f"Lead.{grade}", label="Grade", type="Text", length=2),
        md.CustomField(fullName=f"Lead.{account}", label="Matched account", type="Lookup", referenceTo="Account",
                       relationshipName=account[:-3], deleteConstraint="SetNull"),
    ])
    read = md.CustomField.read(f"Lead.{account}")
    assert read.type == "Lookup" and read.referenceTo == "Account" and read.label == "Matched account"
    assert md.CustomField.read(f"Lead.{score}").precision == 5

    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields[score]["type"] == "double" and fields[score]["custom"] is True
    assert fields[grade]["type"] == "string" and fields[grade]["length"] == 2
    assert fields[account]["type"] == "reference" and fields[account]["referenceTo"] == ["Account"]

    acme = sf.Account.create({"Name": "Acme " + uuid.uuid4().hex[:6]})["id"]
    lead = sf.Lead.create({"LastName": "Lovelace", "Company": "Acme"})["id"]
    sf.Lead.update(lead, {score: 87.5, grade: "A", account: acme[:15]})  # a 15-character id is accepted
    row = sf.query(f"SELECT {score}, {grade}, {account} FROM Lead WHERE Id = '{lead}'")["records"][0]
    assert (row[score], row[grade], row[account]) == (87.5, "A", acme)
    with pytest.raises(SalesforceMalformedRequest) as too_long:
        sf.Lead.update(lead, {grade: "ABC"})
    assert too_long.value.content[0]["errorCode"] == "STRING_TOO_LONG"


def test_bad_definitions_get_salesforce_errors_and_create_nothing(sf: Salesforce) -> None:
    md = sf.mdapi
    lookup = _name("Bad")
    with pytest.raises(Exception, match="relationshipName"):
        md.CustomField.create([md.CustomField(fullName=f"Contact.{lookup}", label="X", type="Lookup",
                                              referenceTo="Account")])
    with pytest.raises(Exception, match="no object named"):
        md.CustomField.create([md.CustomField(fullName=f"Contact.{lookup}", label="X", type="Lookup",
                                              referenceTo="Widget__c", relationshipName="X")])
    with pytest.raises(Exception, match="Length must be between 1 and 255"):
        md.CustomField.create([md.CustomField(fullName=f"Contact.{lookup}", label="X", type="Text", length=999)])
    assert lookup not in {f["name"] for f in sf.Contact.describe()["fields"]}
    existing = _name("Dup")
    md.CustomField.create([md.CustomField(fullName=f"Contact.{existing}", label="Dup", type="Checkbox")])
    with pytest.raises(Exception, match="already a field named"):
        md.CustomField.create([md.CustomField(fullName=f"Contact.{existing}", label="Dup", type="Checkbox")])
