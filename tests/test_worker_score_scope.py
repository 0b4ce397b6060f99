"""When an incremental run rescores everyone: the decay refresh read from the run records."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from store.runs import StageReport, create_run, last_stage_start, record_stage
from store.types import utcnow
from worker.score_scope import everyone_due


def _score_stage(engine: Engine, scope: str, hours_ago: float, state: str = "succeeded") -> None:
    run_id = create_run(engine, "incremental", "schedule", state="running")
    started = utcnow() - timedelta(hours=hours_ago)
    record_stage(engine, run_id, StageReport("score", state=state,
                                             detail={"scope": scope, "started_at": started.isoformat()}))


def test_everyone_is_due_without_a_recorded_rescore_of_everyone(engine: Engine) -> None:
    with engine.connect() as conn:
        assert everyone_due(conn, utcnow(), 24)
    _score_stage(engine, "touched since 2026-12-01T00:00:00+00:00", hours_ago=1)
    with engine.connect() as conn:
        assert last_stage_start(conn, "score") is not None
        assert everyone_due(conn, utcnow(), 24)  # only scoped stages: decay never refreshed


def test_everyone_is_due_once_the_last_rescore_of_everyone_is_older_than_the_setting(engine: Engine) -> None:
    _score_stage(engine, "everyone", hours_ago=30)
    _score_stage(engine, "touched since 2026-12-01T00:00:00+00:00", hours_ago=1)
    with engine.connect() as conn:
        assert everyone_due(conn, utcnow(), 24)
        assert not everyone_due(conn, utcnow(), 48)
        assert not everyone_due(conn, utcnow(), None)  # switched off: only full runs refresh
    _score_stage(engine, "everyone", hours_ago=2)
    _score_stage(engine, "everyone", hours_ago=0.5, state="failed")  # a failed one refreshed nothing
    with engine.connect() as conn:
        assert not everyone_due(conn, utcnow(), 24)
        assert everyone_due(conn, utcnow(), 1)
