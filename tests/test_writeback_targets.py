"""What an incremental writeback reads (``writeback.source``): the records whose visible score changed,
people whose match changed, accounts shown through a rescored canonical account, and records with a
pending write error, found from what changed rather than by testing every record of the object."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, update
from test_writeback_support import change_scores, store_records

from store import migrate
from store.db import make_engine
from store.schema import AccountLink, Match, WritebackError, WritebackState
from store.types import utcnow
from writeback import source
from writeback.state import Backoff, WritebackLedger


def _targets(engine: Engine, crm: str, obj: str, kind: str, since) -> list[str]:
    return [r.crm_id for chunk, _ in source.iter_targets(engine, crm, obj, kind, changed_since=since) for r in chunk]


def test_an_incremental_pass_reads_what_changed_and_nothing_else(engine: Engine) -> None:
    accounts = [("Account", f"001{n:015d}") for n in range(1, 6)]
    leads = [("lead", f"00Q{n:015d}", accounts[0][1]) for n in range(1, 6)]
    sf = store_records(engine, "salesforce", accounts, {"Lead": leads})
    hs = store_records(engine, "hubspot", [("companies", "901"), ("companies", "902")], {}, seed=2)
    a1, a2 = (sf.accounts[crm_id] for _, crm_id in accounts[:2])
    l1, l2 = (sf.people["Lead"][crm_id] for _, crm_id, _ in leads[:2])
    now = utcnow()
    since = now - timedelta(minutes=5)
    with engine.begin() as conn:
        # HubSpot company 901 is Salesforce account 2 (canonical): it shows account 2's scores
        conn.execute(insert(AccountLink).values(account_id=hs.accounts["901"], canonical_account_id=a2,
                                                method="domain", confidence=0.97))
        conn.execute(update(Match).where(Match.person_id == l2).values(reason="same company name", matched_at=now))
        conn.execute(insert(WritebackError), [
            {"crm": "salesforce", "object": obj, "crm_id": crm_id, "code": "UNABLE_TO_LOCK_ROW", "message": "locked",
             "first_failed_at": now, "last_failed_at": now, "next_retry_at": now}
            for obj, crm_id in (("Account", accounts[2][1]), ("Lead", leads[2][1]))])
    change_scores(engine, "account", [a1, a2], scored_at=now)
    change_scores(engine, "person", [l1], scored_at=now)
    change_scores(engine, "account", [hs.accounts["902"]], scored_at=since - timedelta(seconds=1))  # before

    assert _targets(engine, "salesforce", "Account", "account", since) == [accounts[0][1], accounts[1][1],
                                                                           accounts[2][1]]
    assert _targets(engine, "hubspot", "companies", "account", since) == ["901"]
    assert _targets(engine, "salesforce", "Lead", "person", since) == [leads[0][1], leads[1][1], leads[2][1]]
    assert _targets(engine, "salesforce", "Lead", "person", now + timedelta(seconds=1)) == [leads[2][1]]
    # a full pass reads every record, in crm_id order
    assert _targets(engine, "salesforce", "Account", "account", None) == [crm_id for _, crm_id in accounts]


def test_the_changed_records_are_found_through_indexes(tmp_path: Path) -> None:
    """SQLite (whose planner has no statistics to go by): the object's index entries are walked in crm_id
    order (no sort) and tested against the ids the changed scores, matches and errors name, read through
    their own indexes; no score is read for an entity of another object."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    migrate.upgrade(engine)
    store_records(engine, "salesforce", [("Account", "001000000000000001")],
                  {"Lead": [("lead", "00Q000000000000001", "001000000000000001")]})
    for query, table in ((source._people_query("salesforce", "Lead", utcnow()), "people"),
                         (source._accounts_query("salesforce", "Account", utcnow()), "accounts")):
        sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        assert plan[0] == f"SEARCH {table} USING INDEX sqlite_autoindex_{table}_1 (crm=? AND object=?)", plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
        assert any(step.startswith("SEARCH scores USING COVERING INDEX ix_scores_rescored") for step in plan), plan


def test_records_past_the_first_chunk_read_as_the_first_ones_do(engine: Engine) -> None:
    """Past its first chunk the source reads the driver's own rows (SQLite gives timestamps as text, booleans
    as 0 and 1): every record must come out as one read in a single chunk does, scored_at aware and in UTC."""
    accounts = [("Account", f"001{n:015d}") for n in range(1, 8)]
    leads = [("lead", f"00Q{n:015d}", accounts[n % 3][1]) for n in range(1, 8)]
    sf = store_records(engine, "salesforce", accounts, {"Lead": leads})
    change_scores(engine, "person", list(sf.people["Lead"].values())[:3], scored_at=utcnow())
    for obj, kind in (("Account", "account"), ("Lead", "person")):
        whole = [r for chunk, _ in source.iter_targets(engine, "salesforce", obj, kind, chunk=1000) for r in chunk]
        chunks = [records for records, _ in source.iter_targets(engine, "salesforce", obj, kind, chunk=2)]
        assert [len(c) for c in chunks] == [2, 2, 2, 1]
        assert [r for chunk in chunks for r in chunk] == whole
        assert all(r.score.scored_at is not None and r.score.scored_at.utcoffset() == timedelta(0) for r in whole)
        assert any(r.match is not None for r in whole) or kind == "account"


def test_each_chunk_comes_with_its_records_baseline(engine: Engine) -> None:
    """The baseline read with the targets is what the ledger holds for them, past the first chunk too (there the
    drivers' own values: SQLite's JSON text, PostgreSQL's decoded JSON); a record never written has none."""
    accounts = [("Account", f"001{n:015d}") for n in range(1, 8)]
    leads = [("lead", f"00Q{n:015d}", accounts[n % 3][1]) for n in range(1, 8)]
    store_records(engine, "salesforce", accounts, {"Lead": leads})
    written = {"Account": [a[1] for a in accounts[::2]], "Lead": [lead[1] for lead in leads[1::3]]}
    with engine.begin() as conn:
        conn.execute(insert(WritebackState), [
            {"crm": "salesforce", "object": obj, "crm_id": crm_id, "written_at": utcnow(),
             "field_values": {"ABM_Grade__c": str(n), "ABM_Trend__c": None, "ABM_Reasons__c": "é \u2028 \"q\""}}
            for obj, ids in written.items() for n, crm_id in enumerate(ids)])
    for obj, kind in (("Account", "account"), ("Lead", "person")):
        ledger = WritebackLedger(engine, "salesforce", obj, Backoff(timedelta(minutes=1), timedelta(hours=1)))
        chunks = list(source.iter_targets(engine, "salesforce", obj, kind, chunk=2))
        assert [len(records) for records, _ in chunks] == [2, 2, 2, 1]
        for records, baseline in chunks:
            assert baseline == ledger.baseline([r.crm_id for r in records])
        assert sorted(k for _, baseline in chunks for k in baseline) == sorted(written[obj])
