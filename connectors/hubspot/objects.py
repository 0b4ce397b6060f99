"""The HubSpot objects abm-sync pulls and how each maps onto the canonical model.

One :class:`ObjectSpec` per object says where it lands, which property carries its
modification stamp (``lastmodifieddate`` on contacts, ``hs_lastmodifieddate`` elsewhere: search
on contacts silently ignores the latter), which properties to read and which associations to
follow. ``map_record`` turns one raw record (``{"id", "properties", "createdAt", ...}``) plus its
links into a row of the canonical table, every row of a table with the same columns so batches
upsert in one statement. Properties with no canonical column are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.hubspot import values as v
from connectors.hubspot.activities import HubSpotActivities
from connectors.hubspot.associations import Links, first_id, ids_by_type
from store.activity_types import team_of

CRM = "hubspot"
Properties = Mapping[str, str | None]


@dataclass(frozen=True)
class ObjectSpec:
    name: str  # HubSpot's object type, also the store's ``object`` column
    table: str  # key of store.schema.CRM_RECORD_TABLES
    modified_property: str
    properties: tuple[str, ...]  # read for the mapping
    extra_properties: tuple[str, ...]  # read and kept in ``extra``
    associations: tuple[str, ...]  # object types whose links the mapping uses
    merges: bool = False  # records carry hs_merged_object_ids (HubSpot merges these objects)
    created_property: str = "createdate"  # engagements: hs_createdate

    @property
    def all_properties(self) -> tuple[str, ...]:
        bookkeeping = ("hs_object_id", self.modified_property, self.created_property)
        merged = ("hs_merged_object_ids",) if self.merges else ()
        return tuple(dict.fromkeys((*bookkeeping, *self.properties, *self.extra_properties, *merged)))


_ENGAGEMENT_LINKS = ("contacts", "companies")

SPECS: dict[str, ObjectSpec] = {
    spec.name: spec
    for spec in (
        ObjectSpec(
            "companies", "accounts", "hs_lastmodifieddate",
            ("name", "domain", "website", "industry", "numberofemployees", "annualrevenue", "country", "state",
             "city", "phone", "hs_parent_company_id", "type", "hubspot_owner_id", "salesforceaccountid"),
            ("lifecyclestage",), (), merges=True,
        ),
        ObjectSpec(
            "contacts", "people", "lastmodifieddate",
            ("firstname", "lastname", "email", "jobtitle", "company", "website", "phone", "country", "state",
             "city", "industry", "numemployees", "associatedcompanyid", "hs_lead_status", "hs_analytics_source",
             "hubspot_owner_id"),
            ("lifecyclestage", "salesforcecontactid", "salesforceleadid"), ("companies",), merges=True,
        ),
        ObjectSpec(
            "deals", "opportunities", "hs_lastmodifieddate",
            ("dealname", "dealstage", "amount", "closedate", "hs_is_closed", "hs_is_closed_won"),
            ("pipeline", "hubspot_owner_id", "salesforceopportunityid"), ("companies",), merges=True,
        ),
        ObjectSpec(
            "calls", "activities", "hs_lastmodifieddate",
            ("hs_timestamp", "hs_call_title", "hs_call_duration", "hs_call_disposition", "hs_call_status",
             "hs_call_direction"),
            ("hubspot_owner_id",), _ENGAGEMENT_LINKS, created_property="hs_createdate",
        ),
        ObjectSpec(
            "emails", "activities", "hs_lastmodifieddate",
            ("hs_timestamp", "hs_email_subject", "hs_email_direction", "hs_email_status"),
            ("hubspot_owner_id",), _ENGAGEMENT_LINKS, created_property="hs_createdate",
        ),
        ObjectSpec(
            "meetings", "activities", "hs_lastmodifieddate",
            ("hs_timestamp", "hs_meeting_title", "hs_meeting_outcome", "hs_meeting_start_time",
             "hs_meeting_end_time"),
            ("hubspot_owner_id",), _ENGAGEMENT_LINKS, created_property="hs_createdate",
        ),
        ObjectSpec(
            "notes", "activities", "hs_lastmodifieddate", ("hs_timestamp", "hs_note_body"),
            ("hubspot_owner_id",), _ENGAGEMENT_LINKS, created_property="hs_createdate",
        ),
        ObjectSpec(
            "tasks", "activities", "hs_lastmodifieddate",
            ("hs_timestamp", "hs_task_subject", "hs_task_type", "hs_task_status"),
            ("hubspot_owner_id",), _ENGAGEMENT_LINKS, created_property="hs_createdate",
        ),
    )
}
# Pull order: accounts before the people and deals that point at them, engagements last.
OBJECT_ORDER = tuple(SPECS)


def _base(spec: ObjectSpec, record: Mapping[str, Any], props: Properties) -> dict[str, Any]:
    return {
        "crm": CRM,
        "object": spec.name,
        "crm_id": str(record["id"]),
        "created_at": v.timestamp(props.get(spec.created_property)) or v.timestamp(record.get("createdAt")),
        "modified_at": v.timestamp(props.get(spec.modified_property)) or v.timestamp(record.get("updatedAt")),
        "is_deleted": False,
        "merged_into": None,
    }


def _extra(spec: ObjectSpec, props: Properties, links: Links, **more: Any) -> dict[str, Any] | None:
    extra: dict[str, Any] = {name: props[name] for name in spec.extra_properties if props.get(name) not in (None, "")}
    merged = props.get("hs_merged_object_ids")
    if merged:
        extra["merged_object_ids"] = v.id_list(merged)
    linked = ids_by_type(links)
    if linked:
        extra["associations"] = linked
    extra.update({k: value for k, value in more.items() if value is not None})
    return extra or None


def map_company(spec: ObjectSpec, record: Mapping[str, Any], links: Links, _rules: HubSpotActivities,
                _now: datetime) -> dict[str, Any]:
    p: Properties = record.get("properties") or {}
    return {
        **_base(spec, record, p),
        "extra": _extra(spec, p, links),
        "name": v.text(p.get("name")),
        "website": v.text(p.get("website")),
        "domain": v.domain_of(p.get("domain"), p.get("website")),
        "industry": v.text(p.get("industry")),
        "employees": v.whole_number(p.get("numberofemployees")),
        "annual_revenue": v.number(p.get("annualrevenue")),
        "country": v.text(p.get("country")),
        "state": v.text(p.get("state")),
        "city": v.text(p.get("city")),
        "phone": v.text(p.get("phone")),
        "parent_crm_id": v.text(p.get("hs_parent_company_id")),
        "type": v.text(p.get("type")),
        "owner_crm_id": v.text(p.get("hubspot_owner_id")),
        "linked_salesforce_id": v.text(p.get("salesforceaccountid")),
    }


def map_contact(spec: ObjectSpec, record: Mapping[str, Any], links: Links, _rules: HubSpotActivities,
                _now: datetime) -> dict[str, Any]:
    p: Properties = record.get("properties") or {}
    return {
        **_base(spec, record, p),
        "extra": _extra(spec, p, links),
        "kind": "contact",
        "first_name": v.text(p.get("firstname")),
        "last_name": v.text(p.get("lastname")),
        "email": v.text(p.get("email")),
        "title": v.text(p.get("jobtitle")),
        "company": v.text(p.get("company")),
        "website": v.text(p.get("website")),
        "phone": v.text(p.get("phone")),
        "country": v.text(p.get("country")),
        "state": v.text(p.get("state")),
        "city": v.text(p.get("city")),
        "industry": v.text(p.get("industry")),
        "employees": v.whole_number(p.get("numemployees")),
        # The association is the source of truth; the property is a fallback for a portal
        # whose token lacks the associations scope.
        "account_crm_id": first_id(links, "companies") or v.text(p.get("associatedcompanyid")),
        "status": v.text(p.get("hs_lead_status")),
        "source": v.text(p.get("hs_analytics_source")),
        "owner_crm_id": v.text(p.get("hubspot_owner_id")),
    }


def map_deal(spec: ObjectSpec, record: Mapping[str, Any], links: Links, _rules: HubSpotActivities,
             _now: datetime) -> dict[str, Any]:
    p: Properties = record.get("properties") or {}
    stage = v.text(p.get("dealstage"))
    is_closed = v.flag(p.get("hs_is_closed"))
    is_won = v.flag(p.get("hs_is_closed_won"))
    if is_closed is None:  # portals without the calculated properties: the default pipeline's stages
        is_closed = stage in ("closedwon", "closedlost")
    if is_won is None:
        is_won = stage == "closedwon"
    close = v.timestamp(p.get("closedate"))
    return {
        **_base(spec, record, p),
        "extra": _extra(spec, p, links),
        "name": v.text(p.get("dealname")),
        "account_crm_id": first_id(links, "companies"),
        "stage": stage,
        "is_closed": bool(is_closed),
        "is_won": bool(is_won),
        "amount": v.number(p.get("amount")),
        "close_date": v.day(p.get("closedate")),
        "closed_at": close if is_closed else None,
    }


_SUBJECT = {
    "calls": "hs_call_title",
    "emails": "hs_email_subject",
    "meetings": "hs_meeting_title",
    "notes": "hs_note_body",
    "tasks": "hs_task_subject",
}
_CRM_TYPE = {
    "calls": "hs_call_disposition",
    "emails": "hs_email_direction",
    "meetings": "hs_meeting_outcome",
    "tasks": "hs_task_type",
}


def _duration_seconds(object_name: str, p: Properties) -> int | None:
    if object_name == "calls":
        ms = v.number(p.get("hs_call_duration"))
        return None if ms is None else int(ms // 1000)
    if object_name == "meetings":
        start, end = v.timestamp(p.get("hs_meeting_start_time")), v.timestamp(p.get("hs_meeting_end_time"))
        if start and end and end >= start:
            return int((end - start).total_seconds())
    return None


def map_engagement(
    spec: ObjectSpec, record: Mapping[str, Any], links: Links, rules: HubSpotActivities, now: datetime
) -> dict[str, Any] | None:
    """An activity row, or None when the rules say the engagement is not a touch."""
    p: Properties = record.get("properties") or {}
    duration = _duration_seconds(spec.name, p)
    meeting_end = v.timestamp(p.get("hs_meeting_end_time")) if spec.name == "meetings" else None
    activity_type = rules.engagement_type(spec.name, p, duration, meeting_end, now)
    if activity_type is None:
        return None
    subject = v.text(p.get(_SUBJECT[spec.name]))
    crm_type_property = _CRM_TYPE.get(spec.name)
    crm_type = v.text(p.get(crm_type_property)) if crm_type_property else None
    return {
        **_base(spec, record, p),
        "extra": _extra(spec, p, links),
        "activity_type": activity_type,
        "crm_type": f"{spec.name}:{crm_type}" if crm_type else spec.name,
        "team": team_of(activity_type),
        "subject": subject[:1000] if subject else None,
        "occurred_at": v.timestamp(p.get("hs_timestamp")) or v.timestamp(p.get(spec.created_property)),
        "duration_seconds": duration,
        "ends_at": meeting_end,
        "person_crm_id": first_id(links, "contacts"),
        "account_crm_id": first_id(links, "companies"),
        "campaign_crm_id": None,
        "campaign_type": None,
    }


Mapper = Callable[[ObjectSpec, Mapping[str, Any], Links, HubSpotActivities, datetime], "dict[str, Any] | None"]
MAPPERS: dict[str, Mapper] = {
    "companies": map_company,
    "contacts": map_contact,
    "deals": map_deal,
    **{name: map_engagement for name in ("calls", "emails", "meetings", "notes", "tasks")},
}


def map_record(
    spec: ObjectSpec, record: Mapping[str, Any], links: Links, rules: HubSpotActivities, now: datetime
) -> dict[str, Any] | None:
    """The canonical row of one record; None for an engagement the rules say is not a touch.

    ``now`` is the run's start: a scheduled meeting whose end has passed by then was held.
    """
    return MAPPERS[spec.name](spec, record, links, rules, now)
