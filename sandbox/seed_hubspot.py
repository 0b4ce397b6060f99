"""The HubSpot view of the synthetic world: CRM v3 objects, associations, marketing events.

Objects come in the shape HubSpot's CRM v3 API answers (``id``, ``properties`` with string
values under HubSpot's internal names, ``createdAt``, ``updatedAt``, ``archived``). The same
companies as Salesforce appear here (a share linked through ``salesforceaccountid``), the same
people with the same emails (``salesforceleadid`` / ``salesforcecontactid``), and the marketing
engagement (email and web events) concentrates on the companies the generator made surging.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from sandbox import seed_activity as A
from sandbox.seed_people import CONTACT, CONVERTED, HUBSPOT_ONLY
from sandbox.seed_salesforce import _TEMPLATE as _SF_TEMPLATE
from sandbox.seed_salesforce import SalesforceView
from sandbox.seed_typing import BLANK as BLANK_TYPING
from sandbox.seed_typing import typed_country, typed_website
from sandbox.seed_world import World

OBJECT_TYPES = ("companies", "contacts", "deals", "calls", "emails", "meetings", "notes", "tasks")
ENGAGEMENT_TYPES = ("calls", "emails", "meetings", "notes", "tasks")
_ID_BASE = {"companies": 100_000_000, "contacts": 200_000_000, "deals": 300_000_000, "calls": 400_000_000,
            "emails": 500_000_000, "meetings": 600_000_000, "notes": 700_000_000, "tasks": 800_000_000}
EMAIL_CAMPAIGN_BASE = 41_000_000
SELLER_SITE = "https://www.abm-sandbox.example"
# Salesforce Industry picklist value -> HubSpot's industry enumeration
HUBSPOT_INDUSTRY = {
    "Technology": "COMPUTER_SOFTWARE", "Finance": "FINANCIAL_SERVICES", "Banking": "BANKING",
    "Insurance": "INSURANCE", "Manufacturing": "MACHINERY", "Electronics": "ELECTRICAL_ELECTRONIC_MANUFACTURING",
    "Healthcare": "HOSPITAL_HEALTH_CARE", "Biotechnology": "BIOTECHNOLOGY", "Telecommunications": "TELECOMMUNICATIONS",
    "Consulting": "MANAGEMENT_CONSULTING", "Transportation": "TRANSPORTATION_TRUCKING_RAILROAD",
    "Shipping": "MARITIME", "Retail": "RETAIL", "Food & Beverage": "FOOD_BEVERAGES", "Energy": "OIL_ENERGY",
    "Media": "MEDIA_PRODUCTION", "Construction": "CONSTRUCTION", "Education": "EDUCATION_MANAGEMENT",
    "Hospitality": "HOSPITALITY", "Not For Profit": "NON_PROFIT_ORGANIZATION_MANAGEMENT",
    "Government": "GOVERNMENT_ADMINISTRATION",
}
# HubSpot's default deal pipeline: open stages in order, then the closed ones.
DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent")
ENGAGEMENT_TYPE_OF_KIND = {A.SALES_EMAIL: "emails", A.EMAIL_REPLY: "emails", A.CALL: "calls", A.MEETING: "meetings",
                           A.DEMO: "meetings", A.FOLLOW_UP: "tasks", A.NOTE: "notes", A.PROPOSAL: "notes"}
_CHUNK = 50_000


@lru_cache(maxsize=8192)
def _day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def hs_time(epoch: int) -> str:
    """HubSpot's datetime property format: ISO 8601 UTC with milliseconds (whole seconds here)."""
    day, rest = divmod(epoch, 86_400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day(day)}T{hour:02d}:{minute:02d}:{second:02d}.000Z"


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _object(object_id: str, properties: dict[str, str | None], created: int, updated: int) -> dict[str, Any]:
    properties["hs_object_id"] = object_id
    properties["createdate"] = hs_time(created)
    properties["hs_lastmodifieddate"] = hs_time(updated)
    return {"id": object_id, "properties": properties, "createdAt": _dt(created), "updatedAt": _dt(updated),
            "archived": False}


class HubSpotView:
    def __init__(self, world: World, salesforce: SalesforceView) -> None:
        self.world = world
        self.salesforce = salesforce

    def records(self, object_type: str) -> Iterator[dict[str, Any]]:
        makers: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
            "companies": self._companies, "contacts": self._contacts, "deals": self._deals,
        }
        if object_type in makers:
            return makers[object_type]()
        if object_type in ENGAGEMENT_TYPES:
            return self._engagements(object_type)
        raise ValueError(f"the generator has no HubSpot {object_type!r}; object types: {', '.join(OBJECT_TYPES)}")

    # -- ids -------------------------------------------------------------------------------
    def company_id(self, position: int) -> str:
        return str(_ID_BASE["companies"] + position + 1)

    def contact_id(self, row: int) -> str:
        return str(_ID_BASE["contacts"] + row + 1)

    def deal_id(self, position: int) -> str:
        return str(_ID_BASE["deals"] + position + 1)

    def engagement_id(self, object_type: str, position: int) -> str:
        return str(_ID_BASE[object_type] + position + 1)

    @cached_property
    def deal_position(self) -> np.ndarray:
        """World opportunity index -> HubSpot deal position (-1: the company is not in HubSpot)."""
        opps = self.world.opportunities
        in_hs = self.world.plan.in_hubspot[opps.company]
        out = np.full(opps.size, -1, dtype=np.int32)
        out[in_hs] = np.arange(int(in_hs.sum()), dtype=np.int32)
        return out

    @cached_property
    def _company_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Per company: has a won deal, has an open deal."""
        opps = self.world.opportunities
        n = len(self.world.plan.companies)
        won = np.zeros(n, dtype=bool)
        open_ = np.zeros(n, dtype=bool)
        won[opps.company[opps.outcome == A.WON]] = True
        open_[opps.company[opps.outcome == A.OPEN]] = True
        return won, open_

    # -- companies -------------------------------------------------------------------------
    def _companies(self) -> Iterator[dict[str, Any]]:
        plan = self.world.plan
        won, open_ = self._company_state
        u = np.random.default_rng([self.world.seed, 7]).random((plan.hubspot_company.size, 4))
        for pos, c in enumerate(plan.hubspot_company.tolist()):
            company = plan.companies[c]
            primary = int(plan.primary_account[c])
            parent = company.parent
            parent_hs = int(plan.company_hubspot[parent]) if parent is not None else -1
            stage = "customer" if won[c] else "opportunity" if open_[c] else (
                "salesqualifiedlead" if primary >= 0 else "lead")
            created = int(plan.company_first_seen[c])
            uu = u[pos]
            properties: dict[str, str | None] = {
                "name": company.legal_name if uu[0] < 0.8 else company.brand,
                "domain": company.domain,
                "website": typed_website(company.domain, float(uu[1])) if uu[1] < 0.9 else None,
                "industry": HUBSPOT_INDUSTRY.get(company.industry) if uu[2] < 0.85 else None,
                "numberofemployees": str(company.employees) if uu[3] < 0.8 else None,
                "annualrevenue": str(int(company.annual_revenue)) if uu[3] < 0.6 else None,
                "country": typed_country(company.country, float(uu[0])), "state": company.state,
                "city": company.city, "phone": company.phone if uu[2] < 0.7 else None,
                "salesforceaccountid": self.salesforce.account_id(primary) if primary >= 0 else None,
                "hs_parent_company_id": self.company_id(parent_hs) if parent_hs >= 0 else None,
                "lifecyclestage": stage,
            }
            updated = created + int((plan.as_of - created) * float(uu[1]))
            yield _object(self.company_id(pos), properties, created, updated)

    # -- contacts --------------------------------------------------------------------------
    def _contacts(self) -> Iterator[dict[str, Any]]:
        world = self.world
        plan, people = world.plan, world.people
        won, open_ = self._company_state
        contact_t, lead_t = _SF_TEMPLATE["003"], _SF_TEMPLATE["00Q"]
        for start in range(0, people.hubspot.size, _CHUNK):
            cols = people.columns(people.hubspot[start:start + _CHUNK])
            for j, c in enumerate(cols["company"]):
                company = plan.companies[c]
                kind = cols["kind"][j]
                _u0, u1, u2, u3, _u4, u5 = cols["u"][j]
                is_contact = kind in (CONTACT, CONVERTED)
                if is_contact and won[c]:
                    stage = "customer"
                elif is_contact and open_[c]:
                    stage = "opportunity"
                elif kind == HUBSPOT_ONLY:
                    stage = "subscriber" if u2 < 0.6 else "lead"
                else:
                    stage = "marketingqualifiedlead" if u2 < 0.3 else "lead"
                contact_row, lead_row = cols["contact_row"][j], cols["lead_row"][j]
                properties: dict[str, str | None] = {
                    "firstname": cols["first"][j], "lastname": cols["last"][j], "email": cols["email"][j],
                    "jobtitle": cols["title"][j],
                    "company": None if cols["typing"][j] == BLANK_TYPING else cols["typed_company"][j],
                    "website": typed_website(company.domain, u5) if u5 < 0.2 else None,
                    "phone": cols["phone"][j], "country": typed_country(company.country, u1),
                    "state": company.state if u3 < 0.35 else None, "city": company.city if u3 < 0.5 else None,
                    "lifecyclestage": stage,
                    "salesforcecontactid": contact_t % contact_row if contact_row >= 0 else None,
                    "salesforceleadid": lead_t % lead_row if lead_row >= 0 else None,
                }
                created = cols["created"][j]
                updated = max(created, cols["converted"][j]) if kind == CONVERTED else created
                yield _object(self.contact_id(start + j), properties, created, updated)

    # -- deals -----------------------------------------------------------------------------
    def _deals(self) -> Iterator[dict[str, Any]]:
        world = self.world
        opps = world.opportunities
        for i, pos in enumerate(self.deal_position.tolist()):
            if pos < 0:
                continue
            company = world.plan.companies[int(opps.company[i])]
            outcome = int(opps.outcome[i])
            if outcome == A.WON:
                stage = "closedwon"
            elif outcome == A.LOST:
                stage = "closedlost"
            else:
                stage = DEAL_STAGES[int(opps.stage[i]) * len(DEAL_STAGES) // len(A.OPEN_STAGES)]
            created, close = int(opps.created[i]), int(opps.close[i])
            renewal = bool(opps.renewal[i])
            properties: dict[str, str | None] = {
                "dealname": f"{company.brand} - {'Expansion' if renewal else 'New Business'}",
                "dealstage": stage, "pipeline": "default", "amount": f"{float(opps.amount[i]):.2f}",
                "closedate": hs_time(close), "hs_is_closed": "true" if outcome != A.OPEN else "false",
                "hs_is_closed_won": "true" if outcome == A.WON else "false",
                "dealtype": "existingbusiness" if renewal else "newbusiness",
            }
            updated = min(close, world.plan.as_of) if outcome != A.OPEN else created
            yield _object(self.deal_id(pos), properties, created, updated)

    # -- engagements -----------------------------------------------------------------------
    def _touch_columns(self, object_type: str) -> dict[str, list[Any]]:
        """Column lists of the touches that are engagements of ``object_type``, in time order."""
        touches = self.world.hubspot_touches
        wanted = [k for k, t in ENGAGEMENT_TYPE_OF_KIND.items() if t == object_type]
        idx = np.flatnonzero(np.isin(touches.kind, wanted))
        return {"index": idx.tolist(), "kind": touches.kind[idx].tolist(), "time": touches.time[idx].tolist(),
                "company": touches.company[idx].tolist(), "success": touches.success[idx].tolist(),
                "duration": touches.duration[idx].tolist(), "person": touches.person[idx].tolist(),
                "opportunity": touches.opportunity[idx].tolist()}

    def _engagements(self, object_type: str) -> Iterator[dict[str, Any]]:
        cols = self._touch_columns(object_type)
        companies = self.world.plan.companies
        rows = zip(cols["index"], cols["kind"], cols["time"], cols["company"], cols["success"], cols["duration"],
                   strict=True)
        for pos, (i, kind, t, company, success, duration) in enumerate(rows):
            brand = companies[company].brand
            props: dict[str, str | None] = {"hs_timestamp": hs_time(t)}
            if object_type == "emails":
                incoming = kind == A.EMAIL_REPLY
                props.update(hs_email_direction="INCOMING_EMAIL" if incoming else "EMAIL",
                             hs_email_subject=("Re: " if incoming else "") + f"Next steps with {brand}",
                             hs_email_status="SENT", hs_email_text="Thanks for your time.")
            elif object_type == "calls":
                props.update(hs_call_title="Discovery call" if success else "Call",
                             hs_call_duration=str(duration * 1000),
                             hs_call_status="COMPLETED" if success else "NO_ANSWER", hs_call_direction="OUTBOUND",
                             hs_call_body="Connected" if success else "Left voicemail")
            elif object_type == "meetings":
                props.update(hs_meeting_title=("Product demo - " if kind == A.DEMO else "Meeting with ") + brand,
                             hs_meeting_start_time=hs_time(t), hs_meeting_end_time=hs_time(t + max(duration, 900)),
                             hs_meeting_outcome="COMPLETED" if success else "NO_SHOW",
                             hs_activity_type="Demo" if kind == A.DEMO else "Discovery meeting")
            elif object_type == "tasks":
                props.update(hs_task_subject=f"Follow up with {brand}", hs_task_status="COMPLETED",
                             hs_task_type="CALL" if i % 3 == 0 else "TODO", hs_task_priority="MEDIUM")
            else:
                body = f"Sent proposal to {brand}" if kind == A.PROPOSAL else f"Notes from conversation with {brand}"
                props.update(hs_note_body=body)
            yield _object(self.engagement_id(object_type, pos), props, t, t)

    # -- associations ----------------------------------------------------------------------
    def associations(self) -> Iterator[tuple[str, str, str, str]]:
        """(from_type, from_id, to_type, to_id), each pair once in its primary direction:
        contacts->companies, deals->companies, and each engagement to its contact, company and deal."""
        world = self.world
        plan, people = world.plan, world.people
        company_hs = plan.company_hubspot
        for row, hs in enumerate(company_hs[people.company[people.hubspot]].tolist()):
            yield "contacts", self.contact_id(row), "companies", self.company_id(hs)
        opps = world.opportunities
        in_hs = self.deal_position >= 0
        deal_rows = zip(self.deal_position[in_hs].tolist(), company_hs[opps.company[in_hs]].tolist(), strict=True)
        for pos, hs in deal_rows:
            yield "deals", self.deal_id(pos), "companies", self.company_id(hs)
        hubspot_row = people.hubspot_row
        deal_position = self.deal_position
        for object_type in ENGAGEMENT_TYPES:
            cols = self._touch_columns(object_type)
            person = np.array(cols["person"], dtype=np.int64)
            contact = np.where(person >= 0, hubspot_row[np.maximum(person, 0)], -1).tolist()
            company = company_hs[np.array(cols["company"], dtype=np.int64)].tolist() if cols["company"] else []
            opp = np.array(cols["opportunity"], dtype=np.int64)
            deal = np.where(opp >= 0, deal_position[np.maximum(opp, 0)], -1).tolist()
            for pos, (c, hs, d) in enumerate(zip(contact, company, deal, strict=True)):
                own = self.engagement_id(object_type, pos)
                if c >= 0:
                    yield object_type, own, "contacts", self.contact_id(c)
                if hs >= 0:
                    yield object_type, own, "companies", self.company_id(hs)
                if d >= 0:
                    yield object_type, own, "deals", self.deal_id(d)

    # -- marketing events ------------------------------------------------------------------
    def _event_id(self, stream: int, number: int) -> str:
        return str(uuid.UUID(int=(self.world.seed % 2**48) << 80 | stream << 64 | number))

    def email_events(self) -> Iterator[dict[str, Any]]:
        """Marketing email events per send: SENT, then DELIVERED or BOUNCE, OPEN and CLICK when they happened."""
        world = self.world
        sends = world.hubspot_email_sends
        emails = world.people.emails
        as_of = world.plan.as_of
        send_times = np.minimum(np.maximum(world.hubspot_email_campaigns.start[sends.campaign], sends.added),
                                as_of - 120)
        rows = zip(sends.person.tolist(), sends.campaign.tolist(), send_times.tolist(), sends.responded.tolist(),
                   sends.bounced.tolist(), sends.clicked.tolist(), strict=True)
        counter = 0
        for i, (person, campaign, sent, responded, bounced, clicked) in enumerate(rows):
            recipient = emails[person]
            campaign_id = EMAIL_CAMPAIGN_BASE + campaign
            events: list[tuple[str, int]] = [("SENT", sent)]
            if bounced:
                events.append(("BOUNCE", sent + 20))
            else:
                events.append(("DELIVERED", sent + 5 + i % 55))
                if responded >= 0:
                    opened = min(max(responded, sent + 60), as_of - 1)
                    events.append(("OPEN", opened))
                    if clicked:
                        events.append(("CLICK", min(opened + 30 + i % 600, as_of - 1)))
            for event_type, t in events:
                event: dict[str, Any] = {"id": self._event_id(1, counter), "type": event_type, "created": _dt(t),
                                         "recipient": recipient, "emailCampaignId": campaign_id}
                if event_type == "CLICK":
                    event["url"] = f"{SELLER_SITE}{A.SITE_PAGES[i % len(A.SITE_PAGES)]}"
                counter += 1
                yield event

    def web_events(self) -> Iterator[dict[str, Any]]:
        """Page views and form submissions as HubSpot's event analytics API lists them."""
        world = self.world
        web = world.web_events
        contact_rows = world.people.hubspot_row[web.person].tolist()
        rows = zip(contact_rows, web.form.tolist(), web.page.tolist(), web.time.tolist(), strict=True)
        for i, (contact_row, form, page, t) in enumerate(rows):
            path = (A.FORM_PAGES if form else A.SITE_PAGES)[page]
            yield {
                "id": self._event_id(2, i), "eventType": "e_submitted_form" if form else "e_visited_page",
                "occurredAt": _dt(t), "objectType": "contact", "objectId": self.contact_id(contact_row),
                "properties": {"hs_url": f"{SELLER_SITE}{path}"},
            }
