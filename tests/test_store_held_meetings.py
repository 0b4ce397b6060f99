"""Scheduled meetings become held once their end has passed (store.held_meetings), and migration 0007
gives the meetings already stored the end their start and length say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from store import migrate
from store.db import make_engine
from store.held_meetings import complete_held_meetings
from store.schema import Account, Activity, Person
from store.upsert import upsert
from worker.score_scope import touched_since

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
BEFORE = NOW - timedelta(days=3)
OTHER_CRM = "00U000000000001EAA"


def _meeting(crm: str, crm_id: str, activity_type: str, ends_at: datetime | None) -> dict[str, Any]:
    return {"crm": crm, "object": "Event" if crm == "salesforce" else "meetings", "crm_id": crm_id,
            "activity_type": activity_type, "team": "sales", "occurred_at": NOW - timedelta(hours=2),
            "duration_seconds": 1800, "ends_at": ends_at, "changed_at": BEFORE}


def _types(engine: Engine) -> dict[str, tuple[str, datetime | None]]:
    with engine.connect() as conn:
        return {k: (t, c) for k, t, c in conn.execute(select(Activity.crm_id, Activity.activity_type,
                                                            Activity.changed_at))}


def test_meetings_that_ended_are_held_and_stamped_changed(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert(conn, Activity.__table__, [
            _meeting("hubspot", "ENDED", "meeting_scheduled", NOW - timedelta(minutes=1)),
            _meeting("hubspot", "ENDS_NOW", "meeting_scheduled", NOW),
            _meeting("hubspot", "AHEAD", "meeting_scheduled", NOW + timedelta(minutes=1)),
            _meeting("hubspot", "NO_END", "meeting_scheduled", None),
            _meeting("hubspot", "DEMO", "demo", NOW - timedelta(days=1)),
            _meeting("salesforce", OTHER_CRM, "meeting_scheduled", NOW - timedelta(days=1)),
        ])
    with engine.begin() as conn:
        assert complete_held_meetings(conn, "hubspot", NOW) == 2
    assert _types(engine) == {
        "ENDED": ("meeting_completed", NOW), "ENDS_NOW": ("meeting_completed", NOW),
        "AHEAD": ("meeting_scheduled", BEFORE), "NO_END": ("meeting_scheduled", BEFORE),
        "DEMO": ("demo", BEFORE), OTHER_CRM: ("meeting_scheduled", BEFORE),
    }
    with engine.begin() as conn:  # done once: the next pull finds nothing left to complete
        assert complete_held_meetings(conn, "hubspot", NOW) == 0


def test_a_meeting_held_since_the_last_score_stage_gets_its_account_and_person_rescored(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{"crm": "hubspot", "object": "companies", "crm_id": "C1", "name": "C1",
                                          "changed_at": BEFORE}])
        upsert(conn, Person.__table__, [{"crm": "hubspot", "object": "contacts", "crm_id": "P1", "kind": "contact",
                                         "changed_at": BEFORE}])
        upsert(conn, Activity.__table__, [{**_meeting("hubspot", "M1", "meeting_scheduled", NOW - timedelta(hours=1)),
                                           "person_crm_id": "P1", "account_crm_id": "C1"}])
    last_scored = NOW - timedelta(days=1)
    with engine.connect() as conn:
        assert not touched_since(conn, last_scored).account_ids  # nothing new since: nobody to rescore
    with engine.begin() as conn:
        complete_held_meetings(conn, "hubspot", NOW)
    with engine.connect() as conn:
        touched = touched_since(conn, last_scored)
        account, person = conn.execute(select(Account.id)).scalar_one(), conn.execute(select(Person.id)).scalar_one()
    assert touched.account_ids == {account} and touched.person_ids == {person}


def test_the_upgrade_gives_stored_meetings_their_end(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0006")
    start = NOW - timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(insert(Activity.__table__), [  # the columns of 0006 only
            {"crm": crm, "object": "x", "crm_id": key, "activity_type": kind, "occurred_at": start,
             "duration_seconds": seconds, "is_deleted": False}
            for crm, key, kind, seconds in [("salesforce", "SF30", "meeting_scheduled", 1800),
                                            ("salesforce", "SF_NO_LENGTH", "meeting_scheduled", None),
                                            ("hubspot", "HS30", "meeting_scheduled", 1800),
                                            ("hubspot", "HS_NO_LENGTH", "meeting_scheduled", None),
                                            ("salesforce", "CALL", "call_connected", 60)]])
    migrate.upgrade(engine)
    with engine.connect() as conn:
        ends = dict(conn.execute(select(Activity.crm_id, Activity.ends_at)).all())
    assert ends == {"SF30": start + timedelta(minutes=30), "SF_NO_LENGTH": start,
                    "HS30": start + timedelta(minutes=30), "HS_NO_LENGTH": None, "CALL": None}
    engine.dispose()
