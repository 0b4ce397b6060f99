"""Who is where: which companies Salesforce and HubSpot know, and how engaged each one is.

The plan is the CRM-neutral skeleton the views hang on. A company may have a Salesforce
account (sometimes two: the duplicate a rep created without searching first), a HubSpot
company (linked to its account through ``salesforceaccountid`` when it has one), both, or
neither (people whose employer no CRM has a record of). Everything here is numpy arrays
indexed by company or account position, so the L org's plan costs a few megabytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sandbox.seed_companies import PROFILES, Company, clear_name_caches, generate_companies

DAY = 86_400
HISTORY_DAYS = 730  # opportunities and activities span about two years before as_of
ACCOUNT_AGE_DAYS = 1_100  # the oldest accounts were created three years before as_of
QUIET, STEADY, SURGING = (PROFILES.index(p) for p in ("quiet", "steady", "surging"))
# Mean engagement intensity per profile: activity volume and win odds both scale with it.
PROFILE_INTENSITY = np.array([0.3, 1.0, 1.8])


@dataclass(frozen=True)
class OrgSize:
    """How big an org to generate. ``activities`` counts Salesforce Tasks, Events and CampaignMembers."""

    accounts: int
    leads: int
    contacts: int
    activities: int
    users: int = 12
    campaigns: int = 24
    hubspot_shared_share: float = 0.6  # share of HubSpot companies that are also Salesforce accounts
    duplicate_account_share: float = 0.03  # accounts that are a second record of an already-known company
    lead_without_account_share: float = 0.25  # unconverted leads whose company has no account

    def __post_init__(self) -> None:
        for name in ("accounts", "leads", "contacts", "activities", "users", "campaigns"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"OrgSize.{name} must be a non-negative integer, got {value!r}")
        if self.accounts < 1 or self.users < 1 or self.campaigns < 1:
            raise ValueError("an org needs at least one account, one user and one campaign")
        for name in ("hubspot_shared_share", "duplicate_account_share", "lead_without_account_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"OrgSize.{name} must be between 0 and 1, got {value!r}")


SIZES: dict[str, OrgSize] = {
    "S": OrgSize(accounts=500, leads=2_000, contacts=2_000, activities=20_000, users=12, campaigns=24),
    "M": OrgSize(accounts=5_000, leads=20_000, contacts=20_000, activities=200_000, users=40, campaigns=60),
    "L": OrgSize(accounts=100_000, leads=500_000, contacts=500_000, activities=5_000_000, users=300,
                 campaigns=400),
}


def resolve_size(size: str | OrgSize) -> OrgSize:
    if isinstance(size, OrgSize):
        return size
    key = str(size).upper()
    if key not in SIZES:
        raise ValueError(f"unknown org size {size!r}; expected one of {', '.join(SIZES)} or an OrgSize")
    return SIZES[key]


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent numpy stream per concern, so adding draws to one leaves the others unchanged."""
    return np.random.default_rng([seed, *stream.encode()])


@dataclass
class Plan:
    companies: list[Company]
    profile: np.ndarray  # int8 per company: QUIET, STEADY, SURGING
    fit: np.ndarray  # float64 per company
    intensity: np.ndarray  # float64 per company: engagement intensity (activity rate multiplier)
    account_company: np.ndarray  # int32 per account: company index
    account_is_duplicate: np.ndarray  # bool per account
    account_created: np.ndarray  # int64 epoch seconds per account
    primary_account: np.ndarray  # int32 per company: its first account, -1 if none
    hubspot_company: np.ndarray  # int32 per HubSpot company: company index
    company_hubspot: np.ndarray  # int32 per company: HubSpot company position, -1 if none
    company_first_seen: np.ndarray  # int64 epoch seconds per company: when any CRM first heard of it
    as_of: int  # epoch seconds

    @property
    def has_account(self) -> np.ndarray:
        return self.primary_account >= 0

    @property
    def in_hubspot(self) -> np.ndarray:
        return self.company_hubspot >= 0


def make_plan(seed: int, size: OrgSize, as_of: datetime) -> Plan:
    """Companies and who knows them. Depends only on (seed, size, as_of)."""
    rng = rng_for(seed, "plan")
    n_account_companies = max(1, round(size.accounts / (1.0 + size.duplicate_account_share)))
    n_duplicates = size.accounts - n_account_companies
    n_hubspot = n_account_companies
    n_hubspot_only = n_hubspot - round(size.hubspot_shared_share * n_hubspot)
    n_other = max(n_hubspot_only, round(0.6 * n_account_companies), 1)
    n = n_account_companies + n_other
    companies = generate_companies(random.Random(f"{seed}-companies"), rng_for(seed, "companies"), n)
    clear_name_caches()  # the L org's unique names would otherwise stay cached for the process's life

    profile = np.array([PROFILES.index(c.engagement) for c in companies], dtype=np.int8)
    fit = np.array([c.fit for c in companies])
    intensity = PROFILE_INTENSITY[profile] * np.exp(rng.normal(0.0, 0.35, size=n))
    employees = np.array([c.employees for c in companies], dtype=np.float64)

    # Bigger and better-fitting companies are likelier to have been entered as accounts.
    weight = employees ** 0.25 * (0.5 + fit)
    chosen = rng.choice(n, size=n_account_companies, replace=False, p=weight / weight.sum())
    account_companies = np.sort(chosen).astype(np.int32)
    as_of_s = int(as_of.timestamp())
    primary_created = as_of_s - rng.integers(45 * DAY, ACCOUNT_AGE_DAYS * DAY, size=n_account_companies)
    dup_of = rng.choice(n_account_companies, size=n_duplicates, replace=True) if n_duplicates else \
        np.zeros(0, dtype=np.int64)
    dup_created = primary_created[dup_of] + ((as_of_s - primary_created[dup_of]) * rng.random(n_duplicates)
                                             ).astype(np.int64)
    account_company = np.concatenate([account_companies, account_companies[dup_of]]).astype(np.int32)
    account_created = np.concatenate([primary_created, dup_created]).astype(np.int64)
    account_is_duplicate = np.arange(size.accounts) >= n_account_companies
    primary_account = np.full(n, -1, dtype=np.int32)
    primary_account[account_companies] = np.arange(n_account_companies, dtype=np.int32)

    others = np.setdiff1d(np.arange(n, dtype=np.int32), account_companies)
    shared = rng.choice(account_companies, size=n_hubspot - n_hubspot_only, replace=False)
    hs_only = rng.choice(others, size=n_hubspot_only, replace=False)
    hubspot_company = np.sort(np.concatenate([shared, hs_only])).astype(np.int32)
    company_hubspot = np.full(n, -1, dtype=np.int32)
    company_hubspot[hubspot_company] = np.arange(hubspot_company.size, dtype=np.int32)

    first_seen = as_of_s - rng.integers(30 * DAY, ACCOUNT_AGE_DAYS * DAY, size=n)
    first_seen[account_companies] = primary_created
    return Plan(
        companies=companies, profile=profile, fit=fit, intensity=intensity, account_company=account_company,
        account_is_duplicate=account_is_duplicate, account_created=account_created,
        primary_account=primary_account, hubspot_company=hubspot_company, company_hubspot=company_hubspot,
        company_first_seen=first_seen.astype(np.int64), as_of=as_of_s,
    )
