"""Saving scores: only visible changes are written, history gets one row per account and day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, delete, func, select

from config.scoring import ScoringConfig
from scoring.inputs import build_inputs
from scoring.scores import score
from store.records import AccountRecord, ActivityRecord, PersonRecord
from store.schema import Score, ScoreHistory
from worker.score_store import COMPARED, save_score_set

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _scored(extra_calls: int = 0):
    accounts = [AccountRecord(id=10 + i, crm="salesforce", crm_id=f"A{i}", name=f"Account {i}", industry="Software",
                              employees=200) for i in range(3)]
    people = [PersonRecord(id=100 + i, crm="salesforce", crm_id=f"P{i}", kind="contact", title=title,
                           account_crm_id=f"A{i % 3}") for i, title in enumerate(["VP Sales", "Engineer", "CFO"])]
    acts = [ActivityRecord(id=n, crm="salesforce", crm_id=f"T{n}", activity_type="meeting_completed",
                           occurred_at=NOW - timedelta(days=n), person_crm_id="P0") for n in range(1, 4)]
    acts += [ActivityRecord(id=50 + n, crm="salesforce", crm_id=f"C{n}", activity_type="call_connected",
                            occurred_at=NOW - timedelta(hours=n), person_crm_id="P2") for n in range(extra_calls)]
    config = ScoringConfig()
    inputs = build_inputs(accounts, people, acts, [], config)
    return inputs, score(inputs.activities, inputs.population, inputs.opportunities, config, int(NOW.timestamp()))


def _save(engine: Engine, inputs, scores, now=NOW):
    with engine.begin() as conn:
        return save_score_set(conn, scores, inputs.population, inputs.account_ids, inputs.person_ids,
                              ScoringConfig(), now)


def test_scores_are_saved_with_reasons_and_unchanged_scores_are_not_rewritten(engine: Engine) -> None:
    inputs, scores = _scored()
    first = _save(engine, inputs, scores)
    assert first.accounts_changed == 3 and first.people_changed == 3 and first.history_rows == 3
    with engine.connect() as conn:
        top = conn.execute(select(Score).where(Score.entity_kind == "account", Score.entity_id == 10)).one()
        assert top.engagement > 0 and top.grade in (1, 2, 3, 4) and top.trend and top.alignment
        assert "Account 0" in top.reasons_text and len(top.reasons_text) <= 255
        assert top.breakdown["engagement"]["score"] == top.engagement or abs(
            top.breakdown["engagement"]["score"] - top.engagement) < 0.01
        person = conn.execute(select(Score).where(Score.entity_kind == "person", Score.entity_id == 101)).one()
        assert person.fit is not None and person.breadth is None

    again = _save(engine, inputs, scores, NOW + timedelta(hours=1))
    assert (again.accounts_changed, again.people_changed) == (0, 0)
    assert again.history_rows == 0  # same day, same values: today's snapshot is neither rewritten nor duplicated
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ScoreHistory)).scalar_one() == 3

    inputs, scores = _scored(extra_calls=4)  # account 2 (CFO's) gets new touches
    changed = _save(engine, inputs, scores, NOW + timedelta(days=1))
    assert 12 in changed.changed_account_ids and 10 not in changed.changed_account_ids
    assert 102 in changed.changed_person_ids
    with engine.connect() as conn:
        days = conn.execute(select(func.count(func.distinct(ScoreHistory.day)))).scalar_one()
        assert days == 2 and conn.execute(select(func.count()).select_from(ScoreHistory)).scalar_one() == 6


def _rows(n: int, engagement: float, scored_at: datetime = NOW) -> list[dict]:
    return [{"entity_kind": "person", "entity_id": i, "engagement": engagement, "sales_activity": 1.0,
             "marketing": 2.0, "fit": 0.5, "grade": 2, "predictive": None, "breadth": None, "velocity": 0.0,
             "trend": "steady", "alignment": "aligned", "reasons_text": f"Person {i}: a reason long enough to count",
             "breakdown": {}, "model_version": None, "scored_at": scored_at} for i in range(1, n + 1)]


def test_saving_scores_writes_exactly_the_rows_whose_visible_values_changed(engine: Engine) -> None:
    """The database compares each row with the stored one: nothing is read back to decide, a batch is held at a
    time, and the rows written (and returned) are the new ones and those whose visible values changed."""
    import tracemalloc

    from worker.score_store import save_scores

    n, batch = 6_000, 500
    with engine.begin() as conn:
        assert len(save_scores(conn, "person", _rows(n, 1.0), batch_size=batch)) == n
    later = NOW + timedelta(hours=1)
    rows = _rows(n, 1.0, later)
    for row in rows[::7]:
        row["engagement"] = 3.0
    rows[1]["breakdown"] = {"engagement": {"score": 1.0}}  # the breakdown follows the scores: alone, not written
    rows[2]["engagement"] = 1.004  # visibly the same once rounded
    with engine.begin() as conn:
        tracemalloc.start()
        try:
            changed = save_scores(conn, "person", iter(rows), batch_size=batch)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert changed == {row["entity_id"] for row in rows[::7]}
    assert peak < n * 250, f"peak {peak:,} B: more than a batch of rows was held"
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Score.entity_id, Score.scored_at)).all())
        assert {i for i, at in stored.items() if at == later} == changed  # the others keep when they last changed
        assert conn.execute(select(Score.breakdown).where(Score.entity_id == 2)).scalar_one() == {}
    with engine.begin() as conn:  # a subset (an incremental run) finds its changes too, and only them
        subset = [dict(row, scored_at=NOW + timedelta(hours=2)) for row in rows[100:400]]
        for row in subset[:10]:
            row["engagement"] = 4.0
        assert save_scores(conn, "person", subset, batch_size=batch) == {row["entity_id"] for row in subset[:10]}


@pytest.mark.parametrize("rows_per_slice", [1, 2, 5])  # 2 and 5: slices holding accounts and people
def test_rows_built_in_a_forked_process_save_what_rows_built_here_save(engine: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       rows_per_slice: int) -> None:
    """Many rows are built by a forked process beside the writes (worker.forked_slices): the same rows, in the
    same order, whether for everyone or for an incremental run's subset."""
    from worker import score_store

    inputs, scores = _scored(extra_calls=4)
    read = [Score.__table__.c[c] for c in ("entity_kind", "entity_id", *COMPARED, "breakdown", "scored_at")]

    def saved(forked: bool, only: bool) -> tuple[object, list[tuple], list[tuple]]:
        """Saved in slices by a forked process and this one, or in one slice here (the rows as score_rows gives)."""
        monkeypatch.setattr(score_store, "FORKED_ROWS", 1 if forked else 10**9)
        monkeypatch.setattr(score_store, "ROWS_PER_SLICE", rows_per_slice if forked else 10**9)
        with engine.begin() as conn:
            conn.execute(delete(Score))
            conn.execute(delete(ScoreHistory))
            subset = np.array([0, 2], dtype=np.int64) if only else None
            counts = save_score_set(conn, scores, inputs.population, inputs.account_ids, inputs.person_ids,
                                    ScoringConfig(), NOW, only_accounts=subset, only_people=subset)
        with engine.connect() as conn:
            return (counts, conn.execute(select(*read).order_by(Score.id)).all(),
                    conn.execute(select(*[c for c in ScoreHistory.__table__.c if c.name != "id"])
                                 .order_by(ScoreHistory.id)).all())

    for only in (False, True):
        assert saved(forked=True, only=only) == saved(forked=False, only=only)
    counts, stored, _ = saved(forked=True, only=True)
    assert len(stored) == 4 and (counts.accounts_changed, counts.people_changed) == (2, 2)  # accounts 0 and 2, etc.


def test_rows_rounded_as_they_are_built_are_the_visible_rows() -> None:
    """The save has score_rows round the number columns as it builds them (VISIBLE_DIGITS): the same rows
    ``visible`` makes of unrounded ones, so what is compared and stored does not depend on the path."""
    from scoring.rows import score_rows
    from worker.score_store import VISIBLE_DIGITS, visible

    inputs, scores = _scored(extra_calls=4)
    moved = 0
    for kind, ids in (("account", inputs.account_ids), ("person", inputs.person_ids)):
        unrounded = list(score_rows(scores, inputs.population, ids, ScoringConfig(), NOW, kind=kind))
        rounded = list(score_rows(scores, inputs.population, ids, ScoringConfig(), NOW, kind=kind,
                                  round_to=VISIBLE_DIGITS))
        assert rounded == [visible(row) for row in unrounded]
        moved += sum(a[c] != b[c] for a, b in zip(unrounded, rounded, strict=True) for c in VISIBLE_DIGITS)
    assert moved  # some values had more decimals than people see
