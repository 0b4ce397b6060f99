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
from sandbox.seed_people import CONVERTED, LEAD
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
    return f"{prefix}0S{number:010d}{_SUFFIX[prefix]}"


# Digits are never upper-case letters, so the checksum suffix depends on the prefix alone.
_SUFFIX = {p: to_18(f"{p}0S{0:010d}")[15:] for p in KEY_PREFIX.values()}


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
    def _lead_source(self, person: int) -> str:
        u = float(self.world.people.u[person, 4])
        return LEAD_SOURCES[int(np.searchsorted(np.cumsum(LEAD_SOURCE_SHARES), u * LEAD_SOURCE_SHARES.sum()))
                            % len(LEAD_SOURCES)]

    def _leads(self) -> Iterator[dict[str, Any]]:
        people = self.world.people
        plan = self.world.plan
        for row in range(people.leads.size):
            p = int(people.leads[row])
            company: Company = plan.companies[int(people.company[p])]
            u = people.u[p]
            converted = int(people.kind[p]) == CONVERTED
            created = int(people.created[p])
            record: dict[str, Any] = {
                "Id": self.lead_id(row), "FirstName": people.first_name(p), "LastName": people.last_name(p),
                "Email": people.email(p), "Company": people.typed_company(p),
                "Website": typed_website(company.domain, float(u[5])) if u[5] < 0.2 else None,
                "Title": people.title_of(p), "Phone": people.phone_of(p),
                "City": company.city if u[3] < 0.5 else None,
                "State": company.state if u[3] < 0.35 else None,
                "Country": typed_country(company.country, float(u[1])),
                "LeadSource": self._lead_source(p),
                "Industry": company.industry if u[2] < 0.3 else None,
                "NumberOfEmployees": max(1, int(company.employees * (0.5 + 1.5 * float(u[0])))) if u[5] > 0.8 else None,
                "OwnerId": self._owner(row + 7), "CreatedDate": _dt(created),
            }
            if converted:
                converted_at = int(people.converted[p])
                record.update(Status=CONVERTED_STATUS, IsConverted=True,
                              ConvertedAccountId=self.account_id(int(people.account[p])),
                              ConvertedContactId=self.contact_id(int(people.contact_row[p])),
                              ConvertedDate=_date(converted_at), LastModifiedDate=_dt(converted_at))
            else:
                status = OPEN_LEAD_STATUSES[min(int(float(u[2]) * 3), 2)]
                record.update(Status=status, IsConverted=False, LastModifiedDate=_dt(created))
            yield record

    def _contacts(self) -> Iterator[dict[str, Any]]:
        people = self.world.people
        plan = self.world.plan
        for row in range(people.contacts.size):
            p = int(people.contacts[row])
            company = plan.companies[int(people.company[p])]
            u = people.u[p]
            converted = int(people.kind[p]) == CONVERTED
            created = int(people.converted[p]) if converted else int(people.created[p])
            account = int(people.account[p])
            yield {
                "Id": self.contact_id(row), "AccountId": self.account_id(account),
                "FirstName": people.first_name(p), "LastName": people.last_name(p), "Email": people.email(p),
                "Title": people.title_of(p), "Phone": people.phone_of(p),
                "MailingCity": company.city if u[3] < 0.6 else None,
                "MailingState": company.state if u[3] < 0.4 else None,
                "MailingCountry": typed_country(company.country, float(u[1])),
                "LeadSource": self._lead_source(p), "OwnerId": self._owner(account), "CreatedDate": _dt(created),
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
    def _activity_rows(self, events: bool) -> Iterator[tuple[int, dict[str, Any]]]:
        """(position among Tasks or Events, common fields) for the touches of one object."""
        world = self.world
        touches = world.salesforce_touches
        people = world.people
        plan = world.plan
        is_event = np.isin(touches.kind, (A.MEETING, A.DEMO))
        opp_position = self.opportunity_position
        count = 0
        for start in range(0, touches.size, _CHUNK):
            sl = slice(start, start + _CHUNK)
            mask = is_event[sl] == events
            idx = np.flatnonzero(mask) + start
            persons = touches.person[idx].tolist()
            companies = touches.company[idx].tolist()
            times = touches.time[idx].tolist()
            kinds = touches.kind[idx].tolist()
            opp_rows = touches.opportunity[idx].tolist()
            durations = touches.duration[idx].tolist()
            successes = touches.success[idx].tolist()
            for j in range(len(idx)):
                p, t, kind = persons[j], times[j], kinds[j]
                who = self.who_id(p) if p >= 0 else None
                is_lead = p >= 0 and int(people.kind[p]) == LEAD
                opp = opp_rows[j]
                if opp >= 0:
                    what = self.opportunity_id(int(opp_position[opp]))
                    account = int(world.opportunities.account[opp])
                elif is_lead:
                    what, account = None, -1
                else:
                    account = int(people.account[p])
                    what = self.account_id(account)
                brand = plan.companies[companies[j]].brand
                owner = self._owner(account) if account >= 0 else self._owner(int(people.lead_row[p]) + 7)
                yield count, {"WhoId": who, "WhatId": what, "kind": kind, "time": t, "duration": durations[j],
                              "success": successes[j], "brand": brand, "OwnerId": owner, "seq": start + j}
                count += 1

    def _tasks(self) -> Iterator[dict[str, Any]]:
        for position, row in self._activity_rows(events=False):
            kind, t, seq = row["kind"], row["time"], row["seq"]
            record: dict[str, Any] = {
                "Id": sf_id("00T", position), "WhoId": row["WhoId"], "WhatId": row["WhatId"],
                "ActivityDate": _date(t), "Status": "Completed", "Priority": "Normal", "OwnerId": row["OwnerId"],
                "CreatedDate": _dt(t),
            }
            if kind == A.SALES_EMAIL or kind == A.EMAIL_REPLY:
                subjects = REPLY_SUBJECTS if kind == A.EMAIL_REPLY else EMAIL_SUBJECTS
                record.update(TaskSubtype="Email", Type="Email",
                              Subject=("Email: " + subjects[seq % len(subjects)]).format(b=row["brand"]))
            elif kind == A.CALL:
                connected = row["success"]
                record.update(TaskSubtype="Call", Type="Call", CallDurationInSeconds=row["duration"],
                              Subject=CALL_SUBJECTS[seq % len(CALL_SUBJECTS)] if connected else "Left voicemail",
                              Description=None if connected else "No answer")
            elif kind == A.PROPOSAL:
                record.update(TaskSubtype="Task", Type="Proposal", Subject=f"Send proposal to {row['brand']}")
            else:
                record.update(TaskSubtype="Task", Type="Other", Subject="Follow up")
            yield record

    def _events(self) -> Iterator[dict[str, Any]]:
        for position, row in self._activity_rows(events=True):
            kind, t, seq = row["kind"], row["time"], row["seq"]
            minutes = max(row["duration"] // 60, 15)
            if kind == A.DEMO:
                subject, type_ = f"Product demo - {row['brand']}", "Demo"
            else:
                subject, type_ = MEETING_SUBJECTS[seq % len(MEETING_SUBJECTS)].format(b=row["brand"]), "Meeting"
            yield {
                "Id": sf_id("00U", position), "WhoId": row["WhoId"], "WhatId": row["WhatId"], "Subject": subject,
                "Type": type_, "StartDateTime": _dt(t), "EndDateTime": _dt(t + minutes * 60),
                "DurationInMinutes": minutes, "ActivityDate": _date(t), "OwnerId": row["OwnerId"],
                "CreatedDate": _dt(max(t - 7 * DAY, t - (seq % 10) * DAY)),
                "Description": None if row["success"] else "No-show",
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
        types = world.campaigns.type
        for i in range(members.size):
            p = int(members.person[i])
            campaign = int(members.campaign[i])
            responded = int(members.responded[i])
            statuses = MEMBER_STATUS[A.CAMPAIGN_TYPES[int(types[campaign])]]
            lead_row = int(people.lead_row[p])
            contact_row = int(people.contact_row[p])
            yield {
                "Id": sf_id("00v", i), "CampaignId": self.campaign_id(campaign),
                "LeadId": self.lead_id(lead_row) if lead_row >= 0 else None,
                "ContactId": self.contact_id(contact_row) if contact_row >= 0 else None,
                "Status": statuses[0] if responded >= 0 else statuses[1], "HasResponded": responded >= 0,
                "FirstRespondedDate": _date(responded) if responded >= 0 else None,
                "CreatedDate": _dt(int(members.added[i])),
            }

