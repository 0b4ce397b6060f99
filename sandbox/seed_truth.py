"""Ground truth of a generated org, for matching and scoring evaluations.

What no CRM record says outright: which company a lead really works for (and so which
account it should match, or that it has none), which accounts are duplicates of each other,
which companies the generator made surging, their latent fit, and how every opportunity
ended. Keys are Salesforce and HubSpot ids as the views hand them out, plus the CRM-neutral
``Company.key``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sandbox import seed_activity as A
from sandbox.seed_companies import PROFILES
from sandbox.seed_people import CONVERTED

OUTCOMES = {A.OPEN: "open", A.WON: "won", A.LOST: "lost"}


@dataclass(frozen=True)
class OpportunityTruth:
    crm: str  # "salesforce" or "hubspot"
    id: str  # Opportunity Id or HubSpot deal id
    account_id: str | None  # Salesforce Account Id (None for a HubSpot-only company)
    company_key: str
    created: datetime
    close_date: date
    outcome: str  # "won" | "lost" | "open"
    amount: float


@dataclass(frozen=True)
class CompanyTruth:
    key: str
    name: str
    domain: str
    engagement: str  # quiet | steady | surging
    fit: float  # latent ICP fit in (0, 1)
    intensity: float  # latent engagement intensity (activity rate multiplier)
    win_probability: float
    account_ids: tuple[str, ...]  # primary account first, then duplicates
    hubspot_company_id: str | None
    parent_key: str | None


@dataclass
class GroundTruth:
    as_of: datetime
    lead_account: dict[str, str | None]  # Lead Id -> the company's primary Account Id, None if it has none
    contact_account: dict[str, str]  # Contact Id -> Account Id it belongs on
    lead_company: dict[str, str]  # Lead Id -> Company.key
    contact_company: dict[str, str]  # Contact Id -> Company.key
    persona: dict[str, str]  # Lead, Contact or HubSpot contact id -> persona of the person's title
    company_of_account: dict[str, str]  # Account Id -> Company.key (duplicates share a key)
    duplicate_accounts: set[str]  # Account Ids that are a second record of a company
    hubspot_company_of: dict[str, str]  # HubSpot company id -> Company.key
    hubspot_contact_company: dict[str, str]  # HubSpot contact id -> Company.key
    surging_accounts: set[str]  # primary Account Ids of surging companies
    surging_companies: set[str]  # Company.key
    won_accounts: set[str]  # Account Ids with at least one won opportunity
    lost_accounts: set[str]  # Account Ids with a lost opportunity and none won
    opportunities: list[OpportunityTruth]
    companies: dict[str, CompanyTruth] = field(default_factory=dict)

    def accounts_of_company(self) -> dict[str, list[str]]:
        return {key: list(c.account_ids) for key, c in self.companies.items() if c.account_ids}

    def lead_matches(self, lead_id: str, account_id: str | None) -> bool:
        """Whether matching ``lead_id`` to ``account_id`` is right: any account of its true company counts."""
        truth = self.lead_account[lead_id]
        if truth is None or account_id is None:
            return truth is account_id
        return self.company_of_account.get(account_id) == self.lead_company[lead_id]

    # -- files -----------------------------------------------------------------------------
    def to_json(self, path: Path | str) -> None:
        """The whole truth as one JSON document (sets as sorted lists, datetimes ISO 8601)."""
        data = {
            "as_of": self.as_of.isoformat(),
            "lead_account": self.lead_account, "contact_account": self.contact_account,
            "lead_company": self.lead_company, "contact_company": self.contact_company, "persona": self.persona,
            "company_of_account": self.company_of_account, "duplicate_accounts": sorted(self.duplicate_accounts),
            "hubspot_company_of": self.hubspot_company_of, "hubspot_contact_company": self.hubspot_contact_company,
            "surging_accounts": sorted(self.surging_accounts), "surging_companies": sorted(self.surging_companies),
            "won_accounts": sorted(self.won_accounts), "lost_accounts": sorted(self.lost_accounts),
            "opportunities": [_plain(o.__dict__) for o in self.opportunities],
            "companies": {k: _plain(c.__dict__) for k, c in self.companies.items()},
        }
        with open(path, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, separators=(",", ":"))

    def to_csv(self, directory: Path | str) -> list[Path]:
        """One CSV per table (people.csv, accounts.csv, companies.csv, opportunities.csv); returns the paths."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        people_rows = (
            [("lead", i, self.lead_company[i], a or "", self.persona.get(i, "")) for i, a in self.lead_account.items()]
            + [("contact", i, self.contact_company[i], a, self.persona.get(i, ""))
               for i, a in self.contact_account.items()]
            + [("hubspot_contact", i, k, "", self.persona.get(i, "")) for i, k in self.hubspot_contact_company.items()]
        )
        accounts_rows = [(a, k, int(a in self.duplicate_accounts), int(a in self.surging_accounts),
                          int(a in self.won_accounts)) for a, k in self.company_of_account.items()]
        companies_rows = [(c.key, c.name, c.domain, c.engagement, c.fit, c.intensity, c.win_probability,
                           " ".join(c.account_ids), c.hubspot_company_id or "", c.parent_key or "")
                          for c in self.companies.values()]
        opp_rows = [(o.crm, o.id, o.account_id or "", o.company_key, o.created.isoformat(), o.close_date.isoformat(),
                     o.outcome, o.amount) for o in self.opportunities]
        return [
            _write_csv(folder / "people.csv", ("kind", "id", "company_key", "true_account_id", "persona"),
                       people_rows),
            _write_csv(folder / "accounts.csv", ("account_id", "company_key", "duplicate", "surging", "won"),
                       accounts_rows),
            _write_csv(folder / "companies.csv", ("company_key", "name", "domain", "engagement", "fit", "intensity",
                                                  "win_probability", "account_ids", "hubspot_company_id",
                                                  "parent_key"), companies_rows),
            _write_csv(folder / "opportunities.csv", ("crm", "id", "account_id", "company_key", "created",
                                                      "close_date", "outcome", "amount"), opp_rows),
        ]


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else list(v) if isinstance(v, tuple) else v)
            for k, v in values.items()}


def _write_csv(path: Path, header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def build_truth(world: Any, salesforce: Any, hubspot: Any) -> GroundTruth:
    """Derive the truth from the world and the ids the two views hand out."""
    plan, people = world.plan, world.people
    companies = plan.companies
    keys = [c.key for c in companies]
    account_ids = [salesforce.account_id(i) for i in range(plan.account_company.size)]
    company_of_account = {account_ids[i]: keys[int(c)] for i, c in enumerate(plan.account_company)}
    duplicate_accounts = {account_ids[i] for i in np.flatnonzero(plan.account_is_duplicate)}
    accounts_by_company: dict[int, list[str]] = {}
    for i, c in enumerate(plan.account_company.tolist()):
        accounts_by_company.setdefault(c, []).append(account_ids[i])

    lead_account: dict[str, str | None] = {}
    lead_company: dict[str, str] = {}
    persona: dict[str, str] = {}
    for row, p in enumerate(people.leads.tolist()):
        lead_id = salesforce.lead_id(row)
        c = int(people.company[p])
        primary = int(plan.primary_account[c])
        if int(people.kind[p]) == CONVERTED:
            lead_account[lead_id] = account_ids[int(people.account[p])]
        else:
            lead_account[lead_id] = account_ids[primary] if primary >= 0 else None
        lead_company[lead_id] = keys[c]
        persona[lead_id] = people.persona(p)
    contact_account: dict[str, str] = {}
    contact_company: dict[str, str] = {}
    for row, p in enumerate(people.contacts.tolist()):
        contact_id = salesforce.contact_id(row)
        contact_account[contact_id] = account_ids[int(people.account[p])]
        contact_company[contact_id] = keys[int(people.company[p])]
        persona[contact_id] = people.persona(p)
    hubspot_company_of = {hubspot.company_id(i): keys[int(c)] for i, c in enumerate(plan.hubspot_company)}
    hubspot_contact_company: dict[str, str] = {}
    for row, p in enumerate(people.hubspot.tolist()):
        contact_id = hubspot.contact_id(row)
        hubspot_contact_company[contact_id] = keys[int(people.company[p])]
        persona[contact_id] = people.persona(p)

    surging = np.flatnonzero(plan.profile == PROFILES.index("surging"))
    surging_companies = {keys[c] for c in surging}
    surging_accounts = {account_ids[int(plan.primary_account[c])] for c in surging if plan.primary_account[c] >= 0}

    opps = world.opportunities
    opportunities: list[OpportunityTruth] = []
    won_accounts: set[str] = set()
    lost_accounts: set[str] = set()
    sf_position = salesforce.opportunity_position
    hs_position = hubspot.deal_position
    for i in range(opps.size):
        account = int(opps.account[i])
        account_id = account_ids[account] if account >= 0 else None
        outcome = OUTCOMES[int(opps.outcome[i])]
        common = {"account_id": account_id, "company_key": keys[int(opps.company[i])],
                  "created": datetime.fromtimestamp(int(opps.created[i]), UTC),
                  "close_date": datetime.fromtimestamp(int(opps.close[i]), UTC).date(), "outcome": outcome,
                  "amount": float(opps.amount[i])}
        if sf_position[i] >= 0:
            opportunities.append(OpportunityTruth(crm="salesforce", id=salesforce.opportunity_id(int(sf_position[i])),
                                                  **common))
        if hs_position[i] >= 0:
            opportunities.append(OpportunityTruth(crm="hubspot", id=hubspot.deal_id(int(hs_position[i])), **common))
        if account_id is not None and outcome == "won":
            won_accounts.add(account_id)
        elif account_id is not None and outcome == "lost":
            lost_accounts.add(account_id)
    lost_accounts -= won_accounts

    p_win = A.win_probability(plan.fit, plan.intensity)
    company_truth = {}
    for c, company in enumerate(companies):
        hs = int(plan.company_hubspot[c])
        if not accounts_by_company.get(c) and hs < 0:
            continue
        company_truth[company.key] = CompanyTruth(
            key=company.key, name=company.legal_name, domain=company.domain, engagement=company.engagement,
            fit=company.fit, intensity=round(float(plan.intensity[c]), 6),
            win_probability=round(float(p_win[c]), 6), account_ids=tuple(accounts_by_company.get(c, ())),
            hubspot_company_id=hubspot.company_id(hs) if hs >= 0 else None,
            parent_key=keys[company.parent] if company.parent is not None else None,
        )
    return GroundTruth(
        as_of=world.as_of, lead_account=lead_account, contact_account=contact_account, lead_company=lead_company,
        contact_company=contact_company, persona=persona, company_of_account=company_of_account,
        duplicate_accounts=duplicate_accounts, hubspot_company_of=hubspot_company_of,
        hubspot_contact_company=hubspot_contact_company, surging_accounts=surging_accounts,
        surging_companies=surging_companies, won_accounts=won_accounts, lost_accounts=lost_accounts,
        opportunities=opportunities, companies=company_truth,
    )
