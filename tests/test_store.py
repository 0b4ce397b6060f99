"""The canonical store on SQLite and PostgreSQL: round trips, upserts, ids, text, time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, insert, select, text

from store import migrate, schema
from store.db import make_engine
from store.ids import InvalidSalesforceId, to_18
from store.types import NaiveDatetimeError, ensure_utc
from store.upsert import PreparedUpsert, indexed_columns, upsert
from worker.forked import Forked

T0 = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def account_row(crm_id: str = "001D000000IRFmaIAH", **overrides) -> dict:
    row = {
        "crm": "salesforce",
        "object": "Account",
        "crm_id": crm_id,
        "name": "Acme Corporation",
        "website": "https://www.acme.com",
        "domain": "acme.com",
        "industry": "Manufacturing",
        "employees": 420,
        "annual_revenue": 12_500_000.0,
        "country": "US",
        "state": "CA",
        "city": "San Francisco",
        "phone": "+14155550100",
        "parent_crm_id": None,
        "type": "Customer",
        "owner_crm_id": "005000000000001AAA",
        "created_at": T0,
        "modified_at": T0,
        "is_deleted": False,
        "extra": {"Rating": "Hot", "Custom__c": [1, 2]},
    }
    row.update(overrides)
    return row


def read_all(engine: Engine, table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c[next(iter(table.c.keys()))]))]


# A full row for every table, so each column type makes the trip on both backends.
FULL_ROWS = {
    "accounts": account_row(),
    "people": {
        "crm": "hubspot", "object": "contacts", "crm_id": "151", "kind": "contact", "first_name": "Jennifer",
        "last_name": "Ng", "email": "jen@acme.com", "title": "VP Finance", "company": "Acme", "website": "acme.com",
        "phone": "+1 415 555 0101", "country": "US", "state": "CA", "city": "SF", "industry": "Manufacturing",
        "employees": 400, "account_crm_id": "99", "status": "Open", "is_converted": True, "converted_at": T0,
        "converted_account_crm_id": "99", "converted_contact_crm_id": "151", "source": "Webinar",
        "owner_crm_id": "7", "created_at": T0, "modified_at": T0, "is_deleted": False, "merged_into": None,
        "extra": {"hs_persona": "persona_1"},
    },
    "opportunities": {
        "crm": "salesforce", "object": "Opportunity", "crm_id": "006000000000001AAA", "name": "Acme renewal",
        "account_crm_id": "001D000000IRFmaIAH", "stage": "Closed Won", "is_closed": True, "is_won": True,
        "amount": 48_000.5, "close_date": date(2026, 2, 28), "closed_at": T0, "created_at": T0 - timedelta(days=60),
        "modified_at": T0, "is_deleted": False, "extra": None,
    },
    "campaigns": {
        "crm": "salesforce", "object": "Campaign", "crm_id": "701000000000001AAA", "name": "Pricing webinar",
        "type": "Webinar", "created_at": T0, "modified_at": T0, "is_deleted": False, "extra": None,
    },
    "crm_users": {
        "crm": "salesforce", "object": "User", "crm_id": "005000000000001AAA", "name": "Sam Rep",
        "email": "sam@example.org", "is_active": True, "created_at": T0, "modified_at": T0, "is_deleted": False,
        "extra": None,
    },
    "activities": {
        "crm": "salesforce", "object": "Task", "crm_id": "00T000000000001AAA", "activity_type": "call_connected",
        "crm_type": "Call", "team": "sales", "subject": "Pricing discussion", "occurred_at": T0,
        "duration_seconds": 640, "person_crm_id": "003000000000001AAA", "account_crm_id": "001D000000IRFmaIAH",
        "campaign_crm_id": None, "campaign_type": None, "created_at": T0, "modified_at": T0, "is_deleted": False,
        "extra": {"Status": "Completed"},
    },
}


def test_round_trip_of_every_crm_entity(engine: Engine) -> None:
    with engine.begin() as conn:
        for table_name, row in FULL_ROWS.items():
            assert upsert(conn, schema.CRM_RECORD_TABLES[table_name], [row]) == 1
    for table_name, row in FULL_ROWS.items():
        (stored,) = read_all(engine, schema.CRM_RECORD_TABLES[table_name])
        for column, value in row.items():
            assert stored[column] == value, (table_name, column)
        assert stored["synced_at"].tzinfo is not None
        assert stored["changed_at"] == stored["synced_at"]


def test_round_trip_of_derived_entities(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert(conn, schema.Account.__table__, [account_row(), account_row("001000000000002AAA", crm="salesforce")])
        upsert(conn, schema.Person.__table__, [FULL_ROWS["people"]])
        account_id, other_id = conn.execute(select(schema.Account.id).order_by(schema.Account.id)).scalars()
        person_id = conn.execute(select(schema.Person.id)).scalar_one()
        rows = {
            schema.Match: {"person_id": person_id, "account_id": account_id, "decision": "auto", "method": "domain",
                           "confidence": 0.97, "reason": "domain acme.com = acme.com; name 0.94; country US",
                           "reasons": {"domain": 4.1, "name": 2.2}, "pinned": False, "matched_at": T0},
            schema.AccountLink: {"account_id": other_id, "canonical_account_id": account_id, "method": "domain",
                                 "confidence": 0.9, "linked_at": T0},
            schema.Score: {"entity_kind": "account", "entity_id": account_id, "engagement": 81.5, "grade": 4,
                           "sales_activity": 40.0, "marketing": 55.0, "fit": 77.0, "predictive": 0.42,
                           "breadth": 3.0, "velocity": 1.8, "trend": "surging", "alignment": "aligned_high",
                           "reasons_text": "3 people attended the pricing webinar", "breakdown": {"webinar": 30},
                           "model_version": 2, "scored_at": T0},
            schema.ScoreHistory: {"entity_kind": "account", "entity_id": account_id, "day": date(2026, 3, 1),
                                  "engagement": 81.5, "grade": 4, "trend": "surging"},
            schema.PredictiveModel: {"target": "account_won", "version": 1, "is_active": True, "trained_at": T0,
                                     "metrics": {"auc": 0.86}, "params": {"horizon_days": 90}, "blob": b"\x00\x01"},
            schema.WritebackState: {"crm": "salesforce", "object": "Account", "crm_id": "001D000000IRFmaIAH",
                                    "field_values": {"ABM_Grade__c": "4", "ABM_Trend__c": None}, "written_at": T0,
                                    "run_id": 1},
            schema.WritebackError: {"crm": "hubspot", "object": "companies", "crm_id": "99", "fields": ["abm_grade"],
                                    "code": "VALIDATION_ERROR", "message": "Property values were not valid",
                                    "attempts": 2, "first_failed_at": T0, "last_failed_at": T0,
                                    "next_retry_at": T0 + timedelta(hours=1), "run_id": 1},
            schema.SyncCursor: {"crm": "salesforce", "object": "Lead", "cursor_ts": T0,
                                "cursor_id": "00Q000000000001AAA", "state": {"mode": "bulk"}, "updated_at": T0},
            schema.Run: {"kind": "incremental", "trigger": "schedule", "state": "succeeded", "options": {},
                         "counts": {"read": 10}, "api_calls": {"salesforce": 3}, "stages": {"pull": {"s": 1.5}},
                         "error": None, "created_at": T0, "started_at": T0, "finished_at": T0, "heartbeat_at": T0},
            schema.Lock: {"name": "pipeline", "holder": "host:123", "acquired_at": T0,
                          "expires_at": T0 + timedelta(minutes=2), "run_id": 1},
        }
        for model, row in rows.items():
            conn.execute(insert(model.__table__), [row])
    for model, row in rows.items():
        (stored,) = read_all(engine, model.__table__)
        for column, value in row.items():
            assert stored[column] == value, (model.__tablename__, column)


def test_reupsert_is_idempotent_and_writes_nothing(engine: Engine) -> None:
    rows = [account_row(to_18(f"001000000000{i:03d}")) for i in range(50)]
    with engine.begin() as conn:
        assert upsert(conn, schema.Account.__table__, rows) == 50
    before = read_all(engine, schema.Account.__table__)
    with engine.begin() as conn:
        assert upsert(conn, schema.Account.__table__, rows, now=T0 + timedelta(days=1)) == 0
    assert read_all(engine, schema.Account.__table__) == before


def test_upsert_updates_only_changed_rows_and_tracks_content_changes(engine: Engine) -> None:
    rows = [account_row(to_18(f"001000000000{i:03d}")) for i in range(10)]
    with engine.begin() as conn:
        upsert(conn, schema.Account.__table__, rows, now=T0)
    later = T0 + timedelta(hours=1)
    changed = [dict(r) for r in rows]
    changed[3]["industry"] = "Retail"  # content change
    changed[7]["modified_at"] = later  # our own writeback bumped the CRM stamp: not content
    with engine.begin() as conn:
        assert upsert(conn, schema.Account.__table__, changed, now=later) == 2
    stored = {r["crm_id"]: r for r in read_all(engine, schema.Account.__table__)}
    assert stored[rows[3]["crm_id"]]["industry"] == "Retail"
    assert stored[rows[3]["crm_id"]]["changed_at"] == later
    assert stored[rows[7]["crm_id"]]["modified_at"] == later
    assert stored[rows[7]["crm_id"]]["changed_at"] == T0
    untouched = [r for crm_id, r in stored.items() if crm_id not in (rows[3]["crm_id"], rows[7]["crm_id"])]
    assert all(r["synced_at"] == T0 and r["changed_at"] == T0 for r in untouched)


def test_salesforce_ids_are_stored_in_18_character_form(engine: Engine) -> None:
    with engine.begin() as conn:
        upsert(conn, schema.Account.__table__,
               [account_row("001D000000IRFma", parent_crm_id="001A0000006Vm9r", owner_crm_id="005000000000001")])
        # the same record under its 18-character id is the same row, not a second one
        upsert(conn, schema.Account.__table__, [account_row("001D000000IRFmaIAH", name="Acme Corp")])
    (stored,) = read_all(engine, schema.Account.__table__)
    assert stored["crm_id"] == "001D000000IRFmaIAH"
    assert stored["name"] == "Acme Corp"
    assert stored["owner_crm_id"] == "005000000000001AAA"


@pytest.mark.parametrize(
    ("id15", "id18"),
    [("001D000000IRFma", "001D000000IRFmaIAH"), ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
     ("003000000000001", "003000000000001AAA")],
)
def test_to_18(id15: str, id18: str) -> None:
    assert to_18(id15) == id18
    assert to_18(id18) == id18
    assert to_18(id18[:15] + id18[15:].lower()) == id18  # the suffix is case-insensitive


@pytest.mark.parametrize("bad", ["", "001", "001D000000IRFma!", "001D000000IRFmaXXX", "001d000000irfmaIAH"])
def test_invalid_salesforce_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSalesforceId):
        to_18(bad)


def test_unicode_and_large_text_survive(engine: Engine) -> None:
    names = ["株式会社トヨタ自動車", "שטראוס גרופ בע״מ", "شركة أرامكو السعودية", "ООО «Ромашка»",
             "Crème Brûlée SàRL 🍮🚀", "Zürich Versicherungs-Gesellschaft AG", "삼성전자 주식회사"]
    big = ("Ünïcødé 測試 🚀 " * 8000)[:100_000]
    rows = [account_row(to_18(f"001000000000{i:03d}"), name=name) for i, name in enumerate(names)]
    rows.append(account_row(to_18("001000000000999"), name="Big", extra={"Description": big}))
    with engine.begin() as conn:
        upsert(conn, schema.Account.__table__, rows)
        conn.execute(insert(schema.Score.__table__), [{"entity_kind": "account", "entity_id": 1, "reasons_text": big}])
    stored = {r["name"]: r for r in read_all(engine, schema.Account.__table__)}
    for name in names:
        assert name in stored
    assert stored["Big"]["extra"]["Description"] == big
    with engine.connect() as conn:
        assert conn.execute(select(schema.Score.reasons_text)).scalar_one() == big


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with pytest.raises(Exception) as excinfo, engine.begin() as conn:
        upsert(conn, schema.Account.__table__, [account_row(created_at=datetime(2026, 3, 1, 12, 0))])
    assert isinstance(excinfo.value, NaiveDatetimeError) or isinstance(
        getattr(excinfo.value, "orig", None), NaiveDatetimeError
    ) or "naive datetime" in str(excinfo.value)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.Account.__table__)).scalar_one() == 0


def test_ensure_utc_converts_explicitly() -> None:
    cet = timezone(timedelta(hours=1))
    assert ensure_utc(datetime(2026, 3, 1, 13, 0), assume=cet) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert ensure_utc(datetime(2026, 3, 1, 13, 0, tzinfo=cet)).tzinfo == UTC
    with pytest.raises(NaiveDatetimeError, match="assume"):
        ensure_utc(datetime(2026, 3, 1, 13, 0))


def test_rows_with_different_columns_are_refused(engine: Engine) -> None:
    rows = [account_row(to_18("001000000000001")), {**account_row(to_18("001000000000002")), "oops": 1}]
    with pytest.raises(ValueError, match="same columns"), engine.begin() as conn:
        upsert(conn, schema.Account.__table__, rows)


def test_omitted_defaulted_columns_apply_to_new_rows_but_never_overwrite(engine: Engine) -> None:
    """A connector that leaves ``is_deleted`` out must not undelete a record deleted earlier."""
    accounts = schema.Account.__table__
    with engine.begin() as conn:
        upsert(conn, accounts, [{"crm": "hubspot", "object": "companies", "crm_id": "1", "name": "A"}])
        conn.execute(accounts.update().values(is_deleted=True))
        upsert(conn, accounts, [{"crm": "hubspot", "object": "companies", "crm_id": "1", "name": "A2"},
                                {"crm": "hubspot", "object": "companies", "crm_id": "2", "name": "B"}])
        rows = dict(conn.execute(select(accounts.c.crm_id, accounts.c.is_deleted).order_by(accounts.c.crm_id)).all())
        names = conn.execute(select(accounts.c.name).order_by(accounts.c.crm_id)).scalars().all()
    assert rows == {"1": True, "2": False} and names == ["A2", "B"]


def test_one_connection_upserts_a_table_with_different_column_sets(engine: Engine) -> None:
    """Two connectors write accounts with different columns through the same pooled connection."""
    accounts = schema.Account.__table__
    with engine.begin() as conn:
        upsert(conn, accounts, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000001AAA",
                                 "name": "A"}])
        upsert(conn, accounts, [{"crm": "hubspot", "object": "companies", "crm_id": "9", "name": "B",
                                 "linked_salesforce_id": "001000000000001AAA"}])
    with engine.begin() as conn:  # and again, in a later transaction on the same connection
        upsert(conn, accounts, [{"crm": "salesforce", "object": "Account", "crm_id": "001000000000001AAA",
                                 "name": "A2"}])
        names = conn.execute(select(accounts.c.name).order_by(accounts.c.crm)).scalars().all()
    assert names == ["B", "A2"]


# -- what an upsert rewrites on SQLite ------------------------------------------------------------
def _touch(crm_id: str, **overrides) -> dict:
    return {"crm": "hubspot", "object": "calls", "crm_id": crm_id, "activity_type": "call_connected",
            "subject": "Intro", "occurred_at": T0, "person_crm_id": "P1", "account_crm_id": "C1", **overrides}


def test_every_indexed_column_of_the_database_is_known_to_the_upsert(tmp_path) -> None:
    """The conflict update leaves the columns an index reads to a second statement (store.upsert): an
    index the schema does not declare (added by a migration alone) would be left stale by neither."""
    eng = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    migrate.upgrade(eng)
    with eng.connect() as conn:
        for table in schema.Base.metadata.sorted_tables:
            known = indexed_columns(table)
            names = set(table.c.keys())
            for _, index, *_ in conn.exec_driver_sql(f'PRAGMA index_list("{table.name}")').all():
                read = {row[2] for row in conn.exec_driver_sql(f'PRAGMA index_info("{index}")')}
                sql = conn.execute(select(text("sql")).select_from(text("sqlite_master"))
                                   .where(text("name = :n")).params(n=index)).scalar_one_or_none()
                if sql and " WHERE " in sql.upper():
                    condition = sql[sql.upper().index(" WHERE "):]
                    read |= {n for n in names if re.search(rf'\b{re.escape(n)}\b', condition)}
                assert read <= known, (table.name, index, read - known)
    eng.dispose()


def test_the_conflict_update_on_sqlite_sets_no_indexed_column_but_the_bookkeeping() -> None:
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from store.upsert import _sqlite_statement
    table = schema.Activity.__table__
    columns = tuple(_touch("T1")) + ("synced_at", "changed_at", "is_deleted")  # as upsert() completes them
    sql, _, indexed = _sqlite_statement(sqlite_dialect.dialect(), table, columns, ("crm", "object", "crm_id"),
                                        frozenset({"is_deleted"}))
    assigned = set(re.findall(r"(\w+) = ", sql.split(" DO UPDATE SET ")[1].split(" WHERE ")[0]))
    assert assigned & indexed_columns(table) == {"changed_at"}
    assert indexed is not None
    assert {"occurred_at", "person_crm_id", "account_crm_id", "activity_type"} <= set(
        re.findall(r'"(\w+)" = ', indexed[0].split(" WHERE ")[0]))


def test_an_indexed_column_changed_alone_is_rewritten_with_its_index(engine: Engine) -> None:
    later, latest = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    with engine.begin() as conn:
        upsert(conn, schema.Activity.__table__, [_touch(f"T{i}") for i in range(4)], now=T0)
    with engine.begin() as conn:
        written = upsert(conn, schema.Activity.__table__, [
            _touch("T0"),  # as it was
            _touch("T1", subject="Demo"),  # a column no index reads
            _touch("T2", occurred_at=later),  # an indexed column alone
            _touch("T3", subject="Demo", person_crm_id="P2", account_crm_id=None),  # both
            _touch("T4", occurred_at=later),  # a new one beside them
        ], now=latest)
    assert written == 4
    stored = {r["crm_id"]: r for r in read_all(engine, schema.Activity.__table__)}
    def values(crm_id: str, *columns: str) -> tuple:
        return tuple(stored[crm_id][c] for c in columns)

    assert values("T0", "synced_at", "changed_at") == (T0, T0)
    assert values("T1", "subject", "occurred_at", "changed_at") == ("Demo", T0, latest)
    assert values("T2", "subject", "occurred_at", "changed_at") == ("Intro", later, latest)
    assert values("T3", "subject", "person_crm_id", "account_crm_id") == ("Demo", "P2", None)
    assert all(stored[k]["synced_at"] == latest for k in ("T1", "T2", "T3", "T4"))
    with engine.connect() as conn:
        def found(condition) -> list[str]:  # the indexes answer as the rows do
            return sorted(conn.execute(select(schema.Activity.crm_id).where(condition)).scalars())

        assert found(schema.Activity.occurred_at == later) == ["T2", "T4"]
        assert found(schema.Activity.person_crm_id == "P2") == ["T3"]
        assert found(schema.Activity.changed_at == latest) == ["T1", "T2", "T3", "T4"]
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_a_batch_adding_a_row_still_rewrites_the_one_row_it_moves(engine: Engine) -> None:
    """The second statement is skipped for batches that only added rows: one update among them counts."""
    with engine.begin() as conn:
        upsert(conn, schema.Activity.__table__, [_touch("T1")], now=T0)
    with engine.begin() as conn:
        assert upsert(conn, schema.Activity.__table__, [_touch("T1", person_crm_id="P2"), _touch("T2")]) == 2
    with engine.connect() as conn:
        moved = select(schema.Activity.crm_id, schema.Activity.person_crm_id).order_by(schema.Activity.crm_id)
        assert conn.execute(moved).all() == [("T1", "P2"), ("T2", "P1")]


def test_rows_whose_every_updated_column_is_indexed_are_inserted_and_updated(engine: Engine) -> None:
    """On SQLite the conflict update leaves indexed columns to a second statement; with nothing else to set
    it must insert new rows and leave the rest to that statement, not fail to build (a match's account and
    decision are both indexed)."""
    with engine.begin() as conn:
        upsert(conn, schema.Person.__table__, [{"crm": "salesforce", "object": "Lead", "crm_id": f"00Q{n:015d}",
                                                "kind": "lead"} for n in range(3)])
        people = conn.execute(select(schema.Person.id).order_by(schema.Person.id)).scalars().all()
        first = upsert(conn, schema.Match.__table__, [{"person_id": p, "account_id": None, "decision": "none"}
                                                       for p in people[:2]], key=("person_id",))
        again = upsert(conn, schema.Match.__table__, [
            {"person_id": people[0], "account_id": None, "decision": "none"},  # as it was
            {"person_id": people[1], "account_id": None, "decision": "review"},  # changed
            {"person_id": people[2], "account_id": None, "decision": "auto"}], key=("person_id",))  # new
        stored = dict(conn.execute(select(schema.Match.person_id, schema.Match.decision)).all())
    assert (first, again) == (2, 2)
    assert stored == {people[0]: "none", people[1]: "review", people[2]: "auto"}


def test_an_upsert_can_rewrite_rows_only_when_named_columns_change_and_tell_which_it_wrote(engine: Engine) -> None:
    """A score row's ``scored_at`` is new on every save: it rides along with a change of the visible values and
    never rewrites a row alone; the keys of the rows written come back (single and composite keys alike)."""
    def match(person: int, decision: str, confidence: float) -> dict:
        return {"person_id": person, "account_id": None, "decision": decision, "confidence": confidence}

    with engine.begin() as conn:
        upsert(conn, schema.Person.__table__, [{"crm": "salesforce", "object": "Lead", "crm_id": f"00Q{n:015d}",
                                                "kind": "lead"} for n in range(4)])
        people = conn.execute(select(schema.Person.id).order_by(schema.Person.id)).scalars().all()
        written: list = []
        assert upsert(conn, schema.Match.__table__, [match(p, "none", 0.1) for p in people[:3]], key=("person_id",),
                      indexed_apart=False, changed_when=("decision",), written_keys=written) == 3
        assert written == people[:3]
        written.clear()
        again = upsert(conn, schema.Match.__table__, [
            match(people[0], "none", 0.1),  # as it was
            match(people[1], "none", 0.9),  # only a column that does not count: left as it was
            match(people[2], "review", 0.5),  # changed
            match(people[3], "auto", 0.8)], key=("person_id",), indexed_apart=False,  # new
            changed_when=("decision",), written_keys=written)
        assert (again, written) == (2, [people[2], people[3]])
        stored = {p: (d, c) for p, d, c in conn.execute(select(schema.Match.person_id, schema.Match.decision,
                                                                schema.Match.confidence))}
        assert stored == {people[0]: ("none", 0.1), people[1]: ("none", 0.1), people[2]: ("review", 0.5),
                          people[3]: ("auto", 0.8)}
        scores: list = []
        row = {"entity_kind": "account", "entity_id": 7, "engagement": 1.0, "scored_at": T0}
        upsert(conn, schema.Score.__table__, [row, {**row, "entity_id": 8}], key=("entity_kind", "entity_id"),
               indexed_apart=False, changed_when=("engagement",), written_keys=scores)
        upsert(conn, schema.Score.__table__, [{**row, "scored_at": T0 + timedelta(hours=1)},
                                              {**row, "entity_id": 8, "engagement": 2.0}],
               key=("entity_kind", "entity_id"), indexed_apart=False, changed_when=("engagement",),
               written_keys=scores)
        assert [tuple(k) for k in scores] == [("account", 7), ("account", 8), ("account", 8)]
        with pytest.raises(ValueError, match="changed_when names column"):
            upsert(conn, schema.Match.__table__, [match(people[0], "none", 0.1)], key=("person_id",),
                   changed_when=("pinned_by",))


def test_a_prepared_upsert_writes_rows_converted_apart_as_upsert_would(engine: Engine) -> None:
    """Rows converted to driver values by another process (a forked one, here) and written by this one end as
    upsert() would leave them, with the keys written told alike; rows it cannot write as given are refused."""
    row = {"entity_kind": "account", "entity_id": 7, "engagement": 1.0, "breakdown": {"a": [1, 2]}, "scored_at": T0}
    first = [row, {**row, "entity_id": 8}]
    then = [{**row, "scored_at": T0 + timedelta(hours=1)},  # no compared column changed: left as it was
            {**row, "entity_id": 8, "engagement": 2.0, "scored_at": T0 + timedelta(hours=1)},
            {**row, "entity_kind": "person", "entity_id": 7}]
    options = {"key": ("entity_kind", "entity_id"), "indexed_apart": False, "changed_when": ("engagement",)}
    stored = []
    for prepared_apart in (False, True):
        with engine.connect() as conn:
            written: list = []
            for rows in (first, then):
                if prepared_apart:
                    prepared = PreparedUpsert(conn, schema.Score.__table__, tuple(row), **options)
                    with Forked(lambda p=prepared, rows=rows: p.driver_values(rows)) as job:  # no connection there
                        values = job.result()
                    prepared.write(values, written)
                else:
                    upsert(conn, schema.Score.__table__, rows, **options, written_keys=written)
            stored.append((conn.execute(select(schema.Score.entity_kind, schema.Score.entity_id,
                                               schema.Score.engagement, schema.Score.breakdown,
                                               schema.Score.scored_at).order_by(schema.Score.id)).all(),
                           [tuple(k) for k in written]))
            conn.rollback()
    assert stored[1] == stored[0]
    assert stored[0][1] == [("account", 7), ("account", 8), ("account", 8), ("person", 7)]
    assert stored[0][0][0] == ("account", 7, 1.0, {"a": [1, 2]}, T0)
    with engine.connect() as conn:
        prepared = PreparedUpsert(conn, schema.Score.__table__, tuple(row), **options)
        with pytest.raises(ValueError, match="every row must have the columns"):
            prepared.driver_values([{**row, "fit": 3.0}])
        with pytest.raises(ValueError, match="need upsert"):  # its synced_at and changed_at are filled in there
            PreparedUpsert(conn, schema.Person.__table__, ("crm", "object", "crm_id"), key=("crm", "object", "crm_id"))
