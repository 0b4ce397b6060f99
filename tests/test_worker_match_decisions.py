"""The live people per match decision, counted from indexes, and the queries an index on decisions must not lead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select, update

from store import migrate
from store.db import make_engine
from store.schema import Match, Person
from store.upsert import upsert
from worker.match_stage import decision_counts
from worker.score_subset import _AccountKeys, _People

DECISIONS = ("auto", "crm", "review", "none", "pinned")


def _seed(engine: Engine, people: int = 60) -> None:
    """``people`` leads with a match each, decisions in turn; every seventh person deleted."""
    with engine.begin() as conn:
        upsert(conn, Person.__table__, [{"crm": "salesforce", "object": "Lead", "crm_id": f"00Q{n:015d}",
                                         "kind": "lead"} for n in range(people)])
        ids = sorted(conn.execute(select(Person.id)).scalars())
        conn.execute(Match.__table__.insert(), [{"person_id": i, "decision": DECISIONS[n % len(DECISIONS)],
                                                 "pinned": False} for n, i in enumerate(ids)])
        conn.execute(update(Person).where(Person.id.in_(ids[::7])).values(is_deleted=True))


def test_the_counts_are_those_of_every_live_persons_match(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        expected = Counter(conn.execute(select(Match.decision).join(Person, Person.id == Match.person_id)
                                        .where(Person.is_deleted.is_(False))).scalars())
        assert decision_counts(conn) == dict(expected)
        assert sum(expected.values()) == 60 - 9
    with engine.begin() as conn:  # a decision held by deleted people alone is not counted at all
        conn.execute(update(Person).where(Person.id.in_(
            select(Match.person_id).where(Match.decision == "pinned"))).values(is_deleted=True))
        assert "pinned" not in decision_counts(conn)


def _plans(engine: Engine, plans: list[str]) -> Any:
    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM matches" in statement:
            rows = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append("; ".join(row[3] for row in rows))

    event.listen(engine, "before_cursor_execute", explain)
    return explain


def test_counting_reads_indexes_only_and_a_tie_lookup_is_led_by_its_accounts(tmp_path: Path) -> None:
    """SQLite, without statistics: the count joined every match with its person (2.8 s of an L increment); and a
    lookup of the people tied to 900 accounts would walk every tying match through the decision index."""
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    migrate.upgrade(engine)
    _seed(engine)
    plans: list[str] = []
    explain = _plans(engine, plans)
    with engine.connect() as conn:
        decision_counts(conn)
        assert plans == ["SCAN matches USING COVERING INDEX ix_matches_decision",
                         "SEARCH matches USING INTEGER PRIMARY KEY (rowid=?); LIST SUBQUERY 1; "
                         "SCAN people USING INDEX ix_people_deleted; USE TEMP B-TREE FOR GROUP BY"]
        plans.clear()
        _People(conn, _AccountKeys(conn)).tied_to(set(range(1, 901)))
        assert plans == ["SEARCH matches USING INDEX ix_matches_account_id (account_id=?)"]
    event.remove(engine, "before_cursor_execute", explain)
    engine.dispose()
