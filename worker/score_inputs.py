"""Loading the scoring inputs from the store: accounts, people, matches, links, deals and touches.

Accounts and deals are read as records (hundreds of thousands at most, and scoring needs their
fields); people (millions) as columns of the driver's tuples, with times turned into epoch seconds
by the database (see :class:`scoring.inputs.PeopleColumns`), or from the copy of them kept between
runs and the people changed since (:mod:`worker.kept_people`, with their titles' persona codes in
:mod:`worker.kept_titles`); the match table as columns (:class:`scoring.inputs.MatchColumns`), kept between
runs too (:mod:`worker.kept_matches`).
Touches can be tens of millions, so they are streamed in batches straight from the driver's cursor
(:mod:`store.cursor_rows`) into numpy columns of 29 bytes a touch (:mod:`worker.kept_touches`, which
also keeps them between runs): the database turns timestamps into epoch seconds, and the store ids
(see :mod:`store.touch_refs`) are turned into entity positions by numpy lookups, the keys of the few
touches not resolved yet by the entity index, never a Python object per touch that outlives its
batch. The timestamp conversion is not what costs: SQLite's ``strftime('%s')`` over an L org's 5.9
million touches takes under 3 CPU seconds of the scan, the driver's rows about 9, and Python's cyclic
garbage collector, unless paused, more than everything else together (see :mod:`worker.gc_pause`).

Two store facts shape the inputs here, not in :mod:`scoring`:
- the match table decides whose touches count for which account: ``auto``, ``pinned`` and
  ``crm`` decisions tie a person to the account; ``review`` and ``none`` tie them to nothing;
- a company linked to an account of another CRM (``account_links``) is the same business: it is
  not scored on its own, and its contacts, touches and deals count for the canonical account.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from sqlalchemy import BigInteger, ColumnElement, Connection, Integer, and_, case, cast, extract, func, or_, select

from config.scoring import ScoringConfig
from scoring.catalogue import TYPE_CODE
from scoring.columns import ActivityColumns, LoadReport
from scoring.inputs import EntityIndex, MatchColumns, PeopleColumns, ScoringInputs, assemble_inputs
from scoring.outcomes import NEVER
from store import kept_copies
from store.cursor_rows import driver_batches
from store.records import AccountRecord, OpportunityRecord
from store.schema import AccountLink, Activity, Opportunity, Person
from worker import kept_matches, kept_titles
from worker.gc_pause import cyclic_gc_paused
from worker.kept_people import current_people
from worker.kept_titles import classify_titles
from worker.kept_touches import TouchRows, current_touches, read_touches
from worker.match_stage import load_accounts

if TYPE_CHECKING:
    from worker.score_prefetch import Everyone

TIED = kept_matches.TIED
# Where the touches and the people come from (see worker.kept_touches, worker.kept_people): the tables alone
# ("ignore"); the tables, and copies kept of them ("refresh", a full run); the kept copies and what changed since
# ("reuse", an incremental run).
KeptUse = Literal["ignore", "refresh", "reuse"]
PARTITION_ROWS = 200_000
# Touches whose person or account the store has not resolved to an id are read by key. Up to this many (of
# either), their keys are read apart first and the touches' stream reads integers only; past it (a store whose
# touches were never resolved), the stream reads the keys of such rows inline.
UNRESOLVED_APART = 200_000

_OPPORTUNITY_COLUMNS = [Opportunity.__table__.c[f] for f in OpportunityRecord.__dataclass_fields__]
# What scoring reads of a person (keys, persona title, roll-up and conversion facts): at 1.7 million
# people, leaving names, emails, companies and addresses unread saves over a gigabyte.
_SCORED_PERSON_FIELDS = ("id", "crm", "crm_id", "kind", "title", "account_crm_id", "is_converted", "converted_at",
                         "converted_account_crm_id", "created_at")


class KeyLookup:
    """``(crm, crm_id) -> position`` for whole columns: one dict lookup per row, done by ``map`` in C.

    Empty and missing ids never match (a touch without a person has ``None`` or ``""`` there).
    """

    def __init__(self, mapping: Mapping[tuple[str, str], int]) -> None:
        # The entity index's dict itself when it has no empty id (always, in practice): no copy.
        if any(not crm_id for _, crm_id in mapping):
            mapping = {key: position for key, position in mapping.items() if key[1]}
        self._get = mapping.get

    def find(self, crm: Sequence[str], crm_id: Sequence[str | None]) -> np.ndarray:
        """Position per row, -1 where the key is unknown or the id is empty."""
        n = len(crm_id)
        return np.fromiter(map(self._get, zip(crm, crm_id, strict=True), repeat(-1, n)), dtype=np.int64, count=n)


def epoch_seconds(conn: Connection, column: ColumnElement | None = None) -> ColumnElement:
    """``column`` (default ``activities.occurred_at``) as whole seconds since the epoch, computed by
    the database (NULL stays NULL)."""
    column = Activity.__table__.c.occurred_at if column is None else column
    if conn.dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column)), BigInteger)
    # SQLite keeps naive UTC text, which both read as UTC. unixepoch() (SQLite 3.38+) gives the same whole
    # seconds as strftime('%s') (all 6 million touches of the L org agree) and read them in 6.9 s rather than 8.9.
    if sqlite3.sqlite_version_info >= (3, 38):
        return func.unixepoch(column, type_=Integer)
    return cast(func.strftime("%s", column), Integer)


class IdLookup:
    """Store id -> position for whole columns of ids, in numpy (-1 for an id it does not hold)."""

    def __init__(self, ids: Sequence[int] | np.ndarray, positions: Sequence[int] | np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        self._positions = np.full(int(ids.max(initial=-1)) + 1, -1, dtype=np.int64)
        self._positions[ids] = positions

    def find(self, ids: np.ndarray) -> np.ndarray:
        known = (ids >= 0) & (ids < len(self._positions))
        out = np.full(len(ids), -1, dtype=np.int64)
        out[known] = self._positions[ids[known]]
        return out


class _KeyFinder(Protocol):
    def find(self, crm: Sequence[str], crm_id: Sequence[str | None]) -> np.ndarray: ...


class _PeopleKeys:
    """People's keys -> positions, through the entity index (see :meth:`EntityIndex.find_people`)."""

    def __init__(self, index: EntityIndex) -> None:
        self._index = index

    def find(self, crm: Sequence[str], crm_id: Sequence[str | None]) -> np.ndarray:
        return self._index.find_people(crm, crm_id)


class _Lookups:
    """Keys -> positions, for accounts and people."""

    def __init__(self, index: EntityIndex) -> None:
        self.accounts = KeyLookup(index.account_index)
        self.people = _PeopleKeys(index)


def columns_from_arrays(crm: Sequence[str], kind: Sequence[str], ts: Sequence[int], person_id: Sequence[str | None],
                        account_id: Sequence[str | None], lookups: _Lookups, report: LoadReport) -> ActivityColumns:
    """Touch columns from raw key columns (tuples from a cursor or arrays; ``None`` or ``""`` for no
    person or account)."""
    return _columns(kind, ts, lookups.people.find(crm, person_id), lookups.accounts.find(crm, account_id), report)


def _columns(kind: Sequence[str], ts: Sequence[int], person: np.ndarray, account: np.ndarray,
             report: LoadReport) -> ActivityColumns:
    """Touch columns from types, times and positions (-1: none); what cannot be used is counted."""
    n = len(ts)
    type_code = np.fromiter(map(TYPE_CODE.get, kind, repeat(-1, n)), dtype=np.int64, count=n)
    known_type = type_code >= 0
    if not known_type.all():
        report.unknown_type.update(str(kind[i]) for i in np.flatnonzero(~known_type).tolist())
    return _coded_columns(type_code, ts, person, account, report)


def _coded_columns(type_code: np.ndarray, ts: Sequence[int] | np.ndarray, person: np.ndarray, account: np.ndarray,
                   report: LoadReport) -> ActivityColumns:
    """Touch columns from type codes (-1: unknown, already counted), times and positions (-1: none)."""
    report.rows += len(type_code)
    known_type = type_code >= 0
    attributable = (person >= 0) | (account >= 0)
    report.unattributed += int((known_type & ~attributable).sum())
    keep = known_type & attributable
    return ActivityColumns(
        person[keep].astype(np.int32), account[keep].astype(np.int32), type_code[keep].astype(np.int8),
        np.asarray(ts, dtype=np.int64)[keep],
    )


def _resolved_positions(refs: Sequence[int], crm: Sequence[str | None], keys: Sequence[str | None],
                        by_id: IdLookup, by_key: _KeyFinder) -> np.ndarray:
    """Positions from store ids, and from CRM keys for the rows not resolved to an id (-1 there)."""
    refs = np.asarray(refs, dtype=np.int64)
    positions = by_id.find(refs)
    named = [i for i in np.flatnonzero(refs < 0).tolist() if keys[i]]
    if named:
        positions[named] = by_key.find([crm[i] for i in named], [keys[i] for i in named])
    return positions


def _resolved_columns(rows: list[tuple], keys: _Lookups, ids: tuple[IdLookup, IdLookup],
                      report: LoadReport) -> ActivityColumns:
    """Touch columns from rows of (crm or None, type, seconds, person id, account id, person key or None,
    account key or None): ids where the store resolved them (-1 where not), keys only where it did not.
    ``ids``: (accounts, people)."""
    crm, kind, ts, person_ref, account_ref, person_key, account_key = zip(*rows, strict=True)
    person = _resolved_positions(person_ref, crm, person_key, ids[1], keys.people)
    account = _resolved_positions(account_ref, crm, account_key, ids[0], keys.accounts)
    return _columns(kind, ts, person, account, report)


UnresolvedKeys = tuple[dict[int, tuple[str, str]], dict[int, tuple[str, str]]]


def unresolved_keys(conn: Connection) -> UnresolvedKeys | None:
    """Touch id -> (crm, key) of the touches whose person, and whose account, the store has not resolved to an
    id (:mod:`store.touch_refs`; read through the partial indexes that hold exactly them); None when there are
    more than ``UNRESOLVED_APART`` of either (a store whose touches were never resolved)."""
    table = Activity.__table__
    out: list[dict[int, tuple[str, str]]] = []
    for ref, key in ((table.c.person_ref, table.c.person_crm_id), (table.c.account_ref, table.c.account_crm_id)):
        unresolved = and_(ref.is_(None), key.is_not(None))
        if conn.execute(select(func.count()).select_from(table).where(unresolved)).scalar_one() > UNRESOLVED_APART:
            return None
        out.append({touch: (crm, crm_id) for touch, crm, crm_id in
                    conn.execute(select(table.c.id, table.c.crm, key).where(unresolved))})
    return out[0], out[1]


def _positions_by_id(touch_ids: np.ndarray, refs: Sequence[int] | np.ndarray, unresolved: Mapping[int, tuple[str, str]],
                     by_id: IdLookup, by_key: _KeyFinder) -> np.ndarray:
    """Positions from store ids, and from the keys read apart for the touches not resolved (-1 where neither)."""
    positions = by_id.find(np.asarray(refs, dtype=np.int64))
    if unresolved:
        rows = np.flatnonzero(np.isin(touch_ids, np.fromiter(unresolved, dtype=np.int64, count=len(unresolved))))
        if len(rows):
            named = [unresolved[touch] for touch in touch_ids[rows].tolist()]
            positions[rows] = by_key.find([crm for crm, _ in named], [crm_id for _, crm_id in named])
    return positions


def _kept_columns(touches: TouchRows, apart: tuple[Mapping[int, tuple[str, str]], Mapping[int, tuple[str, str]]],
                  keys: _Lookups, ids: tuple[IdLookup, IdLookup], report: LoadReport) -> ActivityColumns:
    """Touch columns from every touch's store ids (:mod:`worker.kept_touches`), with the keys of the touches not
    resolved read apart (``apart``: people's, accounts'). ``ids``: (accounts, people)."""
    usable = touches.take(touches.usable)
    by_name = np.array([TYPE_CODE.get(name, -1) for name in touches.types], dtype=np.int64)
    type_code = by_name[usable.type] if len(by_name) else np.empty(0, dtype=np.int64)
    unknown = np.bincount(usable.type[type_code < 0], minlength=len(by_name))
    report.unknown_type.update({touches.types[i]: int(unknown[i]) for i in np.flatnonzero(unknown).tolist()})
    person = _positions_by_id(usable.id, usable.person, apart[0], ids[1], keys.people)
    account = _positions_by_id(usable.id, usable.account, apart[1], ids[0], keys.accounts)
    return _coded_columns(type_code, usable.ts, person, account, report)


def stream_activity_columns(
    conn: Connection, index: EntityIndex, ids: tuple[IdLookup, IdLookup], report: LoadReport,
    partition_rows: int = PARTITION_ROWS, kept: KeptUse = "ignore", prefetched: Everyone | None = None,
) -> ActivityColumns:
    """Every live touch with a timestamp, as columns, in store id order; what cannot be used is counted in
    ``report``.

    ``ids`` (accounts, people): store id -> position, for the touches the store resolved to ids
    (:mod:`store.touch_refs`), read as integers; only the others are read by their string keys (apart, see
    :func:`unresolved_keys`), found in ``index``. Those integers come from the table, or from the kept copy of
    every touch and what changed since (``kept``, see :mod:`worker.kept_touches`), as ``prefetched`` read them
    where they are still what the store holds (:mod:`worker.score_prefetch`). A store with too many touches
    unresolved to read their keys apart is read from the driver's cursor, ``partition_rows`` at a time, with the
    keys inline.
    """
    table = Activity.__table__
    live = table.c.is_deleted.is_(False)
    report.no_timestamp += conn.execute(
        select(func.count()).select_from(table).where(live, table.c.occurred_at.is_(None))
    ).scalar_one()
    report.rows += report.no_timestamp
    keys = _Lookups(index)
    timed = table.c.occurred_at.is_not(None)
    apart = unresolved_keys(conn)
    if apart is not None:  # integers only: the key columns cost the L org's 6 million rows 2 of their 8 seconds
        unresolved = (apart[0].keys(), apart[1].keys())
        if kept == "reuse" and prefetched is not None and prefetched.unresolved == apart:
            touches = kept_copies.keep(conn, prefetched.touches)
        elif kept == "ignore":
            touches = read_touches(conn, epoch_seconds(conn), unresolved)
        else:
            touches = current_touches(conn, epoch_seconds(conn), unresolved, reuse=kept == "reuse")
        return _kept_columns(touches, apart, keys, ids, report)
    person_open, account_open = table.c.person_ref.is_(None), table.c.account_ref.is_(None)
    query = select(
        case((or_(person_open, account_open), table.c.crm)), table.c.activity_type, epoch_seconds(conn),
        func.coalesce(table.c.person_ref, -1), func.coalesce(table.c.account_ref, -1),
        case((person_open, table.c.person_crm_id)), case((account_open, table.c.account_crm_id)),
    ).where(live, timed)
    parts = [_resolved_columns(rows, keys, ids, report) for rows in driver_batches(conn, query, partition_rows)]
    return ActivityColumns.concat(parts) if parts else ActivityColumns.empty()


def _records(conn: Connection, cls: type, columns: list, where: object) -> Iterator:
    # Columns are selected in the record's field order, so records are built positionally.
    return (cls(*row) for row in conn.execute(select(*columns).where(where).order_by(columns[0])))


def load_scored_people(conn: Connection, batch_rows: int = PARTITION_ROWS) -> PeopleColumns:
    """Every live person, in id order, as the columns scoring reads (keys, persona title, roll-up
    and conversion facts; names, emails, companies and addresses are left unread), straight from
    the driver's tuples with times as epoch seconds (see :class:`scoring.inputs.PeopleColumns`)."""
    table = Person.__table__
    query = select(
        table.c.id, table.c.crm, table.c.crm_id, table.c.kind, table.c.title, table.c.account_crm_id,
        table.c.is_converted, epoch_seconds(conn, table.c.converted_at), table.c.converted_account_crm_id,
        epoch_seconds(conn, table.c.created_at),
    ).where(table.c.is_deleted.is_(False)).order_by(table.c.id)
    columns: list[list] = [[] for _ in range(10)]
    for rows in driver_batches(conn, query, batch_rows):
        for out, values in zip(columns, zip(*rows, strict=True), strict=True):
            out.extend(values)
        del rows
    ids, crm, crm_id, kind, title, account, converted, converted_at, converted_account, created_at = columns
    return PeopleColumns(
        id=np.array(ids, dtype=np.int64),
        # Two distinct values each: one string object apiece instead of one per person.
        crm=list(map(sys.intern, crm)),
        crm_id=crm_id,
        kind=list(map(sys.intern, kind)),
        title=title,
        account_crm_id=account,
        is_converted=np.array([bool(v) for v in converted], dtype=bool),
        converted_at=np.array([NEVER if v is None else v for v in converted_at], dtype=np.int64),
        converted_account_crm_id=converted_account,
        created_at=np.array([0 if v is None else v for v in created_at], dtype=np.int64),
    )


def _matches(conn: Connection, canonical: Mapping[int, int], kept: KeptUse) -> MatchColumns:
    """The match table as columns: each person and the (canonical) account it ties them to (-1: nothing).

    Column by column from the driver's tuples (see :mod:`worker.kept_matches`, which keeps a copy between runs):
    as a dict, an L org's 1.8 million matches took 2.3 s to read, and 1.2 s more to look everyone up in."""
    if kept == "ignore":
        person, account = kept_matches.read_all(conn)
    else:
        person, account = kept_matches.current_matches(conn, reuse=kept == "reuse")
    if canonical and len(account):  # a linked company's matches count for its canonical account
        linked = np.fromiter(canonical.keys(), dtype=np.int64, count=len(canonical))
        order = np.argsort(linked)
        linked, target = linked[order], np.fromiter(canonical.values(), dtype=np.int64, count=len(canonical))[order]
        at = np.minimum(np.searchsorted(linked, account), len(linked) - 1)
        account = np.where(linked[at] == account, target[at], account)
    return MatchColumns(person, account)


def load_score_inputs(
    conn: Connection, config: ScoringConfig, *, partition_rows: int = PARTITION_ROWS, kept: KeptUse = "ignore",
    accounts: list[AccountRecord] | None = None, prefetched: Everyone | None = None,
) -> ScoringInputs:
    """Everything scoring needs, with the match table and cross-CRM links applied (built with the
    cyclic garbage collector paused: see :mod:`worker.gc_pause`). ``kept``: where the touches and the people
    come from; ``accounts``: every live account as just read (by the run's match stage), else read here;
    ``prefetched``: the touches and people as read beside the match stage, which the store still holds as they
    were read (see :mod:`worker.score_prefetch`), used with ``kept="reuse"``."""
    if kept != "reuse":
        prefetched = None
    with cyclic_gc_paused():
        if accounts is None:
            accounts = load_accounts(conn)
        canonical = dict(conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all())
        aliases = {(a.crm, a.crm_id): canonical[a.id] for a in accounts if a.id in canonical}
        scored = [a for a in accounts if a.id not in canonical]
        matches = _matches(conn, canonical, kept)
        if prefetched is not None:
            people = kept_copies.keep(conn, prefetched.people)
        elif kept == "ignore":
            people = load_scored_people(conn)
        else:
            people = current_people(conn, partial(epoch_seconds, conn), reuse=kept == "reuse")
        opportunities = list(_records(conn, OpportunityRecord, _OPPORTUNITY_COLUMNS, Opportunity.is_deleted.is_(False)))
        index = EntityIndex.build(scored, people, aliases)
        report = LoadReport()
        # store id -> position: the scored accounts, a linked company as the account it is scored as
        linked = [a.id for a in accounts if a.id in canonical and canonical[a.id] in index.account_pos]
        ids = (IdLookup([a.id for a in scored] + linked,
                        [*range(len(scored)), *(index.account_pos[canonical[i]] for i in linked)]),
               IdLookup(people.id, np.arange(len(people))))
        activities = stream_activity_columns(conn, index, ids, report, partition_rows, kept, prefetched)
        if prefetched is not None and prefetched.personas_rules == kept_titles.fingerprint(config):
            personas = kept_copies.keep(conn, prefetched.personas)
        else:
            personas = None if kept == "ignore" else classify_titles(conn, config, people.title, reuse=kept == "reuse")
        return assemble_inputs(scored, people, activities, report, opportunities, config, index, matches, personas)
