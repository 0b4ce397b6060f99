"""The match stage against a real store: what it writes, what it leaves alone."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from config import AbmConfig
from config.matching import MatchingConfig
from store.runs import StageReport, create_run, finish_run, record_stage
from store.schema import Account, AccountLink, Activity, Match, Person, Run
from store.types import utcnow
from store.upsert import upsert
from worker.match_stage import last_activity_by_account, last_match_start, load_accounts, run_match_stage
from worker.pipeline import RunContext
from worker.stages import match_stage as match_stage_of_a_run
from worker.triggers import RunOptions

SF_ACME = "001000000000001AAA"
SF_GLOBEX = "001000000000002AAA"


def _seed(engine: Engine) -> dict[str, int]:
    accounts = [
        {"crm": "salesforce", "object": "Account", "crm_id": SF_ACME, "name": "Acme Corporation",
         "website": "https://www.acme.com", "domain": "acme.com", "country": "US"},
        {"crm": "salesforce", "object": "Account", "crm_id": SF_GLOBEX, "name": "Globex GmbH",
         "website": "globex.de", "domain": "globex.de", "country": "DE"},
        {"crm": "hubspot", "object": "companies", "crm_id": "901", "name": "Acme Corp",
         "website": "acme.com", "domain": "acme.com", "country": "US"},
    ]
    people = [
        {"crm": "salesforce", "object": "Lead", "crm_id": "00Q000000000001AAA", "kind": "lead",
         "email": "jen@acme.com", "company": "ACME Corp.", "country": "United States"},
        {"crm": "salesforce", "object": "Lead", "crm_id": "00Q000000000002AAA", "kind": "lead",
         "email": "bob@gmail.com", "company": "Globex", "country": "Germany"},
        {"crm": "salesforce", "object": "Lead", "crm_id": "00Q000000000003AAA", "kind": "lead",
         "email": "x@nowhere-in-particular.io", "company": "Initech", "country": "US"},
        {"crm": "salesforce", "object": "Contact", "crm_id": "003000000000001AAA", "kind": "contact",
         "email": "ann@globex.de", "account_crm_id": SF_GLOBEX},
        {"crm": "hubspot", "object": "contacts", "crm_id": "51", "kind": "contact",
         "email": "jen@acme.com", "company": "Acme"},
    ]
    with engine.begin() as conn:
        upsert(conn, Account.__table__, accounts)
        upsert(conn, Person.__table__, [{**{k: None for k in ("account_crm_id", "company", "country")}, **p}
                                        for p in people])
        ids = {r.crm_id: r.id for r in conn.execute(select(Account.crm_id, Account.id))}
        ids |= {r.crm_id: r.id for r in conn.execute(select(Person.crm_id, Person.id))}
    return ids


def _matches(engine: Engine) -> dict[int, tuple]:
    with engine.connect() as conn:
        return {r.person_id: (r.account_id, r.decision, r.method) for r in
                conn.execute(select(Match.person_id, Match.account_id, Match.decision, Match.method))}


def test_match_stage_writes_decisions_links_and_then_only_changes(engine: Engine) -> None:
    ids = _seed(engine)
    first = run_match_stage(engine, MatchingConfig())
    got = _matches(engine)
    assert got[ids["00Q000000000001AAA"]][:2] == (ids[SF_ACME], "auto")
    assert got[ids["003000000000001AAA"]] == (ids[SF_GLOBEX], "crm", "crm")
    assert got[ids["00Q000000000003AAA"]][:2] == (None, "none")
    assert got[ids["51"]][:2] == (ids["901"], "auto")  # a HubSpot contact matches a HubSpot company
    assert first.people == 5 and first.matched >= 3
    assert ids["00Q000000000001AAA"] in first.changed_people
    with engine.connect() as conn:
        links = conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all()
    assert links == [(ids["901"], ids[SF_ACME])] and first.changed_links == 1

    again = run_match_stage(engine, MatchingConfig())
    assert again.changed_people == set() and again.changed_links == 0
    assert _matches(engine) == got


def test_admin_pins_win_and_survive_rematching(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    lead = ids["00Q000000000001AAA"]
    with engine.begin() as conn:
        conn.execute(update(Match).where(Match.person_id == lead).values(
            account_id=ids[SF_GLOBEX], decision="pinned", pinned=True, pinned_by="ops@example.com"))
    outcome = run_match_stage(engine, MatchingConfig())
    assert _matches(engine)[lead] == (ids[SF_GLOBEX], "pinned", "pin")
    assert outcome.by_decision["pinned"] == 1


def _record_match_run(engine: Engine, run_id: int | None = None, match_started_at: datetime | None = None) -> None:
    """A run whose match stage succeeded, as the pipeline records it."""
    run_id = run_id or create_run(engine, "full", "cli", state="running")
    detail = {"started_at": match_started_at.isoformat()} if match_started_at else {}
    record_stage(engine, run_id, StageReport("match", detail=detail))
    finish_run(engine, run_id, "succeeded")


def test_incremental_rematches_only_people_whose_match_can_have_moved(engine: Engine) -> None:
    run_id = create_run(engine, "full", "cli", state="running")  # pulls what _seed writes, then matches
    ids = _seed(engine)
    first = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert first.incremental is False  # no match stage yet: everyone
    _record_match_run(engine, run_id, first.started_at)  # the match started after the pull's changes
    full = _matches(engine)

    quiet = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert quiet.incremental and quiet.people == 0 and quiet.changed_people == set()
    assert quiet.by_decision == Counter(decision for _, decision, _ in full.values()) and quiet.links == 1
    assert _matches(engine) == full

    # A new lead is matched; nobody else is looked at while every account stays as it was.
    with engine.begin() as conn:
        upsert(conn, Person.__table__, [{"crm": "salesforce", "object": "Lead", "crm_id": "00Q000000000004AAA",
                                         "kind": "lead", "email": "amy@globex.de", "company": "Globex GmbH",
                                         "country": "DE", "account_crm_id": None}])
        amy = conn.execute(select(Person.id).where(Person.crm_id == "00Q000000000004AAA")).scalar_one()
    one = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert one.people == 1 and one.changed_people == {amy} and one.changed_links == 0
    assert _matches(engine)[amy][:2] == (ids[SF_GLOBEX], "auto")

    # A new account: of the people no account holds, those it could claim (it shares a domain, a
    # word of its name...) are looked at again, and one of them finds it. Nobody else is.
    with engine.begin() as conn:
        upsert(conn, Person.__table__, [{"crm": "salesforce", "object": "Lead", "crm_id": "00Q000000000005AAA",
                                         "kind": "lead", "email": "kim@umbrella-pharma.example", "company": "Umbrella",
                                         "country": "US", "account_crm_id": None}])
    _record_match_run(engine)
    assert run_match_stage(engine, MatchingConfig(), incremental=True).people == 1
    unheld = [p for p, (_, decision, _) in _matches(engine).items() if decision in ("review", "none")]
    _record_match_run(engine)
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000003AAA",
                                          "name": "Initech", "website": "nowhere-in-particular.io",
                                          "domain": "nowhere-in-particular.io", "country": "US"}])
        initech = conn.execute(select(Account.id).where(Account.crm_id == "001000000000003AAA")).scalar_one()
    moved = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert ids["00Q000000000003AAA"] in unheld and len(unheld) == 2 and moved.people == 1
    assert _matches(engine)[ids["00Q000000000003AAA"]][:2] == (initech, "auto")
    assert moved.changed_people == {ids["00Q000000000003AAA"]}


def test_incremental_rematches_a_changed_person_only_when_a_matching_field_changed(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    _record_match_run(engine)
    jen, bob = ids["00Q000000000001AAA"], ids["00Q000000000002AAA"]
    with engine.begin() as conn:  # a new title for one (scoring reads it), a new company for the other
        conn.execute(update(Person).where(Person.id == jen).values(title="VP Sales", changed_at=utcnow()))
        conn.execute(update(Person).where(Person.id == bob).values(company="Globex GmbH", changed_at=utcnow()))
    outcome = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert outcome.incremental and outcome.people == 1
    with engine.connect() as conn:
        keys = dict(conn.execute(select(Match.person_id, Match.inputs_key)).all())
    assert all(keys.values())  # every match keeps what it was matched on
    _record_match_run(engine)
    assert run_match_stage(engine, MatchingConfig(), incremental=True).people == 0  # bob's new key is stored


def test_incremental_keeps_the_links_of_companies_by_the_salesforce_id_they_name(engine: Engine) -> None:
    """A company linked by the Salesforce id it names is not tested against changed accounts: the id wins."""
    ids = _seed(engine)
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{"crm": "hubspot", "object": "companies", "crm_id": "903", "name": "Initech",
                                          "domain": "initech.example", "country": "US",
                                          "linked_salesforce_id": SF_GLOBEX}])
        named = conn.execute(select(Account.id).where(Account.crm_id == "903")).scalar_one()
    run_match_stage(engine, MatchingConfig())

    def link() -> tuple[int, str]:
        with engine.connect() as conn:
            return conn.execute(select(AccountLink.canonical_account_id, AccountLink.method)
                                .where(AccountLink.account_id == named)).one()

    assert link() == (ids[SF_GLOBEX], "salesforceaccountid")
    _record_match_run(engine)
    with engine.begin() as conn:  # pointed elsewhere, to tell a kept link from one computed again
        conn.execute(update(AccountLink).where(AccountLink.account_id == named).values(
            canonical_account_id=ids[SF_ACME]))
        # a new account its name and domain would offer it, were it not linked by its id
        upsert(conn, Account.__table__, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000003AAA",
                                          "name": "Initech", "domain": "initech.example", "country": "US"}])
    outcome = run_match_stage(engine, MatchingConfig(), incremental=True)
    assert link() == (ids[SF_ACME], "salesforceaccountid") and named not in outcome.relinked_accounts
    _record_match_run(engine)
    with engine.begin() as conn:  # the account it names changes: linked again
        conn.execute(update(Account).where(Account.crm_id == SF_GLOBEX).values(name="Globex AG", changed_at=utcnow()))
    run_match_stage(engine, MatchingConfig(), incremental=True)
    assert link() == (ids[SF_GLOBEX], "salesforceaccountid")


def test_incremental_relinks_only_the_companies_a_changed_account_can_affect(engine: Engine) -> None:
    ids = _seed(engine)
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{"crm": "hubspot", "object": "companies", "crm_id": "902", "name": "Initech",
                                          "website": "initech.example", "domain": "initech.example", "country": "US"}])
        initech_hs = conn.execute(select(Account.id).where(Account.crm_id == "902")).scalar_one()
    run_match_stage(engine, MatchingConfig())
    _record_match_run(engine)
    with engine.begin() as conn:  # a stored link no change can affect: an incremental run leaves it be
        conn.execute(update(AccountLink).where(AccountLink.account_id == ids["901"]).values(method="kept"))
        upsert(conn, Account.__table__, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000003AAA",
                                          "name": "Initech", "website": "initech.example",
                                          "domain": "initech.example", "country": "US"}])
        initech_sf = conn.execute(select(Account.id).where(Account.crm_id == "001000000000003AAA")).scalar_one()
    outcome = run_match_stage(engine, MatchingConfig(), incremental=True)
    with engine.connect() as conn:
        links = {r.account_id: (r.canonical_account_id, r.method) for r in
                 conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id, AccountLink.method))}
    assert links == {ids["901"]: (ids[SF_ACME], "kept"), initech_hs: (initech_sf, "name")}
    assert outcome.changed_links == 1 and outcome.relinked_accounts == {initech_hs, initech_sf}
    run_match_stage(engine, MatchingConfig())  # the full run links everyone again
    with engine.connect() as conn:
        assert conn.execute(select(AccountLink.method).where(AccountLink.account_id == ids["901"])).scalar_one() \
            != "kept"


def test_a_match_stage_recorded_without_its_start_counts_from_the_stages_before_it(engine: Engine) -> None:
    run_id = create_run(engine, "full", "cli", state="running")
    record_stage(engine, run_id, StageReport("pull:salesforce", seconds=42.0))
    _record_match_run(engine, run_id)
    with engine.connect() as conn:
        started = conn.execute(select(Run.started_at).where(Run.id == run_id)).scalar_one()
        assert last_match_start(conn) == started + timedelta(seconds=42)


def test_matching_in_chunks_writes_what_one_pass_writes(engine: Engine, monkeypatch) -> None:
    import worker.match_stage as match_stage

    ids = _seed(engine)
    monkeypatch.setattr(match_stage, "MATCH_CHUNK", 2)  # five people: three chunks
    chunked = run_match_stage(engine, MatchingConfig())
    got = _matches(engine)
    with engine.begin() as conn:
        conn.execute(Match.__table__.delete())
    monkeypatch.setattr(match_stage, "MATCH_CHUNK", 50_000)
    whole = run_match_stage(engine, MatchingConfig())
    assert _matches(engine) == got and len(got) == 5
    assert (chunked.people, chunked.by_decision, chunked.changed_people) == (
        whole.people, whole.by_decision, whole.changed_people)
    assert got[ids["003000000000001AAA"]] == (ids[SF_GLOBEX], "crm", "crm")


def test_a_stop_request_ends_the_matching_after_a_chunk_with_what_it_matched_kept(engine: Engine,
                                                                                 monkeypatch) -> None:
    import worker.match_stage as match_stage

    _seed(engine)
    monkeypatch.setattr(match_stage, "MATCH_CHUNK", 2)  # five people: three chunks
    stop = threading.Event()
    stop.set()  # as SIGTERM would, while the first chunk is matched
    stopped = run_match_stage(engine, MatchingConfig(), stop=stop)
    assert stopped.stopped and stopped.people == 2
    assert len(_matches(engine)) == 2  # the first chunk, committed
    with engine.connect() as conn:
        assert conn.execute(select(AccountLink.account_id)).all() == []  # the links wait for a stage that ends
    done = run_match_stage(engine, MatchingConfig(), stop=threading.Event())
    assert not done.stopped and done.people == 5 and len(_matches(engine)) == 5 and done.links == 1


def test_a_match_stage_stopped_part_way_is_recorded_cancelled_and_not_counted_as_done(engine: Engine,
                                                                                       monkeypatch) -> None:
    import worker.match_stage as match_stage

    _seed(engine)
    monkeypatch.setattr(match_stage, "MATCH_CHUNK", 2)
    run_id = create_run(engine, "full", "cli", state="running")
    stop = threading.Event()
    stop.set()
    report = match_stage_of_a_run(RunContext(engine, AbmConfig(), run_id, RunOptions(full=True), stop))
    assert report.state == "cancelled" and report.counts["matched"] >= 1 and "stop requested" in report.detail["reason"]
    record_stage(engine, run_id, report)
    finish_run(engine, run_id, "cancelled")
    with engine.connect() as conn:
        assert last_match_start(conn) is None  # the next run does not take it for a finished one


def test_the_last_activity_of_each_live_account_counts_its_own_live_touches(engine: Engine) -> None:
    ids = _seed(engine)
    day = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def touch(n: int, crm: str, account: str | None, days: int, deleted: bool = False) -> dict:
        crm_id = f"00T{n:012d}AAA" if crm == "salesforce" else f"T{n}"
        return {"crm": crm, "object": "Task", "crm_id": crm_id, "activity_type": "call", "account_crm_id": account,
                "occurred_at": day + timedelta(days=days), "is_deleted": deleted}

    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000009AAA",
                                          "name": "Gone Ltd", "is_deleted": True}])
        upsert(conn, Activity.__table__, [
            touch(1, "salesforce", SF_ACME, 1), touch(2, "salesforce", SF_ACME, 5),
            touch(3, "salesforce", SF_ACME, 9, deleted=True),    # deleted: not Acme's latest
            touch(4, "hubspot", SF_ACME, 20),                    # another CRM's record with that id
            touch(5, "hubspot", "901", 3), touch(6, "salesforce", None, 30),
            touch(7, "salesforce", "001000000000009AAA", 40),    # a deleted account's
        ])
        accounts = load_accounts(conn)
        last = last_activity_by_account(conn, accounts)
    assert {a.crm_id for a in accounts} == {SF_ACME, SF_GLOBEX, "901"}
    assert last == {
        ids[SF_ACME]: day + timedelta(days=5), ids["901"]: day + timedelta(days=3)}
