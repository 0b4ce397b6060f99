"""The write baseline of a scoped pass: only the asked records, read by id lists or by one scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
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


@pytest.mark.parametrize("whole_over", [50_000, 100], ids=["id lists", "one scan"])
def test_a_scoped_baseline_holds_the_asked_records_only(engine: Engine, whole_over: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_WHOLE_BASELINE_OVER", whole_over)
    ledger = _ledger(engine)
    asked = [f"001{i:015d}" for i in range(0, 2_000, 7)] + ["001999999999999999"]  # 286 written, one never
    baseline = ledger.baseline(asked)
    assert len(baseline) == 286
    assert baseline["001000000000000007"] == {"ABM_Grade__c": "7-ABM_Grade__c",
                                              "ABM_Engagement_Score__c": "7-ABM_Engagement_Score__c"}
    assert "001000000000000001" not in baseline and "001999999999999999" not in baseline
    assert len(ledger.baseline()) == 2_000
