"""REST surface of the sandbox, driven through simple-salesforce and httpx over HTTPS."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sandbox.clients import httpx_client, simple_salesforce
from sandbox.runner import SandboxHandle


@pytest.fixture
def sf(clean_sandbox: SandboxHandle) -> Salesforce:
    return simple_salesforce(clean_sandbox)


@pytest.fixture
def http(clean_sandbox: SandboxHandle) -> httpx.Client:
    with httpx_client(clean_sandbox) as client:
        yield client


def tag() -> str:
    return "t" + uuid.uuid4().hex[:10]


def test_versions_and_resources(http: httpx.Client, sf: Salesforce) -> None:
    versions = http.get("/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    resources = sf.restful("")
    assert resources["query"] == "/services/data/v59.0/query"
    unknown_version = http.get("/services/data/v42.0/limits", headers={"Authorization": "Bearer x"})
    assert unknown_version.status_code == 404 and unknown_version.json()[0]["errorCode"] == "NOT_FOUND"
    assert http.get("/services/data/v59.0/limits", headers={"Authorization": "Bearer x"}).status_code == 401


def test_limits_count_calls_and_header_on_every_response(sf: Salesforce, clean_sandbox: SandboxHandle) -> None:
    before = sf.limits()["DailyApiRequests"]
    sf.query("SELECT Id FROM Account LIMIT 1")
    after = sf.limits()["DailyApiRequests"]
    assert before["Max"] == after["Max"] == 100_000
    assert before["Remaining"] - after["Remaining"] == 2  # the query and the second limits call
    assert "DailyBulkV2QueryJobs" in sf.limits()
    assert sf.api_usage["api-usage"].used == clean_sandbox.limits.used("DailyApiRequests")


def test_describe_global_and_object(sf: Salesforce) -> None:
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Account", "Lead", "Contact", "Opportunity", "Task", "Event", "Campaign", "CampaignMember",
            "User"} <= names
    lead = sf.Lead.describe()
    fields = {f["name"]: f for f in lead["fields"]}
    assert lead["keyPrefix"] == "00Q"
    assert fields["Email"]["type"] == "email"
    assert fields["IsConverted"]["updateable"] is False
    assert fields["ConvertedAccountId"]["referenceTo"] == ["Account"]
    assert sf.Account.metadata()["objectDescribe"]["name"] == "Account"


def test_create_get_update_delete_maintain_audit_fields(sf: Salesforce, clean_sandbox: SandboxHandle) -> None:
    name = tag()
    created = sf.Account.create({"Name": name, "NumberOfEmployees": 50, "AnnualRevenue": 1e6})
    assert created["success"] and len(created["id"]) == 18
    record = sf.Account.get(created["id"])
    assert record["Name"] == name and record["NumberOfEmployees"] == 50
    assert record["attributes"]["type"] == "Account"
    integration_user = clean_sandbox.sandbox.salesforce.org.integration_user_id
    assert record["LastModifiedById"] == record["CreatedById"] == integration_user
    first_stamp = record["SystemModstamp"]
    time.sleep(0.01)
    assert sf.Account.update(created["id"], {"Industry": "Software"}) == 204
    updated = sf.Account.get(created["id"])
    assert updated["Industry"] == "Software"
    assert updated["SystemModstamp"] > first_stamp and updated["LastModifiedDate"] == updated["SystemModstamp"]
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])


def test_fields_written_are_logged(sf: Salesforce, clean_sandbox: SandboxHandle) -> None:
    created = sf.Contact.create({"LastName": tag(), "Email": "a@b.example"})
    sf.Contact.update(created["id"], {"Title": "CTO"})
    patch = clean_sandbox.request_log.entries(method="PATCH", path="/sobjects/Contact/")[-1]
    assert patch.fields_written == ("Title",) and patch.status == 204
    assert clean_sandbox.request_log.counters()["PATCH /services/data/v{version}/sobjects/{object}/{id}"] == 1


def test_derived_fields(sf: Salesforce) -> None:
    lead = sf.Lead.create({"FirstName": "Ada", "LastName": "Lovelace", "Company": "Engines"})
    got = sf.Lead.get(lead["id"])
    assert got["Name"] == "Ada Lovelace" and got["Status"] == "Open - Not Contacted" and got["IsConverted"] is False
    opp = sf.Opportunity.create({"Name": tag(), "StageName": "Prospecting", "CloseDate": "2026-12-01"})
    sf.Opportunity.update(opp["id"], {"StageName": "Closed Won"})
    won = sf.Opportunity.get(opp["id"])
    assert won["IsClosed"] is True and won["IsWon"] is True


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"Nope__c": 1}, "INVALID_FIELD"),
        ({"IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"NumberOfEmployees": "many"}, "INVALID_TYPE_ON_FIELD_IN_RECORD"),
        ({"Name": None}, "REQUIRED_FIELD_MISSING"),
        ({"ParentId": "not-an-id"}, "MALFORMED_ID"),
    ],
)
def test_invalid_writes_answer_salesforce_errors(sf: Salesforce, values: dict, code: str) -> None:
    account = sf.Account.create({"Name": tag()})
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Account.update(account["id"], values)
    assert err.value.content[0]["errorCode"] == code


def test_create_requires_required_fields(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.Contact.create({"FirstName": "No"})
    assert err.value.content == [
        {"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING",
         "fields": ["LastName"]}
    ]


def test_unknown_object_and_record(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Widget__c.describe()
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000000AAA")


def test_updated_and_deleted_windows(sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    kept = sf.Account.create({"Name": tag()})["id"]
    gone = sf.Account.create({"Name": tag()})["id"]
    sf.Account.delete(gone)
    end = datetime.now(UTC) + timedelta(seconds=5)
    updated = sf.Account.updated(start, end)
    assert kept in updated["ids"] and gone not in updated["ids"]
    deleted = sf.Account.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"] if d["id"] == gone] == [gone]
    assert deleted["deletedRecords"][-1]["deletedDate"].endswith("+0000")
    with pytest.raises(SalesforceMalformedRequest):
        sf.Account.updated(end, start)


def test_composite_collection_update_partial_and_all_or_none(sf: Salesforce, clean_sandbox) -> None:
    ids = [sf.Account.create({"Name": tag()})["id"] for _ in range(3)]
    records = [{"attributes": {"type": "Account"}, "id": i, "Industry": "Retail"} for i in ids]
    records[1]["NumberOfEmployees"] = "lots"
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert sf.Account.get(ids[0])["Industry"] == "Retail"

    records = [{"attributes": {"type": "Account"}, "id": i, "Industry": "Banking"} for i in ids]
    records[2]["Bogus__c"] = 1
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert sf.Account.get(ids[0])["Industry"] == "Retail"  # rolled back

    too_many = [{"attributes": {"type": "Account"}, "id": ids[0]}] * 201
    with pytest.raises(SalesforceMalformedRequest) as err:
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": too_many})
    assert err.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


@pytest.mark.parametrize("kind", ["drop", "hang", "lose_answer"])
def test_a_cut_connection_is_logged_before_the_client_sees_it_fail(
    sf: Salesforce, clean_sandbox: SandboxHandle, kind: str
) -> None:
    # Tests count calls the moment the client gives up: a request logged after its connection
    # closed would land in the next count instead (it did, in a write-back test, under load).
    record_id = sf.Account.create({"Name": tag()})["id"]
    add = {"drop": clean_sandbox.faults.drop, "lose_answer": clean_sandbox.faults.lose_answer,
           "hang": lambda **where: clean_sandbox.faults.hang(0.001, **where)}[kind]
    with httpx_client(clean_sandbox) as http:
        headers = {"Authorization": f"Bearer {clean_sandbox.salesforce_session()}"}
        for attempt in range(1, 101):
            add(method="PATCH", path="/sobjects/Account/")
            with pytest.raises(httpx.TransportError):
                http.patch(f"/services/data/v59.0/sobjects/Account/{record_id}", json={"Industry": "Retail"},
                           headers=headers)
            assert clean_sandbox.request_log.count("PATCH", "/sobjects/Account/") == attempt


def test_test_clients_read_again_on_a_cut_connection_but_never_write_again(
    sf: Salesforce, clean_sandbox: SandboxHandle
) -> None:
    # A keep-alive connection the server closes as a request goes out failed a CI run; reads are
    # sent once more, as urllib3 and browsers do, while writes and error statuses still surface.
    record_id = sf.Account.create({"Name": tag()})["id"]
    clean_sandbox.request_log.clear()
    clean_sandbox.faults.drop(method="GET", path=f"/sobjects/Account/{record_id}")
    assert sf.Account.get(record_id)["Id"] == record_id
    assert clean_sandbox.request_log.count("GET", "/sobjects/Account/") == 2

    clean_sandbox.faults.drop(method="PATCH", path="/sobjects/Account/")
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Account.update(record_id, {"Industry": "Retail"})
    assert clean_sandbox.request_log.count("PATCH", "/sobjects/Account/") == 1

    clean_sandbox.faults.fail(429, method="GET", path=f"/sobjects/Account/{record_id}", retry_after=0)
    with pytest.raises(SalesforceError):
        sf.Account.get(record_id)
    assert clean_sandbox.request_log.count("GET", "/sobjects/Account/") == 3

    with httpx_client(clean_sandbox, headers={"Authorization": f"Bearer {clean_sandbox.salesforce_session()}"}) as http:
        clean_sandbox.faults.drop(method="GET", path=f"/sobjects/Account/{record_id}")
        assert http.get(f"/services/data/v59.0/sobjects/Account/{record_id}").json()["Id"] == record_id
        assert clean_sandbox.request_log.count("GET", "/sobjects/Account/") == 5


def test_unauthenticated_calls_get_invalid_session(clean_sandbox: SandboxHandle) -> None:
    sf = simple_salesforce(clean_sandbox, session_id="00D000000000000!bogus")
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT Id FROM Account")
    assert err.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


# -- OAuth ---------------------------------------------------------------------------------
def test_client_credentials_grant(http: httpx.Client, clean_sandbox: SandboxHandle) -> None:
    creds = clean_sandbox.salesforce_credentials
    answer = http.post("/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": creds.client_secret})
    body = answer.json()
    assert answer.status_code == 200
    assert body["instance_url"] == clean_sandbox.base_url and body["token_type"] == "Bearer"
    assert {"access_token", "issued_at", "signature", "id"} <= set(body)
    limits = http.get("/services/data/v59.0/limits", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert limits.status_code == 200 and limits.headers["Sforce-Limit-Info"].startswith("api-usage=")

    bad = http.post("/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": creds.client_id, "client_secret": "wrong"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_client", "error_description": "invalid client credentials"}
    unknown = http.post("/services/oauth2/token", data={"grant_type": "password", "client_id": creds.client_id})
    assert unknown.json()["error"] == "unsupported_grant_type"


def test_jwt_bearer_grant(http: httpx.Client, clean_sandbox: SandboxHandle) -> None:
    creds = clean_sandbox.salesforce_credentials
    key = creds.jwt_private_key_path.read_bytes()
    claims = {"iss": creds.client_id, "sub": creds.username, "aud": clean_sandbox.base_url,
              "exp": int(time.time()) + 180}
    answer = http.post("/services/oauth2/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt.encode(claims, key, "RS256")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["instance_url"] == clean_sandbox.base_url

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    forged = http.post("/services/oauth2/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt.encode(claims, other, "RS256")})
    assert forged.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
    expired = dict(claims, exp=int(time.time()) - 600)
    late = http.post("/services/oauth2/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt.encode(expired, key, "RS256")})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_refresh_token_grant_survives_session_expiry(http: httpx.Client, clean_sandbox: SandboxHandle) -> None:
    creds = clean_sandbox.salesforce_credentials
    old = clean_sandbox.salesforce_session()
    clean_sandbox.expire_sessions()
    assert http.get("/services/data/v59.0/limits", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    answer = http.post("/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": creds.client_id, "refresh_token": creds.refresh_token})
    token = answer.json()["access_token"]
    assert http.get("/services/data/v59.0/limits", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    bad = http.post("/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": creds.client_id, "refresh_token": "nope"})
    assert bad.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
