"""The Salesforce field registry: which objects and fields the emulated org has.

Describe, SOQL validation, write validation and the SQLite columns all come from this one
registry, so a custom field created through the Metadata API is at once describable,
queryable and writable. Custom fields are also written to a metadata table so an org kept
with ``--state`` still has them after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from sandbox.storage import Storage

TABLE_PREFIX = "sf_"
HIDDEN_DELETED_AT = "_deleted_at"  # when a row was deleted (for deleted/ windows); not a field
META_TABLE = "sf_meta_fields"
DELETED_LOG_TABLE = "sf_deleted_log"  # hard-deleted records: gone from every query, still in deleted/

# describe "type" -> SQLite column type
_SQL_TYPE = {
    "boolean": "INTEGER",
    "int": "INTEGER",
    "double": "REAL",
    "currency": "REAL",
    "percent": "REAL",
}
TEXT_TYPES = frozenset({"id", "string", "textarea", "email", "url", "phone", "picklist", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
SUPPORTED_TYPES = TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime"}
T = TypeVar("T")


@dataclass(frozen=True)
class SfField:
    name: str
    type: str
    label: str = ""
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    picklist: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in SUPPORTED_TYPES:
            raise ValueError(f"unsupported field type {self.type!r} for {self.name}")

    @property
    def sql_type(self) -> str:
        return _SQL_TYPE.get(self.type, "TEXT")

    @property
    def writable(self) -> bool:
        return self.createable or self.updateable


@dataclass
class SfObject:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, SfField] = field(default_factory=dict)  # lower-case name -> field
    # values derived from the fields (column lists, SQL), dropped whenever a field is added
    _derived: dict[object, tuple[int, Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def table(self) -> str:
        return TABLE_PREFIX + self.name

    def field(self, name: str) -> SfField | None:
        return self.fields.get(name.lower())

    def add(self, f: SfField) -> None:
        self.fields[f.name.lower()] = f
        self._derived.clear()

    def derived(self, key: object, build: Callable[[], T]) -> T:
        """``build()``, computed once per ``key`` until the object gains a field (see :meth:`add`).

        The field count is checked too, so a field put straight into ``fields`` is not missed."""
        found = self._derived.get(key)
        if found is not None and found[0] == len(self.fields):
            return found[1]  # type: ignore[no-any-return]
        value = build()
        self._derived[key] = (len(self.fields), value)
        return value

    def field_names(self) -> list[str]:
        return list(self.derived("field_names", lambda: tuple(f.name for f in self.fields.values())))


def _f(name: str, type_: str, label: str | None = None, **kw: object) -> SfField:
    defaults: dict[str, object] = {
        "string": {"length": 255},
        "textarea": {"length": 32000},
        "email": {"length": 80},
        "url": {"length": 255},
        "phone": {"length": 40},
        "picklist": {"length": 255},
        "id": {"length": 18},
        "reference": {"length": 18},
        "currency": {"precision": 18, "scale": 2},
        "double": {"precision": 18, "scale": 0},
        "int": {"precision": 9},
    }.get(type_, {})  # type: ignore[assignment]
    merged = {**defaults, **kw}  # type: ignore[dict-item]
    return SfField(name=name, type=type_, label=label or _label(name), **merged)  # type: ignore[arg-type]


def _label(api_name: str) -> str:
    base = api_name[:-3] if api_name.endswith("__c") else api_name
    out = []
    for i, ch in enumerate(base):
        if i and ch.isupper() and not base[i - 1].isupper():
            out.append(" ")
        out.append(ch)
    return "".join(out).replace("_", " ")


def _ro(name: str, type_: str, **kw: object) -> SfField:
    return _f(name, type_, createable=False, updateable=False, **kw)


def _ref(name: str, *targets: str, **kw: object) -> SfField:
    return _f(name, "reference", reference_to=targets, **kw)


def _audit() -> list[SfField]:
    return [
        _ro("Id", "id", nillable=False),
        _ro("IsDeleted", "boolean", nillable=False),
        _ro("CreatedDate", "datetime", nillable=False),
        _ro("CreatedById", "reference", reference_to=("User",), nillable=False),
        _ro("LastModifiedDate", "datetime", nillable=False),
        _ro("LastModifiedById", "reference", reference_to=("User",), nillable=False),
        _ro("SystemModstamp", "datetime", nillable=False),
    ]


def _owner() -> SfField:
    return _ref("OwnerId", "User", nillable=False)


def _standard_objects() -> list[SfObject]:
    specs: list[tuple[str, str, str, str, list[SfField]]] = [
        ("User", "005", "User", "Users", [
            _f("Username", "string", length=80, nillable=False),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _ro("Name", "string", length=121),
            _f("Email", "email", nillable=False),
            _f("IsActive", "boolean"),
            _f("Title", "string", length=80),
            _f("Department", "string", length=80),
        ]),
        ("Account", "001", "Account", "Accounts", [
            _f("Name", "string", nillable=False),
            _f("Website", "url"),
            _f("Industry", "picklist"),
            _f("NumberOfEmployees", "int", precision=8),
            _f("AnnualRevenue", "currency"),
            _f("BillingStreet", "textarea", length=255),
            _f("BillingCity", "string", length=40),
            _f("BillingState", "string", length=80),
            _f("BillingPostalCode", "string", length=20),
            _f("BillingCountry", "string", length=80),
            _f("Phone", "phone"),
            _ref("ParentId", "Account"),
            _f("Type", "picklist"),
            _f("AccountSource", "picklist"),
            _f("Description", "textarea"),
            _owner(),
            _ro("MasterRecordId", "reference", reference_to=("Account",)),
        ]),
        ("Lead", "00Q", "Lead", "Leads", [
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _ro("Name", "string", length=121),
            _f("Email", "email"),
            _f("Company", "string", nillable=False),
            _f("Website", "url"),
            _f("Title", "string", length=128),
            _f("Phone", "phone"),
            _f("City", "string", length=40),
            _f("State", "string", length=80),
            _f("Country", "string", length=80),
            _f("Status", "picklist", nillable=False),
            _f("LeadSource", "picklist"),
            _f("Industry", "picklist"),
            _f("NumberOfEmployees", "int", precision=8),
            _ro("IsConverted", "boolean", nillable=False),
            _ro("ConvertedAccountId", "reference", reference_to=("Account",)),
            _ro("ConvertedContactId", "reference", reference_to=("Contact",)),
            _ro("ConvertedOpportunityId", "reference", reference_to=("Opportunity",)),
            _ro("ConvertedDate", "date"),
            _owner(),
            _ro("MasterRecordId", "reference", reference_to=("Lead",)),
        ]),
        ("Contact", "003", "Contact", "Contacts", [
            _ref("AccountId", "Account"),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _ro("Name", "string", length=121),
            _f("Email", "email"),
            _f("Title", "string", length=128),
            _f("Phone", "phone"),
            _f("MailingCity", "string", length=40),
            _f("MailingState", "string", length=80),
            _f("MailingCountry", "string", length=80),
            _f("LeadSource", "picklist"),
            _owner(),
            _ro("MasterRecordId", "reference", reference_to=("Contact",)),
        ]),
        ("Opportunity", "006", "Opportunity", "Opportunities", [
            _f("Name", "string", length=120, nillable=False),
            _ref("AccountId", "Account"),
            _f("StageName", "picklist", nillable=False),
            _ro("IsClosed", "boolean", nillable=False),
            _ro("IsWon", "boolean", nillable=False),
            _f("Amount", "currency"),
            _f("Probability", "percent", precision=3),
            _f("CloseDate", "date", nillable=False),
            _f("Type", "picklist"),
            _f("LeadSource", "picklist"),
            _ref("CampaignId", "Campaign"),
            _owner(),
        ]),
        ("Task", "00T", "Task", "Tasks", [
            _ref("WhoId", "Contact", "Lead"),
            _ref("WhatId", "Account", "Opportunity", "Campaign"),
            _f("Subject", "string"),
            _f("TaskSubtype", "picklist"),
            _f("Type", "picklist"),
            _f("CallDurationInSeconds", "int"),
            _f("ActivityDate", "date"),
            _f("Status", "picklist", nillable=False),
            _f("Priority", "picklist"),
            _f("Description", "textarea"),
            _owner(),
        ]),
        ("Event", "00U", "Event", "Events", [
            _ref("WhoId", "Contact", "Lead"),
            _ref("WhatId", "Account", "Opportunity", "Campaign"),
            _f("Subject", "string"),
            _f("Type", "picklist"),
            _f("StartDateTime", "datetime"),
            _f("EndDateTime", "datetime"),
            _f("DurationInMinutes", "int"),
            _f("ActivityDate", "date"),
            _f("Description", "textarea"),
            _owner(),
        ]),
        ("Campaign", "701", "Campaign", "Campaigns", [
            _f("Name", "string", length=80, nillable=False),
            _f("Type", "picklist"),
            _f("Status", "picklist"),
            _f("StartDate", "date"),
            _f("EndDate", "date"),
            _f("IsActive", "boolean"),
            _owner(),
        ]),
        ("CampaignMember", "00v", "Campaign Member", "Campaign Members", [
            _ref("CampaignId", "Campaign", nillable=False, updateable=False),
            _ref("LeadId", "Lead", updateable=False),
            _ref("ContactId", "Contact", updateable=False),
            _f("Status", "picklist"),
            _ro("HasResponded", "boolean", nillable=False),
            _ro("FirstRespondedDate", "date"),
        ]),
    ]
    objects = []
    for name, prefix, label, plural, fields in specs:
        obj = SfObject(name, prefix, label, plural)
        for f in _audit() + fields:
            obj.add(f)
        objects.append(obj)
    return objects


# Metadata API CustomField types the sandbox accepts -> describe type
CUSTOM_FIELD_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Email": "email",
    "Url": "url",
    "Phone": "phone",
    "Picklist": "picklist",
    "Lookup": "reference",
}
CUSTOM_FIELD_OBJECTS = ("Account", "Lead", "Contact", "Opportunity")


class SalesforceSchema:
    """The org's objects and fields, kept in step with the SQLite tables."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.objects: dict[str, SfObject] = {o.name.lower(): o for o in _standard_objects()}
        storage.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (object TEXT, spec TEXT, PRIMARY KEY(object, spec))")
        storage.execute(f"CREATE TABLE IF NOT EXISTS {DELETED_LOG_TABLE} (object TEXT, \"Id\" TEXT, deleted_at TEXT)")
        for obj in self.objects.values():
            self._create_table(obj)
        for object_name, spec in storage.fetchall(f"SELECT object, spec FROM {META_TABLE}"):
            data = json.loads(spec)
            data["reference_to"] = tuple(data.get("reference_to", ()))
            data["picklist"] = tuple(data.get("picklist", ()))
            self._register(self.objects[object_name.lower()], SfField(**data))

    def _create_table(self, obj: SfObject) -> None:
        columns = {f.name: f.sql_type for f in obj.fields.values()}
        columns[HIDDEN_DELETED_AT] = "TEXT"
        self.storage.create_table(obj.table, columns, key="Id")
        existing = set(self.storage.columns(obj.table))
        for name, sql_type in columns.items():  # an org kept with --state by an older sandbox lacks new fields
            if name not in existing:
                self.storage.add_column(obj.table, name, sql_type)
        self.storage.create_index(obj.table, ["SystemModstamp"])
        # every text column compares case-insensitively in SOQL; index the common lookups
        for column in ("Email", "AccountId", "WhoId", "WhatId", "LastModifiedDate"):
            if obj.field(column):
                self.storage.create_index(obj.table, [column])

    def get(self, name: str) -> SfObject | None:
        return self.objects.get(name.lower())

    def _register(self, obj: SfObject, f: SfField) -> None:
        obj.add(f)
        self.storage.add_column(obj.table, f.name, f.sql_type)

    def add_field(self, object_name: str, f: SfField) -> None:
        """Add a field (Metadata API createMetadata, or a field the generator emits) and its column."""
        obj = self.get(object_name)
        if obj is None:
            raise KeyError(object_name)
        if obj.field(f.name) is not None:
            raise ValueError(f"field {f.name} already exists on {obj.name}")
        self._register(obj, f)
        spec = asdict(f)
        self.storage.execute(
            f"INSERT OR REPLACE INTO {META_TABLE} (object, spec) VALUES (?, ?)", (obj.name, json.dumps(spec))
        )
