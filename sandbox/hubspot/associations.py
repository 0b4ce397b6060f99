"""Associations between records, stored in both directions with HubSpot's association type ids.

HubSpot keeps an association once per direction, each with its own type id (contact→company
279, company→contact 280...). Creating or removing one direction does the same to the other,
and none of it touches the records' ``hs_lastmodifieddate``: connectors must find association
changes another way, which is exactly the trap the sandbox has to reproduce.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sandbox.storage import Storage

TABLE = "hs_associations"
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"


@dataclass(frozen=True)
class AssociationType:
    from_type: str
    to_type: str
    type_id: int
    inverse_id: int
    label: str | None
    v3_name: str


def _pair(a: str, b: str, ab: int, ba: int, a1: str, b1: str, label: str | None = None,
          suffix: str = "") -> list[AssociationType]:
    return [AssociationType(a, b, ab, ba, label, f"{a1}_to_{b1}{suffix}"),
            AssociationType(b, a, ba, ab, label, f"{b1}_to_{a1}{suffix}")]


def _types() -> list[AssociationType]:
    out = _pair("contacts", "companies", 279, 280, "contact", "company", suffix="_unlabeled")
    out += _pair("contacts", "companies", 1, 2, "contact", "company", "Primary")
    out += _pair("deals", "contacts", 3, 4, "deal", "contact")
    out += _pair("deals", "companies", 341, 342, "deal", "company", suffix="_unlabeled")
    out += _pair("deals", "companies", 5, 6, "deal", "company", "Primary")
    out += [AssociationType("companies", "companies", 13, 14, "Child Company", "parent_to_child_company"),
            AssociationType("companies", "companies", 14, 13, "Parent Company", "child_to_parent_company")]
    engagement_ids = {  # (company->x, contact->x, deal->x); x->... is each id + 1
        ("calls", "call"): (181, 193, 205), ("emails", "email"): (185, 197, 209),
        ("meetings", "meeting"): (187, 199, 211), ("notes", "note"): (189, 201, 213),
        ("tasks", "task"): (191, 203, 215),
    }
    for (plural, singular), (company_id, contact_id, deal_id) in engagement_ids.items():
        out += _pair("companies", plural, company_id, company_id + 1, "company", singular)
        out += _pair("contacts", plural, contact_id, contact_id + 1, "contact", singular)
        out += _pair("deals", plural, deal_id, deal_id + 1, "deal", singular)
    return out


ASSOCIATION_TYPES: dict[int, AssociationType] = {t.type_id: t for t in _types()}


def default_type(from_type: str, to_type: str) -> AssociationType | None:
    """The unlabeled (default) type HubSpot uses for a pair; company→company defaults to child→parent."""
    candidates = [t for t in ASSOCIATION_TYPES.values() if t.from_type == from_type and t.to_type == to_type]
    unlabeled = [t for t in candidates if t.label is None]
    if unlabeled:
        return unlabeled[0]
    if from_type == to_type == "companies":
        return ASSOCIATION_TYPES[14]
    return None


def types_between(from_type: str, to_type: str) -> list[AssociationType]:
    return [t for t in ASSOCIATION_TYPES.values() if t.from_type == from_type and t.to_type == to_type]


@dataclass(frozen=True)
class Association:
    to_id: int
    type_ids: tuple[int, ...]


class AssociationStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        storage.create_table(TABLE, {"key": "TEXT", "from_type": "TEXT", "from_id": "INTEGER", "to_type": "TEXT",
                                     "to_id": "INTEGER", "type_id": "INTEGER"}, "key")
        storage.create_index(TABLE, ["from_type", "from_id", "to_type", "to_id"])

    @staticmethod
    def _rows(from_type: str, from_id: int, to_type: str, to_id: int, kind: AssociationType) -> list[tuple]:
        return [
            (f"{from_type}:{from_id}:{to_type}:{to_id}:{kind.type_id}", from_type, from_id, to_type, to_id,
             kind.type_id),
            (f"{to_type}:{to_id}:{from_type}:{from_id}:{kind.inverse_id}", to_type, to_id, from_type, from_id,
             kind.inverse_id),
        ]

    def add(self, from_type: str, from_id: int, to_type: str, to_id: int, kind: AssociationType) -> None:
        self.add_many([(from_type, from_id, to_type, to_id, kind)])

    def add_many(self, items: Iterable[tuple[str, int, str, int, AssociationType]]) -> int:
        rows: list[tuple] = []
        for from_type, from_id, to_type, to_id, kind in items:
            rows.extend(self._rows(from_type, from_id, to_type, to_id, kind))
        with self.storage.transaction() as conn:
            conn.executemany(
                f'INSERT OR IGNORE INTO {TABLE} ("key", from_type, from_id, to_type, to_id, type_id) '
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows) // 2

    def remove(self, from_type: str, from_id: int, to_type: str, to_id: int,
               type_ids: Sequence[int] | None = None) -> None:
        """Remove associations (all types, or only ``type_ids``) in both directions."""
        kinds = [ASSOCIATION_TYPES[t] for t in type_ids] if type_ids else None
        with self.storage.transaction() as conn:
            if kinds is None:
                conn.execute(f"DELETE FROM {TABLE} WHERE from_type=? AND from_id=? AND to_type=? AND to_id=?",
                             (from_type, from_id, to_type, to_id))
                conn.execute(f"DELETE FROM {TABLE} WHERE from_type=? AND from_id=? AND to_type=? AND to_id=?",
                             (to_type, to_id, from_type, from_id))
                return
            for kind in kinds:
                for row in self._rows(from_type, from_id, to_type, to_id, kind):
                    conn.execute(f'DELETE FROM {TABLE} WHERE "key" = ?', (row[0],))

    def targets(self, from_type: str, from_id: int, to_type: str, after: int = 0,
                limit: int | None = None) -> list[Association]:
        """Associated records of ``to_type`` ordered by id, from ``after`` (inclusive)."""
        rows = self.storage.fetchall(
            f"SELECT to_id, type_id FROM {TABLE} WHERE from_type=? AND from_id=? AND to_type=? AND to_id >= ? "
            "ORDER BY to_id, type_id", (from_type, from_id, to_type, after))
        grouped: dict[int, list[int]] = {}
        for to_id, type_id in rows:
            grouped.setdefault(int(to_id), []).append(int(type_id))
            if limit is not None and len(grouped) > limit:
                break
        return [Association(k, tuple(v)) for k, v in grouped.items()]

    def targets_for(self, from_type: str, from_ids: Sequence[int], to_type: str) -> dict[int, list[Association]]:
        """Associations of many records at once (list pages with ``associations=``)."""
        out: dict[int, dict[int, list[int]]] = {}
        for start in range(0, len(from_ids), 500):
            part = list(from_ids[start:start + 500])
            marks = ",".join("?" for _ in part)
            for from_id, to_id, type_id in self.storage.fetchall(
                f"SELECT from_id, to_id, type_id FROM {TABLE} WHERE from_type=? AND to_type=? AND from_id IN "
                f"({marks}) ORDER BY from_id, to_id, type_id", [from_type, to_type, *part]):
                out.setdefault(int(from_id), {}).setdefault(int(to_id), []).append(int(type_id))
        return {k: [Association(t, tuple(ids)) for t, ids in v.items()] for k, v in out.items()}

    def move(self, object_type: str, loser_id: int, winner_id: int) -> None:
        """A merge: every association of the loser now belongs to the winner (no self-associations)."""
        rows = self.storage.fetchall(f"SELECT to_type, to_id, type_id FROM {TABLE} WHERE from_type=? AND from_id=?",
                                     (object_type, loser_id))
        with self.storage.transaction() as conn:
            conn.execute(f"DELETE FROM {TABLE} WHERE from_type=? AND from_id=?", (object_type, loser_id))
            conn.execute(f"DELETE FROM {TABLE} WHERE to_type=? AND to_id=?", (object_type, loser_id))
        self.add_many((object_type, winner_id, to_type, int(to_id), ASSOCIATION_TYPES[int(type_id)])
                      for to_type, to_id, type_id in rows
                      if not (to_type == object_type and int(to_id) == winner_id))
