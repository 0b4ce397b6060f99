"""What happened: opportunities, campaigns and every touch between the seller and the buyers.

Timing follows each company's engagement profile: quiet companies went silent months ago,
steady ones are touched evenly over two years, surging ones add a burst of several people in
the last two or three weeks. Win odds grow with latent fit and with engagement, so a score
built from the observable activity has real signal. All of it is numpy arrays sorted by time;
the CRM views turn rows into records one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sandbox.seed_people import BURST_DAYS, LEAD, People
from sandbox.seed_plan import DAY, HISTORY_DAYS, QUIET, SURGING, OrgSize, Plan, rng_for

# Touch kinds, and the canonical activity type (store/activity_types.py) each one stands for
# (None: a to-do with no buyer contact, no engagement signal).
SALES_EMAIL, CALL, MEETING, FOLLOW_UP, DEMO, PROPOSAL, EMAIL_REPLY, NOTE = range(8)
CANONICAL_TYPE: dict[int, str | None] = {
    SALES_EMAIL: "email_sent", CALL: "call", MEETING: "meeting_completed", FOLLOW_UP: None,
    DEMO: "demo", PROPOSAL: "proposal", EMAIL_REPLY: "email_reply", NOTE: "meaningful_conversation",
}
ENGAGEMENT_KINDS = np.array([SALES_EMAIL, CALL, MEETING, FOLLOW_UP, EMAIL_REPLY])
ENGAGEMENT_KIND_SHARES = np.array([0.42, 0.33, 0.10, 0.07, 0.08])
HUBSPOT_KINDS = np.array([SALES_EMAIL, CALL, MEETING, FOLLOW_UP, EMAIL_REPLY, NOTE])
HUBSPOT_KIND_SHARES = np.array([0.34, 0.28, 0.10, 0.10, 0.06, 0.12])

OPEN, WON, LOST = 0, 1, 2
# Salesforce's default sales process: (stage, probability %), open stages in order.
OPEN_STAGES = (("Prospecting", 10), ("Qualification", 10), ("Needs Analysis", 20), ("Value Proposition", 50),
               ("Id. Decision Makers", 60), ("Perception Analysis", 70), ("Proposal/Price Quote", 75),
               ("Negotiation/Review", 90))
CAMPAIGN_TYPES = ("Webinar", "Email", "Event", "Content", "Trade Show")
CAMPAIGN_TYPE_SHARES = np.array([0.3, 0.3, 0.12, 0.2, 0.08])
CAMPAIGN_MEMBER_SHARE = 0.22  # of Salesforce activities
HUBSPOT_ENGAGEMENT_SHARE = 0.15  # HubSpot engagements, relative to Salesforce activities
HUBSPOT_SEND_SHARE = 0.08  # marketing email sends (each yields 2-4 events)
HUBSPOT_WEB_SHARE = 0.10  # page views and form submissions
# The seller's website: the first three pages are where buying intent shows.
SITE_PAGES = ("/pricing", "/demo", "/product/integrations", "/", "/product", "/product/scoring", "/customers",
              "/blog/account-based-marketing-101", "/blog/lead-to-account-matching", "/blog/intent-signals",
              "/resources/abm-playbook", "/docs/getting-started", "/about", "/careers", "/security")
FORM_PAGES = ("/demo", "/contact-sales", "/webinar/registration", "/resources/abm-playbook/download",
              "/newsletter")
# Win odds: logit = WIN_BASE + WIN_FIT * logit(fit) + WIN_ENGAGEMENT * log(intensity).
WIN_BASE, WIN_FIT, WIN_ENGAGEMENT = -2.2, 1.8, 1.8


@dataclass
class Opportunities:
    company: np.ndarray  # int32
    account: np.ndarray  # int32 account position, -1 for a company only HubSpot knows
    created: np.ndarray  # int64
    close: np.ndarray  # int64: actual close (closed) or expected close (open)
    outcome: np.ndarray  # int8 OPEN / WON / LOST
    stage: np.ndarray  # int8 index into OPEN_STAGES for open ones
    amount: np.ndarray  # float64
    renewal: np.ndarray  # bool: existing business

    @property
    def size(self) -> int:
        return int(self.company.size)


@dataclass
class Touches:
    """Sales touches, sorted by time. ``person`` is -1 for an opportunity touch with nobody named."""

    person: np.ndarray  # int32
    company: np.ndarray  # int32
    time: np.ndarray  # int64
    kind: np.ndarray  # int8
    opportunity: np.ndarray  # int32, -1
    duration: np.ndarray  # int32 seconds (calls, meetings)
    success: np.ndarray  # bool: call connected / meeting held

    @property
    def size(self) -> int:
        return int(self.time.size)


@dataclass
class Campaigns:
    type: np.ndarray  # int8 index into CAMPAIGN_TYPES
    start: np.ndarray  # int64 (sorted ascending)
    end: np.ndarray
    topic: np.ndarray  # int32 draw for the name

    @property
    def size(self) -> int:
        return int(self.start.size)


@dataclass
class Memberships:
    """CampaignMember rows (Salesforce) or marketing email sends (HubSpot), sorted by time."""

    person: np.ndarray
    campaign: np.ndarray
    added: np.ndarray  # int64
    responded: np.ndarray  # int64, -1 = no response
    clicked: np.ndarray  # bool (email: clicked after opening)
    bounced: np.ndarray  # bool

    @property
    def size(self) -> int:
        return int(self.person.size)


@dataclass
class WebEvents:
    person: np.ndarray
    time: np.ndarray
    form: np.ndarray  # bool: a form submission rather than a page view
    page: np.ndarray  # int16 index into the site's page list

    @property
    def size(self) -> int:
        return int(self.time.size)


def win_probability(fit: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    fit = np.clip(fit, 1e-4, 1 - 1e-4)
    logit = WIN_BASE + WIN_FIT * np.log(fit / (1 - fit)) + WIN_ENGAGEMENT * np.log(intensity)
    return 1.0 / (1.0 + np.exp(-logit))


def _business_hours(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Move times onto a weekday between 07:00 and 18:00 UTC, keeping the day where possible."""
    day = t // DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    day = day - np.maximum(weekday - 4, 0)
    return day * DAY + 7 * 3600 + rng.integers(0, 11 * 3600, size=t.size)


def _profile_times(
    rng: np.random.Generator, plan: Plan, company: np.ndarray, earliest: np.ndarray, burst_share: float
) -> np.ndarray:
    """A touch time per row after ``earliest`` and before as_of, shaped by the company's profile."""
    as_of = plan.as_of
    n = company.size
    history_start = as_of - HISTORY_DAYS * DAY
    start = np.maximum(earliest, history_start)
    end = np.full(n, as_of, dtype=np.int64)
    profile = plan.profile[company]
    quiet = profile == QUIET
    end[quiet] = np.maximum(as_of - 120 * DAY, start[quiet] + DAY)
    t = start + ((end - start) * rng.random(n)).astype(np.int64)
    surging = (profile == SURGING) & (rng.random(n) < burst_share)
    burst_len = (14 + (company[surging].astype(np.int64) * 2654435761 % 8)) * DAY  # 14-21 days, fixed per company
    t[surging] = as_of - (burst_len * rng.random(surging.sum())).astype(np.int64)
    t = _business_hours(rng, t)
    return np.clip(t, np.minimum(earliest + 60, as_of - 60), as_of - 60)


def make_opportunities(seed: int, plan: Plan) -> Opportunities:
    rng = rng_for(seed, "opportunities")
    as_of = plan.as_of
    sold_to = np.flatnonzero(plan.has_account | plan.in_hubspot).astype(np.int32)
    intensity = plan.intensity[sold_to]
    employees = np.array([plan.companies[c].employees for c in sold_to], dtype=np.float64)
    counts = rng.poisson(0.35 + 0.3 * intensity)
    surging = plan.profile[sold_to] == SURGING
    counts = counts + (surging & (rng.random(sold_to.size) < 0.35))
    company = np.repeat(sold_to, counts).astype(np.int32)
    n = company.size
    account = np.where(plan.has_account[company], plan.primary_account[company], -1).astype(np.int32)
    earliest = np.where(account >= 0, plan.account_created[np.maximum(account, 0)], plan.company_first_seen[company])
    earliest = np.maximum(earliest, as_of - HISTORY_DAYS * DAY)
    span = np.maximum(as_of - 5 * DAY - earliest, DAY)
    created = earliest + (span * rng.random(n)).astype(np.int64)
    fresh = plan.profile[company] == SURGING
    recent = fresh & (rng.random(n) < 0.4)
    created[recent] = as_of - (rng.random(recent.sum()) * BURST_DAYS * DAY).astype(np.int64)
    cycle = ((20 + rng.gamma(2.0, 35.0, size=n)) * DAY).astype(np.int64)
    close = created + cycle
    is_open = close > as_of
    won = rng.random(n) < win_probability(plan.fit[company], plan.intensity[company])
    outcome = np.where(is_open, OPEN, np.where(won, WON, LOST)).astype(np.int8)
    progress = np.clip((as_of - created) / np.maximum(cycle, 1), 0, 0.999)
    stage = (progress * len(OPEN_STAGES)).astype(np.int8)
    company_employees = np.repeat(employees, counts)
    amount = np.round(np.exp(rng.normal(np.log(18_000), 0.6, size=n)) * (company_employees / 100) ** 0.3, -2)
    renewal = rng.random(n) < 0.2
    order = np.argsort(created, kind="stable")
    close_day = close // DAY * DAY
    return Opportunities(company=company[order], account=account[order], created=created[order],
                         close=close_day[order], outcome=outcome[order], stage=stage[order], amount=amount[order],
                         renewal=renewal[order])


def _sorted(touches: Touches) -> Touches:
    order = np.argsort(touches.time, kind="stable")
    return Touches(*(getattr(touches, f)[order] for f in ("person", "company", "time", "kind", "opportunity",
                                                          "duration", "success")))


def _people_by_company(n_companies: int, persons: np.ndarray, company: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR index: persons grouped by company, and each company's offset into that list."""
    order = np.argsort(company[persons], kind="stable")
    grouped = persons[order]
    counts = np.bincount(company[grouped], minlength=n_companies)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return grouped, offsets


def _touch_details(rng: np.random.Generator, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = kind.size
    success = rng.random(n) < np.where(kind == CALL, 0.38, np.where((kind == MEETING) | (kind == DEMO), 0.9, 1.0))
    duration = np.zeros(n, dtype=np.int32)
    calls = kind == CALL
    duration[calls] = np.where(success[calls], 60 + rng.gamma(1.6, 420, size=calls.sum()),
                               rng.integers(0, 40, size=calls.sum()))
    meetings = (kind == MEETING) | (kind == DEMO)
    duration[meetings] = rng.choice(np.array([30, 30, 45, 60, 60, 90]) * 60, size=meetings.sum())
    return duration, success


def make_sales_touches(
    seed: int, plan: Plan, people: People, opportunities: Opportunities, stream: str, persons: np.ndarray,
    budget: int, kinds: np.ndarray, shares: np.ndarray, opportunity_rows: np.ndarray, deal_persons: np.ndarray,
) -> Touches:
    """Touches on ``persons``: deal work (demos, proposals with ``deal_persons`` on the opportunities
    ``opportunity_rows``) first, engagement for the rest of ``budget``."""
    rng = rng_for(seed, stream)
    n_companies = len(plan.companies)
    grouped, offsets = _people_by_company(n_companies, persons, people.company)
    counts = np.diff(offsets)
    parts: list[Touches] = []
    if opportunity_rows.size:
        deal_grouped, deal_offsets = _people_by_company(n_companies, deal_persons, people.company)
        parts.append(_opportunity_touches(rng, plan, opportunities, opportunity_rows, deal_grouped, deal_offsets))
    remaining = max(budget - sum(p.size for p in parts), 0)
    has_people = np.flatnonzero(counts > 0)
    if remaining and has_people.size:
        weight = plan.intensity[has_people] * counts[has_people] ** 0.7
        per_company = rng.multinomial(remaining, weight / weight.sum())
        company = np.repeat(has_people, per_company).astype(np.int32)
        pick = offsets[company] + (rng.random(company.size) * counts[company]).astype(np.int64)
        person = grouped[pick]
        kind = kinds[rng.choice(kinds.size, size=company.size, p=shares / shares.sum())].astype(np.int8)
        leads = people.kind[person] == LEAD
        kind[leads & (kind == MEETING) & (rng.random(company.size) < 0.7)] = CALL
        time = _profile_times(rng, plan, company, people.created[person], burst_share=0.45)
        duration, success = _touch_details(rng, kind)
        parts.append(Touches(person=person.astype(np.int32), company=company, time=time, kind=kind,
                             opportunity=np.full(company.size, -1, dtype=np.int32), duration=duration,
                             success=success))
    if not parts:
        return Touches(*(np.zeros(0, dtype=t) for t in (np.int32, np.int32, np.int64, np.int8, np.int32, np.int32,
                                                         bool)))
    merged = Touches(*(np.concatenate([getattr(p, f) for p in parts]) for f in (
        "person", "company", "time", "kind", "opportunity", "duration", "success")))
    return _sorted(merged)


def _opportunity_touches(
    rng: np.random.Generator, plan: Plan, opps: Opportunities, rows: np.ndarray, grouped: np.ndarray,
    offsets: np.ndarray,
) -> Touches:
    """A demo early in each deal, meetings during it, a proposal near its close."""
    as_of = plan.as_of
    n = rows.size
    idx = rows.astype(np.int32)
    end = np.minimum(opps.close, as_of - 3600)
    life = np.maximum(end - opps.created, 3600)
    demo = rng.random(n) < 0.8
    proposal = (opps.outcome[rows] != OPEN) | (opps.stage[rows] >= 6)
    proposal &= rng.random(n) < 0.75
    meetings = rng.poisson(1.2, size=n)
    rows_opp = np.concatenate([idx[demo], idx[proposal], np.repeat(idx, meetings)])
    kind = np.concatenate([np.full(demo.sum(), DEMO), np.full(proposal.sum(), PROPOSAL),
                           np.full(meetings.sum(), MEETING)]).astype(np.int8)
    frac = np.concatenate([rng.uniform(0.02, 0.25, demo.sum()), rng.uniform(0.8, 0.97, proposal.sum()),
                           rng.uniform(0.05, 0.95, meetings.sum())])
    time = opps.created[rows_opp] + (life[rows_opp] * frac).astype(np.int64)
    time = np.minimum(_business_hours(rng, time), as_of - 60)
    company = opps.company[rows_opp]
    count = offsets[company + 1] - offsets[company]
    pick = offsets[company] + (rng.random(rows_opp.size) * np.maximum(count, 1)).astype(np.int64)
    person = np.where(count > 0, grouped[np.minimum(pick, grouped.size - 1)] if grouped.size else -1, -1)
    duration, success = _touch_details(rng, kind)
    return Touches(person=person.astype(np.int32), company=company.astype(np.int32), time=time, kind=kind,
                   opportunity=rows_opp, duration=duration, success=success)


def make_campaigns(seed: int, size: OrgSize, plan: Plan) -> Campaigns:
    """Campaigns over two years; the last three run in the final weeks, when surging companies respond."""
    rng = rng_for(seed, "campaigns")
    as_of = plan.as_of
    n = size.campaigns
    kind = rng.choice(len(CAMPAIGN_TYPES), size=n, p=CAMPAIGN_TYPE_SHARES).astype(np.int8)
    start = as_of - (rng.random(n) * (HISTORY_DAYS - 20) * DAY).astype(np.int64) - 20 * DAY
    recent = min(3, n)
    start[:recent] = as_of - np.array([16, 9, 3][:recent]) * DAY
    kind[:recent] = np.array([0, 1, 3][:recent])
    start = start // DAY * DAY + 15 * 3600
    length = np.array([1, 1, 3, 60, 3])[kind] * DAY
    order = np.argsort(start, kind="stable")
    return Campaigns(type=kind[order], start=start[order], end=(start + length)[order],
                     topic=rng.integers(0, 2**31, size=n)[order].astype(np.int32))


def make_memberships(
    seed: int, plan: Plan, people: People, campaigns: Campaigns, persons: np.ndarray, count: int, stream: str,
    response_base: float,
) -> Memberships:
    """People added to campaigns (or sent emails); engaged and surging people respond more, and recently."""
    rng = rng_for(seed, stream)
    as_of = plan.as_of
    empty = Memberships(*(np.zeros(0, dtype=t) for t in (np.int32, np.int32, np.int64, np.int64, bool, bool)))
    if not persons.size or not campaigns.size or not count:
        return empty
    company = people.company[persons]
    surging = plan.profile[company] == SURGING
    weight = plan.intensity[company] * np.where(surging, 2.0, 1.0)
    person = persons[rng.choice(persons.size, size=count, p=weight / weight.sum())]
    created = people.created[person]
    first_after = np.searchsorted(campaigns.start, created, side="right")
    available = campaigns.size - first_after
    campaign = first_after + (rng.random(count) * available).astype(np.int64)
    p_surging = plan.profile[people.company[person]] == SURGING
    recent_start = np.searchsorted(campaigns.start, as_of - BURST_DAYS * DAY)
    to_recent = p_surging & (rng.random(count) < 0.5) & (recent_start < campaigns.size)
    n_recent = campaigns.size - recent_start
    campaign[to_recent] = recent_start + (rng.random(to_recent.sum()) * n_recent).astype(np.int64)
    keep = (available > 0) | to_recent
    person, campaign = person[keep], campaign[keep]
    key = person.astype(np.int64) * campaigns.size + campaign
    key = np.unique(key)  # a person is a member of a campaign once
    person = (key // campaigns.size).astype(np.int32)
    campaign = (key % campaigns.size).astype(np.int32)
    n = person.size
    start, end = campaigns.start[campaign], campaigns.end[campaign]
    added = np.maximum(start - (rng.random(n) * 10 * DAY).astype(np.int64), people.created[person] + 60)
    added = np.minimum(added, as_of - 120)
    intensity = plan.intensity[people.company[person]]
    recent = start >= as_of - BURST_DAYS * DAY
    surging = plan.profile[people.company[person]] == SURGING
    p_respond = np.clip(response_base + 0.2 * intensity, 0.02, 0.9)
    p_respond = np.where(recent & surging, 0.85, np.where(recent, p_respond * 0.6, p_respond))
    responds = rng.random(n) < p_respond
    window = np.maximum(np.minimum(end, as_of) - start, 3600)
    responded_at = np.maximum(start + (rng.random(n) * np.minimum(window, 5 * DAY)).astype(np.int64), added + 60)
    responded = np.where(responds & (responded_at < as_of), responded_at, -1)
    clicked = (responded >= 0) & (rng.random(n) < 0.35)
    bounced = rng.random(n) < 0.03
    responded[bounced] = -1
    clicked[bounced] = False
    order = np.argsort(added, kind="stable")
    return Memberships(person=person[order], campaign=campaign[order], added=added[order],
                       responded=responded[order], clicked=clicked[order], bounced=bounced[order])


def make_web_events(seed: int, plan: Plan, people: People, persons: np.ndarray, count: int, n_pages: int,
                    n_forms: int) -> WebEvents:
    """Page views and form submissions; surging companies' people browse (pricing, demo pages) lately."""
    rng = rng_for(seed, "web")
    if not persons.size or not count:
        return WebEvents(*(np.zeros(0, dtype=t) for t in (np.int32, np.int64, bool, np.int16)))
    company = people.company[persons]
    surging = plan.profile[company] == SURGING
    weight = plan.intensity[company] * np.where(surging, 3.0, 1.0)
    person = persons[rng.choice(persons.size, size=count, p=weight / weight.sum())]
    time = _profile_times(rng, plan, people.company[person], people.created[person], burst_share=0.6)
    # web visits happen any hour; undo the business-hours snap with a random offset within the day
    time = np.minimum(time // DAY * DAY + rng.integers(0, DAY, size=time.size), plan.as_of - 1)
    time = np.maximum(time, people.created[person])
    form = rng.random(count) < 0.12
    hot = plan.profile[people.company[person]] == SURGING
    page = np.where(form, rng.integers(0, n_forms, size=count),
                    np.where(hot & (rng.random(count) < 0.4), rng.integers(0, 3, size=count),
                             rng.integers(0, n_pages, size=count))).astype(np.int16)
    order = np.argsort(time, kind="stable")
    return WebEvents(person=person[order].astype(np.int32), time=time[order], form=form[order], page=page[order])
