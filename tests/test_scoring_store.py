"""The store loader (worker.score_inputs) builds the same inputs as the record path, streaming touches."""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, insert, select, update
from test_scoring_predictive import AS_OF, synthetic_history

from config.scoring import ScoringConfig
from scoring import inputs as scoring_inputs
from scoring.inputs import EntityIndex, ScoringInputs, build_inputs
from scoring.outcomes import NEVER
from scoring.scores import score
from store.ids import to_18
from store.records import AccountRecord, ActivityRecord, PersonRecord
from store.schema import Account, AccountLink, Activity, KeptCopy, Match, Opportunity, Person
from store.touch_refs import resolve_touch_refs
from store.upsert import upsert
from worker import score_inputs
from worker.score_inputs import KeyLookup, load_score_inputs


def rows(records, obj_of, **extra) -> list[dict]:
    return [{**asdict(r), "object": obj_of(r), **extra} for r in records]


def in_hubspot(records):
    """The synthetic org's records as HubSpot's (free-form ids; Salesforce ids must be real ones)."""
    return [replace(r, crm="hubspot") for r in records]


@pytest.fixture
def org():
    accounts, people, acts, opps = (in_hubspot(x) for x in synthetic_history(seed=4, n_accounts=40, days=300))
    # A Salesforce account linked to HubSpot company A0, with a contact and touches of its own.
    sf_account, sf_contact = to_18("001000000000001"), to_18("003000000000001")
    linked = AccountRecord(id=900, crm="salesforce", crm_id=sf_account, name="Company 0 (Salesforce)")
    linked_contact = PersonRecord(id=901, crm="salesforce", crm_id=sf_contact, kind="contact", title="CFO",
                                  account_crm_id=sf_account)
    linked_acts = [ActivityRecord(id=10_000 + i, crm="salesforce", crm_id=to_18(f"00T00000000000{i}"),
                                  activity_type="webinar_attended", occurred_at=AS_OF - timedelta(days=i + 1),
                                  person_crm_id=sf_contact) for i in range(3)]
    linked_acts.append(ActivityRecord(id=10_003, crm="salesforce", crm_id=to_18("00T000000000003"),
                                      activity_type="meeting_completed", occurred_at=AS_OF - timedelta(days=2),
                                      account_crm_id=sf_account))  # names the linked account itself
    linked_acts.append(ActivityRecord(id=10_004, crm="hubspot", crm_id="NAMED", activity_type="meeting_completed",
                                      occurred_at=AS_OF - timedelta(days=3), person_crm_id=people[0].crm_id,
                                      account_crm_id=accounts[2].crm_id))  # counts there, whoever made it
    # Touches the loader must count but not use.
    odd = [
        ActivityRecord(id=20_000, crm="hubspot", crm_id="X1", activity_type="fax_sent",
                       occurred_at=AS_OF - timedelta(days=1), person_crm_id=people[0].crm_id),
        ActivityRecord(id=20_001, crm="hubspot", crm_id="X2", activity_type="demo", occurred_at=None,
                       person_crm_id=people[0].crm_id),
        ActivityRecord(id=20_002, crm="hubspot", crm_id="X3", activity_type="demo",
                       occurred_at=AS_OF - timedelta(days=1), person_crm_id="nobody"),
    ]
    # Matches: one lead tied to an account, one under review (ties to nothing).
    leads = [p for p in people if p.kind == "lead" and not p.is_converted]
    matches = {leads[0].id: accounts[3].id, leads[1].id: None}
    return accounts + [linked], people + [linked_contact], acts + linked_acts + odd, opps, matches


def store_org(engine: Engine, accounts, people, acts, opps, matches) -> None:
    with engine.begin() as conn:
        upsert(conn, Account.__table__, rows(accounts, lambda a: "Account" if a.crm == "salesforce" else "companies"))
        upsert(conn, Person.__table__, rows(people, lambda p: p.kind.title() if p.crm == "salesforce" else "contacts"))
        upsert(conn, Opportunity.__table__, rows(opps, lambda o: "Opportunity"))
        upsert(conn, Activity.__table__, rows(acts, lambda a: "Task"))
        if any(a.id == 900 for a in accounts):
            conn.execute(insert(AccountLink.__table__), [{"account_id": 900, "canonical_account_id": 0}])
        if matches:
            conn.execute(insert(Match.__table__), [
                {"person_id": person, "account_id": account, "decision": "auto" if account is not None else "review"}
                for person, account in matches.items()
            ])


@pytest.fixture
def stored(engine: Engine, org):  # noqa: F811 (org: the fixture above)
    """The synthetic org, in the store."""
    store_org(engine, *org)
    return org


def load_kept(engine: Engine, kept: str) -> ScoringInputs:
    """The scoring inputs as the score stage loads them, with the kept copies used as ``kept`` says."""
    with engine.begin() as conn:
        return load_score_inputs(conn, ScoringConfig(), kept=kept)  # type: ignore[arg-type]


def kept_header(engine: Engine, name: str) -> dict:
    """The header of the kept copy ``name``."""
    with engine.connect() as conn:
        return conn.execute(select(KeptCopy.header).where(KeptCopy.name == name, KeptCopy.part == 0)).scalar_one()


def reused_from_the_copies(engine: Engine, caplog: pytest.LogCaptureFixture) -> ScoringInputs:
    """The inputs as a run that reuses the kept copies loads them: read from the copies and what changed since,
    not from the whole tables again (which a copy found not of its table warns about)."""
    with caplog.at_level(logging.WARNING, logger="abm.scoring"):
        reused = load_kept(engine, "reuse")
    assert not caplog.records, caplog.text
    return reused


def read_again_from_the_tables(engine: Engine, caplog: pytest.LogCaptureFixture) -> tuple[ScoringInputs, ScoringInputs]:
    """What a run that reuses the kept copies loads when one is not of its table any more (it says so and reads
    that table again), and what reading every table gives."""
    with caplog.at_level(logging.WARNING, logger="abm.scoring"):
        reused = load_kept(engine, "reuse")
    assert "not of the table" in caplog.text
    return reused, load_kept(engine, "ignore")


def mark_of_another_format(engine: Engine, name: str) -> None:
    """Make the kept copy ``name`` one of another format, which no run reads."""
    header = {**kept_header(engine, name), "format": 0}
    with engine.begin() as conn:
        conn.execute(update(KeptCopy).where(KeptCopy.name == name, KeptCopy.part == 0).values(header=header))


@pytest.mark.parametrize(("resolved", "keys_apart"), [(False, True), (False, False), (True, True)],
                         ids=["touches as they land", "as they land, keys read inline", "touches resolved to ids"])
def test_store_loader_equals_record_path(engine: Engine, org, resolved: bool, keys_apart: bool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    accounts, people, acts, opps, matches = org
    store_org(engine, accounts, people, acts, opps, matches)
    if not keys_apart:  # as in a store with more unresolved touches than are read apart
        monkeypatch.setattr(score_inputs, "UNRESOLVED_APART", 0)
    if resolved:  # two touches at a time: the chunks add up
        assert resolve_touch_refs(engine, chunk=2) == (len(acts) - 2, 2)  # all but those of nobody and no one
    config = ScoringConfig()
    with engine.connect() as conn:
        loaded = load_score_inputs(conn, config, partition_rows=997)  # many partitions
    expected = build_inputs([a for a in accounts if a.id != 900], people, acts, opps, config,
                            matches, {("salesforce", to_18("001000000000001")): 0})
    as_of = int(AS_OF.timestamp())
    a = score(loaded.activities, loaded.population, loaded.opportunities, config, as_of)
    b = score(expected.activities, expected.population, expected.opportunities, config, as_of)
    np.testing.assert_array_equal(loaded.account_ids, expected.account_ids)
    np.testing.assert_array_equal(loaded.person_ids, expected.person_ids)
    np.testing.assert_array_equal(loaded.population.person_account, expected.population.person_account)
    assert len(loaded.activities) == len(expected.activities)
    np.testing.assert_allclose(a.agg.account_type_points, b.agg.account_type_points)
    np.testing.assert_allclose(a.engagement, b.engagement)
    np.testing.assert_array_equal(a.grade, b.grade)
    # People come as columns of driver tuples (times as the database's epoch seconds): every fact the
    # record path derives, the same.
    for fact in ("is_lead", "created", "converted", "linked_by_conversion"):
        np.testing.assert_array_equal(getattr(loaded.people, fact), getattr(expected.people, fact), err_msg=fact)
    assert loaded.people.converted.min() < NEVER and loaded.people.linked_by_conversion.any()
    assert list(loaded.population.person_titles) == list(expected.population.person_titles)
    np.testing.assert_array_equal(loaded.population.personas.persona, expected.population.personas.persona)
    np.testing.assert_array_equal(loaded.account_created, expected.account_created)
    # The linked Salesforce account is not scored on its own; its contact's webinars count for account 0.
    assert 900 not in loaded.account_ids.tolist()
    hub_contact = loaded.person_ids.tolist().index(901)
    assert loaded.population.person_account[hub_contact] == 0
    # A review decision ties the lead to nothing; an auto match ties it to the account.
    lead_ids = list(matches)
    assert loaded.population.person_account[loaded.person_ids.tolist().index(lead_ids[0])] == 3
    assert loaded.population.person_account[loaded.person_ids.tolist().index(lead_ids[1])] == -1
    report = loaded.load_report
    assert report.unknown_type == {"fax_sent": 1}
    assert report.no_timestamp == 1 and report.unattributed == 1
    assert report.rows == len(acts)


def test_deleted_records_are_left_out(engine: Engine, org) -> None:
    accounts, people, acts, opps, matches = org
    store_org(engine, accounts, people, acts, opps, matches)
    with engine.begin() as conn:
        conn.execute(Activity.__table__.update().values(is_deleted=True))
    with engine.connect() as conn:
        loaded = load_score_inputs(conn, ScoringConfig())
    assert len(loaded.activities) == 0 and loaded.load_report.rows == 0


def test_matches_to_a_linked_company_count_for_its_account(engine: Engine, org) -> None:
    """A match to a company linked to an account of the other CRM ties the person to that account; a pinned
    match ties them as an auto one does; a review decision with an account named ties them to nothing."""
    accounts, people, acts, opps, matches = org
    store_org(engine, accounts, people, acts, opps, matches)
    leads = [p.id for p in people if p.kind == "lead" and p.id not in matches]
    with engine.begin() as conn:
        conn.execute(insert(Match.__table__), [
            {"person_id": leads[0], "account_id": 900, "decision": "auto"},
            {"person_id": leads[1], "account_id": accounts[5].id, "decision": "pinned", "pinned": True},
            {"person_id": leads[2], "account_id": accounts[5].id, "decision": "review"},
        ])
    with engine.connect() as conn:
        loaded = load_score_inputs(conn, ScoringConfig())
    position = {person_id: i for i, person_id in enumerate(loaded.person_ids.tolist())}
    assert [int(loaded.population.person_account[position[p]]) for p in leads[:3]] == [0, 5, -1]


@pytest.mark.parametrize("few", [True, False], ids=["one pass over the ids", "the index of every key"])
def test_people_found_by_key_either_way(few: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring_inputs, "FEW_KEYS", 100 if few else 0)
    index = EntityIndex({}, {}, ["hubspot", "salesforce", "hubspot", "hubspot"], ["7", "7", "", "7"])
    crm = ["hubspot", "salesforce", "salesforce", "hubspot", "other"]
    found = index.find_people(crm, ["7", "7", "8", "", "7"])
    assert found.tolist() == [3, 1, -1, -1, -1]  # a key twice: its last person, as the index has it
    assert ("person_index" in index.__dict__) is not few


def test_key_lookup_per_crm() -> None:
    lookup = KeyLookup({("salesforce", "A"): 0, ("salesforce", "C"): 2, ("hubspot", "A"): 5})
    crm = np.array(["salesforce", "salesforce", "hubspot", "hubspot", "salesforce", "other"])
    ids = np.array(["C", "B", "A", "C", "", "A"])
    assert lookup.find(crm, ids).tolist() == [2, -1, 5, -1, -1, -1]
    assert KeyLookup({}).find(crm, ids).tolist() == [-1] * 6
