"""Touches resolved to the store ids of the person and account they name (store.touch_refs), voided
when their keys change, and resolved for the touches already stored by migration 0005."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, insert, select

from store import migrate
from store.db import make_engine
from store.schema import Account, Activity, Person
from store.touch_refs import resolve_touch_refs
from store.upsert import upsert

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _touch(crm_id: str, person: str | None, account: str | None, **extra: Any) -> dict[str, Any]:
    return {"crm": "hubspot", "object": "calls", "crm_id": crm_id, "activity_type": "call_connected",
            "occurred_at": WHEN, "person_crm_id": person, "account_crm_id": account, **extra}


def _records(conn: Any) -> tuple[dict[str, int], dict[str, int]]:
    upsert(conn, Account.__table__, [{"crm": "hubspot", "object": "companies", "crm_id": k, "name": k}
                                     for k in ("C1", "C2")])
    upsert(conn, Person.__table__, [{"crm": "hubspot", "object": "contacts", "crm_id": k, "kind": "contact"}
                                    for k in ("P1", "P2")])
    return (dict(conn.execute(select(Account.crm_id, Account.id)).all()),
            dict(conn.execute(select(Person.crm_id, Person.id)).all()))


def _refs(conn: Any) -> dict[str, tuple[int | None, int | None]]:
    query = select(Activity.crm_id, Activity.person_ref, Activity.account_ref)
    return {k: (p, a) for k, p, a in conn.execute(query)}


def _refs_now(engine: Engine) -> dict[str, tuple[int | None, int | None]]:
    with engine.connect() as conn:
        return _refs(conn)


def test_touches_get_the_ids_of_the_records_they_name(engine: Engine) -> None:
    with engine.begin() as conn:
        accounts, people = _records(conn)
        upsert(conn, Person.__table__, [{"crm": "other", "object": "contacts", "crm_id": "P1", "kind": "contact"}])
        other = conn.execute(select(Person.id).where(Person.crm == "other")).scalar_one()
        upsert(conn, Activity.__table__, [_touch("T1", "P1", "C1"), _touch("T2", "P2", None),
                                          _touch("T3", "nobody", "C2"), _touch("T4", None, None),
                                          _touch("T5", "P1", None, crm="other")])
    assert _refs_now(engine) == {k: (None, None) for k in ("T1", "T2", "T3", "T4", "T5")}  # as they land
    assert resolve_touch_refs(engine, "hubspot", chunk=1) == (2, 2)  # a transaction per touch
    assert _refs_now(engine) == {"T1": (people["P1"], accounts["C1"]), "T2": (people["P2"], None),
                                 "T3": (None, accounts["C2"]), "T4": (None, None), "T5": (None, None)}
    assert resolve_touch_refs(engine) == (1, 0)  # the other CRM's; those naming no stored record are not counted
    assert _refs_now(engine)["T5"] == (other, None)


def test_one_crms_resolution_leaves_the_other_crms_touches_between_its_own(engine: Engine) -> None:
    """Each pull resolves its CRM's touches while the other pull resolves its own: an update of one id range
    that also took the other CRM's touches in it made the two transactions deadlock on PostgreSQL."""
    with engine.begin() as conn:
        accounts, people = _records(conn)
        upsert(conn, Person.__table__, [{"crm": "other", "object": "contacts", "crm_id": "P1", "kind": "contact"}])
        upsert(conn, Account.__table__, [{"crm": "other", "object": "companies", "crm_id": "C1", "name": "C1"}])
        other_person = conn.execute(select(Person.id).where(Person.crm == "other")).scalar_one()
        other_account = conn.execute(select(Account.id).where(Account.crm == "other")).scalar_one()
        for key, crm in (("T1", "hubspot"), ("T2", "other"), ("T3", "hubspot")):  # ids in this order
            upsert(conn, Activity.__table__, [_touch(key, "P1", "C1", crm=crm)])
    assert resolve_touch_refs(engine, "hubspot") == (2, 2)
    assert _refs_now(engine) == {"T1": (people["P1"], accounts["C1"]), "T2": (None, None),
                                 "T3": (people["P1"], accounts["C1"])}
    assert resolve_touch_refs(engine, "other") == (1, 1)
    assert _refs_now(engine)["T2"] == (other_person, other_account)


def test_a_touch_landing_before_its_person_is_resolved_once_the_person_is_there(engine: Engine) -> None:
    with engine.begin() as conn:
        _records(conn)
        upsert(conn, Activity.__table__, [_touch("T1", "P3", None)])
    assert resolve_touch_refs(engine) == (0, 0)
    with engine.begin() as conn:
        upsert(conn, Person.__table__, [{"crm": "hubspot", "object": "contacts", "crm_id": "P3", "kind": "contact"}])
        p3 = conn.execute(select(Person.id).where(Person.crm_id == "P3")).scalar_one()
    assert resolve_touch_refs(engine) == (1, 0)
    assert _refs_now(engine)["T1"] == (p3, None)


def test_a_changed_key_voids_its_id_and_nothing_else(engine: Engine) -> None:
    with engine.begin() as conn:
        accounts, people = _records(conn)
        upsert(conn, Activity.__table__, [_touch("T1", "P1", "C1"), _touch("T2", "P1", "C1")])
    resolve_touch_refs(engine)
    with engine.begin() as conn:
        # T1 moves to another person; T2 comes again as it was, and with another subject
        upsert(conn, Activity.__table__, [_touch("T1", "P2", "C1", subject="s"), _touch("T2", "P1", "C1", subject="s")])
    assert _refs_now(engine) == {"T1": (None, accounts["C1"]), "T2": (people["P1"], accounts["C1"])}
    assert resolve_touch_refs(engine) == (1, 0)
    assert _refs_now(engine)["T1"] == (people["P2"], accounts["C1"])


def test_the_upgrade_resolves_the_touches_already_stored(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(insert(Account.__table__), [
            {"crm": "hubspot", "object": "companies", "crm_id": "C1", "name": "C1", "is_deleted": False}])
        conn.execute(insert(Person.__table__), [
            {"crm": "hubspot", "object": "contacts", "crm_id": "P1", "kind": "contact", "is_converted": False,
             "is_deleted": True},
            {"crm": "hubspot", "object": "contacts-2", "crm_id": "P1", "kind": "contact", "is_converted": False,
             "is_deleted": False},
            {"crm": "hubspot", "object": "contacts-3", "crm_id": "P1", "kind": "contact", "is_converted": False,
             "is_deleted": True}])
        conn.execute(insert(Activity.__table__), [  # the columns of 0004 only
            {"crm": "hubspot", "object": "calls", "crm_id": f"T{n}", "activity_type": "call_connected",
             "person_crm_id": person, "account_crm_id": account, "is_deleted": False}
            for n, (person, account) in enumerate([("P1", "C1"), ("P1", None), ("nobody", "C1")])])
    migrate.upgrade(engine)
    with engine.connect() as conn:
        live = conn.execute(select(Person.id).where(Person.is_deleted.is_(False))).scalar_one()
        c1 = conn.execute(select(Account.id)).scalar_one()
        assert _refs(conn) == {"T0": (live, c1), "T1": (live, None), "T2": (None, c1)}
    engine.dispose()


def test_each_transaction_reaches_its_touches_by_id_not_through_an_index_of_every_unresolved_one(
    tmp_path: Path,
) -> None:
    """SQLite's planner, with no statistics, took the partial index of every unresolved touch for each chunk
    (5.5 million on the L org's first pull): a chunk held the write lock past the other pull's busy timeout."""
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    migrate.upgrade(engine)
    with engine.begin() as conn:
        _records(conn)
        upsert(conn, Activity.__table__, [_touch(f"T{n}", "P1", "C1") for n in range(5)])
    plans: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.startswith("UPDATE activities"):
            rows = cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            plans.append(next(row[3] for row in rows if row[1] == 0))  # how the updated table is read

    assert resolve_touch_refs(engine, "hubspot", chunk=2) == (5, 5)
    assert plans == ["SEARCH activities USING INTEGER PRIMARY KEY (rowid=?)"] * 6  # 3 chunks, 2 sides
    engine.dispose()
