"""An upsert that waited long for SQLite's write lock is named in the log (store.write_watch): with one writer at
a time, that is what tells which stage was kept waiting."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, text

import store.write_watch
from store.db import make_engine
from store.upsert import upsert

_KV = Table("kv", MetaData(), Column("k", String, primary_key=True), Column("v", Integer))


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    _KV.metadata.create_all(engine)
    return engine


def _watched(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "store.write_watch"]


def test_an_upsert_that_waited_for_another_writers_lock_is_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store.write_watch, "SLOW_WRITE_S", 0.3)
    engine = _engine(tmp_path)
    holding = threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            upsert(conn, _KV, [{"k": "a", "v": 1}], key=("k",))
            holding.set()
            time.sleep(0.6)

    caplog.set_level(logging.WARNING, logger="store.write_watch")
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    with engine.begin() as conn:  # waits for the holder's lock (the busy timeout is far longer)
        assert upsert(conn, _KV, [{"k": "a", "v": 2}, {"k": "b", "v": 3}], key=("k",)) == 2
    holder.join()
    messages = _watched(caplog)
    assert len(messages) == 1 and messages[0].startswith("an upsert into kv took"), messages
    assert "waiting for another writer" in messages[0]
    with engine.connect() as conn:
        assert dict(conn.execute(text("SELECT k, v FROM kv")).all()) == {"a": 2, "b": 3}


def test_quick_upserts_log_nothing_however_long_their_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(store.write_watch, "SLOW_WRITE_S", 0.3)
    engine = _engine(tmp_path)
    caplog.set_level(logging.WARNING, logger="store.write_watch")
    with engine.begin() as conn:
        upsert(conn, _KV, [{"k": "a", "v": 1}], key=("k",))
        time.sleep(0.5)
        upsert(conn, _KV, [{"k": "b", "v": 2}], key=("k",))
    assert _watched(caplog) == []
