"""Queries every run makes that must find their rows by an index, not by reading a whole table that grows with the
org or with time (SQLite's plans: PostgreSQL chooses by its statistics)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from config.scoring import HistoryConfig
from store import migrate
from store.db import make_engine
from worker.match_stage import people_to_rematch
from worker.score_store import prune_history


def _plans(engine: Engine, table: str) -> list[str]:
    """The plans of the statements on ``table`` run from now on."""
    plans: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if f"FROM {table}" in statement and not executemany:
            rows = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append("; ".join(row[3] for row in rows))

    event.listen(engine, "before_cursor_execute", explain)
    return plans


def test_old_snapshots_and_changed_accounts_are_found_by_index(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    migrate.upgrade(engine)
    history, accounts = _plans(engine, "score_history"), _plans(engine, "accounts")
    with engine.begin() as conn:
        prune_history(conn, date(2026, 12, 6), HistoryConfig())
        people_to_rematch(conn, datetime(2026, 12, 6, tzinfo=UTC))
    assert history and all("ix_score_history_day" in plan for plan in history), history
    assert accounts and all("ix_accounts_changed_at" in plan for plan in accounts), accounts
    engine.dispose()
