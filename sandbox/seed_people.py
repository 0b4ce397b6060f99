"""The people of the synthetic org: who works where, and what each CRM knows about them.

A person is CRM-neutral: the views decide whether Salesforce sees them as a Lead, a Contact
or both (a converted lead), and whether HubSpot has them as a contact. Every random choice is
drawn up front as numpy arrays (a few bytes per person), and strings (names, emails, titles,
the company as typed) are rendered from those draws on demand, so the L org's million people
never sit in memory as dicts and every view renders a person identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from sandbox import seed_names as N
from sandbox.seed_companies import COUNTRY_BY_CODE, Company, fill_digits, slug
from sandbox.seed_plan import DAY, QUIET, SURGING, OrgSize, Plan, rng_for
from sandbox.seed_typing import BLANK, TYPING_SHARES, typed_company

CONTACT, CONVERTED, LEAD, HUBSPOT_ONLY = 0, 1, 2, 3  # person kinds
STYLES = tuple(N.FIRST_NAMES)
_STYLE_INDEX = {s: i for i, s in enumerate(STYLES)}
_LATIN_STYLE_IDS = np.array([_STYLE_INDEX[s] for s in N.LATIN_STYLES], dtype=np.int8)
CONVERTED_SHARE_OF_CONTACTS = 0.25
HUBSPOT_ONLY_SHARE = 0.3  # marketing-only contacts (never in Salesforce), relative to leads + contacts
BURST_DAYS = 21
PROFILE_PEOPLE_WEIGHT = np.array([0.6, 1.0, 2.2])  # surging companies have more people showing up
EMAIL_PATTERNS = ("{f}.{l}", "{fi}{l}", "{f}", "{f}{li}", "{f}_{l}", "{l}.{f}", "{f}{l}", "{l}{fi}")
# email domain kinds: company domain, company's other domain, free mail, a personal domain
EMAIL_COMPANY, EMAIL_EXTRA, EMAIL_FREE, EMAIL_PERSONAL = 0, 1, 2, 3
LEAD_EMAIL_KINDS = np.array([0.70, 0.04, 0.22, 0.04])
CONTACT_EMAIL_KINDS = np.array([0.90, 0.03, 0.06, 0.01])
LEAD_WITHOUT_EMAIL = 0.03


def _title_tables() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per company style: the TITLES indices usable there and their cumulative weights."""
    tables = {}
    for style, i in _STYLE_INDEX.items():
        idx = np.array([t for t, row in enumerate(N.TITLES) if row[2] in (None, style)], dtype=np.int16)
        weights = np.array([N.TITLES[t][3] * (2.5 if N.TITLES[t][2] == style else 1.0) for t in idx])
        tables[i] = (idx, np.cumsum(weights) / weights.sum())
    return tables


_TITLE_TABLES = _title_tables()
PERSONA_OF_TITLE = tuple(row[1] for row in N.TITLES)


@dataclass
class People:
    plan: Plan
    company: np.ndarray  # int32 per person
    kind: np.ndarray  # int8: CONTACT, CONVERTED, LEAD, HUBSPOT_ONLY
    account: np.ndarray  # int32 account position of a (converted) contact, else -1
    leads: np.ndarray  # int32 per Lead row: person
    contacts: np.ndarray  # int32 per Contact row: person
    hubspot: np.ndarray  # int32 per HubSpot contact: person
    lead_row: np.ndarray  # int32 per person, -1
    contact_row: np.ndarray
    hubspot_row: np.ndarray
    style: np.ndarray  # int8 index into STYLES (the person's name style)
    first: np.ndarray  # int64 draws; the name is FIRST_NAMES[style][first % len]
    last: np.ndarray
    romanized: np.ndarray  # bool: a non-Latin name entered in Latin letters
    title: np.ndarray  # int16 index into TITLES, -1 for none given
    title_lower: np.ndarray  # bool: typed in lower case
    email_kind: np.ndarray  # int8; -1 = no email
    email_pattern: np.ndarray  # int8
    email_number: np.ndarray  # int16; 0 = none
    phone: np.ndarray  # int64 digits; 0 = no phone
    created: np.ndarray  # int64 epoch seconds (the lead's creation for converted people)
    converted: np.ndarray  # int64 epoch seconds of conversion (contact creation), -1
    typing: np.ndarray  # int8 index into COMPANY_TYPING
    u: np.ndarray  # float32 [n, 6] uniforms for per-person choices rendered later

    @property
    def size(self) -> int:
        return int(self.company.size)

    def company_of(self, person: int) -> Company:
        return self.plan.companies[int(self.company[person])]

    # -- rendering -------------------------------------------------------------------------
    @cached_property
    def _names(self) -> tuple[list[str], list[str], list[str], list[str]]:
        """Per person: first and last name as a CRM shows them, and their ASCII forms for emails.

        Gathered per naming style with numpy; the strings themselves are shared with the tables."""
        n = self.size
        columns = [np.empty(n, dtype=object) for _ in range(4)]
        for s, style in enumerate(STYLES):
            mask = self.style == s
            if not mask.any():
                continue
            romanized = self.romanized[mask]
            for part, draws, shown, ascii_ in (("first", self.first, columns[0], columns[2]),
                                               ("last", self.last, columns[1], columns[3])):
                native, latin, slugs = _name_table(part, style)
                idx = draws[mask] % native.size
                shown[mask] = np.where(romanized, latin[idx], native[idx])
                ascii_[mask] = slugs[idx]
        first, last, first_ascii, last_ascii = (c.tolist() for c in columns)
        return first, last, first_ascii, last_ascii

    def first_name(self, person: int) -> str:
        return self._names[0][person]

    def last_name(self, person: int) -> str:
        return self._names[1][person]

    def title_of(self, person: int) -> str | None:
        t = int(self.title[person])
        if t < 0:
            return None
        text = N.TITLES[t][0]
        return text.lower() if self.title_lower[person] else text

    def persona(self, person: int) -> str:
        t = int(self.title[person])
        return PERSONA_OF_TITLE[t] if t >= 0 else "other"

    def phone_of(self, person: int) -> str | None:
        digits = int(self.phone[person])
        if not digits:
            return None
        patterns = COUNTRY_BY_CODE[self.company_of(person).country].phones
        return fill_digits(patterns[digits % len(patterns)], digits // len(patterns))

    def typed_company(self, person: int) -> str:
        u = self.u[person]
        return typed_company(self.company_of(person), int(self.typing[person]), float(u[0]), float(u[1]),
                             float(u[2]))

    def email(self, person: int) -> str | None:
        return self.emails[person]

    def columns(self, persons: np.ndarray) -> dict[str, list[Any]]:
        """What the views print about ``persons``, as lists: one numpy gather per field instead of
        a dozen scalar lookups per record (the L org renders a million people twice)."""
        first, last, _, _ = self._names
        emails = self.emails
        plist = persons.tolist()
        titles = self.title[persons].tolist()
        lower = self.title_lower[persons].tolist()
        return {
            "person": plist, "company": self.company[persons].tolist(), "kind": self.kind[persons].tolist(),
            "first": [first[p] for p in plist], "last": [last[p] for p in plist], "email": [emails[p] for p in plist],
            "title": [None if t < 0 else (N.TITLES[t][0].lower() if low else N.TITLES[t][0])
                      for t, low in zip(titles, lower, strict=True)],
            "phone": [self.phone_of(p) if d else None
                      for p, d in zip(plist, self.phone[persons].tolist(), strict=True)],
            "typed_company": [self.typed_company(p) for p in plist], "typing": self.typing[persons].tolist(),
            "created": self.created[persons].tolist(), "converted": self.converted[persons].tolist(),
            "account": self.account[persons].tolist(), "lead_row": self.lead_row[persons].tolist(),
            "contact_row": self.contact_row[persons].tolist(), "u": self.u[persons].tolist(),
        }

    @cached_property
    def emails(self) -> list[str | None]:
        """Every person's email, unique across the org (a clash gets a digit, as mail admins do)."""
        taken: dict[str, int] = {}
        out: list[str | None] = []
        companies = self.plan.companies
        _, _, first_ascii, last_ascii = self._names
        rows = zip(self.email_kind.tolist(), self.company.tolist(), self.email_pattern.tolist(),
                   self.email_number.tolist(), self.u[:, 3].tolist(), first_ascii, last_ascii, strict=True)
        for kind, c, pattern_index, number, u3, first, last in rows:
            if kind < 0:
                out.append(None)
                continue
            company = companies[c]
            first = first or "info"
            last = last or "contact"
            local = EMAIL_PATTERNS[pattern_index].format(f=first, l=last, fi=first[0], li=last[0])
            if kind == EMAIL_FREE:
                free = COUNTRY_BY_CODE[company.country].free_mail
                domain = free[int(u3 * len(free)) % len(free)]
                if number:
                    local += str(number)
            elif kind == EMAIL_PERSONAL:
                domain = f"{last}{first[0] if u3 < 0.5 else ''}.{N.PERSONAL_DOMAIN_TLDS[number % 6]}"
                local = first
            elif kind == EMAIL_EXTRA and company.extra_domains:
                domain = company.extra_domains[0]
            else:
                domain = company.domain
            email = f"{local}@{domain}"
            seen = taken.get(email)
            if seen is not None:
                taken[email] = seen + 1
                email = f"{local}{seen + 1}@{domain}"
                while email in taken:
                    seen += 1
                    email = f"{local}{seen + 1}@{domain}"
            taken[email] = 1
            out.append(email)
        return out


@lru_cache(maxsize=64)
def _name_table(part: str, style: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(native, latin, ascii slug) object arrays for one style's first or last names."""
    values = (N.FIRST_NAMES if part == "first" else N.LAST_NAMES)[style]
    native = np.array([v[0] if isinstance(v, tuple) else v for v in values], dtype=object)
    latin = np.array([v[1] if isinstance(v, tuple) else N.fold(v) for v in values], dtype=object)
    slugs = np.array([slug(x) for x in latin], dtype=object)
    return native, latin, slugs


def _weighted_companies(rng: np.random.Generator, pool: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    if n == 0 or pool.size == 0:
        return np.zeros(0, dtype=np.int32)
    w = weight[pool]
    return pool[rng.choice(pool.size, size=n, p=w / w.sum())].astype(np.int32)


def make_people(seed: int, size: OrgSize, plan: Plan) -> People:
    rng = rng_for(seed, "people")
    companies = plan.companies
    n_companies = len(companies)
    employees = np.array([c.employees for c in companies], dtype=np.float64)
    weight = employees ** 0.35 * PROFILE_PEOPLE_WEIGHT[plan.profile]
    account_pool = np.flatnonzero(plan.has_account).astype(np.int32)
    other_pool = np.flatnonzero(~plan.has_account).astype(np.int32)
    hubspot_pool = plan.hubspot_company
    surging_accounts = account_pool[plan.profile[account_pool] == SURGING]

    n_converted = min(round(CONVERTED_SHARE_OF_CONTACTS * size.contacts), round(0.4 * size.leads))
    n_contacts = size.contacts - n_converted
    n_open_leads = size.leads - n_converted
    n_leads_no_account = round(n_open_leads * size.lead_without_account_share) if other_pool.size else 0
    n_leads_account = n_open_leads - n_leads_no_account
    n_hubspot_only = round(HUBSPOT_ONLY_SHARE * (size.leads + size.contacts))

    # Every surging company shows a few people (the "several people" of a surge): seed them first.
    seeded_contacts = np.repeat(surging_accounts, 2)[: n_contacts]
    seeded_leads = surging_accounts[: n_leads_account]
    blocks = [
        (CONVERTED, _weighted_companies(rng, account_pool, weight, n_converted)),
        (CONTACT, np.concatenate([seeded_contacts,
                                  _weighted_companies(rng, account_pool, weight, n_contacts - seeded_contacts.size)])),
        (LEAD, np.concatenate([seeded_leads,
                               _weighted_companies(rng, account_pool, weight, n_leads_account - seeded_leads.size)])),
        (LEAD, _weighted_companies(rng, other_pool, weight, n_leads_no_account)),
        (HUBSPOT_ONLY, _weighted_companies(rng, hubspot_pool, weight * np.where(plan.has_account, 1.0, 3.0),
                                           n_hubspot_only)),
    ]
    company = np.concatenate([b[1] for b in blocks]).astype(np.int32)
    kind = np.concatenate([np.full(b[1].size, b[0], dtype=np.int8) for b in blocks])
    n = company.size

    # Accounts: contacts sit on their company's account, some on its duplicate account.
    account = np.full(n, -1, dtype=np.int32)
    is_contact = (kind == CONTACT) | (kind == CONVERTED)
    account[is_contact] = plan.primary_account[company[is_contact]]
    duplicate_of_company = np.full(n_companies, -1, dtype=np.int32)
    dup_positions = np.flatnonzero(plan.account_is_duplicate).astype(np.int32)
    duplicate_of_company[plan.account_company[dup_positions]] = dup_positions
    on_duplicate = is_contact & (duplicate_of_company[company] >= 0) & (rng.random(n) < 0.25)
    account[on_duplicate] = duplicate_of_company[company[on_duplicate]]

    # Names: mostly the company's naming style; some people carry names from elsewhere.
    company_style = np.array([_STYLE_INDEX[c.style] for c in companies], dtype=np.int8)
    style = company_style[company]
    foreign = rng.random(n) < 0.12
    style[foreign] = _LATIN_STYLE_IDS[rng.integers(0, _LATIN_STYLE_IDS.size, size=foreign.sum())]
    first = rng.integers(0, 2**40, size=n, dtype=np.int64)
    last = rng.integers(0, 2**40, size=n, dtype=np.int64)
    romanized = rng.random(n) < np.where(kind == CONTACT, 0.3, 0.45)

    title = np.full(n, -1, dtype=np.int16)
    u_title = rng.random(n)
    for s, (idx, cum) in _TITLE_TABLES.items():
        mask = company_style[company] == s
        title[mask] = idx[np.minimum(np.searchsorted(cum, u_title[mask]), idx.size - 1)]
    title[rng.random(n) < np.where(kind == LEAD, 0.06, 0.02)] = -1
    title_lower = rng.random(n) < 0.06

    email_kind = np.where(
        is_contact,
        rng.choice(4, size=n, p=CONTACT_EMAIL_KINDS),
        rng.choice(4, size=n, p=LEAD_EMAIL_KINDS),
    ).astype(np.int8)
    email_kind[(kind == LEAD) & (rng.random(n) < LEAD_WITHOUT_EMAIL)] = -1
    # Each company has a house email pattern; a few people (and free-mail users) deviate.
    house = (np.arange(n_companies) * 7919 + seed) % 3
    email_pattern = np.where(rng.random(n) < 0.88, house[company],
                             rng.integers(0, len(EMAIL_PATTERNS), size=n)).astype(np.int8)
    email_number = np.where(rng.random(n) < 0.6, rng.integers(1, 2000, size=n), 0).astype(np.int16)
    phone = np.where(rng.random(n) < np.where(is_contact, 0.75, 0.55),
                     rng.integers(1, 10**15, size=n, dtype=np.int64), 0).astype(np.int64)

    created, converted = _creation_times(rng, plan, company, kind, account)
    typing = rng.choice(TYPING_SHARES.size, size=n, p=TYPING_SHARES / TYPING_SHARES.sum()).astype(np.int8)
    typing[(kind == HUBSPOT_ONLY) & (typing == BLANK)] = 0
    u = rng.random((n, 6), dtype=np.float32)

    # Row order inside each CRM is creation order, as record ids are handed out.
    def rows(mask: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        persons = np.flatnonzero(mask).astype(np.int32)
        persons = persons[np.argsort(times[persons], kind="stable")]
        row_of = np.full(n, -1, dtype=np.int32)
        row_of[persons] = np.arange(persons.size, dtype=np.int32)
        return persons, row_of

    leads, lead_row = rows((kind == LEAD) | (kind == CONVERTED), created)
    contacts, contact_row = rows(is_contact, np.where(converted >= 0, converted, created))
    in_hubspot = plan.in_hubspot[company] & ((kind == HUBSPOT_ONLY) | (email_kind >= 0))
    hubspot, hubspot_row = rows(in_hubspot, created)
    return People(
        plan=plan, company=company, kind=kind, account=account, leads=leads, contacts=contacts, hubspot=hubspot,
        lead_row=lead_row, contact_row=contact_row, hubspot_row=hubspot_row, style=style, first=first, last=last,
        romanized=romanized & ~np.isin(style, _LATIN_STYLE_IDS),
        title=title, title_lower=title_lower, email_kind=email_kind, email_pattern=email_pattern,
        email_number=email_number, phone=phone, created=created, converted=converted, typing=typing, u=u,
    )


def _creation_times(
    rng: np.random.Generator, plan: Plan, company: np.ndarray, kind: np.ndarray, account: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """When each person first appeared, and when converted people became contacts.

    Contacts appear after their account was created; leads after their company was first
    heard of; a surging company's new people cluster in the last three weeks.
    """
    n = company.size
    as_of = plan.as_of
    start = plan.company_first_seen[company].copy()
    has_account = account >= 0
    start[has_account] = plan.account_created[account[has_account]]
    span = np.maximum(as_of - DAY - start, DAY)
    created = start + (span * rng.random(n)).astype(np.int64)
    surging = plan.profile[company] == SURGING
    fresh = surging & (kind != CONTACT) & (rng.random(n) < 0.35)
    created[fresh] = as_of - (rng.random(fresh.sum()) * BURST_DAYS * DAY).astype(np.int64)
    quiet = plan.profile[company] == QUIET
    # Quiet companies stopped producing new people a while ago.
    created[quiet] = start[quiet] + (np.maximum(span[quiet] * 0.7, DAY) * rng.random(quiet.sum())).astype(np.int64)
    converted = np.full(n, -1, dtype=np.int64)
    conv = kind == CONVERTED
    delay = (rng.exponential(40.0, size=conv.sum()) * DAY).astype(np.int64) + 3600
    converted[conv] = np.minimum(created[conv] + delay, as_of - 3600)
    created[conv] = np.minimum(created[conv], converted[conv] - 60)
    return created, converted
