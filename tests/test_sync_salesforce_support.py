"""Shared helpers of the Salesforce sync tests (no tests here): a small org, configs, store snapshots.

The org is built with ``SalesforceOrg.load`` (ids, stamps and read-only fields as given),
stamped days in the past so an incremental run's lookback window starts empty. Expected
canonical values are computed here independently of the connector's mapping code.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce
from sqlalchemy import Engine, select

from config.model import AbmConfig
from matching.domains import registrable_domain
from sandbox.clients import simple_salesforce
from sandbox.runner import SandboxHandle
from sandbox.salesforce.org import SalesforceOrg
from store.schema import CRM_RECORD_TABLES, SyncCursor

NOT_COMPARED = ("id", "synced_at", "changed_at")
OBJECTS = ("User", "Account", "Campaign", "Lead", "Contact", "Opportunity", "Task", "Event", "CampaignMember")
TABLE_OF = {"User": "crm_users", "Account": "accounts", "Campaign": "campaigns", "Lead": "people",
            "Contact": "people", "Opportunity": "opportunities", "Task": "activities", "Event": "activities",
            "CampaignMember": "activities"}


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def sf_config(handle: SandboxHandle, tmp_path: Path, **overrides: Any) -> AbmConfig:
    """Client-credentials config for the sandbox; retries and Bulk polling made quick for tests."""
    secret = tmp_path / "sf-client-secret"
    secret.write_text(handle.salesforce_credentials.client_secret)
    salesforce = {
        "enabled": True,
        "login_url": handle.base_url,
        "client_id": handle.salesforce_credentials.client_id,
        "ca_file": str(handle.ca_path),
        "client_secret_file": str(secret),
        "pull": {"bulk_poll_seconds": 0.01, "retry_initial_seconds": 0.01, "retry_max_seconds": 0.05},
    }
    return AbmConfig.model_validate({"salesforce": deep_merge(salesforce, overrides)})


def client(handle: SandboxHandle) -> Salesforce:
    return simple_salesforce(handle)


# -- the org ------------------------------------------------------------------------------------
def _stamp(rng: random.Random, now: datetime) -> datetime:
    return now - timedelta(days=rng.uniform(1, 30), seconds=rng.randint(0, 86_399))


def build_org(org: SalesforceOrg, seed: int = 7, accounts: int = 40) -> dict[str, list[str]]:
    """A small org of every object, referencing each other; returns ids per object."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    ids: dict[str, list[str]] = {name: [] for name in OBJECTS}

    def new(name: str) -> str:
        record_id = org.new_id(org.object(name))
        ids[name].append(record_id)
        return record_id

    def audit(extra: dict[str, Any]) -> dict[str, Any]:
        created = _stamp(rng, now)
        modified = created + timedelta(hours=rng.randint(0, 12))
        return {**extra, "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified}

    users = [{"Id": new("User"), "Username": f"rep{i}@example.com", "FirstName": "Rep", "LastName": f"N{i}",
              "Email": f"rep{i}@example.com", "IsActive": i != 2} for i in range(3)]
    org.load("User", [audit(u) for u in users])
    user_ids = ids["User"]
    names = ["Acme", "Globex", "Müller GmbH", "株式会社テスト", "שלום בע\"מ", "O'Brien & Sons", "Initech", "Umbrella"]
    account_rows = []
    for i in range(accounts):
        account_id = new("Account")
        account_rows.append(audit({
            "Id": account_id, "Name": f"{names[i % len(names)]} {i}",
            "Website": rng.choice([f"https://www.acme{i}.co.uk/about", f"globex{i}.com", None]),
            "Industry": rng.choice(["Software", "Retail", None]), "NumberOfEmployees": rng.choice([5, 250, None]),
            "AnnualRevenue": rng.choice([1.5e6, None]), "BillingCountry": rng.choice(["Germany", "Japan", None]),
            "BillingState": "BY", "BillingCity": "München", "Phone": "+49 89 1234", "Type": rng.choice(
                ["Customer", "Prospect"]), "OwnerId": rng.choice(user_ids),
            "ParentId": ids["Account"][0] if i and i % 7 == 0 else None, "AccountSource": "Web",
        }))
    org.load("Account", account_rows)
    campaign_types = ["Webinar", "Trade Show", "Email", "Conference"]
    org.load("Campaign", [audit({"Id": new("Campaign"), "Name": f"{t} {i}", "Type": t, "IsActive": True})
                          for i, t in enumerate(campaign_types)])
    contact_rows, lead_rows = [], []
    for i in range(accounts * 2):
        contact_rows.append(audit({
            "Id": new("Contact"), "FirstName": rng.choice(["Jane", "José", "美咲"]), "LastName": f"Doe{i}",
            "Email": f"jane{i}@acme{i % accounts}.com", "Title": rng.choice(["VP Finance", "Engineer", None]),
            "AccountId": rng.choice(ids["Account"]), "MailingCountry": "Germany", "MailingCity": "Berlin",
            "LeadSource": "Web", "OwnerId": rng.choice(user_ids),
        }))
    org.load("Contact", contact_rows)
    for i in range(accounts * 2):
        converted = i % 5 == 0
        lead_rows.append(audit({
            "Id": new("Lead"), "FirstName": "Lee", "LastName": f"Lead{i}", "Email": f"lee{i}@gmail.com",
            "Company": f"Acme {i}", "Website": "acme.com" if i % 3 else None, "Title": "CTO",
            "Status": "Qualified" if converted else "Open - Not Contacted", "LeadSource": "Webinar",
            "Industry": "Software", "NumberOfEmployees": 40, "Country": "DE", "State": "BE", "City": "Berlin",
            "IsConverted": converted, "ConvertedAccountId": rng.choice(ids["Account"]) if converted else None,
            "ConvertedContactId": rng.choice(ids["Contact"]) if converted else None,
            "ConvertedDate": date(2024, 5, 1 + i % 28) if converted else None, "OwnerId": rng.choice(user_ids),
        }))
    org.load("Lead", lead_rows)
    opportunity_rows = []
    for i in range(accounts):
        stage = rng.choice(["Prospecting", "Closed Won", "Closed Lost"])
        opportunity_rows.append(audit({
            "Id": new("Opportunity"), "Name": f"Deal {i}", "AccountId": rng.choice(ids["Account"]),
            "StageName": stage, "Amount": rng.choice([1000.0, 25_000.5, None]),
            "CloseDate": date(2024, 1 + i % 12, 10), "OwnerId": rng.choice(user_ids),
        }))
    org.load("Opportunity", opportunity_rows)
    people = ids["Contact"] + ids["Lead"]
    task_rows = []
    for i in range(accounts * 5):
        subtype = rng.choice(["Call", "Email", None])
        task_rows.append(audit({
            "Id": new("Task"), "WhoId": rng.choice(people),
            "WhatId": rng.choice([rng.choice(ids["Account"]), rng.choice(ids["Opportunity"]), None]),
            "Subject": rng.choice(["Call", "RE: pricing", "Product demo", "Follow up", "Proposal sent"]),
            "TaskSubtype": subtype, "Type": None if subtype else rng.choice(["Call", "Email", "Other"]),
            "CallDurationInSeconds": rng.choice([0, 45, 900]) if subtype == "Call" else None,
            "ActivityDate": date(2024, 3, 1 + i % 28), "Status": rng.choice(["Completed", "Completed", "Not Started"]),
            "OwnerId": rng.choice(user_ids),
        }))
    org.load("Task", task_rows)
    event_rows = []
    for i in range(accounts):
        start = now + timedelta(days=rng.choice([-20, -2, 3]), hours=i % 8)
        event_rows.append(audit({
            "Id": new("Event"), "WhoId": rng.choice(people), "WhatId": rng.choice(ids["Account"]),
            "Subject": rng.choice(["Intro meeting", "Demo", "QBR"]), "Type": "Meeting", "StartDateTime": start,
            "EndDateTime": start + timedelta(minutes=30), "DurationInMinutes": 30, "ActivityDate": start.date(),
            "OwnerId": rng.choice(user_ids),
        }))
    org.load("Event", event_rows)
    member_rows = []
    for i in range(accounts * 2):
        responded = i % 3 != 0
        member_rows.append(audit({
            "Id": new("CampaignMember"), "CampaignId": rng.choice(ids["Campaign"]),
            "ContactId": rng.choice(ids["Contact"]) if i % 2 else None,
            "LeadId": None if i % 2 else rng.choice(ids["Lead"]),
            "Status": rng.choice(["Registered", "Attended", "Responded"]) if responded else "Sent",
            "HasResponded": responded, "FirstRespondedDate": date(2024, 4, 1 + i % 28) if responded else None,
        }))
    org.load("CampaignMember", member_rows)
    return ids


# -- reading back -------------------------------------------------------------------------------
def store_rows(engine: Engine, object_name: str, crm_ids: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """Store rows of one Salesforce object by crm_id; only those of ``crm_ids`` when given."""
    table = CRM_RECORD_TABLES[TABLE_OF[object_name]]
    query = select(table).where(table.c.crm == "salesforce", table.c.object == object_name)
    with engine.connect() as conn:
        if crm_ids is None:
            return {r.crm_id: dict(r._mapping) for r in conn.execute(query)}
        wanted, found = sorted(crm_ids), {}
        for start in range(0, len(wanted), 500):
            rows = conn.execute(query.where(table.c.crm_id.in_(wanted[start:start + 500])))
            found.update({r.crm_id: dict(r._mapping) for r in rows})
        return found


def store_ids(engine: Engine, object_name: str) -> set[str]:
    """The crm_ids of one Salesforce object's store rows: what comparing sets of records needs (an M org's
    activities read whole, every column converted, took half the time of :func:`assert_store_equals_org`)."""
    table = CRM_RECORD_TABLES[TABLE_OF[object_name]]
    with engine.connect() as conn:
        return set(conn.scalars(select(table.c.crm_id).where(table.c.crm == "salesforce",
                                                             table.c.object == object_name)))


def store_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical row without bookkeeping (ids, sync times), to compare two stores."""
    snapshot = {}
    with engine.connect() as conn:
        for name, table in CRM_RECORD_TABLES.items():
            columns = [c for c in table.c if c.name not in NOT_COMPARED]
            snapshot[name] = sorted(tuple(repr(v) for v in r) for r in conn.execute(select(*columns)))
    return snapshot


def cursors(engine: Engine) -> dict[str, tuple[datetime | None, str | None, dict[str, Any]]]:
    with engine.connect() as conn:
        return {r.object: (r.cursor_ts, r.cursor_id, r.state or {}) for r in conn.execute(select(SyncCursor))}


def stamped_before(before: datetime | None) -> str:
    """A SOQL filter for records a pull that started at ``before`` reads (later stamps are the next run's)."""
    if before is None:
        return ""
    return f" WHERE SystemModstamp < {before.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"


def org_records(sf: Salesforce, object_name: str, fields: list[str], before: datetime | None = None
                ) -> dict[str, dict[str, Any]]:
    """The org's records (deleted ones included) read with SOQL through simple-salesforce."""
    soql = f"SELECT {', '.join(fields)} FROM {object_name}{stamped_before(before)}"
    return {r["Id"]: r for r in sf.query_all_iter(soql, include_deleted=True)}


def sf_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def sf_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def midnight(value: str | None) -> datetime | None:
    day = sf_date(value)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


def domain(website: str | None) -> str | None:
    return registrable_domain(website) or None


# -- expected canonical values, written independently of connectors/salesforce/mapping.py --------
COMMON = ["Id", "IsDeleted", "CreatedDate", "LastModifiedDate"]


def _common(r: dict[str, Any]) -> dict[str, Any]:
    return {"is_deleted": r["IsDeleted"], "created_at": sf_datetime(r["CreatedDate"]),
            "modified_at": sf_datetime(r["LastModifiedDate"])}


def _account(r: dict[str, Any]) -> dict[str, Any]:
    return {"name": r["Name"], "website": r["Website"], "domain": domain(r["Website"]), "industry": r["Industry"],
            "employees": r["NumberOfEmployees"], "annual_revenue": r["AnnualRevenue"],
            "country": r["BillingCountry"], "state": r["BillingState"], "city": r["BillingCity"], "phone": r["Phone"],
            "parent_crm_id": r["ParentId"], "type": r["Type"], "owner_crm_id": r["OwnerId"],
            "merged_into": r["MasterRecordId"]}


def _lead(r: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "lead", "first_name": r["FirstName"], "last_name": r["LastName"], "email": r["Email"],
            "company": r["Company"], "website": r["Website"], "title": r["Title"], "phone": r["Phone"],
            "country": r["Country"], "state": r["State"], "city": r["City"], "industry": r["Industry"],
            "employees": r["NumberOfEmployees"], "status": r["Status"], "is_converted": r["IsConverted"],
            "converted_at": midnight(r["ConvertedDate"]), "converted_account_crm_id": r["ConvertedAccountId"],
            "converted_contact_crm_id": r["ConvertedContactId"], "source": r["LeadSource"],
            "owner_crm_id": r["OwnerId"], "account_crm_id": None}


def _contact(r: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "contact", "first_name": r["FirstName"], "last_name": r["LastName"], "email": r["Email"],
            "title": r["Title"], "phone": r["Phone"], "country": r["MailingCountry"], "state": r["MailingState"],
            "city": r["MailingCity"], "account_crm_id": r["AccountId"], "source": r["LeadSource"],
            "owner_crm_id": r["OwnerId"], "company": None, "is_converted": False}


def _opportunity(r: dict[str, Any]) -> dict[str, Any]:
    closed_at = midnight(r["CloseDate"]) if r["IsClosed"] else None
    return {"name": r["Name"], "account_crm_id": r["AccountId"], "stage": r["StageName"], "is_closed": r["IsClosed"],
            "is_won": r["IsWon"], "amount": r["Amount"], "close_date": datetime.fromisoformat(r["CloseDate"]).date(),
            "closed_at": closed_at}


EXPECTED = {
    "User": (["Name", "Email", "IsActive"], lambda r: {"name": r["Name"], "email": r["Email"],
                                                        "is_active": r["IsActive"]}),
    "Account": (["Name", "Website", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry",
                 "BillingState", "BillingCity", "Phone", "ParentId", "Type", "OwnerId", "MasterRecordId"], _account),
    "Campaign": (["Name", "Type"], lambda r: {"name": r["Name"], "type": r["Type"]}),
    "Lead": (["FirstName", "LastName", "Email", "Company", "Website", "Title", "Phone", "Country", "State", "City",
              "Industry", "NumberOfEmployees", "Status", "IsConverted", "ConvertedDate", "ConvertedAccountId",
              "ConvertedContactId", "LeadSource", "OwnerId"], _lead),
    "Contact": (["FirstName", "LastName", "Email", "Title", "Phone", "MailingCountry", "MailingState", "MailingCity",
                 "AccountId", "LeadSource", "OwnerId"], _contact),
    "Opportunity": (["Name", "AccountId", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate"], _opportunity),
}
OPEN = {"not started", "in progress", "waiting on someone else", "deferred"}


def expected_activities(sf: Any, run_start: datetime) -> dict[str, dict[str, Any]]:
    """Expected activity rows under the default rules, written independently of the connector."""
    campaigns = {i: r["Type"] for i, r in org_records(sf, "Campaign", ["Id", "Type"]).items()}
    opportunity_account = {i: r["AccountId"] for i, r in org_records(sf, "Opportunity", ["Id", "AccountId"]).items()}
    out: dict[str, dict[str, Any]] = {}
    tasks = org_records(sf, "Task", [*COMMON, "WhoId", "WhatId", "Subject", "TaskSubtype", "Type",
                                     "CallDurationInSeconds", "ActivityDate", "Status"], run_start)
    for i, r in tasks.items():
        subject, subtype, kind = (r["Subject"] or "").lower(), r["TaskSubtype"], r["Type"]
        duration = r["CallDurationInSeconds"]
        if (r["Status"] or "").lower() in OPEN:
            continue
        if "demo" in subject:
            activity = "demo"
        elif "proposal" in subject:
            activity = "proposal"
        elif subtype == "Call" or kind == "Call":
            activity = "meaningful_conversation" if (duration or 0) >= 300 else (
                "call_connected" if (duration or 0) >= 30 else "call")
        elif subtype == "Email":
            activity = "email_reply" if subject.removeprefix("email: ").startswith("re:") else "email_sent"
        elif kind == "Email":
            activity = "email_sent"
        else:
            continue
        what = r["WhatId"] or ""
        account = what if what.startswith("001") else opportunity_account.get(what)
        out[i] = {**_common(r), "activity_type": activity, "person_crm_id": r["WhoId"], "account_crm_id": account,
                  "occurred_at": midnight(r["ActivityDate"]), "duration_seconds": duration,
                  "crm_type": subtype or kind, "subject": r["Subject"], "campaign_type": None}
    events = org_records(sf, "Event", [*COMMON, "WhoId", "WhatId", "Subject", "Type", "StartDateTime",
                                       "EndDateTime", "DurationInMinutes"], run_start)
    for i, r in events.items():
        end = sf_datetime(r["EndDateTime"])
        activity = "demo" if "demo" in r["Subject"].lower() else (
            "meeting_completed" if end <= run_start else "meeting_scheduled")
        what = r["WhatId"] or ""
        account = what if what.startswith("001") else opportunity_account.get(what)
        out[i] = {**_common(r), "activity_type": activity, "person_crm_id": r["WhoId"], "account_crm_id": account,
                  "occurred_at": sf_datetime(r["StartDateTime"]), "duration_seconds": r["DurationInMinutes"] * 60,
                  "crm_type": r["Type"], "subject": r["Subject"]}
    members = org_records(sf, "CampaignMember", [*COMMON, "CampaignId", "LeadId", "ContactId", "Status",
                                                 "HasResponded", "FirstRespondedDate"], run_start)
    for i, r in members.items():
        kind, status = campaigns[r["CampaignId"]], r["Status"].lower()
        event_like = kind in ("Event", "Trade Show", "Conference")
        if "regist" in status and (kind == "Webinar" or event_like):
            activity = "webinar_registration" if kind == "Webinar" else "event_registration"
        elif not r["HasResponded"]:
            continue
        elif kind == "Webinar":
            activity = "webinar_attended"
        elif event_like:
            activity = "booth_visit" if "booth" in status else "event_attended"
        elif kind == "Email" and ("click" in status or "open" in status):
            activity = "email_click" if "click" in status else "email_open"
        elif kind == "Content":
            activity = "content_download"
        else:
            activity = "campaign_response"
        out[i] = {**_common(r), "activity_type": activity, "person_crm_id": r["ContactId"] or r["LeadId"],
                  "campaign_crm_id": r["CampaignId"], "campaign_type": kind,
                  "occurred_at": midnight(r["FirstRespondedDate"]) or sf_datetime(r["CreatedDate"]),
                  "crm_type": r["Status"]}
    return out


def assert_store_equals_org(engine: Engine, handle: SandboxHandle, run_start: datetime, sample: int = 1000) -> None:
    """Counts per object, and a field-by-field comparison of a random sample of each object's records.

    Records stamped after the pull started are left out: the next run reads them (the generator
    stamps a few records in the future).
    """
    sf = client(handle)
    rng = random.Random(1)
    for name, (fields, expect) in EXPECTED.items():
        records = org_records(sf, name, [*COMMON, *fields], run_start)
        assert store_ids(engine, name) == set(records), name
        picked = rng.sample(sorted(records), min(sample, len(records)))
        rows = store_rows(engine, name, picked)
        for record_id in picked:
            record, row = records[record_id], rows[record_id]
            wanted = {**_common(record), **expect(record)}
            assert {k: row[k] for k in wanted} == wanted, (name, record_id)
    activities = expected_activities(sf, run_start)
    kinds = ("Task", "Event", "CampaignMember")
    assert set().union(*(store_ids(engine, kind) for kind in kinds)) == set(activities)
    picked = rng.sample(sorted(activities), min(3 * sample, len(activities)))
    rows = {crm_id: row for kind in kinds for crm_id, row in store_rows(engine, kind, picked).items()}
    for record_id in picked:
        wanted = activities[record_id]
        assert {k: rows[record_id][k] for k in wanted} == wanted, record_id
