"""The HubSpot property registry: object types, their properties and property groups.

Objects endpoints, search, the properties API and the SQLite columns all come from this one
registry, so a property created through ``/crm/v3/properties`` is at once readable, writable
and searchable. Custom properties and groups are also written to a metadata table so a
portal kept with ``--state`` still has them after a restart.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sandbox.storage import Storage

TABLE_PREFIX = "hs_"
META_TABLE = "hs_meta_properties"
GROUP_TABLE = "hs_meta_groups"
# Row state kept beside the property columns (never exposed as properties).
ARCHIVED, ARCHIVED_AT, MERGED_INTO = "_archived", "_archived_at", "_merged_into"

# type -> fieldTypes HubSpot accepts for it
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea", "html", "phonenumber", "file"),
    "number": ("number", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
    "bool": ("booleancheckbox", "calculation_equation"),
    "phone_number": ("phonenumber",),
}
_SQL_TYPE = {"number": "REAL", "date": "INTEGER", "datetime": "INTEGER"}
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


@dataclass(frozen=True)
class Option:
    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "value": self.value, "description": self.description,
                "displayOrder": self.display_order, "hidden": self.hidden}


@dataclass(frozen=True)
class HsProperty:
    name: str
    type: str
    field_type: str
    group_name: str
    label: str = ""
    description: str = ""
    options: tuple[Option, ...] = ()
    read_only: bool = False
    calculated: bool = False
    external_options: bool = False
    has_unique_value: bool = False
    hubspot_defined: bool = True
    form_field: bool = False
    display_order: int = -1
    created_at: int = 0  # ms
    updated_at: int = 0
    archived: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unsupported property type {self.type!r} for {self.name}")

    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.name == "hs_object_id" else _SQL_TYPE.get(self.type, "TEXT")

    @property
    def option_values(self) -> frozenset[str]:
        return frozenset(o.value for o in self.options)

    @property
    def validates_options(self) -> bool:
        return self.type == "enumeration" and not self.external_options and self.field_type != "booleancheckbox"

    def to_meta(self) -> str:
        data = asdict(self)
        data["options"] = [asdict(o) for o in self.options]
        return json.dumps(data)

    @classmethod
    def from_meta(cls, raw: str) -> HsProperty:
        data = json.loads(raw)
        data["options"] = tuple(Option(**o) for o in data.get("options", ()))
        return cls(**data)


@dataclass(frozen=True)
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "displayOrder": self.display_order,
                "archived": self.archived}


@dataclass
class HsObjectType:
    """One CRM object type: ``name`` is the plural path name (``contacts``), ``type_id`` ``0-1``."""

    name: str
    singular: str
    type_id: str
    created_property: str
    modified_properties: tuple[str, ...]
    default_properties: tuple[str, ...]
    search_text_properties: tuple[str, ...]
    properties: dict[str, HsProperty] = field(default_factory=dict)
    groups: dict[str, PropertyGroup] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return TABLE_PREFIX + self.name

    @property
    def modified_property(self) -> str:
        return self.modified_properties[0]

    @property
    def always_returned(self) -> tuple[str, ...]:
        """HubSpot adds these to every record it returns, whatever ``properties`` asked for."""
        return (self.created_property, *self.modified_properties, "hs_object_id")

    def get_property(self, name: str) -> HsProperty | None:
        prop = self.properties.get(name)
        return prop if prop is not None and not prop.archived else None


def _p(name: str, type_: str = "string", field_type: str | None = None, group: str = "", **kw: Any) -> HsProperty:
    default_field = {"string": "text", "number": "number", "date": "date", "datetime": "date",
                     "enumeration": "select", "bool": "booleancheckbox", "phone_number": "phonenumber"}[type_]
    label = kw.pop("label", None) or name.replace("hs_", "").replace("_", " ").capitalize()
    options = kw.pop("options", ())
    if options and isinstance(options[0], str):
        options = tuple(Option(label=v.replace("_", " ").title(), value=v, display_order=i) for i, v in
                        enumerate(options))
    return HsProperty(name=name, type=type_, field_type=field_type or default_field, group_name=group,
                      label=label, options=options, **kw)


def _ro(name: str, type_: str = "string", group: str = "", **kw: Any) -> HsProperty:
    return _p(name, type_, group=group, read_only=True, **kw)


_BOOL_OPTIONS = (Option("Yes", "true", 0), Option("No", "false", 1))
LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
             "evangelist", "other")
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent", "closedwon", "closedlost")
CLOSED_STAGES = {"closedwon": True, "closedlost": False}
INDUSTRIES = ("ACCOUNTING", "AIRLINES_AVIATION", "APPAREL_FASHION", "AUTOMOTIVE", "BANKING", "BIOTECHNOLOGY",
              "CHEMICALS", "COMPUTER_HARDWARE", "COMPUTER_NETWORKING", "COMPUTER_SOFTWARE", "CONSTRUCTION",
              "CONSUMER_GOODS", "EDUCATION_MANAGEMENT", "ELECTRICAL_ELECTRONIC_MANUFACTURING", "FINANCIAL_SERVICES",
              "FOOD_BEVERAGES", "GOVERNMENT_ADMINISTRATION", "HOSPITAL_HEALTH_CARE", "HOSPITALITY",
              "INFORMATION_TECHNOLOGY_AND_SERVICES", "INSURANCE", "INTERNET", "LEGAL_SERVICES",
              "LOGISTICS_AND_SUPPLY_CHAIN", "MACHINERY", "MANAGEMENT_CONSULTING", "MARITIME",
              "MARKETING_AND_ADVERTISING", "MEDIA_PRODUCTION", "NON_PROFIT_ORGANIZATION_MANAGEMENT", "OIL_ENERGY",
              "PHARMACEUTICALS", "REAL_ESTATE", "RETAIL", "TELECOMMUNICATIONS", "TRANSPORTATION_TRUCKING_RAILROAD",
              "UTILITIES", "WHOLESALE")


def _common(group: str, created: str, modified: tuple[str, ...]) -> list[HsProperty]:
    props = [
        _ro("hs_object_id", "number", group, label="Record ID"),
        _p(created, "datetime", group=group, label="Create date"),
        _p("hubspot_owner_id", "enumeration", group=group, label="Owner", external_options=True),
        _ro("hs_merged_object_ids", "enumeration", group, field_type="checkbox", label="Merged record IDs",
            external_options=True),
    ]
    props += [_ro(m, "datetime", group, label="Last modified date") for m in modified]
    return props


def _engagement(name: str, singular: str, type_id: str, group: str, extra: list[HsProperty],
                text: tuple[str, ...]) -> HsObjectType:
    modified = ("hs_lastmodifieddate",)
    props = _common(group, "hs_createdate", modified) + [_p("hs_timestamp", "datetime", group=group,
                                                            label="Activity date")] + extra
    return HsObjectType(name, singular, type_id, "hs_createdate", modified,
                        ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"), text,
                        {p.name: p for p in props}, {group: PropertyGroup(group, f"{singular.title()} information")})


def standard_object_types() -> list[HsObjectType]:
    """The object types the sandbox serves, with a realistic subset of HubSpot's standard properties."""
    g = "companyinformation"
    companies = HsObjectType(
        "companies", "company", "0-2", "createdate", ("hs_lastmodifieddate",),
        ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"), ("name", "domain", "website",
                                                                                    "phone"),
        groups={g: PropertyGroup(g, "Company information", 0),
                "salesforceinformation": PropertyGroup("salesforceinformation", "Salesforce information", 1)},
    )
    for p in _common(g, "createdate", ("hs_lastmodifieddate",)) + [
        _p("name", group=g, label="Company name"), _p("domain", group=g, label="Company domain name"),
        _p("website", group=g, label="Website URL"), _p("phone", "string", "phonenumber", g, label="Phone number"),
        _p("industry", "enumeration", group=g, options=INDUSTRIES), _p("numberofemployees", "number", group=g,
                                                   label="Number of employees"),
        _p("annualrevenue", "number", group=g, label="Annual revenue"), _p("address", group=g),
        _p("city", group=g), _p("state", group=g, label="State/Region"), _p("zip", group=g, label="Postal code"),
        _p("country", group=g, label="Country/Region"), _p("description", "string", "textarea", g),
        _p("type", "enumeration", group=g, options=("PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER")),
        _p("lifecyclestage", "enumeration", "radio", g, label="Lifecycle stage", options=LIFECYCLE),
        _p("hs_parent_company_id", "number", group=g, label="Parent company"),
        _p("salesforceaccountid", group="salesforceinformation", label="Salesforce account ID"),
    ]:
        companies.properties[p.name] = p

    g = "contactinformation"
    contacts = HsObjectType(
        "contacts", "contact", "0-1", "createdate", ("lastmodifieddate", "hs_lastmodifieddate"),
        ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
        ("email", "firstname", "lastname", "phone", "company"),
        groups={g: PropertyGroup(g, "Contact information", 0),
                "analyticsinformation": PropertyGroup("analyticsinformation", "Web analytics history", 1),
                "salesforceinformation": PropertyGroup("salesforceinformation", "Salesforce information", 2)},
    )
    for p in _common(g, "createdate", ("lastmodifieddate", "hs_lastmodifieddate")) + [
        _p("email", group=g, has_unique_value=True), _p("firstname", group=g, label="First name"),
        _p("lastname", group=g, label="Last name"), _p("jobtitle", group=g, label="Job title"),
        _p("phone", "string", "phonenumber", g, label="Phone number"),
        _p("mobilephone", "string", "phonenumber", g, label="Mobile phone number"),
        _p("company", group=g, label="Company name"), _p("website", group=g, label="Website URL"),
        _p("city", group=g), _p("state", group=g, label="State/Region"), _p("country", group=g,
                                                                            label="Country/Region"),
        _p("industry", group=g), _ro("hs_email_domain", group=g, label="Email domain"),
        _p("associatedcompanyid", "number", group=g, label="Primary associated company ID"),
        _p("lifecyclestage", "enumeration", "radio", g, label="Lifecycle stage", options=LIFECYCLE),
        _p("hs_lead_status", "enumeration", "radio", g, label="Lead status",
           options=("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
                    "BAD_TIMING")),
        _p("hs_analytics_source", "enumeration", group="analyticsinformation", label="Original source",
           options=("ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
                    "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL", "AI_REFERRALS")),
        _p("salesforceleadid", group="salesforceinformation", label="Salesforce lead ID"),
        _p("salesforcecontactid", group="salesforceinformation", label="Salesforce contact ID"),
        _p("salesforceaccountid", group="salesforceinformation", label="Salesforce account ID"),
    ]:
        contacts.properties[p.name] = p

    g = "dealinformation"
    deals = HsObjectType(
        "deals", "deal", "0-3", "createdate", ("hs_lastmodifieddate",),
        ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
         "pipeline"), ("dealname",),
        groups={g: PropertyGroup(g, "Deal information", 0)},
    )
    for p in _common(g, "createdate", ("hs_lastmodifieddate",)) + [
        _p("dealname", group=g, label="Deal name"), _p("amount", "number", group=g),
        _p("dealstage", "enumeration", "radio", g, label="Deal stage", options=DEAL_STAGES),
        _p("pipeline", "enumeration", group=g, options=(Option("Sales Pipeline", "default"),)),
        _p("closedate", "datetime", group=g, label="Close date"),
        _p("dealtype", "enumeration", "radio", g, label="Deal type", options=("newbusiness", "existingbusiness")),
        _ro("hs_is_closed", "bool", g, label="Is deal closed?", calculated=True, options=_BOOL_OPTIONS),
        _ro("hs_is_closed_won", "bool", g, label="Is closed won", calculated=True, options=_BOOL_OPTIONS),
        _p("salesforceopportunityid", group=g, label="Salesforce opportunity ID"),
    ]:
        deals.properties[p.name] = p

    calls = _engagement("calls", "call", "0-48", "call", [
        _p("hs_call_title", group="call", label="Call title"), _p("hs_call_body", "string", "html", "call"),
        _p("hs_call_direction", "enumeration", group="call", options=("INBOUND", "OUTBOUND")),
        _p("hs_call_duration", "number", group="call", label="Call duration (ms)"),
        _p("hs_call_status", "enumeration", group="call",
           options=("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
                    "NO_ANSWER", "QUEUED", "RINGING")),
        _p("hs_call_disposition", "enumeration", group="call", external_options=True),
    ], ("hs_call_title", "hs_call_body"))
    emails = _engagement("emails", "email", "0-49", "email", [
        _p("hs_email_subject", group="email"), _p("hs_email_text", "string", "textarea", "email"),
        _p("hs_email_direction", "enumeration", group="email", options=("EMAIL", "INCOMING_EMAIL",
                                                                        "FORWARDED_EMAIL")),
        _p("hs_email_status", "enumeration", group="email", options=("BOUNCED", "FAILED", "SCHEDULED", "SENDING",
                                                                     "SENT")),
    ], ("hs_email_subject", "hs_email_text"))
    meetings = _engagement("meetings", "meeting", "0-47", "meeting", [
        _p("hs_meeting_title", group="meeting"), _p("hs_meeting_body", "string", "html", "meeting"),
        _p("hs_meeting_start_time", "datetime", group="meeting"),
        _p("hs_meeting_end_time", "datetime", group="meeting"), _p("hs_meeting_location", group="meeting"),
        _p("hs_meeting_outcome", "enumeration", group="meeting",
           options=("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
    ], ("hs_meeting_title", "hs_meeting_body"))
    notes = _engagement("notes", "note", "0-46", "note", [
        _p("hs_note_body", "string", "html", "note"),
    ], ("hs_note_body",))
    tasks = _engagement("tasks", "task", "0-27", "task", [
        _p("hs_task_subject", group="task"), _p("hs_task_body", "string", "html", "task"),
        _p("hs_task_status", "enumeration", group="task",
           options=("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        _p("hs_task_priority", "enumeration", group="task", options=("NONE", "LOW", "MEDIUM", "HIGH")),
        _p("hs_task_type", "enumeration", group="task", options=("EMAIL", "CALL", "TODO", "LINKED_IN")),
    ], ("hs_task_subject", "hs_task_body"))
    return [companies, contacts, deals, calls, emails, meetings, notes, tasks]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class HubSpotSchema:
    """The registry, backed by one SQLite table per object type and a metadata table."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.types: dict[str, HsObjectType] = {}
        self._aliases: dict[str, str] = {}
        storage.create_table(META_TABLE, {"key": "TEXT", "object": "TEXT", "definition": "TEXT"}, "key")
        storage.create_table(GROUP_TABLE, {"key": "TEXT", "object": "TEXT", "definition": "TEXT"}, "key")
        for obj in standard_object_types():
            self.types[obj.name] = obj
            for alias in (obj.name, obj.singular, obj.type_id):
                self._aliases[alias] = obj.name
        self._restore_custom()
        for obj in self.types.values():
            self._ensure_table(obj)

    def get(self, name: str) -> HsObjectType | None:
        key = self._aliases.get(name.lower())
        return self.types.get(key) if key else None

    def _ensure_table(self, obj: HsObjectType) -> None:
        columns = {p.name: p.sql_type for p in obj.properties.values()}
        columns.update({ARCHIVED: "INTEGER", ARCHIVED_AT: "INTEGER", MERGED_INTO: "INTEGER"})
        self.storage.create_table(obj.table, columns, "hs_object_id")
        existing = set(self.storage.columns(obj.table))
        for name, sql_type in columns.items():
            if name not in existing:
                self.storage.add_column(obj.table, name, sql_type)
        for modified in obj.modified_properties:
            # Search always leaves archived records out: led by the date alone, its index lost to
            # (_archived, hs_object_id), and every page of a window scanned and sorted the whole table
            # (0.4 s of the sandbox's CPU a page on the L org's contacts). Led by _archived, a window is one
            # index range read in the order the search sorts by. Orgs kept from before lose the old index.
            self.storage.drop_index(obj.table, [modified, "hs_object_id"])
            self.storage.create_index(obj.table, [ARCHIVED, modified, "hs_object_id"])
        self.storage.create_index(obj.table, [ARCHIVED, "hs_object_id"])

    def _restore_custom(self) -> None:
        for object_name, raw in self.storage.fetchall(f'SELECT "object", "definition" FROM {META_TABLE}'):
            prop = HsProperty.from_meta(raw)
            self.types[object_name].properties[prop.name] = prop
        for object_name, raw in self.storage.fetchall(f'SELECT "object", "definition" FROM {GROUP_TABLE}'):
            group = PropertyGroup(**json.loads(raw))
            self.types[object_name].groups[group.name] = group

    def save_property(self, obj: HsObjectType, prop: HsProperty) -> None:
        """Add or replace a property (custom, or a standard one whose options grew) and persist it."""
        obj.properties[prop.name] = prop
        self.storage.add_column(obj.table, prop.name, prop.sql_type)
        self.storage.execute(
            f'INSERT OR REPLACE INTO {META_TABLE} ("key", "object", "definition") VALUES (?, ?, ?)',
            (f"{obj.name}.{prop.name}", obj.name, prop.to_meta()),
        )

    def save_group(self, obj: HsObjectType, group: PropertyGroup) -> None:
        obj.groups[group.name] = group
        self.storage.execute(
            f'INSERT OR REPLACE INTO {GROUP_TABLE} ("key", "object", "definition") VALUES (?, ?, ?)',
            (f"{obj.name}.{group.name}", obj.name, json.dumps(asdict(group))),
        )

    def add_options(self, obj: HsObjectType, prop: HsProperty, values: set[str]) -> HsProperty:
        """Grow an enumeration's options with values the generator uses (it is the source of truth)."""
        start = len(prop.options)
        extra = tuple(Option(label=v, value=v, display_order=start + i) for i, v in enumerate(sorted(values)))
        grown = replace(prop, options=prop.options + extra, updated_at=now_ms())
        self.save_property(obj, grown)
        return grown
