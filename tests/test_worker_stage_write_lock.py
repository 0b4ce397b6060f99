"""On SQLite the match and score stages leave the store's one write lock free while they compute.

A transaction holds SQLite's write lock from its first write to its commit, and everything else that writes (an
admin's trigger, the pipeline lock's heartbeat) waits for it. The stages commit what they keep before their long
computations (the matching of each chunk, the models' training), which these tests check from another
connection that will not wait: ``BEGIN IMMEDIATE`` with no busy timeout fails at once while the lock is held.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from test_worker_match_stage import _seed as seed_people
from test_worker_score_stage import _seed as seed_touches

from config.matching import MatchingConfig
from config.scoring import ScoringConfig
from store import migrate
from store.db import make_engine
from store.schema import KeptCopy
from worker import match_stage, score_stage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "abm.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    yield engine, path
    engine.dispose()


def write_lock_free(path: Path) -> bool:
    """Whether another writer could start now, without waiting."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        probe.close()  # rolls back the empty transaction, if it began
    return True


def probe_before_each_call(monkeypatch, module: object, name: str, path: Path) -> list[bool]:
    """Replace ``module.name`` by itself preceded by :func:`write_lock_free`; the answers, one per call."""
    real = getattr(module, name)
    answers: list[bool] = []

    def probing(*args, **kwargs):
        answers.append(write_lock_free(path))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, probing)
    return answers


def test_the_match_stage_holds_the_write_lock_only_while_it_writes(sqlite_store, monkeypatch) -> None:
    engine, path = sqlite_store
    seed_people(engine)
    with engine.connect() as conn:
        people = sorted(conn.execute(select(match_stage.Person.id)).scalars())
    match_stage.run_match_stage(engine, MatchingConfig())  # the features and copies kept by a first run
    monkeypatch.setattr(match_stage, "MATCH_CHUNK", 2)  # 5 people: 3 chunks, the first two written before the last
    free_while_matching = probe_before_each_call(monkeypatch, match_stage, "match_in_processes", path)
    with engine.begin() as conn:  # every match changes, so every chunk writes
        conn.execute(match_stage.Match.__table__.delete())
    outcome = match_stage.run_match_stage(engine, MatchingConfig())
    assert outcome.people == 5
    assert {people.index(p) // 2 for p in outcome.changed_people} == {0, 1, 2}  # each chunk wrote
    assert free_while_matching == [True, True, True]


def test_the_score_stage_commits_its_kept_copies_before_the_models_train(sqlite_store, monkeypatch) -> None:
    engine, path = sqlite_store
    seed_touches(engine)
    match_stage.run_match_stage(engine, MatchingConfig())
    free_before_training = probe_before_each_call(monkeypatch, score_stage, "_models", path)
    with engine.connect() as conn:
        copies_before = conn.execute(select(func.count()).select_from(KeptCopy)).scalar_one()
    score_stage.run_score_stage(engine, ScoringConfig(), NOW)
    with engine.connect() as conn:
        copies_after = conn.execute(select(func.count()).select_from(KeptCopy)).scalar_one()
    assert copies_after > copies_before  # the loading wrote copies: the lock was taken, and given back
    assert free_before_training == [True]
