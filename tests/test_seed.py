"""The synthetic org generator: determinism, integrity, ground truth and measurable realism."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from sandbox import seed_names as N
from sandbox.clients import simple_salesforce
from sandbox.runner import run_sandbox
from sandbox.seed import (
    HUBSPOT_OBJECT_TYPES,
    SALESFORCE_OBJECTS,
    SIZES,
    GeneratedOrg,
    OrgSize,
    generate,
    matching_set,
)
from sandbox.seed_people import PERSONA_OF_TITLE
from sandbox.seed_prefetch import Prefetched

AS_OF = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FREE_MAIL = {d for c in N.COUNTRIES for d in c.free_mail}


class Org:
    """One generated org with every record materialized once for the module's tests."""

    def __init__(self, generated: GeneratedOrg) -> None:
        self.generated = generated
        self.sf = {o: list(generated.salesforce.records(o)) for o in SALESFORCE_OBJECTS}
        self.hs = {o: list(generated.hubspot.records(o)) for o in HUBSPOT_OBJECT_TYPES}
        self.associations = list(generated.hubspot.associations())
        self.email_events = list(generated.hubspot.email_events())
        self.web_events = list(generated.hubspot.web_events())
        self.truth = generated.truth

    def ids(self, object_name: str) -> set[str]:
        return {r["Id"] for r in self.sf[object_name]}

    def by_id(self, object_name: str) -> dict[str, dict]:
        return {r["Id"]: r for r in self.sf[object_name]}


@pytest.fixture(scope="module")
def org() -> Org:
    return Org(generate(seed=7, size="S", as_of=AS_OF))


def _fingerprint(generated: GeneratedOrg) -> list[str]:
    out = [repr(list(generated.salesforce.records(o))) for o in SALESFORCE_OBJECTS]
    out += [repr(list(generated.hubspot.records(o))) for o in HUBSPOT_OBJECT_TYPES]
    out += [repr(list(generated.hubspot.associations())), repr(list(generated.hubspot.email_events())),
            repr(list(generated.hubspot.web_events()))]
    return out


SMALL = OrgSize(accounts=120, leads=400, contacts=300, activities=3_000, users=5, campaigns=6)


# -- determinism and arguments -------------------------------------------------------------
def test_same_seed_size_and_as_of_give_identical_output(tmp_path) -> None:
    first, second = generate(3, SMALL, AS_OF), generate(3, SMALL, AS_OF)
    assert _fingerprint(first) == _fingerprint(second)
    first.truth.to_json(tmp_path / "a.json")
    second.truth.to_json(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_other_seed_or_as_of_gives_another_org() -> None:
    base = _fingerprint(generate(3, SMALL, AS_OF))
    assert _fingerprint(generate(4, SMALL, AS_OF)) != base
    assert _fingerprint(generate(3, SMALL, AS_OF + timedelta(days=1))) != base


def test_sizes_match_the_issue() -> None:
    assert (SIZES["S"].accounts,) == (500,)
    assert (SIZES["M"].accounts, SIZES["M"].leads, SIZES["M"].contacts, SIZES["M"].activities) == (
        5_000, 20_000, 20_000, 200_000)
    assert (SIZES["L"].accounts, SIZES["L"].leads, SIZES["L"].contacts, SIZES["L"].activities) == (
        100_000, 500_000, 500_000, 5_000_000)


def test_record_counts_follow_the_size(org: Org) -> None:
    size = SIZES["S"]
    assert len(org.sf["Account"]) == size.accounts
    assert len(org.sf["Lead"]) == size.leads
    assert len(org.sf["Contact"]) == size.contacts
    assert len(org.sf["Task"]) + len(org.sf["Event"]) + len(org.sf["CampaignMember"]) == pytest.approx(
        size.activities, rel=0.05)
    assert len(org.sf["User"]) == size.users and len(org.sf["Campaign"]) == size.campaigns


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": -1, "size": "S", "as_of": AS_OF}, "non-negative"),
    ({"seed": 1, "size": "XL", "as_of": AS_OF}, "unknown org size"),
    ({"seed": 1, "size": "S", "as_of": datetime(2026, 1, 1)}, "timezone-aware"),
    ({"seed": 1, "size": "S", "as_of": None}, "as_of is required"),
])
def test_bad_arguments_are_refused_clearly(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)


def test_org_size_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="hubspot_shared_share"):
        OrgSize(accounts=10, leads=1, contacts=1, activities=1, hubspot_shared_share=1.5)
    with pytest.raises(ValueError, match="leads"):
        OrgSize(accounts=10, leads=-1, contacts=1, activities=1)


def test_unknown_objects_are_refused(org: Org) -> None:
    with pytest.raises(ValueError, match="no 'Case' records"):
        org.generated.salesforce.records("Case")
    with pytest.raises(ValueError, match="no HubSpot 'tickets'"):
        org.generated.hubspot.records("tickets")


# -- referential integrity -----------------------------------------------------------------
def test_ids_are_unique_valid_and_per_object(org: Org) -> None:
    seen: set[str] = set()
    for object_name, records in org.sf.items():
        ids = [r["Id"] for r in records]
        assert len(ids) == len(set(ids)), object_name
        assert all(re.fullmatch(r"[0-9A-Za-z]{18}", i) for i in ids)
        assert not seen & set(ids)
        seen |= set(ids)


def test_salesforce_references_point_at_generated_records(org: Org) -> None:
    accounts, leads, contacts = org.ids("Account"), org.ids("Lead"), org.ids("Contact")
    opportunities, users, campaigns = org.ids("Opportunity"), org.ids("User"), org.ids("Campaign")
    for a in org.sf["Account"]:
        assert a["ParentId"] is None or a["ParentId"] in accounts
        assert a["OwnerId"] in users
    for c in org.sf["Contact"]:
        assert c["AccountId"] in accounts
    for lead in org.sf["Lead"]:
        if lead["IsConverted"]:
            assert lead["ConvertedAccountId"] in accounts and lead["ConvertedContactId"] in contacts
            assert lead["ConvertedDate"] >= lead["CreatedDate"].date()
    for o in org.sf["Opportunity"]:
        assert o["AccountId"] in accounts
    for object_name in ("Task", "Event"):
        for t in org.sf[object_name]:
            assert t["WhoId"] is None or t["WhoId"] in leads | contacts
            assert t["WhatId"] is None or t["WhatId"] in accounts | opportunities
            if t["WhoId"] in leads:
                assert t["WhatId"] is None  # Salesforce refuses a WhatId on a lead's activity
            assert t["OwnerId"] in users
    for m in org.sf["CampaignMember"]:
        assert m["CampaignId"] in campaigns
        assert m["LeadId"] in leads or m["ContactId"] in contacts
    pairs = [(m["CampaignId"], m["LeadId"], m["ContactId"]) for m in org.sf["CampaignMember"]]
    assert len(pairs) == len(set(pairs))


def test_hubspot_references_and_links(org: Org) -> None:
    ids = {t: {r["id"] for r in org.hs[t]} for t in HUBSPOT_OBJECT_TYPES}
    for from_type, from_id, to_type, to_id in org.associations:
        assert from_id in ids[from_type] and to_id in ids[to_type]
    companies = org.hs["companies"]
    linked = [c for c in companies if c["properties"]["salesforceaccountid"]]
    assert {c["properties"]["salesforceaccountid"] for c in linked} <= org.ids("Account")
    assert len(linked) / len(companies) == pytest.approx(0.6, abs=0.02)
    for c in companies:
        parent = c["properties"]["hs_parent_company_id"]
        assert parent is None or parent in ids["companies"]
        assert all(v is None or isinstance(v, str) for v in c["properties"].values())
    leads, contacts = org.by_id("Lead"), org.by_id("Contact")
    emails = [c["properties"]["email"] for c in org.hs["contacts"] if c["properties"]["email"]]
    assert len(emails) == len(set(emails))
    synced = 0
    for c in org.hs["contacts"]:
        p = c["properties"]
        sf = contacts.get(p["salesforcecontactid"]) or leads.get(p["salesforceleadid"])
        if p["salesforcecontactid"] or p["salesforceleadid"]:
            assert sf is not None and sf["Email"] == p["email"]
            synced += 1
    assert 0.3 < synced / len(org.hs["contacts"]) < 0.95
    contact_emails = {c["properties"]["email"] for c in org.hs["contacts"]}
    assert all(e["recipient"] in contact_emails for e in org.email_events)
    assert all(e["objectId"] in ids["contacts"] for e in org.web_events)
    per_contact = Counter(t for f, _, t, _ in org.associations if f == "contacts")
    assert per_contact == {"companies": len(org.hs["contacts"])}


def test_hubspot_records_have_the_api_shape(org: Org) -> None:
    for object_type, records in org.hs.items():
        assert records, object_type
        for r in records[:50]:
            assert set(r) == {"id", "properties", "createdAt", "updatedAt", "archived"}
            assert r["id"].isdigit() and r["archived"] is False
            assert r["createdAt"] <= r["updatedAt"] <= AS_OF
            assert r["properties"]["hs_object_id"] == r["id"]
    types = Counter(e["type"] for e in org.email_events)
    assert set(types) == {"SENT", "DELIVERED", "OPEN", "CLICK", "BOUNCE"}
    assert types["SENT"] == types["DELIVERED"] + types["BOUNCE"] and types["CLICK"] <= types["OPEN"]
    assert all(("url" in e) == (e["type"] == "CLICK") for e in org.email_events)
    assert {e["eventType"] for e in org.web_events} == {"e_visited_page", "e_submitted_form"}
    assert all(e["occurredAt"] <= AS_OF and e["properties"]["hs_url"].startswith("https://")
               for e in org.web_events)
    deals = org.hs["deals"]
    assert {d["properties"]["hs_is_closed_won"] for d in deals} == {"true", "false"}


def test_everything_happened_before_as_of(org: Org) -> None:
    for object_name, records in org.sf.items():
        for r in records:
            assert r.get("CreatedDate") is None or r["CreatedDate"] <= AS_OF, object_name
    for e in org.sf["Event"]:
        assert e["StartDateTime"] <= AS_OF and e["StartDateTime"] >= AS_OF - timedelta(days=740)
    assert all(t["ActivityDate"] <= AS_OF.date() for t in org.sf["Task"])


# -- ground truth --------------------------------------------------------------------------
def test_truth_covers_every_lead_contact_and_account(org: Org) -> None:
    truth = org.truth
    assert set(truth.lead_account) == org.ids("Lead")
    assert set(truth.contact_account) == org.ids("Contact")
    assert set(truth.company_of_account) == org.ids("Account")
    assert set(truth.hubspot_company_of) == {c["id"] for c in org.hs["companies"]}
    assert set(truth.hubspot_contact_company) == {c["id"] for c in org.hs["contacts"]}
    accounts = org.ids("Account")
    assert {a for a in truth.lead_account.values() if a} <= accounts
    for c in org.sf["Contact"]:
        assert truth.contact_account[c["Id"]] == c["AccountId"]
    for lead in org.sf["Lead"]:
        if lead["IsConverted"]:
            assert truth.lead_account[lead["Id"]] == lead["ConvertedAccountId"]
    no_account = sum(a is None for a in truth.lead_account.values()) / len(truth.lead_account)
    assert 0.1 < no_account < 0.35


def test_truth_agrees_with_the_records(org: Org) -> None:
    truth = org.truth
    won = {o["AccountId"] for o in org.sf["Opportunity"] if o["IsWon"]}
    assert truth.won_accounts == won
    sf_truth = {o.id: o for o in truth.opportunities if o.crm == "salesforce"}
    assert set(sf_truth) == org.ids("Opportunity")
    for o in org.sf["Opportunity"]:
        expected = "won" if o["IsWon"] else "lost" if o["IsClosed"] else "open"
        assert sf_truth[o["Id"]].outcome == expected and sf_truth[o["Id"]].account_id == o["AccountId"]
    hs_truth = {o.id for o in truth.opportunities if o.crm == "hubspot"}
    assert hs_truth == {d["id"] for d in org.hs["deals"]}
    assert truth.surging_accounts <= org.ids("Account") - truth.duplicate_accounts
    assert truth.surging_accounts
    for hs_company in org.hs["companies"]:
        linked = hs_company["properties"]["salesforceaccountid"]
        if linked:
            assert truth.company_of_account[linked] == truth.hubspot_company_of[hs_company["id"]]
    by_key = truth.accounts_of_company()
    for account, key in truth.company_of_account.items():
        assert account in by_key[key]
    assert truth.duplicate_accounts and all(len(by_key[truth.company_of_account[a]]) >= 2
                                            for a in truth.duplicate_accounts)


def test_truth_lead_matches_accepts_any_account_of_the_company(org: Org) -> None:
    truth = org.truth
    dup = next(iter(sorted(truth.duplicate_accounts)))
    key = truth.company_of_account[dup]
    lead = next(i for i, k in truth.lead_company.items() if k == key)
    assert truth.lead_matches(lead, dup) and truth.lead_matches(lead, truth.lead_account[lead])
    other = next(a for a, k in truth.company_of_account.items() if k != key)
    assert not truth.lead_matches(lead, other) and not truth.lead_matches(lead, None)


def test_truth_files(org: Org, tmp_path) -> None:
    org.truth.to_json(tmp_path / "truth.json")
    data = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert data["lead_account"] == org.truth.lead_account
    assert sorted(data["surging_accounts"]) == sorted(org.truth.surging_accounts)
    paths = org.truth.to_csv(tmp_path / "csv")
    with open(paths[0], encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    leads = [r for r in people if r["kind"] == "lead"]
    assert len(leads) == len(org.truth.lead_account)
    assert all(r["true_account_id"] == (org.truth.lead_account[r["id"]] or "") for r in leads)


# -- realism -------------------------------------------------------------------------------
def test_leads_are_typed_the_way_people_type(org: Org) -> None:
    leads = org.sf["Lead"]
    truth = org.truth
    companies = {c.key: c for c in truth.companies.values()}
    domains = [lead["Email"].rsplit("@", 1)[1] for lead in leads if lead["Email"]]
    free = sum(d in FREE_MAIL for d in domains) / len(domains)
    assert 0.15 < free < 0.32
    blank = sum(lead["Company"] in ("[not provided]", "Unknown", "N/A", "-", "none", "Self-employed", "NA")
                for lead in leads) / len(leads)
    assert 0.04 < blank < 0.11
    legal_names = {c.name for c in companies.values()}
    exact = sum(lead["Company"] in legal_names for lead in leads) / len(leads)
    assert 0.25 < exact < 0.6
    assert any(" and " in lead["Company"] or " & " in lead["Company"] for lead in leads)
    assert any(lead["Company"].isupper() for lead in leads) and any(lead["Company"].islower() for lead in leads)
    assert any("  " in lead["Company"] for lead in leads)
    assert sum(not lead["Email"] for lead in leads) > 0
    personal = [d for d in domains if d not in FREE_MAIL and d.split(".")[0] not in {
        c.domain.split(".")[0] for c in companies.values()}]
    assert personal  # people on their own domain


def test_company_names_span_countries_scripts_and_legal_forms(org: Org) -> None:
    names = [a["Name"] for a in org.sf["Account"]]
    scripts = {
        "cjk": r"[\u4e00-\u9fff]", "kana": r"[\u30a0-\u30ff]", "hangul": r"[\uac00-\ud7af]",
        "cyrillic": r"[\u0400-\u04ff]", "arabic": r"[\u0600-\u06ff]", "hebrew": r"[\u0590-\u05ff]",
    }
    found = {s for s, pattern in scripts.items() if any(re.search(pattern, n) for n in names)}
    assert len(found) >= 4
    suffixes = ("GmbH", "Inc", "Ltd", "LLC", "SAS", "S.A.", "B.V.", "K.K.", "株式会社", "有限公司", "ООО", "Pty Ltd")
    assert sum(any(s in n for s in suffixes) for n in names) / len(names) > 0.5
    tlds = Counter(c.domain.split(".", 1)[1] for c in org.truth.companies.values())
    assert len(tlds) >= 12 and tlds["de"] and tlds["co.jp"] and tlds["com"]
    countries = {c["properties"]["country"] for c in org.hs["companies"]}
    assert len(countries) >= 12
    assert sum(a["ParentId"] is not None for a in org.sf["Account"]) >= 5


def test_titles_span_personas_and_seniorities(org: Org) -> None:
    personas = Counter(org.truth.persona.values())
    assert set(personas) == set(PERSONA_OF_TITLE)
    assert all(count / sum(personas.values()) > 0.05 for count in personas.values())
    titles = {r["Title"] for r in org.sf["Lead"] + org.sf["Contact"] if r["Title"]}
    assert {"CEO", "IT Manager", "Software Engineer", "Intern"} <= titles
    assert any(t.islower() for t in titles)


def test_activity_timing_follows_engagement_profiles(org: Org) -> None:
    """Surging accounts: a burst of several people in the last three weeks; quiet ones: silence."""
    truth = org.truth
    contacts = org.by_id("Contact")
    recent = AS_OF - timedelta(days=21)
    touches: dict[str, int] = Counter()
    people: dict[str, set[str]] = defaultdict(set)
    for t in org.sf["Task"] + org.sf["Event"]:
        when = t.get("StartDateTime") or t["CreatedDate"]
        if when >= recent and t["WhoId"] in contacts:
            account = contacts[t["WhoId"]]["AccountId"]
            touches[account] += 1
            people[account].add(t["WhoId"])
    profile = {a: truth.companies[k].engagement for a, k in truth.company_of_account.items()
               if a not in truth.duplicate_accounts}
    mean = {p: np.mean([touches[a] for a, q in profile.items() if q == p]) for p in ("quiet", "steady", "surging")}
    assert mean["surging"] > 4 * mean["steady"] > 0
    assert mean["quiet"] < 0.2 * mean["steady"]
    several = [len(people[a]) >= 3 for a in truth.surging_accounts]
    assert np.mean(several) > 0.7
    # marketing responses pile up on surging accounts too
    responses = Counter()
    for m in org.sf["CampaignMember"]:
        if m["HasResponded"] and m["ContactId"] in contacts and m["FirstRespondedDate"] >= recent.date():
            responses[contacts[m["ContactId"]]["AccountId"]] += 1
    surging = np.mean([responses[a] for a in truth.surging_accounts])
    steady = np.mean([responses[a] for a, q in profile.items() if q == "steady"])
    assert surging > 4 * steady


def test_hubspot_marketing_concentrates_on_surging_companies(org: Org) -> None:
    truth = org.truth
    company_of_contact = truth.hubspot_contact_company
    recent = AS_OF - timedelta(days=21)
    visits = Counter(company_of_contact[e["objectId"]] for e in org.web_events if e["occurredAt"] >= recent)
    engagement = {k: c.engagement for k, c in truth.companies.items() if c.hubspot_company_id}
    surging = [visits[k] for k, e in engagement.items() if e == "surging"]
    steady = [visits[k] for k, e in engagement.items() if e == "steady"]
    assert np.mean(surging) > 5 * np.mean(steady)


def test_sales_and_marketing_teams_both_show_up(org: Org) -> None:
    subtypes = Counter(t["TaskSubtype"] for t in org.sf["Task"])
    assert subtypes["Email"] and subtypes["Call"] and subtypes["Task"]
    assert {t["Type"] for t in org.sf["Task"]} >= {"Email", "Call", "Proposal"}
    assert {e["Type"] for e in org.sf["Event"]} == {"Meeting", "Demo"}
    calls = [t for t in org.sf["Task"] if t["TaskSubtype"] == "Call"]
    assert all(t["CallDurationInSeconds"] is not None for t in calls)
    assert np.median([t["CallDurationInSeconds"] for t in calls if t["Subject"] != "Left voicemail"]) > 120
    assert {c["Type"] for c in org.sf["Campaign"]} >= {"Webinar", "Email", "Content"}
    assert 0.1 < np.mean([m["HasResponded"] for m in org.sf["CampaignMember"]]) < 0.8
    managers = {u["Department"] for u in org.sf["User"]}
    assert {"Sales", "Marketing"} <= managers


def test_converted_leads(org: Org) -> None:
    converted = [lead for lead in org.sf["Lead"] if lead["IsConverted"]]
    assert 0.15 < len(converted) / len(org.sf["Lead"]) < 0.35
    contacts = org.by_id("Contact")
    for lead in converted:
        contact = contacts[lead["ConvertedContactId"]]
        assert contact["Email"] == lead["Email"] and contact["AccountId"] == lead["ConvertedAccountId"]
        assert lead["Status"] == "Closed - Converted"


def test_wins_depend_on_fit_and_engagement() -> None:
    """Grade-4-like companies (high latent fit and engagement) win several times the average."""
    generated = generate(11, OrgSize(accounts=6_000, leads=50, contacts=50, activities=0), AS_OF)
    truth = generated.truth
    closed = [o for o in truth.opportunities if o.crm == "salesforce" and o.outcome != "open"]
    assert len(closed) > 1_500
    average = np.mean([o.outcome == "won" for o in closed])
    companies = truth.companies
    score = {k: np.log(c.fit / (1 - c.fit)) + np.log(c.intensity) for k, c in companies.items()}
    cut = np.quantile([score[o.company_key] for o in closed], 0.9)
    top = np.mean([o.outcome == "won" for o in closed if score[o.company_key] >= cut])
    assert 0.15 < average < 0.4
    assert top > 2.8 * average
    created = [o.created for o in closed]
    assert min(created) >= AS_OF - timedelta(days=731) and max(created) <= AS_OF


def test_observable_activity_carries_the_signal() -> None:
    """Accounts the org touched most (what a scorer can see) win more than the least touched."""
    generated = generate(5, OrgSize(accounts=2_000, leads=2_000, contacts=6_000, activities=60_000), AS_OF)
    contacts = {c["Id"]: c["AccountId"] for c in generated.salesforce.records("Contact")}
    touches = Counter(contacts[t["WhoId"]] for t in generated.salesforce.records("Task") if t["WhoId"] in contacts)
    closed = [o for o in generated.truth.opportunities if o.crm == "salesforce" and o.outcome != "open"]
    counts = np.array([touches[o.account_id] for o in closed])
    won = np.array([o.outcome == "won" for o in closed])
    high, low = counts >= np.quantile(counts, 0.75), counts <= np.quantile(counts, 0.25)
    assert won[high].mean() > 2 * won[low].mean()


# -- cheap generation for benchmarks ---------------------------------------------------------
def test_matching_set_builds_accounts_and_leads_only() -> None:
    subset = matching_set(seed=2, accounts=300, leads=1_500, as_of=AS_OF)
    accounts, leads = list(subset.accounts), list(subset.leads)
    assert len(accounts) == 300 and len(leads) == 1_500
    assert set(subset.lead_account) == {lead["Id"] for lead in leads}
    assert {a for a in subset.lead_account.values() if a} <= {a["Id"] for a in accounts}
    built = subset.org.world.__dict__
    assert "salesforce_touches" not in built and "campaign_members" not in built


# -- through the sandbox -------------------------------------------------------------------
def test_run_sandbox_loads_the_org_and_soql_reads_it_back() -> None:
    generated = generate(seed=1, size="S", as_of=AS_OF)
    expected = {o: sum(1 for _ in generated.salesforce.records(o)) for o in SALESFORCE_OBJECTS}
    with run_sandbox(seed=1, size="S", as_of=AS_OF) as handle:
        assert {o: n for o, n in handle.seeded.items() if o in SALESFORCE_OBJECTS} == expected
        sf = simple_salesforce(handle)
        assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == expected["Account"]
        lead_id, truth = next((i, a) for i, a in generated.truth.lead_account.items() if a)
        converted = sf.query("SELECT Id, ConvertedAccountId, ConvertedContactId FROM Lead "
                             "WHERE IsConverted = true LIMIT 5")["records"]
        assert converted and all(r["ConvertedAccountId"] and r["ConvertedContactId"] for r in converted)
        lead = sf.query(f"SELECT Id, Company, Email FROM Lead WHERE Id = '{lead_id}'")["records"][0]
        assert lead["Id"] == lead_id
        account = sf.query(f"SELECT Id, Name FROM Account WHERE Id = '{truth}'")["records"]
        assert len(account) == 1
        calls = sf.query("SELECT Id, WhoId, CallDurationInSeconds FROM Task WHERE TaskSubtype = 'Call' "
                         "AND CallDurationInSeconds > 60 LIMIT 10")["records"]
        assert len(calls) == 10
        won = sf.query("SELECT COUNT() FROM Opportunity WHERE IsWon = true")["totalSize"]
        assert won == sum(1 for o in generated.truth.opportunities if o.crm == "salesforce" and o.outcome == "won")
        members = sf.query("SELECT COUNT() FROM CampaignMember WHERE HasResponded = true")["totalSize"]
        assert members > 0


# -- prefetching loader ----------------------------------------------------------------------
def test_prefetched_keeps_order_and_raises_generator_errors() -> None:
    assert list(Prefetched(iter(range(10_001)), chunk=7, depth=2)) == list(range(10_001))
    assert list(Prefetched(iter([]))) == []

    def broken():
        yield 1
        raise RuntimeError("generator broke")

    items = Prefetched(broken(), chunk=1)
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="generator broke"):
        next(items)


def test_prefetched_stops_its_producer_when_closed_early() -> None:
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    items = Prefetched(endless(), chunk=10, depth=2)
    assert next(items) == 0
    items.close()
    count = len(produced)
    assert not items._thread.is_alive() and len(produced) == count and count < 100


def test_output_does_not_depend_on_the_process_hash_seed(tmp_path) -> None:
    """Byte-identical across processes: no set or dict order leaks into the records."""
    script = tmp_path / "fingerprint.py"
    script.write_text(
        "import hashlib\nfrom datetime import datetime, UTC\nfrom sandbox.seed import generate, OrgSize\n"
        "from tests.test_seed import _fingerprint\n"
        "org = generate(3, OrgSize(accounts=60, leads=200, contacts=150, activities=1500, users=4, campaigns=5),"
        " datetime(2026, 3, 2, 9, 30, tzinfo=UTC))\n"
        "print(hashlib.sha256(''.join(_fingerprint(org)).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True,
                             cwd=os.getcwd())
        digests.add(out.stdout.strip())
    local = hashlib.sha256("".join(_fingerprint(generate(3, OrgSize(
        accounts=60, leads=200, contacts=150, activities=1500, users=4, campaigns=5), AS_OF))).encode()).hexdigest()
    assert digests == {local}


def test_released_parts_are_rebuilt_identically() -> None:
    generated = generate(3, SMALL, AS_OF)
    before = _fingerprint(generated)
    generated.release_salesforce()
    generated.release_hubspot()
    assert "salesforce_touches" not in generated.world.__dict__
    assert _fingerprint(generated) == before
