"""Shared set-up of the writeback tests: records in a sandbox CRM and their scores in the store.

(No tests here: the name only keeps the writeback test files together.)
"""

from __future__ import annotations

import os
import random
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from config.writeback import WritebackConfig
from sandbox.runner import SandboxHandle
from store.schema import Account, Match, Person, Score, WritebackState
from writeback.catalogue import Catalogue

TRENDS = ("surging", "rising", "steady", "cooling")
ALIGNMENTS = ("aligned_high", "aligned_low", "marketing_high_sales_low", "sales_high_marketing_low")
SCORED_AT = datetime(2026, 1, 5, 6, 30, 15, 123456, tzinfo=UTC)
_SEEDS_TAKEN: dict[str, int] = {}


def writeback_config(**overrides: Any) -> WritebackConfig:
    """The default catalogue, except that the matched account is a text field on Salesforce too:
    the sandbox's Metadata API cannot create Lookup fields (see the report of issue 8)."""
    data: dict[str, Any] = {"fields": {"matched_account": {"type": "text", "length": 18}}, "retry_base_minutes": 15}
    data.update(overrides)
    return WritebackConfig.model_validate(data)


@dataclass
class Seeded:
    """Store ids and CRM ids of the records one test created."""

    crm: str
    accounts: dict[str, int] = field(default_factory=dict)  # crm_id -> accounts.id
    people: dict[str, dict[str, int]] = field(default_factory=dict)  # object -> crm_id -> people.id

    def person_ids(self, obj: str) -> list[str]:
        return list(self.people.get(obj, {}))


def random_scores(rng: random.Random) -> dict[str, Any]:
    return {
        "engagement": rng.uniform(0, 100), "sales_activity": rng.uniform(0, 300), "marketing": rng.uniform(0, 300),
        "fit": rng.uniform(0, 100), "grade": rng.randint(1, 4), "predictive": rng.choice([None, rng.uniform(0, 100)]),
        "trend": rng.choice(TRENDS), "alignment": rng.choice(ALIGNMENTS),
        "reasons_text": f"{rng.randint(2, 9)} people engaged; demo {rng.randint(1, 30)} days ago, pricing page x3",
        "scored_at": SCORED_AT,
    }


def seed_of_this_test() -> int:
    """A seed fixed by the running test and by how many it took before: a test is given the same
    scores every run, so a failure its draw causes happens again when the test is run again (seeds
    from the records' random tags made such a failure a one-off)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    taken = _SEEDS_TAKEN.get(test, 0)
    _SEEDS_TAKEN[test] = taken + 1
    return zlib.crc32(f"{test}#{taken}".encode())


def store_records(engine: Engine, crm: str, accounts: Sequence[tuple[str, str]],
                  people: dict[str, Sequence[tuple[str, str, str | None]]], seed: int = 1) -> Seeded:
    """Insert accounts (object, crm_id) and people per object ((kind, crm_id, matched account crm_id)) into the
    store, each with a score row (and people with a match), as a scoring run would have left them."""
    rng = random.Random(seed)
    seeded = Seeded(crm)
    with engine.begin() as conn:
        for obj, crm_id in accounts:
            account_id = conn.execute(insert(Account).values(crm=crm, object=obj, crm_id=crm_id, name=crm_id)
                                      .returning(Account.id)).scalar_one()
            seeded.accounts[crm_id] = account_id
            conn.execute(insert(Score).values(entity_kind="account", entity_id=account_id, **random_scores(rng)))
        for obj, rows in people.items():
            for kind, crm_id, account_crm_id in rows:
                person_id = conn.execute(insert(Person).values(crm=crm, object=obj, crm_id=crm_id, kind=kind)
                                         .returning(Person.id)).scalar_one()
                seeded.people.setdefault(obj, {})[crm_id] = person_id
                conn.execute(insert(Score).values(entity_kind="person", entity_id=person_id, **random_scores(rng)))
                if account_crm_id is not None:
                    conn.execute(insert(Match).values(
                        person_id=person_id, account_id=seeded.accounts[account_crm_id], decision="auto",
                        method="domain", confidence=rng.uniform(0.9, 1.0), reason="same email domain as the website"))
    return seeded


def seed_salesforce(handle: SandboxHandle, engine: Engine, n_accounts: int, n_leads: int = 0,
                    n_contacts: int = 0) -> Seeded:
    """Records in the sandbox org (loaded directly, as its seeder does) and scored in the store."""
    org = handle.sandbox.salesforce.org
    tag = uuid.uuid4().hex[:8]
    account_ids = [org.new_id(org.object("Account")) for _ in range(n_accounts)]
    org.load("Account", [{"Id": i, "Name": f"{tag} account {n}"} for n, i in enumerate(account_ids)])
    lead_ids = [org.new_id(org.object("Lead")) for _ in range(n_leads)]
    org.load("Lead", [{"Id": i, "LastName": f"{tag} lead {n}", "Company": f"{tag} co", "Status": "Open"}
                      for n, i in enumerate(lead_ids)])
    contact_ids = [org.new_id(org.object("Contact")) for _ in range(n_contacts)]
    org.load("Contact", [{"Id": i, "LastName": f"{tag} contact {n}", "AccountId": account_ids[n % n_accounts]}
                         for n, i in enumerate(contact_ids)])
    people = {
        "Lead": [("lead", i, account_ids[n % n_accounts] if n % 3 else None) for n, i in enumerate(lead_ids)],
        "Contact": [("contact", i, account_ids[n % n_accounts]) for n, i in enumerate(contact_ids)],
    }
    return store_records(engine, "salesforce", [("Account", i) for i in account_ids], people,
                         seed=seed_of_this_test())


def seed_hubspot(handle: SandboxHandle, engine: Engine, n_companies: int, n_contacts: int = 0) -> Seeded:
    portal = handle.hubspot_portal
    tag = uuid.uuid4().hex[:8]
    companies = portal.object_type("companies")
    contacts = portal.object_type("contacts")
    company_ids = [str(portal.create(companies, {"name": f"{tag} company {n}"})["hs_object_id"])
                   for n in range(n_companies)]
    contact_ids = [str(portal.create(contacts, {"email": f"p{n}@{tag}.example", "lastname": f"{tag} {n}"})
                       ["hs_object_id"]) for n in range(n_contacts)]
    people = {"contacts": [("contact", i, company_ids[n % n_companies] if n % 4 else None)
                           for n, i in enumerate(contact_ids)]}
    return store_records(engine, "hubspot", [("companies", i) for i in company_ids], people,
                         seed=seed_of_this_test())


def change_scores(engine: Engine, entity_kind: str, entity_ids: Iterable[int], **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(Score).where(Score.entity_kind == entity_kind, Score.entity_id.in_(list(entity_ids)))
                     .values(**values))


def bump_engagement(engine: Engine, entity_kind: str, entity_ids: Iterable[int], by: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(Score).where(Score.entity_kind == entity_kind, Score.entity_id.in_(list(entity_ids)))
                     .values(engagement=Score.engagement + by))


def expected_values(engine: Engine, config: WritebackConfig, crm: str, obj: str,
                    crm_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What each record's catalogue fields must hold, computed here from the store, independently of
    the writer: numbers rounded half-up to the field's scale, text cut to length, times to the millisecond."""
    catalogue = Catalogue(config)
    fields = catalogue.fields(crm, obj)
    wanted = set(crm_ids)
    out: dict[str, dict[str, Any]] = {}
    person = obj not in ("Account", "companies")
    table = Person if person else Account
    with engine.connect() as conn:
        rows = conn.execute(select(table.id, table.crm_id).where(table.crm == crm, table.object == obj)).all()
        for store_id, crm_id in rows:
            if crm_id not in wanted:
                continue
            score = conn.execute(select(Score).where(Score.entity_kind == ("person" if person else "account"),
                                                     Score.entity_id == store_id)).one()
            match = conn.execute(select(Match).where(Match.person_id == store_id)).one_or_none() \
                if person else None
            matched_crm_id = None
            if match is not None and match.account_id is not None:
                matched_crm_id = conn.execute(select(Account.crm_id).where(Account.id == match.account_id)).scalar()
            values = {}
            for f in fields:
                raw = {
                    "reasons": score.reasons_text, "matched_account": matched_crm_id,
                    "match_confidence": None if match is None else match.confidence * 100,
                    "match_reason": None if match is None else match.reason,
                }.get(f.source, getattr(score, f.source, None))
                values[f.api_name] = _expected(f.type, f.spec.scale, f.spec.length, raw)
            out[crm_id] = values
    return out


def _expected(kind: str, scale: int, length: int, raw: Any) -> Any:
    if raw is None:
        return None
    if kind == "number":
        return float(Decimal(str(raw)).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP))
    if kind == "datetime":
        return raw.replace(microsecond=raw.microsecond // 1000 * 1000)
    return str(raw)[:length]


def crm_value(kind: str, value: Any) -> Any:
    """A value read back from a CRM, in the form :func:`expected_values` uses."""
    if value is None or value == "":
        return None
    if kind == "number":
        return float(value)
    if kind == "datetime":
        text = str(value).replace("Z", "+00:00")
        if text[-5] in "+-" and text[-3] != ":":
            text = text[:-2] + ":" + text[-2:]
        return datetime.fromisoformat(text).astimezone(UTC)
    return str(value)


def salesforce_mismatches(sf: Any, engine: Engine, config: WritebackConfig, obj: str,
                          crm_ids: Sequence[str]) -> list[tuple[str, str, Any, Any]]:
    """(record, field, store value, CRM value) wherever SOQL reads something else than the store holds."""
    expected = expected_values(engine, config, "salesforce", obj, crm_ids)
    kinds = {f.api_name: f.type for f in Catalogue(config).fields("salesforce", obj)}
    actual: dict[str, dict[str, Any]] = {}
    for start in range(0, len(crm_ids), 200):
        ids = ", ".join(f"'{i}'" for i in crm_ids[start : start + 200])
        for row in sf.query_all(f"SELECT Id, {', '.join(kinds)} FROM {obj} WHERE Id IN ({ids})")["records"]:
            actual[row["Id"]] = {name: crm_value(kinds[name], row[name]) for name in kinds}
    missing = [(i, "(record)", "present", None) for i in expected if i not in actual]
    return missing + [(i, name, expected[i][name], actual[i][name]) for i in expected if i in actual
                      for name in kinds if expected[i][name] != actual[i][name]]


def baseline_count(engine: Engine, crm: str) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(WritebackState.id).where(WritebackState.crm == crm)).all())


def later(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def write_requests(handle: SandboxHandle) -> list[Any]:
    return [e for e in handle.request_log.entries() if e.method in ("PATCH", "POST", "PUT", "DELETE")]
