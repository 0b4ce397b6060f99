"""The Salesforce view of the synthetic world: records as ``SalesforceOrg.load`` takes them.

Records use Salesforce field API names and Python values (tz-aware datetimes, dates, bools).
Ids are deterministic: key prefix + ``0S`` + a 10-digit sequence, so the same world always
gets the same ids and they never collide with ids the sandbox hands out at run time. Records
are yielded one at a time from the world's arrays; nothing holds the L org's millions of
activities as dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any

import numpy as np

from sandbox import seed_activity as A
from sandbox import seed_names as N
from sandbox.seed_companies import Company
from sandbox.seed_people import CONVERTED
from sandbox.seed_plan import DAY, rng_for
from sandbox.seed_typing import TYPING_CODES, typed_company, typed_country, typed_website
from sandbox.seed_world import World
from store.ids import to_18

KEY_PREFIX = {"User": "005", "Account": "001", "Campaign": "701", "Lead": "00Q", "Contact": "003",
              "Opportunity": "006", "Task": "00T", "Event": "00U", "CampaignMember": "00v"}
OBJECTS = tuple(KEY_PREFIX)
_CHUNK = 50_000
LEAD_SOURCES = ("Web", "Webinar", "Trade Show", "Partner Referral", "Advertisement", "Purchased List",
                "Employee Referral", "Other")
LEAD_SOURCE_SHARES = np.array([0.34, 0.16, 0.1, 0.08, 0.1, 0.1, 0.04, 0.08])
OPEN_LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted")
CONVERTED_STATUS = "Closed - Converted"
CAMPAIGN_TOPICS = ("Pipeline Forecasting 101", "State of RevOps", "Account-Based Playbook", "Intent Data Deep Dive",
                   "Customer Story: Scaling Outbound", "Quarterly Product Update", "Data Quality Clinic",
                   "Sales & Marketing Alignment", "Buyer Journey Benchmark", "Annual Summit")
# (responded status, not-responded status) per campaign type
MEMBER_STATUS = {"Webinar": ("Attended", "Registered"), "Email": ("Clicked", "Sent"),
                 "Event": ("Attended", "Invited"), "Content": ("Downloaded", "Sent"),
                 "Trade Show": ("Visited Booth", "Invited")}
EMAIL_SUBJECTS = ("Following up", "Quick question", "Intro: {b} and our team", "Re: pricing for {b}",
                  "Next steps", "Checking in", "Resources you asked for")
REPLY_SUBJECTS = ("Re: Following up", "Re: Quick question", "Re: Next steps", "Re: pricing for {b}")
CALL_SUBJECTS = ("Call", "Discovery call", "Follow-up call", "Cold call")
MEETING_SUBJECTS = ("Discovery meeting", "Intro meeting with {b}", "Quarterly check-in", "Technical deep dive")


def sf_id(prefix: str, number: int) -> str:
    """The deterministic 18-character id of the ``number``-th generated record with ``prefix``."""
    return _TEMPLATE[prefix] % number


# Digits are never upper-case letters, so the checksum suffix depends on the prefix alone.
_TEMPLATE = {p: f"{p}0S%010d{to_18(f'{p}0S{0:010d}')[15:]}" for p in KEY_PREFIX.values()}


def _dt(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _date(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


class SalesforceView:
    """``records(object_name)`` yields the generated records of one object in id order."""

    def __init__(self, world: World) -> None:
        self.world = world

    def records(self, object_name: str) -> Iterator[dict[str, Any]]:
        makers: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
            "User": self._users, "Account": self._accounts, "Campaign": self._campaigns, "Lead": self._leads,
            "Contact": self._contacts, "Opportunity": self._opportunities, "Task": self._tasks,
            "Event": self._events, "CampaignMember": self._campaign_members,
        }
        if object_name not in makers:
            raise ValueError(f"the generator has no {object_name!r} records; objects: {', '.join(makers)}")
        return makers[object_name]()

    def release(self) -> None:
        """Forget the per-person and per-company lists built for rendering (rebuilt on demand)."""
        for part in ("_lead_sources", "_brands"):
            self.__dict__.pop(part, None)

    # -- ids -------------------------------------------------------------------------------
    def account_id(self, position: int) -> str:
        return sf_id("001", position)

    def lead_id(self, row: int) -> str:
        return sf_id("00Q", row)

    def contact_id(self, row: int) -> str:
        return sf_id("003", row)

    def opportunity_id(self, position: int) -> str:
        return sf_id("006", position)

    def user_id(self, position: int) -> str:
        return sf_id("005", position)

    def campaign_id(self, position: int) -> str:
        return sf_id("701", position)

    def who_id(self, person: int) -> str | None:
        """A person's current Salesforce record: the contact once converted, else the lead."""
        people = self.world.people
        row = int(people.contact_row[person])
        if row >= 0:
            return self.contact_id(row)
        row = int(people.lead_row[person])
        return self.lead_id(row) if row >= 0 else None

    @cached_property
    def opportunity_position(self) -> np.ndarray:
        """World opportunity index -> Salesforce Opportunity position (-1: only HubSpot has the deal)."""
        opps = self.world.opportunities
        in_sf = opps.account >= 0
        out = np.full(opps.size, -1, dtype=np.int32)
        out[in_sf] = np.arange(int(in_sf.sum()), dtype=np.int32)
        return out

    # -- users -----------------------------------------------------------------------------
    @cached_property
    def user_roles(self) -> list[tuple[str, str, str]]:
        """(title, department, team) per user; the first users cover every team."""
        size = self.world.size.users
        rng = rng_for(self.world.seed, "users")
        weights = np.array([r[3] for r in N.USER_ROLES])
        picks = list(range(min(len(N.USER_ROLES), size)))
        picks += rng.choice(len(N.USER_ROLES), size=size - len(picks), p=weights / weights.sum()).tolist()
        return [N.USER_ROLES[i][:3] for i in picks]

    @cached_property
    def sales_users(self) -> np.ndarray:
        ids = [i for i, r in enumerate(self.user_roles) if r[2] == "sales"]
        return np.array(ids or [0], dtype=np.int32)

    @cached_property
    def marketing_users(self) -> np.ndarray:
        ids = [i for i, r in enumerate(self.user_roles) if r[2] == "marketing"]
        return np.array(ids or [0], dtype=np.int32)

    def _owner(self, key: int) -> str:
        """A sales user for ``key`` (an account position, or a lead row + 7), spread evenly."""
        users = self.sales_users
        return self.user_id(int(users[(key * 2654435761) % users.size]))

    def _users(self) -> Iterator[dict[str, Any]]:
        rng = rng_for(self.world.seed, "user-names")
        firsts, lasts = N.FIRST_NAMES["en"], N.LAST_NAMES["en"]
        created = self.world.plan.as_of - 1_200 * DAY
        taken: set[str] = set()
        for i, (title, department, _team) in enumerate(self.user_roles):
            first = firsts[int(rng.integers(len(firsts)))]
            last = lasts[int(rng.integers(len(lasts)))]
            local = f"{first}.{last}".lower().replace("'", "")
            username = f"{local}@{N.USER_EMAIL_DOMAIN}"
            if username in taken:
                username = f"{local}{i}@{N.USER_EMAIL_DOMAIN}"
            taken.add(username)
            yield {"Id": self.user_id(i), "Username": username, "FirstName": first, "LastName": last,
                   "Email": username, "IsActive": True, "Title": title, "Department": department,
                   "CreatedDate": _dt(created + i * 3600)}

    # -- accounts --------------------------------------------------------------------------
    @cached_property
    def customer_accounts(self) -> np.ndarray:
        """Companies with a won opportunity by as_of (their accounts are customers)."""
        opps = self.world.opportunities
        won = np.zeros(len(self.world.plan.companies), dtype=bool)
        won[opps.company[opps.outcome == A.WON]] = True
        return won

    def _accounts(self) -> Iterator[dict[str, Any]]:
        plan = self.world.plan
        rng = rng_for(self.world.seed, "account-fields")
        n = plan.account_company.size
        u = rng.random((n, 8))
        customers = self.customer_accounts
        for pos in range(n):
            c = int(plan.account_company[pos])
            company = plan.companies[c]
            dup = bool(plan.account_is_duplicate[pos])
            uu = u[pos]
            name = company.legal_name
            if dup:
                code = TYPING_CODES.index(("core", "brand", "abbreviated", "typo", "upper", "wrong_suffix")
                                          [int(uu[0] * 6)])
                name = typed_company(company, code, uu[1], uu[2], uu[3]).strip() or company.brand
            elif company.style not in N.LATIN_STYLES and uu[0] < 0.25:
                name = f"{company.latin_name} {N.LATIN_LEGAL_OF_NATIVE[company.style][0]}"
            website_blank = uu[4] < (0.5 if dup else 0.1)
            parent = company.parent
            parent_id = None
            if parent is not None and plan.primary_account[parent] >= 0 and not dup:
                parent_id = self.account_id(int(plan.primary_account[parent]))
            acc_type = "Customer - Direct" if customers[c] and not dup else ("Partner" if uu[5] < 0.03 else "Prospect")
            created = int(plan.account_created[pos])
            yield {
                "Id": self.account_id(pos), "Name": name,
                "Website": None if website_blank else typed_website(company.domain, uu[6]),
                "Industry": None if uu[7] < 0.12 else company.industry,
                "NumberOfEmployees": None if uu[5] > 0.8 else company.employees,
                "AnnualRevenue": None if uu[3] > 0.7 else company.annual_revenue,
                "BillingStreet": None if dup else company.street, "BillingCity": company.city,
                "BillingState": company.state if uu[2] < 0.8 else None,
                "BillingPostalCode": None if dup else company.postal_code,
                "BillingCountry": typed_country(company.country, uu[1]),
                "Phone": None if uu[6] < 0.15 else company.phone, "ParentId": parent_id, "Type": acc_type,
                "AccountSource": LEAD_SOURCES[int(uu[0] * 997) % len(LEAD_SOURCES)],
                "OwnerId": self._owner(pos), "CreatedDate": _dt(created),
                "LastModifiedDate": _dt(created + int((plan.as_of - created) * uu[4] * uu[5])),
            }

    # -- people ----------------------------------------------------------------------------
    @cached_property
    def _lead_sources(self) -> list[str]:
        """Per person: the LeadSource of their lead or contact."""
        cum = np.cumsum(LEAD_SOURCE_SHARES) / LEAD_SOURCE_SHARES.sum()
        idx = np.minimum(np.searchsorted(cum, self.world.people.u[:, 4]), len(LEAD_SOURCES) - 1)
        return [LEAD_SOURCES[i] for i in idx.tolist()]

    def _people_chunks(self, persons: np.ndarray) -> Iterator[tuple[int, dict[str, list[Any]]]]:
        for start in range(0, persons.size, _CHUNK):
            yield start, self.world.people.columns(persons[start:start + _CHUNK])

    def _leads(self) -> Iterator[dict[str, Any]]:
        plan = self.world.plan
        companies = plan.companies
        sources = self._lead_sources
        lead_t, account_t, contact_t = _TEMPLATE["00Q"], _TEMPLATE["001"], _TEMPLATE["003"]
        for start, cols in self._people_chunks(self.world.people.leads):
            for j, p in enumerate(cols["person"]):
                company: Company = companies[cols["company"][j]]
                u0, u1, u2, u3, _u4, u5 = cols["u"][j]
                created = cols["created"][j]
                row = start + j
                record: dict[str, Any] = {
                    "Id": lead_t % row, "FirstName": cols["first"][j], "LastName": cols["last"][j],
                    "Email": cols["email"][j], "Company": cols["typed_company"][j],
                    "Website": typed_website(company.domain, u5) if u5 < 0.2 else None,
                    "Title": cols["title"][j], "Phone": cols["phone"][j],
                    "City": company.city if u3 < 0.5 else None, "State": company.state if u3 < 0.35 else None,
                    "Country": typed_country(company.country, u1), "LeadSource": sources[p],
                    "Industry": company.industry if u2 < 0.3 else None,
                    "NumberOfEmployees": max(1, int(company.employees * (0.5 + 1.5 * u0))) if u5 > 0.8 else None,
                    "OwnerId": self._owner(row + 7), "CreatedDate": _dt(created),
                }
                if cols["kind"][j] == CONVERTED:
                    converted_at = cols["converted"][j]
                    record.update(Status=CONVERTED_STATUS, IsConverted=True,
                                  ConvertedAccountId=account_t % cols["account"][j],
                                  ConvertedContactId=contact_t % cols["contact_row"][j],
                                  ConvertedDate=_date(converted_at), LastModifiedDate=_dt(converted_at))
                else:
                    record.update(Status=OPEN_LEAD_STATUSES[min(int(u2 * 3), 2)], IsConverted=False,
                                  LastModifiedDate=_dt(created))
                yield record

    def _contacts(self) -> Iterator[dict[str, Any]]:
        companies = self.world.plan.companies
        sources = self._lead_sources
        contact_t, account_t = _TEMPLATE["003"], _TEMPLATE["001"]
        for start, cols in self._people_chunks(self.world.people.contacts):
            for j, p in enumerate(cols["person"]):
                company = companies[cols["company"][j]]
                _u0, u1, _u2, u3, _u4, _u5 = cols["u"][j]
                converted = cols["kind"][j] == CONVERTED
                account = cols["account"][j]
                yield {
                    "Id": contact_t % (start + j), "AccountId": account_t % account,
                    "FirstName": cols["first"][j], "LastName": cols["last"][j], "Email": cols["email"][j],
                    "Title": cols["title"][j], "Phone": cols["phone"][j],
                    "MailingCity": company.city if u3 < 0.6 else None,
                    "MailingState": company.state if u3 < 0.4 else None,
                    "MailingCountry": typed_country(company.country, u1), "LeadSource": sources[p],
                    "OwnerId": self._owner(account),
                    "CreatedDate": _dt(cols["converted"][j] if converted else cols["created"][j]),
                }

    # -- opportunities ---------------------------------------------------------------------
    def _opportunities(self) -> Iterator[dict[str, Any]]:
        world = self.world
        opps = world.opportunities
        position = self.opportunity_position
        for i in range(opps.size):
            if position[i] < 0:
                continue
            company = world.plan.companies[int(opps.company[i])]
            outcome = int(opps.outcome[i])
            if outcome == A.WON:
                stage, probability = "Closed Won", 100
            elif outcome == A.LOST:
                stage, probability = "Closed Lost", 0
            else:
                stage, probability = A.OPEN_STAGES[int(opps.stage[i])]
            created = int(opps.created[i])
            close = int(opps.close[i])
            renewal = bool(opps.renewal[i])
            account = int(opps.account[i])
            yield {
                "Id": self.opportunity_id(int(position[i])), "AccountId": self.account_id(account),
                "Name": f"{company.brand} - {'Expansion' if renewal else 'New Business'}"[:120],
                "StageName": stage, "Probability": probability, "Amount": float(opps.amount[i]),
                "CloseDate": _date(close), "Type": "Existing Business" if renewal else "New Business",
                "IsClosed": outcome != A.OPEN, "IsWon": outcome == A.WON,
                "OwnerId": self._owner(account), "CreatedDate": _dt(created),
                "LastModifiedDate": _dt(min(close, world.plan.as_of) if outcome != A.OPEN else created),
            }

    # -- activities ------------------------------------------------------------------------
    def _activity_chunks(self, events: bool) -> Iterator[tuple[int, dict[str, list[Any]]]]:
        """(position of the chunk's first record, column lists) for the touches that are Tasks or
        Events. References and owners are worked out with numpy a chunk at a time: the L org has
        millions of activities and a per-record lookup would dominate seeding time."""
        world = self.world
        touches = world.salesforce_touches
        people = world.people
        opps = world.opportunities
        is_event = np.isin(touches.kind, (A.MEETING, A.DEMO))
        brands = self._brands
        position = 0
        for start in range(0, touches.size, _CHUNK):
            idx = np.flatnonzero(is_event[start:start + _CHUNK] == events) + start
            person = touches.person[idx]
            named = person >= 0
            safe = np.where(named, person, 0)
            contact_row = np.where(named, people.contact_row[safe], -1)
            lead_row = np.where(named & (contact_row < 0), people.lead_row[safe], -1)
            opp = touches.opportunity[idx]
            on_opp = opp >= 0
            opp_safe = np.where(on_opp, opp, 0)
            account = np.where(on_opp, opps.account[opp_safe], np.where(contact_row >= 0, people.account[safe], -1))
            opp_pos = np.where(on_opp, self.opportunity_position[opp_safe], -1)
            owner = self.sales_users[(np.where(account >= 0, account, lead_row + 7).astype(np.int64) * 2654435761)
                                     % self.sales_users.size]
            contact_t, lead_t, opp_t, account_t = _TEMPLATE["003"], _TEMPLATE["00Q"], _TEMPLATE["006"], _TEMPLATE["001"]
            user_t = _TEMPLATE["005"]
            columns = {
                "who": [contact_t % c if c >= 0 else (lead_t % lr if lr >= 0 else None)
                        for c, lr in zip(contact_row.tolist(), lead_row.tolist(), strict=True)],
                "what": [opp_t % o if o >= 0 else (account_t % a if a >= 0 else None)
                         for o, a in zip(opp_pos.tolist(), account.tolist(), strict=True)],
                "owner": [user_t % u for u in owner.tolist()],
                "brand": [brands[c] for c in touches.company[idx].tolist()],
                "kind": touches.kind[idx].tolist(), "time": touches.time[idx].tolist(),
                "duration": touches.duration[idx].tolist(), "success": touches.success[idx].tolist(),
                "seq": idx.tolist(),
            }
            yield position, columns
            position += idx.size

    @cached_property
    def _brands(self) -> list[str]:
        return [c.brand for c in self.world.plan.companies]

    def _tasks(self) -> Iterator[dict[str, Any]]:
        task_t = _TEMPLATE["00T"]
        for position, cols in self._activity_chunks(events=False):
            rows = zip(cols["who"], cols["what"], cols["owner"], cols["brand"], cols["kind"], cols["time"],
                       cols["duration"], cols["success"], cols["seq"], strict=True)
            for j, (who, what, owner, brand, kind, t, duration, success, seq) in enumerate(rows):
                when = _dt(t)
                record: dict[str, Any] = {
                    "Id": task_t % (position + j), "WhoId": who, "WhatId": what, "ActivityDate": when.date(),
                    "Status": "Completed", "Priority": "Normal", "OwnerId": owner, "CreatedDate": when,
                }
                if kind == A.SALES_EMAIL or kind == A.EMAIL_REPLY:
                    subjects = REPLY_SUBJECTS if kind == A.EMAIL_REPLY else EMAIL_SUBJECTS
                    record.update(TaskSubtype="Email", Type="Email",
                                  Subject="Email: " + subjects[seq % len(subjects)].format(b=brand))
                elif kind == A.CALL:
                    record.update(TaskSubtype="Call", Type="Call", CallDurationInSeconds=duration,
                                  Subject=CALL_SUBJECTS[seq % len(CALL_SUBJECTS)] if success else "Left voicemail",
                                  Description=None if success else "No answer")
                elif kind == A.PROPOSAL:
                    record.update(TaskSubtype="Task", Type="Proposal", Subject=f"Send proposal to {brand}")
                else:
                    record.update(TaskSubtype="Task", Type="Other", Subject="Follow up")
                yield record

    def _events(self) -> Iterator[dict[str, Any]]:
        event_t = _TEMPLATE["00U"]
        for position, cols in self._activity_chunks(events=True):
            rows = zip(cols["who"], cols["what"], cols["owner"], cols["brand"], cols["kind"], cols["time"],
                       cols["duration"], cols["success"], cols["seq"], strict=True)
            for j, (who, what, owner, brand, kind, t, duration, success, seq) in enumerate(rows):
                minutes = max(duration // 60, 15)
                if kind == A.DEMO:
                    subject, type_ = f"Product demo - {brand}", "Demo"
                else:
                    subject, type_ = MEETING_SUBJECTS[seq % len(MEETING_SUBJECTS)].format(b=brand), "Meeting"
                start = _dt(t)
                yield {
                    "Id": event_t % (position + j), "WhoId": who, "WhatId": what, "Subject": subject,
                    "Type": type_, "StartDateTime": start, "EndDateTime": _dt(t + minutes * 60),
                    "DurationInMinutes": minutes, "ActivityDate": start.date(), "OwnerId": owner,
                    "CreatedDate": _dt(t - (1 + seq % 10) * DAY), "Description": None if success else "No-show",
                }

    # -- marketing -------------------------------------------------------------------------
    def campaign_name(self, position: int) -> str:
        campaigns = self.world.campaigns
        kind = A.CAMPAIGN_TYPES[int(campaigns.type[position])]
        topic = CAMPAIGN_TOPICS[int(campaigns.topic[position]) % len(CAMPAIGN_TOPICS)]
        return f"{_date(int(campaigns.start[position])):%Y-%m} {kind}: {topic}"[:80]

    def _campaigns(self) -> Iterator[dict[str, Any]]:
        campaigns = self.world.campaigns
        as_of = self.world.plan.as_of
        marketers = self.marketing_users
        for i in range(campaigns.size):
            start, end = int(campaigns.start[i]), int(campaigns.end[i])
            status = "Completed" if end < as_of else ("In Progress" if start <= as_of else "Planned")
            yield {
                "Id": self.campaign_id(i), "Name": self.campaign_name(i),
                "Type": A.CAMPAIGN_TYPES[int(campaigns.type[i])], "Status": status, "StartDate": _date(start),
                "EndDate": _date(end), "IsActive": status != "Completed",
                "OwnerId": self.user_id(int(marketers[i % marketers.size])), "CreatedDate": _dt(start - 21 * DAY),
            }

    def _campaign_members(self) -> Iterator[dict[str, Any]]:
        world = self.world
        members = world.campaign_members
        people = world.people
        statuses = [MEMBER_STATUS[A.CAMPAIGN_TYPES[t]] for t in world.campaigns.type.tolist()]
        member_t, campaign_t = _TEMPLATE["00v"], _TEMPLATE["701"]
        lead_t, contact_t = _TEMPLATE["00Q"], _TEMPLATE["003"]
        for start in range(0, members.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            persons = members.person[sl]
            rows = zip(members.campaign[sl].tolist(), members.responded[sl].tolist(), members.added[sl].tolist(),
                       people.lead_row[persons].tolist(), people.contact_row[persons].tolist(), strict=True)
            for j, (campaign, responded, added, lead_row, contact_row) in enumerate(rows):
                yield {
                    "Id": member_t % (start + j), "CampaignId": campaign_t % campaign,
                    "LeadId": lead_t % lead_row if lead_row >= 0 else None,
                    "ContactId": contact_t % contact_row if contact_row >= 0 else None,
                    "Status": statuses[campaign][0 if responded >= 0 else 1], "HasResponded": responded >= 0,
                    "FirstRespondedDate": _date(responded) if responded >= 0 else None, "CreatedDate": _dt(added),
                }
