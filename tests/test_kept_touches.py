"""The kept copy of the touches (worker.kept_touches): what an incremental run reads from it and from the
touches changed since is exactly what reading the table gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, update
from test_scoring_predictive import AS_OF
from test_scoring_store import (  # noqa: F401 (org, stored: fixtures)
    kept_header,
    mark_of_another_format,
    org,
    read_again_from_the_tables,
    reused_from_the_copies,
    rows,
    store_org,
    stored,
)
from test_scoring_store import load_kept as load

from store import migrate
from store.db import make_engine
from store.held_meetings import complete_held_meetings
from store.records import ActivityRecord, PersonRecord
from store.schema import Activity, KeptCopy, Person
from store.touch_refs import resolve_touch_refs
from store.types import utcnow
from store.upsert import upsert
from worker import kept_touches
from worker.score_inputs import epoch_seconds

TOUCHES = KeptCopy.name == kept_touches.NAME


@pytest.fixture(autouse=True)
def exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock: no margin, so that the touches written before the copy are read from it."""
    monkeypatch.setattr(kept_touches, "CLOCK_MARGIN", timedelta(0))


def assert_same(a, b) -> None:
    for column in ("person", "account", "type_code", "ts"):
        np.testing.assert_array_equal(getattr(a.activities, column), getattr(b.activities, column), err_msg=column)
    assert a.load_report == b.load_report


header = partial(kept_header, name=kept_touches.NAME)


def touches(*records: ActivityRecord) -> list[dict]:
    return rows(records, lambda a: "Task")


def test_incremental_read_equals_the_table_after_every_kind_of_change(
    engine: Engine, org, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = org
    # A touch of someone the store does not hold yet: its key stays unresolved in the copy.
    early = ActivityRecord(id=30_000, crm="hubspot", crm_id="EARLY", activity_type="email_reply",
                           occurred_at=AS_OF - timedelta(days=2), person_crm_id="LATECOMER")
    meeting = ActivityRecord(id=30_001, crm="hubspot", crm_id="MEET", activity_type="meeting_scheduled",
                             occurred_at=AS_OF - timedelta(days=1), person_crm_id=people[1].crm_id)
    store_org(engine, accounts, people, [*acts, early, meeting], opps, matches)
    resolve_touch_refs(engine)
    with engine.begin() as conn:
        conn.execute(update(Activity).where(Activity.id == meeting.id).values(ends_at=AS_OF - timedelta(days=1)))
    first = load(engine, "refresh")
    assert header(engine)["rows"] == len(acts) + 2
    assert_same(first, load(engine, "ignore"))

    # Every kind of write the pulls make, after the copy was taken.
    with engine.begin() as conn:
        edited = replace(acts[0], activity_type="meeting_completed", occurred_at=AS_OF - timedelta(hours=5))
        moved = replace(acts[1], person_crm_id=people[2].crm_id)  # a new key voids the resolved id
        new = ActivityRecord(id=40_000, crm="hubspot", crm_id="NEW", activity_type="webinar_attended",
                             occurred_at=AS_OF - timedelta(hours=1), person_crm_id=people[3].crm_id)
        upsert(conn, Activity.__table__, touches(edited, moved, new))
        conn.execute(update(Activity).where(Activity.id == acts[2].id).values(is_deleted=True, changed_at=utcnow()))
        complete_held_meetings(conn, "hubspot", utcnow())
        upsert(conn, Person.__table__, rows([PersonRecord(id=50_000, crm="hubspot", crm_id="LATECOMER",
                                                          kind="contact")], lambda p: "contacts"))
    resolve_touch_refs(engine)  # resolves the early touch's person without marking the touch changed
    with engine.connect() as conn:
        assert conn.execute(select(Activity.person_ref).where(Activity.id == early.id)).scalar_one() == 50_000
    reused = reused_from_the_copies(engine, caplog)
    assert_same(reused, load(engine, "ignore"))
    assert len(reused.activities) == len(first.activities) + 2 - 1  # new; the latecomer's; one deleted
    assert not np.array_equal(reused.activities.type_code, first.activities.type_code)


def test_the_copy_is_what_is_read_and_is_dropped_when_not_of_the_table(
    engine: Engine, stored, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = stored
    before = load(engine, "refresh")
    # A write that goes round the change stamp: the copy does not see it...
    with engine.begin() as conn:
        conn.execute(update(Activity).where(Activity.id == acts[0].id).values(occurred_at=AS_OF - timedelta(hours=3)))
    assert_same(load(engine, "reuse"), before)
    assert not np.array_equal(load(engine, "ignore").activities.ts, before.activities.ts)
    # ... until a touch the copy cannot hold shows it is not of the table any more.
    with engine.begin() as conn:
        record = ActivityRecord(id=60_000, crm="hubspot", crm_id="ROUND", activity_type="demo",
                                occurred_at=AS_OF - timedelta(days=1), person_crm_id=people[0].crm_id)
        conn.execute(Activity.__table__.insert(), [{**asdict(record), "object": "Task", "is_deleted": False}])
    assert_same(*read_again_from_the_tables(engine, caplog))
    assert header(engine)["rows"] == len(acts) + 1  # read again and kept
    # A copy in another format is not read.
    with engine.begin() as conn:
        conn.execute(update(Activity).where(Activity.id == acts[1].id).values(occurred_at=AS_OF - timedelta(hours=2)))
    mark_of_another_format(engine, kept_touches.NAME)
    assert_same(load(engine, "reuse"), load(engine, "ignore"))


def test_the_copy_is_written_again_once_enough_is_read_on_top(engine: Engine, stored,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    accounts, people, acts, opps, matches = stored
    load(engine, "refresh")
    taken = header(engine)["cutoff"]
    share = 3 / len(acts)
    monkeypatch.setattr(kept_touches, "REWRITE_SHARE", share)

    def edit(records: list[ActivityRecord]) -> None:
        with engine.begin() as conn:
            upsert(conn, Activity.__table__, touches(*(replace(a, occurred_at=AS_OF - timedelta(minutes=i + 1))
                                                       for i, a in enumerate(records))))

    edit(acts[:2])  # under the share: read on top of the copy, which stays as it was
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] == taken
    edit(acts[2:4])  # the four changed since the copy pass the share: kept anew
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] > taken


def test_parts_hold_a_bounded_number_of_touches(engine: Engine, stored, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    accounts, people, acts, opps, matches = stored
    monkeypatch.setattr(kept_touches, "PART_ROWS", 100)
    load(engine, "refresh")
    with engine.connect() as conn:
        parts = conn.execute(select(func.count()).select_from(KeptCopy).where(TOUCHES, KeptCopy.part > 0)).scalar_one()
    assert parts == -(-len(acts) // 100) == header(engine)["parts"]
    assert_same(load(engine, "reuse"), load(engine, "ignore"))


def test_the_changed_touches_are_found_through_their_index(tmp_path: Path) -> None:
    """SQLite, whose planner has no statistics to go by: the touches changed since the copy are read through
    ``ix_activities_changed_at``, not by a scan of every touch (which an ``ORDER BY id`` made it choose)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        query = kept_touches._query(epoch_seconds(conn), [Activity.__table__.c.changed_at >= utcnow()])
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "ix_activities_changed_at" in plan, plan


def test_a_writer_whose_clock_is_behind_is_still_read(engine: Engine, stored,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A change stamped a minute before the copy was taken (another worker's clock, behind this one's) is read on
    top of the copy within ``CLOCK_MARGIN``; with no margin it would be missed."""
    accounts, people, acts, opps, matches = stored
    with engine.begin() as conn:  # every touch stamped well before the copy
        conn.execute(update(Activity).values(changed_at=utcnow() - timedelta(hours=1)))
    load(engine, "refresh")
    behind = datetime.fromisoformat(header(engine)["cutoff"]) - timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(update(Activity).where(Activity.id == acts[0].id)
                     .values(occurred_at=AS_OF - timedelta(hours=4), changed_at=behind))
    assert not np.array_equal(load(engine, "reuse").activities.ts, load(engine, "ignore").activities.ts)
    monkeypatch.setattr(kept_touches, "CLOCK_MARGIN", timedelta(minutes=2))
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
