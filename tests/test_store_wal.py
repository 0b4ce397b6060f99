"""The write-ahead log is emptied while a run lasts (store.wal): on demand, never by waiting past a short
busy timeout for a reader, and by the watcher once it outgrows its limit."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Engine, event, text

from store.db import SQLITE_BUSY_TIMEOUT_MS, make_engine
from store.wal import (
    LOCKED_COPY_MAX_FRAMES,
    MAX_BACKOFF_S,
    checkpoint,
    copy_log,
    empty_now,
    leave_log_copy_to_watcher,
    log_watched,
    next_wait,
    wal_kept_small,
    wal_path,
)


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
    return engine


def _write(engine: Engine, rows: int = 2000) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (:x)"), [{"x": "x" * 200} for _ in range(rows)])


def test_a_checkpoint_empties_the_log(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    wal = wal_path(engine)
    assert wal == tmp_path / "abm.db-wal"
    _write(engine)
    assert wal.stat().st_size > 100_000
    assert checkpoint(engine)
    assert wal.stat().st_size == 0
    with engine.connect() as conn:  # the data is all in the database file, and the pool's timeout is back
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2000
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_a_reader_in_the_log_makes_the_checkpoint_give_up_not_wait(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _write(engine)
    reader = engine.raw_connection()
    cursor = reader.cursor()
    cursor.execute("BEGIN")
    cursor.execute("SELECT count(*) FROM t").fetchall()  # a snapshot that reads from the log
    assert not checkpoint(engine, busy_ms=50)
    cursor.execute("COMMIT")
    reader.close()
    assert checkpoint(engine)
    engine.dispose()


def test_a_passive_copy_says_when_an_older_snapshot_kept_part_of_the_log_back(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    _write(engine)
    assert copy_log(engine) == 0
    reader = engine.raw_connection()
    cursor = reader.cursor()
    cursor.execute("BEGIN")
    cursor.execute("SELECT count(*) FROM t").fetchall()  # its snapshot predates the next write
    _write(engine)
    assert copy_log(engine) > 100  # the frames written since are the reader's to see in the database file
    cursor.execute("COMMIT")
    reader.close()
    assert copy_log(engine) == 0
    engine.dispose()


def test_the_log_is_emptied_under_the_write_lock_only_once_little_is_left_to_copy() -> None:
    # Emptying holds the writers while it copies what is left, however long a backlog takes to copy;
    # it waits for a PASSIVE copy (no lock) that left little, not nothing: the stages commit meanwhile.
    assert empty_now(log_bytes=2, limit_bytes=1, frames_left=0, waited=1.0, wait=1.0)
    assert empty_now(log_bytes=2, limit_bytes=1, frames_left=LOCKED_COPY_MAX_FRAMES, waited=1.0, wait=1.0)
    assert not empty_now(log_bytes=2, limit_bytes=1, frames_left=LOCKED_COPY_MAX_FRAMES + 1, waited=1.0, wait=1.0)
    assert not empty_now(log_bytes=1, limit_bytes=1, frames_left=0, waited=1.0, wait=1.0)
    assert not empty_now(log_bytes=2, limit_bytes=1, frames_left=0, waited=1.0, wait=2.0)


def test_the_watcher_empties_a_log_past_its_limit(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    wal = wal_path(engine)
    assert wal is not None
    with wal_kept_small(engine, limit_bytes=64 * 1024, every=0.05):
        _write(engine)
        deadline = time.monotonic() + 30
        while wal.stat().st_size > 64 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wal.stat().st_size <= 64 * 1024
    engine.dispose()


def test_other_databases_have_no_log_to_watch(tmp_path: Path) -> None:
    assert wal_path(make_engine("sqlite://")) is None
    assert wal_path(make_engine("postgresql://abm@127.0.0.1:1/none")) is None
    with wal_kept_small(make_engine("sqlite://")):
        pass


def test_a_connection_is_told_who_copies_the_log_only_when_that_changes(tmp_path: Path) -> None:
    """Checkouts come by the thousand in a run: each one setting the pragma cost 0.9 s of an L increment."""
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    pragmas: list[str] = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(
        lambda statement: pragmas.append(statement) if "wal_autocheckpoint=" in statement else None))
    with wal_kept_small(engine, every=60):
        for _ in range(20):
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
    for _ in range(20):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    assert pragmas == ["PRAGMA wal_autocheckpoint=0", "PRAGMA wal_autocheckpoint=1000"]  # one pooled connection
    engine.dispose()


def test_a_busy_log_is_looked_at_less_and_less_often_until_a_checkpoint_goes_through() -> None:
    waits = [1.0]
    for _ in range(8):
        waits.append(next_wait(waits[-1], 1.0, gave_up=True))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S, MAX_BACKOFF_S]
    assert next_wait(MAX_BACKOFF_S, 1.0, gave_up=False) == 1.0
    assert next_wait(60.0, 60.0, gave_up=True) == 60.0  # a slow watcher is never hurried


def test_while_the_watcher_runs_commits_leave_the_copy_of_the_log_to_it(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    database = tmp_path / "abm.db"
    with wal_kept_small(engine, every=60):  # the watcher does not come round within the test
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
        _write(engine, rows=20_000)  # about 1,500 pages: past the 1,000 after which a commit copies the log
        assert database.stat().st_size < 1_000_000  # the rows are all in the log still
    assert database.stat().st_size > 4_000_000  # copied as the block ended
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
    _write(engine, rows=20_000)
    assert database.stat().st_size > 8_000_000  # without the watcher, the commit copies the log itself
    engine.dispose()


def test_a_stage_process_leaves_the_copy_of_the_log_to_the_workers_watcher(tmp_path: Path) -> None:
    """A stage in a process of its own opens the database again: its commits must not copy the log that the
    worker's watcher copies each second."""
    database = tmp_path / "abm.db"
    worker = _engine(tmp_path)
    stage = make_engine(f"sqlite:///{database}")  # as the stage's process opens it
    assert not log_watched(worker)
    with wal_kept_small(worker, every=60):
        assert log_watched(worker) and not log_watched(stage)
        leave_log_copy_to_watcher(stage)
        with stage.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
        _write(stage, rows=20_000)
        assert database.stat().st_size < 1_000_000  # the rows are all in the log still
    assert database.stat().st_size > 4_000_000  # copied by the worker's watcher as the run ended
    stage.dispose()
    worker.dispose()


def test_the_watcher_copies_the_log_each_time_it_comes_round(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    database = tmp_path / "abm.db"
    with wal_kept_small(engine, every=0.05):
        _write(engine, rows=20_000)
        deadline = time.monotonic() + 30
        while database.stat().st_size < 4_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size > 4_000_000
    engine.dispose()
