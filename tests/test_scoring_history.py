"""Daily snapshot rows, score rows and trends over the history window."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select

from config.scoring import HistoryConfig, ScoringConfig
from scoring.history import prune_before, trend, window_start
from scoring.inputs import build_inputs
from scoring.rows import PERSON, history_rows, score_rows
from scoring.scores import score
from store.records import AccountRecord, ActivityRecord, PersonRecord
from store.schema import Score, ScoreHistory
from store.upsert import upsert

AS_OF = datetime(2026, 3, 1, 12, tzinfo=UTC)
TODAY = AS_OF.date()


def small_org():
    accounts = [AccountRecord(id=10 + i, crm="salesforce", crm_id=f"A{i}", name=f"Acme {i}") for i in range(3)]
    people = [PersonRecord(id=50 + i, crm="salesforce", crm_id=f"P{i}", kind="contact", title=t, account_crm_id="A0")
              for i, t in enumerate(["VP Finance", "Analyst"])]
    acts = [ActivityRecord(id=i, crm="salesforce", crm_id=f"T{i}", activity_type=k,
                           occurred_at=AS_OF - timedelta(days=d), person_crm_id=f"P{i % 2}")
            for i, (k, d) in enumerate([("webinar_attended", 2), ("demo", 5), ("pricing_page_visit", 1)])]
    config = ScoringConfig()
    inputs = build_inputs(accounts, people, acts, [], config)
    return inputs, score(inputs.activities, inputs.population, inputs.opportunities, config, int(AS_OF.timestamp()))


def test_trend_hand_computed() -> None:
    cfg = HistoryConfig(trend_window_days=10)
    days = [TODAY - timedelta(days=d) for d in (12, 10, 5, 0, 4, 0)]
    ids = [1, 1, 1, 1, 2, 2]
    values = [99.0, 10.0, 20.0, 30.0, 50.0, 40.0]  # day -12 is outside the window
    t = trend(np.array(ids), days, values, TODAY, cfg)
    assert t.entity_id.tolist() == [1, 2]
    assert t.start.tolist() == [10.0, 50.0]
    assert t.end.tolist() == [30.0, 40.0]
    assert t.change.tolist() == [20.0, -10.0]
    # entity 1: x = 0, 5, 10; y = 10, 20, 30 -> slope 2 per day. entity 2: x = 6, 10 -> -10 / 4.
    assert t.slope_per_day.tolist() == pytest.approx([2.0, -2.5])
    assert t.snapshots.tolist() == [3, 2]


def test_trend_ignores_nulls_and_handles_nothing() -> None:
    cfg = HistoryConfig(trend_window_days=7)
    t = trend(np.array([1, 1]), [TODAY, TODAY - timedelta(days=1)], [None, 5.0], TODAY, cfg)
    assert t.start.tolist() == [5.0] and t.slope_per_day.tolist() == [0.0]
    empty = trend(np.array([], dtype=np.int64), [], [], TODAY, cfg)
    assert len(empty.entity_id) == 0


def test_window_and_pruning_dates() -> None:
    cfg = HistoryConfig(trend_window_days=28, keep_days=730)
    assert window_start(date(2026, 3, 1), cfg) == date(2026, 2, 1)
    assert prune_before(date(2026, 3, 1), cfg) == date(2024, 3, 1)


def test_history_rows_carry_every_score_column() -> None:
    inputs, s = small_org()
    rows = history_rows(s, inputs.population, inputs.account_ids, TODAY)
    assert len(rows) == 3
    columns = {c.name for c in ScoreHistory.__table__.columns} - {"id"}
    assert set(rows[0]) == columns
    assert rows[0]["entity_id"] == 10 and rows[0]["day"] == TODAY
    assert rows[0]["engagement"] == pytest.approx(float(s.engagement[0]))
    assert rows[0]["predictive"] is None
    assert rows[1]["trend"] == "steady" and rows[1]["alignment"] == "aligned_low"
    assert [r["entity_id"] for r in history_rows(s, inputs.population, inputs.account_ids, TODAY, only=[2])] == [12]
    people = history_rows(s, inputs.population, inputs.person_ids, TODAY, kind=PERSON)
    assert people[0]["fit"] == pytest.approx(float(s.fit.fit[0])) and people[0]["breadth"] is None


def test_rows_are_written_to_the_store(engine: Engine) -> None:
    inputs, s = small_org()
    config = ScoringConfig()
    with engine.begin() as conn:
        upsert(conn, ScoreHistory.__table__, history_rows(s, inputs.population, inputs.account_ids, TODAY),
               key=("entity_kind", "entity_id", "day"))
        upsert(conn, Score.__table__, list(score_rows(s, inputs.population, inputs.account_ids, config, AS_OF)),
               key=("entity_kind", "entity_id"))
        upsert(conn, Score.__table__,
               list(score_rows(s, inputs.population, inputs.person_ids, config, AS_OF, kind=PERSON)),
               key=("entity_kind", "entity_id"))
    with engine.connect() as conn:
        hist = conn.execute(select(ScoreHistory.__table__).order_by(ScoreHistory.entity_id)).mappings().all()
        scores = conn.execute(
            select(Score.__table__).where(Score.entity_kind == "account").order_by(Score.entity_id)
        ).mappings().all()
    assert [h["entity_id"] for h in hist] == [10, 11, 12]
    assert hist[0]["day"] == TODAY
    top = scores[0]
    assert "VP Finance engaged" in top["reasons_text"] and len(top["reasons_text"]) <= 255
    parts = top["breakdown"]["engagement"]["parts"]
    assert sum(parts.values()) == pytest.approx(top["engagement"])
    assert top["scored_at"] == AS_OF
