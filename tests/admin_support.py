"""Support for the admin server's tests: a realistic store and a real uvicorn server on 127.0.0.1.

The store is what a few weeks of runs leave behind:

Accounts in both CRMs (one pair linked as the same business), leads and contacts matched to
them, current scores with the scoring core's breakdown shape, daily score history, and run
records made through the run state machine (stages, counts, API calls, a failure, record
errors). Everything is written through ``store.upsert.upsert`` and ``store.runs``, the same
paths the pipeline uses. One account name is hostile HTML, to prove the page escapes it.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy import Engine, select, update
from starlette.types import ASGIApp

from store.ids import to_18
from store.runs import StageReport, claim_run, create_run, finish_run, record_stage
from store.schema import Account, AccountLink, Match, Person, Run, Score, ScoreHistory, WritebackError
from store.upsert import upsert

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HOSTILE_NAME = '<script>alert("owned")</script> Holdings & Sons'
COMPANIES = [
    "Acme Robotics", "Globex Logistics", "Initech Software", "Umbrella Health", "Stark Components", "Wayne Foundry",
    "Hooli Cloud", "Vandelay Imports", "Soylent Foods", "Tyrell Biotech", "Cyberdyne Systems", "Wonka Confections",
    "Oscorp Materials", "Aperture Labs", "Massive Dynamic", "Nakatomi Trading", "Gringotts Finance", "Duff Brewing",
    "Monarch Solutions", "Pied Piper", "Dunder Mifflin Paper", "Prestige Worldwide", "Sterling Cooper", "Blue Sun",
]
INDUSTRIES = ["Manufacturing", "Logistics", "Software", "Healthcare", "Financial Services", "Retail"]
TITLES = ["VP Marketing", "Chief Revenue Officer", "Director of IT", "Operations Manager", "Procurement Lead",
          "Software Engineer", "Head of Sales", "CFO"]
FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal", "Lena"]
LAST = ["Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Vargas", "Weber", "Xu", "Young"]
ALIGNMENTS = ("aligned_high", "aligned_low", "marketing_high_sales_low", "sales_high_marketing_low")
HIGH = 25.0  # the default sales_high_points / marketing_high_points


def sf_id(prefix: str, n: int) -> str:
    return to_18(f"{prefix}Dn0000{n:06d}")


@dataclass
class Seeded:
    """Ids and facts the tests assert against."""

    account_ids: dict[str, int] = field(default_factory=dict)  # crm_id -> store id
    names: dict[int, str] = field(default_factory=dict)
    scores: dict[int, dict[str, Any]] = field(default_factory=dict)
    people: dict[int, list[int]] = field(default_factory=dict)  # account id -> matched person ids
    history_days: int = 0
    runs: dict[str, int] = field(default_factory=dict)  # label -> run id
    linked: tuple[int, int] = (0, 0)  # (hubspot company id, canonical salesforce account id)
    hostile_account_id: int = 0


def _alignment(sales: float, marketing: float) -> str:
    if sales >= HIGH and marketing >= HIGH:
        return "aligned_high"
    if sales >= HIGH:
        return "sales_high_marketing_low"
    if marketing >= HIGH:
        return "marketing_high_sales_low"
    return "aligned_low"


def _breakdown(rng: random.Random, engagement: float, sales: float, marketing: float, fit: float) -> dict[str, Any]:
    share = rng.uniform(0.3, 0.7)
    return {
        "engagement": {"score": engagement, "raw_points": engagement * 1.4,
                       "parts": {"webinar_attended": round(engagement * share, 2),
                                 "meeting_completed": round(engagement * (1 - share), 2)}},
        "sales": {"score": sales, "parts": {"meeting_completed": sales}},
        "marketing": {"score": marketing, "parts": {"webinar_attended": marketing}},
        "breadth": {"people": 3, "personas": {"decision_maker": 1, "influencer": 1, "end_user": 1, "other": 0},
                    "committee_coverage": 1.0},
        "fit": {"score": fit, "mode": "rules", "parts": {"industry": {"value": "Software", "contribution": 12.0}}},
    }


def seed_store(engine: Engine, seed: int = 7) -> Seeded:
    rng = random.Random(seed)
    out = Seeded()
    accounts = []
    for i, name in enumerate([*COMPANIES, HOSTILE_NAME]):
        domain = name.split()[0].lower().strip("<") + ".example.com"
        accounts.append({
            "crm": "salesforce", "object": "Account", "crm_id": sf_id("001", i + 1), "name": name,
            "website": f"https://www.{domain}", "domain": domain, "industry": INDUSTRIES[i % len(INDUSTRIES)],
            "employees": rng.choice([40, 180, 650, 2400, 12000]), "country": rng.choice(["US", "DE", "GB", "JP"]),
            "type": "Customer" if i % 5 == 0 else "Prospect", "created_at": NOW - timedelta(days=400),
            "modified_at": NOW - timedelta(days=1), "is_deleted": False,
        })
    hubspot_company = {**accounts[0], "crm": "hubspot", "object": "companies", "crm_id": "9001",
                       "website": accounts[0]["website"]}
    with engine.begin() as conn:
        upsert(conn, Account.__table__, accounts)
        upsert(conn, Account.__table__, [hubspot_company])
        for crm_id, account_id, name in conn.execute(select(Account.crm_id, Account.id, Account.name)):
            out.account_ids[crm_id] = account_id
            out.names[account_id] = name
        canonical = out.account_ids[accounts[0]["crm_id"]]
        company = out.account_ids["9001"]
        out.linked = (company, canonical)
        out.hostile_account_id = out.account_ids[accounts[-1]["crm_id"]]
        upsert(conn, AccountLink.__table__, [{"account_id": company, "canonical_account_id": canonical,
                                              "method": "domain", "confidence": 0.97, "linked_at": NOW}],
               key=("account_id",))

        people, person_accounts = [], []
        for i, account in enumerate(accounts):
            for j in range(1 + i % 3):
                n = i * 10 + j
                first, last = FIRST[n % len(FIRST)], LAST[(n // 3) % len(LAST)]
                kind = "contact" if j == 0 else "lead"
                people.append({
                    "crm": "salesforce", "object": "Contact" if kind == "contact" else "Lead",
                    "crm_id": sf_id("003" if kind == "contact" else "00Q", n + 1), "kind": kind,
                    "first_name": first, "last_name": last,
                    "email": f"{first.lower()}.{last.lower()}@{account['domain']}",
                    "title": TITLES[n % len(TITLES)], "company": account["name"],
                    "account_crm_id": account["crm_id"] if kind == "contact" else None, "is_deleted": False,
                })
                person_accounts.append(out.account_ids[account["crm_id"]])
        people.append({**people[0], "crm": "hubspot", "object": "contacts", "crm_id": "501", "account_crm_id": "9001"})
        person_accounts.append(company)
        upsert(conn, Person.__table__, people)
        person_ids = {crm_id: pid for crm_id, pid in conn.execute(select(Person.crm_id, Person.id))}
        matches = []
        for person, account_id in zip(people, person_accounts, strict=True):
            pid = person_ids[person["crm_id"]]
            out.people.setdefault(account_id, []).append(pid)
            contact = person["kind"] == "contact"
            matches.append({
                "person_id": pid, "account_id": account_id, "decision": "crm" if contact else "auto",
                "method": "crm" if contact else "domain",
                "confidence": 1.0 if contact else round(rng.uniform(0.9, 0.99), 3),
                "reason": "the CRM's account" if contact else f"email domain {person['email'].split('@')[1]} = website",
                "pinned": False, "matched_at": NOW,
            })
        upsert(conn, Match.__table__, matches, key=("person_id",))

        scores, history = [], []
        for account in accounts:
            account_id = out.account_ids[account["crm_id"]]
            sales, marketing = round(rng.expovariate(1 / 30), 1), round(rng.expovariate(1 / 26), 1)
            fit = round(rng.uniform(20, 95), 1)
            engagement = round(min(99.0, (sales + marketing) / 1.8), 1)
            grade_score = 0.4 * fit + 0.6 * engagement
            grade = 4 if grade_score >= 65 else 3 if grade_score >= 40 else 2 if grade_score >= 20 else 1
            velocity = round(rng.uniform(0.4, 3.5), 2)
            trend = "surging" if velocity >= 2 else "rising" if velocity >= 1.3 else "cooling" if velocity <= 0.7 \
                else "steady"
            row = {
                "entity_kind": "account", "entity_id": account_id, "engagement": engagement, "sales_activity": sales,
                "marketing": marketing, "fit": fit, "grade": grade, "predictive": None, "breadth": 0.67,
                "velocity": velocity, "trend": trend, "alignment": _alignment(sales, marketing),
                "reasons_text": f"2 people from {account['name']} attended a webinar (+{engagement * 0.4:.0f}); "
                                f"{trend}: {velocity:.1f}x the previous 14 days",
                "breakdown": _breakdown(rng, engagement, sales, marketing, fit), "model_version": None,
                "scored_at": NOW,
            }
            scores.append(row)
            out.scores[account_id] = row
            for back in range(21, -1, -1):
                drift = (21 - back) / 21
                history.append({
                    "entity_kind": "account", "entity_id": account_id, "day": TODAY - timedelta(days=back),
                    "engagement": round(engagement * (0.5 + 0.5 * drift), 1), "sales_activity": round(sales * drift, 1),
                    "marketing": round(marketing * (0.7 + 0.3 * drift), 1), "fit": fit, "grade": grade,
                    "trend": trend, "alignment": row["alignment"],
                })
        out.history_days = 22
        for pid in person_ids.values():
            engagement = round(rng.uniform(5, 90), 1)
            scores.append({
                "entity_kind": "person", "entity_id": pid, "engagement": engagement, "sales_activity": None,
                "marketing": None, "fit": None, "grade": 4 if engagement > 65 else 3 if engagement > 40 else 2,
                "predictive": None, "breadth": None, "velocity": 1.0, "trend": rng.choice(["steady", "rising"]),
                "alignment": None, "reasons_text": "attended a webinar", "breakdown": {}, "model_version": None,
                "scored_at": NOW,
            })
        upsert(conn, Score.__table__, scores, key=("entity_kind", "entity_id"))
        upsert(conn, ScoreHistory.__table__, history, key=("entity_kind", "entity_id", "day"))
    _seed_runs(engine, out, accounts)
    return out


def _seed_runs(engine: Engine, out: Seeded, accounts: list[dict[str, Any]]) -> None:
    """Three finished runs: a full run, a failed incremental one, and one with record errors."""
    full = create_run(engine, "full", "schedule", {"full": True})
    claim_run(engine, full)
    record_stage(engine, full, StageReport("pull:salesforce", counts={"read": 1840, "upserted": 1840},
                                           api_calls={"salesforce": 23}, seconds=41.2))
    record_stage(engine, full, StageReport("pull:hubspot", counts={"read": 960, "upserted": 960},
                                           api_calls={"hubspot": 31}, seconds=28.7))
    record_stage(engine, full, StageReport("match", counts={"matched": 612}, seconds=3.1))
    record_stage(engine, full, StageReport("score", counts={"scored": 830}, seconds=5.4))
    record_stage(engine, full, StageReport("writeback", counts={"written": 402, "skipped": 428},
                                           api_calls={"salesforce": 3, "hubspot": 5}, seconds=12.9))
    finish_run(engine, full, "succeeded")

    failed = create_run(engine, "incremental", "schedule", {})
    claim_run(engine, failed)
    record_stage(engine, failed, StageReport("pull:salesforce", counts={"read": 12, "upserted": 12},
                                             api_calls={"salesforce": 2}, seconds=1.4))
    record_stage(engine, failed, StageReport("pull:hubspot", state="failed", api_calls={"hubspot": 4}, seconds=9.0,
                                             error="HubSpot answered 503 Service Unavailable four times"))
    finish_run(engine, failed, "failed", "ApiError: HubSpot answered 503 Service Unavailable four times\n"
                                         "caused by ServiceUnavailable: retry budget spent")

    partial = create_run(engine, "incremental", "schedule", {})
    claim_run(engine, partial)
    record_stage(engine, partial, StageReport("pull:salesforce", counts={"read": 37, "upserted": 35},
                                              api_calls={"salesforce": 2}, seconds=1.8))
    record_stage(engine, partial, StageReport("writeback", counts={"written": 9, "failed": 2},
                                              api_calls={"salesforce": 1}, seconds=2.2))
    finish_run(engine, partial, "succeeded")
    errors = [
        {"crm": "salesforce", "object": "Account", "crm_id": accounts[3]["crm_id"], "fields": ["ABM_Grade__c"],
         "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Grade cannot change while the account is on hold",
         "attempts": 2, "first_failed_at": NOW - timedelta(days=1), "last_failed_at": NOW,
         "next_retry_at": NOW + timedelta(hours=1), "run_id": partial},
        {"crm": "salesforce", "object": "Account", "crm_id": accounts[4]["crm_id"],
         "fields": ["ABM_Reasons__c", "ABM_Trend__c"], "code": "UNABLE_TO_LOCK_ROW",
         "message": "unable to obtain exclusive access to this record", "attempts": 1, "first_failed_at": NOW,
         "last_failed_at": NOW, "next_retry_at": NOW + timedelta(minutes=15), "run_id": partial},
    ]
    with engine.begin() as conn:
        upsert(conn, WritebackError.__table__, errors)
        # Believable wall times: the run records above were made in milliseconds.
        for run_id, minutes in ((full, 92.0 / 60), (failed, 0.2), (partial, 0.08)):
            started = NOW - timedelta(hours=3 - run_id)
            conn.execute(update(Run).where(Run.id == run_id).values(
                created_at=started, started_at=started, finished_at=started + timedelta(minutes=minutes)))
    out.runs = {"full": full, "failed": failed, "partial": partial}


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="admin-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the admin server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
