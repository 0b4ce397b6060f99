"""The write baseline of a scoped pass: only the asked records, read by id lists (several when many)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from store.schema import WritebackState
from writeback import state
from writeback.state import Backoff, WritebackLedger

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def _ledger(engine: Engine) -> WritebackLedger:
    rows = [{"crm": "salesforce", "object": "Account", "crm_id": f"001{i:015d}", "field": field,
             "value": f"{i}-{field}", "written_at": WHEN}
            for i in range(2_000) for field in ("ABM_Grade__c", "ABM_Engagement_Score__c")]
    rows.append({"crm": "salesforce", "object": "Lead", "crm_id": "001000000000000007", "field": "ABM_Grade__c",
                 "value": "another object's", "written_at": WHEN})
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
