"""Which Salesforce fields feed which canonical columns, per object.

Columns listed in ``columns`` are copied as they are (after type conversion); values that
need a rule (an account's domain, a lead's conversion time, an activity's type and who it
touched) are derived in :mod:`connectors.salesforce.mapping` from the fields in ``reads``.
Fields configured in ``salesforce.pull.extra_fields`` land in the row's ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table

from store.schema import CRM_RECORD_TABLES

# Read for every object: identity, the cursor's stamp, deletes and audit times.
BOOKKEEPING = ("Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate")
# Never copied into ``extra``: bookkeeping, and who touched the record last (our own writes
# change it, and that must not look like a change of the record).
NOT_EXTRA = frozenset({*BOOKKEEPING, "MasterRecordId", "CreatedById", "LastModifiedById"})
REQUIRED = ("Id", "IsDeleted", "SystemModstamp")


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    table_name: str
    columns: Mapping[str, str] = field(default_factory=dict)  # canonical column -> Salesforce field
    reads: tuple[str, ...] = ()  # more fields the derived columns need
    optional: tuple[str, ...] = ()  # read when the org has them; their absence is not worth a warning
    constants: Mapping[str, Any] = field(default_factory=dict)
    is_activity: bool = False

    @property
    def table(self) -> Table:
        return CRM_RECORD_TABLES[self.table_name]

    def wanted(self) -> list[str]:
        """Fields this object is always read with (before extras and rule fields)."""
        names = [*BOOKKEEPING, *self.columns.values(), *self.reads]
        return list(dict.fromkeys(names))


PERSON_COLUMNS = ("first_name", "last_name", "email", "title", "phone", "owner_crm_id")

SPECS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec("User", "crm_users", {"name": "Name", "email": "Email", "is_active": "IsActive"}),
        ObjectSpec(
            "Account",
            "accounts",
            {
                "name": "Name", "website": "Website", "industry": "Industry", "employees": "NumberOfEmployees",
                "annual_revenue": "AnnualRevenue", "country": "BillingCountry", "state": "BillingState",
                "city": "BillingCity", "phone": "Phone", "parent_crm_id": "ParentId", "type": "Type",
                "owner_crm_id": "OwnerId",
            },
            optional=("MasterRecordId",),
        ),
        ObjectSpec("Campaign", "campaigns", {"name": "Name", "type": "Type"}),
        ObjectSpec(
            "Lead",
            "people",
            {
                "first_name": "FirstName", "last_name": "LastName", "email": "Email", "title": "Title",
                "company": "Company", "website": "Website", "phone": "Phone", "country": "Country",
                "state": "State", "city": "City", "industry": "Industry", "employees": "NumberOfEmployees",
                "status": "Status", "is_converted": "IsConverted", "converted_account_crm_id": "ConvertedAccountId",
                "converted_contact_crm_id": "ConvertedContactId", "source": "LeadSource", "owner_crm_id": "OwnerId",
            },
            reads=("ConvertedDate",),
            optional=("MasterRecordId",),
            constants={"kind": "lead", "account_crm_id": None},
        ),
        ObjectSpec(
            "Contact",
            "people",
            {
                "first_name": "FirstName", "last_name": "LastName", "email": "Email", "title": "Title",
                "phone": "Phone", "country": "MailingCountry", "state": "MailingState", "city": "MailingCity",
                "account_crm_id": "AccountId", "source": "LeadSource", "owner_crm_id": "OwnerId",
            },
            optional=("MasterRecordId",),
            constants={
                "kind": "contact", "company": None, "website": None, "industry": None, "employees": None,
                "status": None, "is_converted": False, "converted_at": None, "converted_account_crm_id": None,
                "converted_contact_crm_id": None,
            },
        ),
        ObjectSpec(
            "Opportunity",
            "opportunities",
            {
                "name": "Name", "account_crm_id": "AccountId", "stage": "StageName", "is_closed": "IsClosed",
                "is_won": "IsWon", "amount": "Amount", "close_date": "CloseDate",
            },
        ),
        ObjectSpec(
            "Task",
            "activities",
            {"subject": "Subject", "person_crm_id": "WhoId"},
            reads=("WhatId", "TaskSubtype", "Type", "CallDurationInSeconds", "ActivityDate"),
            optional=("AccountId", "CompletedDateTime"),
            is_activity=True,
        ),
        ObjectSpec(
            "Event",
            "activities",
            {"subject": "Subject", "person_crm_id": "WhoId"},
            reads=("WhatId", "Type", "StartDateTime", "EndDateTime", "DurationInMinutes", "ActivityDate"),
            optional=("AccountId",),
            is_activity=True,
        ),
        ObjectSpec(
            "CampaignMember",
            "activities",
            {"campaign_crm_id": "CampaignId", "crm_type": "Status"},
            reads=("LeadId", "ContactId", "HasResponded", "FirstRespondedDate"),
            is_activity=True,
        ),
    )
}

# Key prefixes of the objects an activity's WhatId can point at.
ACCOUNT_PREFIX = "001"
OPPORTUNITY_PREFIX = "006"
CAMPAIGN_PREFIX = "701"
