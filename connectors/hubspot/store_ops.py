"""What the HubSpot pull does to the store besides upserting rows: deletes, merges, event links.

Deletes and merges are UPDATEs of rows already stored, never inserts: a record archived or
merged away before abm-sync first saw it has nothing to flag, and an UPDATE keeps every other
column (a merge's ``merged_into`` survives the archive flag HubSpot also sets on the loser).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, case, func, select, update

from connectors.hubspot.objects import CRM
from store.schema import CRM_RECORD_TABLES, Activity, Opportunity, Person
from store.types import utcnow
from store.upsert import upsert

CHUNK = 500  # ids per IN (...) list, far below every driver's parameter limit


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


def write_rows(conn: Connection, table_name: str, rows: list[dict[str, Any]]) -> int:
    return upsert(conn, CRM_RECORD_TABLES[table_name], rows) if rows else 0


def stored_count(conn: Connection, table_name: str, object_name: str) -> int:
    """How many records of one object the store holds, archived ones included (to choose between search
    and list, and to pace the association sweep: an estimate of the object's size is all they need).

    Archived records are few, and counting them too reads the (crm, object, crm_id) index alone:
    leaving them out visits every row, 0.45 s instead of 0.08 s for the L org's 824,000 contacts,
    about 4 s for all the objects of one pull.
    """
    table: Table = CRM_RECORD_TABLES[table_name]
    return int(conn.execute(
        select(func.count()).select_from(table).where(table.c.crm == CRM, table.c.object == object_name)
    ).scalar_one())


def flag_deleted(conn: Connection, table_name: str, object_name: str, ids: Sequence[str]) -> int:
    """Mark stored rows deleted (archived in HubSpot, or no longer an activity); returns rows changed."""
    table: Table = CRM_RECORD_TABLES[table_name]
    now = utcnow()
    changed = 0
    for part in _chunks(sorted(set(ids))):
        changed += conn.execute(
            update(table)
            .where(table.c.crm == CRM, table.c.object == object_name, table.c.crm_id.in_(part),
                   table.c.is_deleted.is_(False))
            .values(is_deleted=True, changed_at=now, synced_at=now)
        ).rowcount
    return changed


# Columns that point at a merged-away record and must follow it to the record it merged into.
_REFERENCES: dict[str, list[tuple[Table, str]]] = {
    "companies": [(Person.__table__, "account_crm_id"), (Opportunity.__table__, "account_crm_id"),
                  (Activity.__table__, "account_crm_id")],
    "contacts": [(Activity.__table__, "person_crm_id")],
}


def apply_merges(conn: Connection, table_name: str, object_name: str, losers: Mapping[str, str],
                 repointed: Collection[str] = ()) -> int:
    """Flag merged-away records (``loser -> winner``) and repoint the rows that referenced them; returns the
    records flagged. ``repointed``: losers whose references this pull already moved (flagging is cheap and done
    again, as a loser can be re-read as a live row after its winner; the repointing reads a whole table).

    HubSpot moves a loser's associations to the winner without touching the records on the
    other side, so without the repointing those rows would keep a dead id until swept. A touch's store id
    resolved from the key (``person_ref``, ``account_ref``) is voided with it and resolved again
    (:mod:`store.touch_refs`), or the touch would still count for the merged-away record.
    """
    if not losers:
        return 0
    table: Table = CRM_RECORD_TABLES[table_name]
    now = utcnow()
    changed = 0
    statement = (
        update(table)
        .where(table.c.crm == CRM, table.c.object == object_name, table.c.crm_id == bindparam("loser"),
               (table.c.is_deleted.is_(False)) | (table.c.merged_into.is_distinct_from(bindparam("winner"))))
        .values(is_deleted=True, merged_into=bindparam("winner"), changed_at=now, synced_at=now)
    )
    pairs = [{"loser": loser, "winner": winner} for loser, winner in sorted(losers.items())]
    for pair in pairs:
        changed += conn.execute(statement, pair).rowcount
    to_repoint = sorted(set(losers) - set(repointed))
    for ref_table, column in _REFERENCES.get(object_name, []):
        key = ref_table.c[column]
        voided = {c.name: None for c in ref_table.c if c.info.get("resolved_from") == column}
        # One statement a chunk of losers, not one a loser: the key has no index of its own (an index on every
        # touch's keys costs each of millions of touches written), so each statement reads the whole table.
        for part in _chunks(to_repoint):
            conn.execute(update(ref_table).where(ref_table.c.crm == CRM, key.in_(part))
                         .values({column: case({loser: losers[loser] for loser in part}, value=key),
                                  "changed_at": now, **voided}))
    return changed


def contacts_by_email(conn: Connection, emails: Iterable[str]) -> dict[str, str]:
    """Live HubSpot contacts by (lower-case) email address, for marketing email events.

    Looked up by email alone, the rest checked here: with crm and object in the query too, SQLite's
    planner (no statistics) walked every HubSpot contact for each chunk of addresses (5 s of an L
    increment's pull for 10,000 email events) instead of reading the few rows ``ix_people_email`` names.
    """
    wanted = sorted({e for e in emails if e})
    out: dict[str, str] = {}
    people = Person.__table__
    for part in _chunks(wanted):
        rows = conn.execute(select(people.c.email, people.c.crm_id, people.c.crm, people.c.object,
                                   people.c.is_deleted).where(people.c.email.in_(part)))
        for email, crm_id, crm, object_name, deleted in rows:
            key = email.lower()
            # two contacts with one address: the last in crm_id order, as the object's own index reads them
            if crm == CRM and object_name == "contacts" and not deleted and crm_id > out.get(key, ""):
                out[key] = crm_id
    return out


def link_email_events(conn: Connection, object_name: str) -> int:
    """Give email events stored before their recipient's contact was known their contact id."""
    activities = Activity.__table__
    rows = conn.execute(
        select(activities.c.crm_id, activities.c.extra).where(
            activities.c.crm == CRM, activities.c.object == object_name, activities.c.person_crm_id.is_(None),
            activities.c.is_deleted.is_(False),
        )
    ).all()
    recipients = {crm_id: (extra or {}).get("recipient") for crm_id, extra in rows}
    known = contacts_by_email(conn, [r for r in recipients.values() if r])
    updates = [{"event": crm_id, "person": known[r]} for crm_id, r in recipients.items() if r in known]
    if updates:
        conn.execute(
            update(activities)
            .where(and_(activities.c.crm == CRM, activities.c.object == object_name,
                        activities.c.crm_id == bindparam("event")))
            .values(person_crm_id=bindparam("person"), changed_at=utcnow()),
            updates,
        )
    return len(updates)
