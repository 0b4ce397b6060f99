"""A write transaction that holds SQLite's write lock for long, and a write that waited for it, are named in the
log (store.write_watch): with one writer at a time, that is what tells which stage held the others up."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text

import store.write_watch
from store.db import make_engine
from store.upsert import upsert
from store.write_watch import written_table


def test_the_table_of_a_write_statement_is_read_and_other_statements_have_none() -> None:
    assert written_table("INSERT INTO activities (crm, crm_id) VALUES (?, ?)") == "activities"
    assert written_table('  update "scores" SET grade = ?') == "scores"
    assert written_table("DELETE FROM score_history WHERE day < ?") == "score_history"
    assert written_table("INSERT OR REPLACE INTO cursors VALUES (?)") == "cursors"
    assert written_table("SELECT * FROM activities") is None
    assert written_table("PRAGMA wal_checkpoint(PASSIVE)") is None


def test_a_long_write_transaction_and_the_write_that_waited_for_it_are_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store.write_watch, "SLOW_WRITE_S", 0.3)
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holding = threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (x) VALUES (1)"))
            holding.set()
            time.sleep(0.6)

    caplog.set_level(logging.WARNING, logger="store.write_watch")
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    with engine.begin() as conn:  # waits for the holder's lock (the busy timeout is far longer)
        conn.execute(text("UPDATE t SET x = 2"))
    holder.join()
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("a write transaction held the database's write lock for") and "1 on t" in m
               for m in messages), messages
    assert any(m.startswith("a write to t took") and "waiting for another writer" in m for m in messages), messages
    with engine.begin() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar_one() == 2


def test_quick_writes_and_reads_log_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    caplog.set_level(logging.WARNING, logger="store.write_watch")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t (x) VALUES (1)"))
    with engine.connect() as conn:
        time.sleep(0.1)
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    assert not [r for r in caplog.records if r.name == "store.write_watch"]


def test_an_upsert_sent_to_the_drivers_cursor_counts_as_the_transactions_first_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store.write_watch, "SLOW_WRITE_S", 0.3)
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    table = Table("kv", MetaData(), Column("k", String, primary_key=True), Column("v", Integer))
    table.metadata.create_all(engine)
    caplog.set_level(logging.WARNING, logger="store.write_watch")
    with engine.begin() as conn:
        assert upsert(conn, table, [{"k": "a", "v": 1}, {"k": "b", "v": 2}], key=("k",)) == 2
        time.sleep(0.5)  # holding the lock the upsert took, unseen by the engine's events
    assert [r.getMessage() for r in caplog.records if "1 on kv" in r.getMessage()]
