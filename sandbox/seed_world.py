"""The whole synthetic world, built lazily piece by piece.

Each part (plan, people, opportunities, campaigns, touches, marketing events) is computed
the first time a view or the ground truth asks for it and kept as numpy arrays. Asking only
for accounts and leads never builds activities, which is what the matching benchmark needs.
Every part draws from its own random stream, so the result depends on (seed, size, as_of)
alone, whatever order the parts are built in.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property

import numpy as np

from sandbox import seed_activity as A
from sandbox.seed_people import CONTACT, CONVERTED, HUBSPOT_ONLY, People, make_people
from sandbox.seed_plan import OrgSize, Plan, make_plan

HUBSPOT_EMAILS_PER_CAMPAIGN = 2


SALESFORCE_ONLY_PARTS = ("salesforce_touches", "campaign_members")
HUBSPOT_ONLY_PARTS = ("hubspot_touches", "hubspot_email_sends", "web_events", "hubspot_sales_persons")


class World:
    def __init__(self, seed: int, size: OrgSize, as_of: datetime) -> None:
        self.seed = seed
        self.size = size
        self.as_of = as_of

    def release(self, parts: tuple[str, ...]) -> None:
        """Forget built ``parts`` (names of the cached properties) once a loader has streamed them;
        they are rebuilt, identically, if read again. Seeding L loads HubSpot after Salesforce,
        and the Salesforce activities need not sit in memory meanwhile."""
        for part in parts:
            self.__dict__.pop(part, None)

    @cached_property
    def plan(self) -> Plan:
        return make_plan(self.seed, self.size, self.as_of)

    @cached_property
    def people(self) -> People:
        return make_people(self.seed, self.size, self.plan)

    @cached_property
    def opportunities(self) -> A.Opportunities:
        return A.make_opportunities(self.seed, self.plan)

    @cached_property
    def campaigns(self) -> A.Campaigns:
        return A.make_campaigns(self.seed, self.size, self.plan)

    @cached_property
    def salesforce_persons(self) -> np.ndarray:
        """People Salesforce holds as a lead or a contact (a converted person counts once)."""
        return np.flatnonzero(self.people.kind != HUBSPOT_ONLY).astype(np.int32)

    @cached_property
    def campaign_members(self) -> A.Memberships:
        count = round(self.size.activities * A.CAMPAIGN_MEMBER_SHARE)
        return A.make_memberships(self.seed, self.plan, self.people, self.campaigns, self.salesforce_persons, count,
                                  "campaign-members", response_base=0.12)

    @cached_property
    def salesforce_touches(self) -> A.Touches:
        """Tasks and Events: the activity budget left after campaign memberships."""
        people = self.people
        budget = max(self.size.activities - self.campaign_members.size, 0)
        opps = self.opportunities
        contacts = np.flatnonzero((people.kind == CONTACT) | (people.kind == CONVERTED)).astype(np.int32)
        return A.make_sales_touches(
            self.seed, self.plan, people, opps, "salesforce-touches", self.salesforce_persons, budget,
            A.ENGAGEMENT_KINDS, A.ENGAGEMENT_KIND_SHARES, np.flatnonzero(opps.account >= 0), contacts,
        )

    @cached_property
    def hubspot_sales_persons(self) -> np.ndarray:
        """HubSpot contacts at companies Salesforce has no account for: their sellers log in HubSpot."""
        persons = self.people.hubspot
        return persons[~self.plan.has_account[self.people.company[persons]]]

    @cached_property
    def hubspot_touches(self) -> A.Touches:
        opps = self.opportunities
        budget = round(self.size.activities * A.HUBSPOT_ENGAGEMENT_SHARE)
        return A.make_sales_touches(
            self.seed, self.plan, self.people, opps, "hubspot-touches", self.hubspot_sales_persons, budget,
            A.HUBSPOT_KINDS, A.HUBSPOT_KIND_SHARES, np.flatnonzero(opps.account < 0), self.hubspot_sales_persons,
        )

    @cached_property
    def hubspot_email_campaigns(self) -> A.Campaigns:
        """HubSpot marketing emails: sends on the campaign calendar, a couple per campaign."""
        campaigns = self.campaigns
        n = campaigns.size * HUBSPOT_EMAILS_PER_CAMPAIGN
        start = np.repeat(campaigns.start, HUBSPOT_EMAILS_PER_CAMPAIGN) - np.tile(
            np.arange(HUBSPOT_EMAILS_PER_CAMPAIGN, dtype=np.int64) * 7 * 86_400, campaigns.size)
        start = np.minimum(start, self.plan.as_of - 86_400)
        order = np.argsort(start, kind="stable")
        start = start[order]
        return A.Campaigns(type=np.ones(n, dtype=np.int8), start=start, end=start + 86_400,
                           topic=np.repeat(campaigns.topic, HUBSPOT_EMAILS_PER_CAMPAIGN)[order])

    @cached_property
    def hubspot_email_sends(self) -> A.Memberships:
        count = round(self.size.activities * A.HUBSPOT_SEND_SHARE)
        persons = self.people.hubspot[self.people.email_kind[self.people.hubspot] >= 0]
        return A.make_memberships(self.seed, self.plan, self.people, self.hubspot_email_campaigns, persons, count,
                                  "hubspot-sends", response_base=0.1)

    @cached_property
    def web_events(self) -> A.WebEvents:
        count = round(self.size.activities * A.HUBSPOT_WEB_SHARE)
        return A.make_web_events(self.seed, self.plan, self.people, self.people.hubspot, count, len(A.SITE_PAGES),
                                 len(A.FORM_PAGES))
