"""The write baseline: a scoped pass reads only the asked records, by id lists (several when many); a
big batch's outcomes are recorded in slices, each its own transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, event, func, select

from store import migrate
from store.db import make_engine
from store.schema import WritebackError, WritebackState
from writeback import state
from writeback.diff import RecordChange
from writeback.state import Backoff, RecordOutcome, WritebackLedger

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
LEAD = "00Q000000000001AAA"


def _ledger(engine: Engine) -> WritebackLedger:
    rows = [{"crm": "salesforce", "object": "Account", "crm_id": f"001{i:015d}",
             "field_values": {field: f"{i}-{field}" for field in ("ABM_Grade__c", "ABM_Engagement_Score__c")},
             "written_at": WHEN}
            for i in range(2_000)]
    rows.append({"crm": "salesforce", "object": "Lead", "crm_id": "001000000000000007",
                 "field_values": {"ABM_Grade__c": "another object's"}, "written_at": WHEN})
    with engine.begin() as conn:
        conn.execute(WritebackState.__table__.insert(), rows)
    return WritebackLedger(engine, "salesforce", "Account", Backoff(timedelta(minutes=15), timedelta(hours=2)))


def test_a_scoped_baseline_holds_the_asked_records_only(engine: Engine) -> None:
    ledger = _ledger(engine)
    asked = [f"001{i:015d}" for i in range(0, 2_000, 7)] + ["001999999999999999"]  # 286 written, one never
    baseline = ledger.baseline(asked)
    assert len(baseline) == 286
    assert baseline["001000000000000007"] == {"ABM_Grade__c": "7-ABM_Grade__c",
                                              "ABM_Engagement_Score__c": "7-ABM_Engagement_Score__c"}
    assert "001000000000000001" not in baseline and "001999999999999999" not in baseline
    assert len(ledger.baseline()) == 2_000


def test_a_scoped_baseline_of_more_ids_than_one_list_reads_them_all(engine: Engine) -> None:
    ledger = _ledger(engine)
    asked = [f"001{i:015d}" for i in range(1, 2_000, 2)]  # 1,000 ids: more than one IN list holds
    assert len(asked) > state._ID_CHUNK
    baseline = ledger.baseline(asked)
    assert sorted(baseline) == asked
    assert baseline["001000000000001999"]["ABM_Grade__c"] == "1999-ABM_Grade__c"
    assert "001000000000000007" in baseline and "001000000000000008" not in baseline


@contextmanager
def listened(engine: Engine, name: str, record: Callable[..., object]) -> Iterator[None]:
    """``record`` called with the engine's ``name`` events inside the block."""
    event.listen(engine, name, record)
    try:
        yield
    finally:
        event.remove(engine, name, record)


@contextmanager
def counted_commits(engine: Engine) -> Iterator[list[object]]:
    """The transactions committed on ``engine`` inside the block."""
    commits: list[object] = []
    with listened(engine, "commit", commits.append):
        yield commits


def test_a_big_batch_is_recorded_in_slices_each_committed_on_its_own(engine: Engine) -> None:
    """A Bulk job answers for many thousand records at once: recording them in one transaction held
    SQLite's write lock past the other CRM's writer's patience (and built every row in memory)."""
    ledger = WritebackLedger(engine, "salesforce", "Contact", Backoff(timedelta(minutes=15), timedelta(hours=2)))
    changes = {f"003{i:015d}": RecordChange(f"003{i:015d}", {"ABM_Grade__c": "A", "ABM_Fit_Score__c": str(i)})
               for i in range(2 * state.RECORD_SLICE + 1)}
    failing = "003000000000000003"
    outcomes = [RecordOutcome(crm_id, crm_id != failing, *(("UNABLE_TO_LOCK_ROW", "locked") if crm_id == failing
                                                           else ())) for crm_id in changes]
    with counted_commits(engine) as commits:
        ledger.record(changes, outcomes, WHEN)
    assert len(commits) == 3  # two full slices and one record
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(WritebackState.__table__)).scalar()
        errors = conn.execute(select(WritebackError.__table__.c.crm_id)).scalars().all()
    assert rows == len(changes) - 1  # one row per record written
    assert errors == [failing]
    # a record written after failing clears its error, whichever slice it lands in
    ledger.errors()
    ledger.record({failing: changes[failing]}, [RecordOutcome(failing, True)], WHEN)
    assert ledger.errors() == {}
    assert ledger.baseline([failing]) == {failing: {"ABM_Grade__c": "A", "ABM_Fit_Score__c": "3"}}


@pytest.mark.parametrize("count", [0, 1, state.RECORD_SLICE])
def test_batches_within_one_slice_are_one_transaction(engine: Engine, count: int) -> None:
    ledger = WritebackLedger(engine, "hubspot", "companies", Backoff(timedelta(minutes=15), timedelta(hours=2)))
    changes = {str(i): RecordChange(str(i), {"abm_grade": "B"}) for i in range(count)}
    with counted_commits(engine) as commits:
        ledger.record(changes, [RecordOutcome(i, True) for i in changes], WHEN)
    assert len(commits) == (1 if count else 0)
    assert len(ledger.baseline()) == count


def test_a_record_keeps_every_field_it_was_written_across_writes(engine: Engine) -> None:
    """A change sends the fields that moved; the record's row keeps the others as last written, a cleared
    field as None (written) and a field never sent absent (unknown: the next diff writes it)."""
    ledger = WritebackLedger(engine, "hubspot", "companies", Backoff(timedelta(minutes=15), timedelta(hours=2)), 7)
    first = RecordChange("42", {"abm_grade": "B", "abm_engagement_score": "61.5", "abm_trend": None})
    ledger.record({"42": first}, [RecordOutcome("42", True)], WHEN)
    second = RecordChange("42", {"abm_engagement_score": "64.0"})
    ledger.run_id = 8
    ledger.record({"42": second}, [RecordOutcome("42", True)], WHEN + timedelta(hours=1))
    assert ledger.baseline(["42"]) == {"42": {"abm_grade": "B", "abm_engagement_score": "64.0", "abm_trend": None}}
    with engine.connect() as conn:
        row = conn.execute(select(WritebackState.written_at, WritebackState.run_id)).one()
    assert (row.written_at, row.run_id) == (WHEN + timedelta(hours=1), 8)  # the record's last write


def test_a_failed_write_leaves_what_the_record_held(engine: Engine) -> None:
    ledger = WritebackLedger(engine, "salesforce", "Lead", Backoff(timedelta(minutes=15), timedelta(hours=2)))
    ledger.record({LEAD: RecordChange(LEAD, {"ABM_Grade__c": "2"})}, [RecordOutcome(LEAD, True)], WHEN)
    ledger.record({LEAD: RecordChange(LEAD, {"ABM_Grade__c": "4"})},
                  [RecordOutcome(LEAD, False, "UNABLE_TO_LOCK_ROW", "locked")], WHEN)
    assert ledger.baseline() == {LEAD: {"ABM_Grade__c": "2"}}
    assert set(ledger.errors()) == {LEAD}


def test_the_upgrade_folds_field_rows_into_records_and_the_downgrade_unfolds_them(database_url: str) -> None:
    """Migration 0008 on a store written by 0007's one row per field, and back."""
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0007")
    old = sa.table("writeback_state", *(sa.column(c) for c in ("crm", "object", "crm_id", "field", "value",
                                                                 "written_at", "run_id")))
    rows = [("salesforce", "Account", "001A", "ABM_Grade__c", "4", WHEN, 3),
            ("salesforce", "Account", "001A", "ABM_Trend__c", None, WHEN + timedelta(minutes=5), 4),
            ("salesforce", "Contact", "001A", "ABM_Grade__c", "1", WHEN, 3),  # same id, another object
            ("hubspot", "companies", "77", "abm_grade", "2", WHEN, None)]
    with engine.begin() as conn:
        conn.execute(sa.insert(old), [dict(zip(("crm", "object", "crm_id", "field", "value", "written_at", "run_id"),
                                                r, strict=True)) for r in rows])
    migrate.upgrade(engine)
    with engine.connect() as conn:
        records = {(r.crm, r.object, r.crm_id): (r.field_values, r.written_at, r.run_id)
                   for r in conn.execute(select(WritebackState))}
    assert records == {("salesforce", "Account", "001A"): ({"ABM_Grade__c": "4", "ABM_Trend__c": None},
                                                           WHEN + timedelta(minutes=5), 4),
                       ("salesforce", "Contact", "001A"): ({"ABM_Grade__c": "1"}, WHEN, 3),
                       ("hubspot", "companies", "77"): ({"abm_grade": "2"}, WHEN, None)}
    ledger = WritebackLedger(engine, "salesforce", "Account", Backoff(timedelta(minutes=15), timedelta(hours=2)))
    assert ledger.baseline(["001A"]) == {"001A": {"ABM_Grade__c": "4", "ABM_Trend__c": None}}
    migrate.downgrade(engine, "0007")
    with engine.connect() as conn:
        back = {(r.crm, r.object, r.crm_id, r.field): r.value for r in conn.execute(sa.select(
            *(sa.column(c) for c in ("crm", "object", "crm_id", "field", "value"))).select_from(
            sa.table("writeback_state")))}
    assert back == {r[:4]: r[4] for r in rows}
    migrate.upgrade(engine)
    engine.dispose()


@contextmanager
def baseline_reads(engine: Engine) -> Iterator[list[str]]:
    """The statements reading ``writeback_state`` run on ``engine`` inside the block."""
    reads: list[str] = []

    def executed(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "writeback_state" in statement:
            reads.append(statement)

    with listened(engine, "before_cursor_execute", executed):
        yield reads


def test_recording_planned_changes_merges_into_the_baseline_kept_from_planning_without_reading_it_again(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading each written record's baseline a second time cost the L org's increment 5.2 s. Past the cap,
    the rest are read again; every merge is the same either way, and a failed record's baseline is let go."""
    ledger = _ledger(engine)  # 2,000 Accounts, two fields written each
    ids = [f"001{i:015d}" for i in range(0, 2_000, 2)] + ["001999999999999999"]  # 1,000 written before, one never
    changes = {crm_id: RecordChange(crm_id, {"ABM_Grade__c": "new"}) for crm_id in ids}
    failing = ids[3]
    outcomes = [RecordOutcome(crm_id, crm_id != failing, *(("UNABLE_TO_LOCK_ROW", "locked") if crm_id == failing
                                                           else ())) for crm_id in ids]
    monkeypatch.setattr(state, "KEPT_BASELINES_MAX", 600)
    baseline = ledger.baseline(ids)
    ledger.keep(changes.values(), baseline)
    with baseline_reads(engine) as reads:
        ledger.record(dict(list(changes.items())[:600]), outcomes[:600], WHEN)  # all kept
    assert reads == []
    with baseline_reads(engine) as reads:
        ledger.record(dict(list(changes.items())[600:]), outcomes[600:], WHEN)  # past the cap: read again
    assert len(reads) == 1  # 401 ids: one IN list
    after = ledger.baseline(ids)
    assert after["001000000000000000"] == {"ABM_Grade__c": "new",
                                           "ABM_Engagement_Score__c": "0-ABM_Engagement_Score__c"}
    assert after["001000000000001998"] == {"ABM_Grade__c": "new",
                                           "ABM_Engagement_Score__c": "1998-ABM_Engagement_Score__c"}
    assert after["001999999999999999"] == {"ABM_Grade__c": "new"}
    assert after[failing] == {"ABM_Grade__c": "6-ABM_Grade__c", "ABM_Engagement_Score__c": "6-ABM_Engagement_Score__c"}
    assert ledger._kept == {}  # nothing held once every outcome is recorded, failed ones included
    with baseline_reads(engine) as reads:  # written later (a retry): read, since nothing is kept for it
        ledger.record({failing: changes[failing]}, [RecordOutcome(failing, True)], WHEN)
    assert len(reads) == 1
    assert ledger.baseline([failing])[failing]["ABM_Grade__c"] == "new"
