"""Reading what to write from the store: scored records of one CRM object, as plain rows.

Accounts linked across CRMs (``account_links``) show their canonical account's scores in both
CRMs: a rep looking at the same business in Salesforce and in HubSpot must see one score, not
two that disagree. A person's matched account is written as that account's record in the
person's own CRM (the account itself, or the account linked to it there).

``changed_since`` (an incremental run) keeps the records whose score changed after it (``scored_at``
moves only when a visible score does), people whose match was written after it, and records with a
pending write error (their retry must not wait for a full run): a run that rescored a thousand
accounts reads a thousand targets, not a million.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, or_, select, union
from sqlalchemy.orm import aliased

from store.cursor_rows import driver_batches
from store.json_codec import loads as json_loads
from store.schema import Account, AccountLink, Match, Person, Score, WritebackError, WritebackState
from store.types import stored_utc
from writeback.values import MatchValues, ScoreValues, TargetRecord

SCORE_COLUMNS = ("engagement", "sales_activity", "marketing", "fit", "grade", "predictive", "trend", "alignment",
                 "reasons_text", "scored_at")  # the order of ScoreValues' fields
CANONICAL_AT = 1 + len(SCORE_COLUMNS) + 1  # after crm_id and the account's own scores and id
# Records read, diffed and let go at a time.
TARGET_CHUNK = 50_000


def _score_columns(alias: Any) -> list[Any]:
    """The score columns of ``alias`` and its id last, read back by position with :func:`_score`."""
    return [getattr(alias, name) for name in SCORE_COLUMNS] + [alias.id]


# A score's scored_at as stored, parsed once per value: scored_at is the time of the run that last changed the score,
# so the targets share a few (an increment's are mostly its own run's). Parsed each time: 2.5 µs a target against
# 0.1, for the 136,000 Salesforce targets of the L org's 1% increment.
_scored_at = lru_cache(maxsize=4096)(stored_utc)


def _score(row: Any, start: int) -> ScoreValues | None:
    # by position: building a row's name mapping costs more than everything else done with it
    if row[start + len(SCORE_COLUMNS)] is None:
        return None
    end = start + len(SCORE_COLUMNS) - 1  # scored_at, last
    return ScoreValues(*row[start:end], _scored_at(row[end]))


def _linked_group(conn: Connection, account_ids: Collection[int]) -> set[int]:
    """``account_ids`` plus every account linked to the same canonical account."""
    ids = set(account_ids)
    links = conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all()
    canonical = {a: c for a, c in links}
    roots = {canonical.get(i, i) for i in ids}
    ids |= roots
    ids |= {a for a, c in links if c in roots}
    return ids


def _pending_errors(crm: str, obj: str) -> Any:
    return select(WritebackError.crm_id).where(WritebackError.crm == crm, WritebackError.object == obj)


def _rescored(kind: str, changed_since: datetime) -> Select:
    """Ids of the ``kind`` entities whose visible score changed after ``changed_since``.

    Read through ``ix_scores_rescored``: a set the object's records are tested against (see
    :func:`_of_object`), not a score read per record.
    """
    return select(Score.entity_id).where(Score.entity_kind == kind, Score.scored_at > changed_since)


def _of_object(table: Any, crm: str, obj: str) -> list[Any]:
    """The terms keeping one CRM object's records: they lead every pass, full or incremental, through the
    object's unique index in ``crm_id`` order.

    An incremental pass so walks the object's index entries and tests each one's id against the changed ids
    (the entries hold the id: no record is read for that), then reads the changed records it keeps, already
    in order. Led by the changed ids instead (the terms kept from any index with SQLite's ``|| ''`` idiom),
    it read every changed entity's score of every object of the kind, once per object, then sorted: on the
    L org's 1% increment (170,000 people changed, 97,000 of them Salesforce Contacts) the three people
    objects' queries took 2.06 s that way, 1.70 s this way, and the two account objects' 0.83 s against
    0.73 s. With nothing changed, walking the 500,000 Contacts' entries costs 0.05 s, the five objects' 0.2 s.
    """
    return [table.crm == crm, table.object == obj]


def _accounts_query(crm: str, obj: str, changed_since: datetime | None) -> Select:
    """Scored, live accounts of ``crm`` ``obj`` (or those changed since ``changed_since``)."""
    own = aliased(Score)
    canon = aliased(Score)
    query = (
        select(Account.crm_id, *_score_columns(own), *_score_columns(canon))
        .select_from(Account)
        .outerjoin(AccountLink, AccountLink.account_id == Account.id)
        .outerjoin(own, and_(own.entity_kind == "account", own.entity_id == Account.id))
        .outerjoin(canon, and_(canon.entity_kind == "account", canon.entity_id == AccountLink.canonical_account_id))
        .where(*_of_object(Account, crm, obj), Account.is_deleted.is_(False),
               Account.merged_into.is_(None), or_(own.id.isnot(None), canon.id.isnot(None)))
        .order_by(Account.crm_id)
    )
    if changed_since is not None:
        rescored = _rescored("account", changed_since)
        changed = union(
            rescored,
            select(AccountLink.account_id).where(AccountLink.canonical_account_id.in_(rescored)),  # shown through
            select(Account.id).where(Account.crm == crm, Account.object == obj,
                                     Account.crm_id.in_(_pending_errors(crm, obj))),
        )
        query = query.where(Account.id.in_(changed))
    return query


def _account_record(row: Any) -> TargetRecord:
    score = _score(row, CANONICAL_AT) or _score(row, 1)
    assert score is not None
    return TargetRecord(row[0], score)


class _AccountInCrm:
    """Finds the record of an account in another CRM through the cross-CRM links."""

    def __init__(self, conn: Connection) -> None:
        rows = conn.execute(
            select(AccountLink.account_id, AccountLink.canonical_account_id, Account.crm, Account.crm_id)
            .join(Account, Account.id == AccountLink.account_id)
            .where(Account.is_deleted.is_(False))
        ).all()
        self.canonical = {r.account_id: r.canonical_account_id for r in rows}
        self.members: dict[tuple[int, str], str] = {}
        for r in rows:
            self.members.setdefault((r.canonical_account_id, r.crm), r.crm_id)
        canonical_ids = set(self.canonical.values())
        if canonical_ids:
            for account_id, account_crm, crm_id in conn.execute(
                select(Account.id, Account.crm, Account.crm_id).where(Account.id.in_(sorted(canonical_ids)),
                                                                      Account.is_deleted.is_(False))
            ):
                self.members[(account_id, account_crm)] = crm_id  # the canonical record itself wins

    def find(self, account_id: int, crm: str) -> str | None:
        return self.members.get((self.canonical.get(account_id, account_id), crm))


def _people_query(crm: str, obj: str, changed_since: datetime | None) -> Select:
    """Scored, live people of ``crm`` ``obj`` with their match (or those changed since
    ``changed_since``). Converted leads are left out: Salesforce refuses writes to them."""
    matched = aliased(Account)
    query = (
        select(Person.crm_id, *_score_columns(Score), Match.decision, Match.account_id, Match.confidence,
               Match.reason, matched.crm.label("m_crm"), matched.crm_id.label("m_crm_id"),
               matched.is_deleted.label("m_deleted"))
        .select_from(Person)
        .join(Score, and_(Score.entity_kind == "person", Score.entity_id == Person.id))
        .outerjoin(Match, Match.person_id == Person.id)
        .outerjoin(matched, matched.id == Match.account_id)
        .where(*_of_object(Person, crm, obj), Person.is_deleted.is_(False),
               Person.merged_into.is_(None), Person.is_converted.is_(False))
        .order_by(Person.crm_id)
    )
    if changed_since is not None:
        changed = union(
            _rescored("person", changed_since),
            select(Match.person_id).where(Match.matched_at > changed_since),
            select(Person.id).where(Person.crm == crm, Person.object == obj,
                                    Person.crm_id.in_(_pending_errors(crm, obj))),
        )
        query = query.where(Person.id.in_(changed))
    return query


class _PersonRecords:
    """Turns people rows into records; a match to another CRM's account is looked up through the
    cross-CRM links, read the first time one is met."""

    def __init__(self, conn: Connection, crm: str) -> None:
        self.conn = conn
        self.crm = crm
        self._other_crm: _AccountInCrm | None = None

    def __call__(self, rows: Sequence[Any]) -> list[TargetRecord]:
        crm = self.crm
        records = []
        end = 1 + len(SCORE_COLUMNS)
        for row in rows:
            # by position, as in _score: an incremental L run reads a hundred thousand of these rows
            match = None
            decision, account_id, confidence, reason, m_crm, m_crm_id, m_deleted = row[end + 1:end + 8]
            if decision is not None:
                account_crm_id = None
                if account_id is not None and not m_deleted:
                    if m_crm == crm:
                        account_crm_id = m_crm_id
                    else:
                        if self._other_crm is None:
                            self._other_crm = _AccountInCrm(self.conn)
                        account_crm_id = self._other_crm.find(account_id, crm)
                match = MatchValues(decision, account_crm_id, confidence, reason)
            score = ScoreValues(*row[1:end - 1], _scored_at(row[end - 1]))
            records.append(TargetRecord(row[0], score, match))  # the inner join: a score
        return records


Baseline = dict[str, dict[str, "str | None"]]


def iter_targets(engine: Engine, crm: str, obj: str, kind: str, account_ids: Collection[int] | None = None,
                 changed_since: datetime | None = None,
                 chunk: int | None = None) -> Iterator[tuple[list[TargetRecord], Baseline]]:
    """The records of one CRM object to write, whichever kind of record it holds, in lists of at most
    ``chunk`` records (default ``TARGET_CHUNK``) in ``crm_id`` order, read as the query streams them, each
    list with its records' baseline (``crm_id`` -> the values last written to the record; a record never
    written has none), read by the same query.

    ``account_ids`` (store ids) keeps the accounts among them and their linked records, or the people
    matched to them. A full pass over the L org's 500,000 Contacts held every row and every record at
    once, with their baseline: the writeback's peak memory. Chunks keep one slice of each.

    Read apart, by the chunk's ids (:meth:`writeback.state.WritebackLedger.baseline`), the baselines of the
    L org's 1% increment cost the planning 1.0 s of its 3.5 s for the 98,000 Salesforce Contacts, most of it
    in the IN lists' statements and their result rows; joined, each is one more lookup of a row the query
    reads anyway, decoded here.
    """
    if kind == "account":
        query = _with_baseline(_accounts_query(crm, obj, changed_since), crm, obj, Account.crm_id)
    else:
        query = _with_baseline(_people_query(crm, obj, changed_since), crm, obj, Person.crm_id)
    with engine.connect() as conn:
        if account_ids is not None:
            scope = sorted(_linked_group(conn, account_ids))
            query = query.where(Account.id.in_(scope) if kind == "account" else Match.account_id.in_(scope))
        convert = ((lambda rows: [_account_record(row) for row in rows]) if kind == "account"
                   else _PersonRecords(conn, crm))
        # the driver's rows: SQLAlchemy's result rows and its SQLite timestamp parsing took 4.5 s of the L org's 1%
        # increment's write-back (py-spy), beside its 3 s of running the queries
        for rows in driver_batches(conn, query, chunk or TARGET_CHUNK):
            yield convert(rows), _baseline_of(rows)


def _with_baseline(query: Select, crm: str, obj: str, crm_id: Any) -> Select:
    """``query`` with the record's baseline last, NULL when it was never written."""
    return query.add_columns(WritebackState.field_values).outerjoin(
        WritebackState, and_(WritebackState.crm == crm, WritebackState.object == obj, WritebackState.crm_id == crm_id))


def _baseline_of(rows: list[tuple]) -> Baseline:
    # SQLite's driver gives the JSON text; PostgreSQL's (and SQLAlchemy, for its first rows) the decoded value
    return {row[0]: (json_loads(values) if isinstance(values, str | bytes) else values)
            for row in rows if (values := row[-1]) is not None}
