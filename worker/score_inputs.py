"""Loading the scoring inputs from the store: accounts, people, matches, links, deals and touches.

Accounts, people and deals are read as records (hundreds of thousands at most, and scoring
needs their fields). Touches can be tens of millions, so they are streamed in partitions of
plain columns: the database turns timestamps into epoch seconds, and each partition's keys are
resolved to entity positions with sorted-array lookups (``np.searchsorted``), never a Python
object per touch.

Two store facts shape the inputs here, not in :mod:`scoring`:
- the match table decides whose touches count for which account: ``auto``, ``pinned`` and
  ``crm`` decisions tie a person to the account; ``review`` and ``none`` tie them to nothing;
- a company linked to an account of another CRM (``account_links``) is the same business: it is
  not scored on its own, and its contacts, touches and deals count for the canonical account.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from sqlalchemy import BigInteger, Connection, Integer, cast, extract, func, select

from config.scoring import ScoringConfig
from scoring.catalogue import TYPE_CODE
from scoring.columns import ActivityColumns, LoadReport
from scoring.inputs import EntityIndex, ScoringInputs, assemble_inputs
from store.records import OpportunityRecord, PersonRecord
from store.schema import AccountLink, Activity, Match, Opportunity, Person
from worker.match_stage import load_accounts

TIED = ("auto", "pinned", "crm")
PARTITION_ROWS = 200_000

_OPPORTUNITY_COLUMNS = [Opportunity.__table__.c[f] for f in OpportunityRecord.__dataclass_fields__]
# What scoring reads of a person (keys, persona title, roll-up and conversion facts): at 1.7 million
# people, leaving names, emails, companies and addresses unread saves over a gigabyte.
_SCORED_PERSON_FIELDS = ("id", "crm", "crm_id", "kind", "title", "account_crm_id", "is_converted", "converted_at",
                         "converted_account_crm_id", "created_at")


class KeyLookup:
    """``(crm, crm_id) -> position`` as one sorted array of ids per CRM, for whole-column lookups."""

    def __init__(self, mapping: Mapping[tuple[str, str], int]) -> None:
        by_crm: dict[str, list[tuple[str, int]]] = {}
        for (crm, crm_id), position in mapping.items():
            by_crm.setdefault(crm, []).append((crm_id, position))
        self._tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for crm, pairs in by_crm.items():
            pairs.sort()
            self._tables[crm] = (np.array([k for k, _ in pairs]), np.array([v for _, v in pairs], dtype=np.int64))

    def find(self, crm: np.ndarray, crm_id: np.ndarray) -> np.ndarray:
        """Position per row, -1 where the key is unknown or the id is empty."""
        out = np.full(len(crm_id), -1, dtype=np.int64)
        for name in np.unique(crm):
            table = self._tables.get(str(name))
            if table is None:
                continue
            keys, values = table
            rows = np.flatnonzero(crm == name)
            ids = crm_id[rows]
            at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
            hit = (keys[at] == ids) & (ids != "")
            out[rows[hit]] = values[at[hit]]
        return out


def _epoch_seconds(conn: Connection) -> object:
    """``activities.occurred_at`` as whole seconds since the epoch, computed by the database."""
    column = Activity.__table__.c.occurred_at
    if conn.dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", column)), BigInteger)
    # SQLite keeps naive UTC text; strftime('%s') reads it as UTC.
    return cast(func.strftime("%s", column), Integer)


@dataclass(frozen=True)
class _Lookups:
    accounts: KeyLookup
    people: KeyLookup


def _partition_columns(rows: list[tuple], lookups: _Lookups, report: LoadReport) -> ActivityColumns:
    crm, kind, ts, person_id, account_id = (np.array(column) for column in zip(*rows, strict=True))
    return columns_from_arrays(crm, kind, ts, person_id, account_id, lookups, report)


def columns_from_arrays(crm: np.ndarray, kind: np.ndarray, ts: np.ndarray, person_id: np.ndarray,
                        account_id: np.ndarray, lookups: _Lookups, report: LoadReport) -> ActivityColumns:
    """Touch columns from raw key columns (empty strings for no person or account)."""
    report.rows += len(ts)
    names, inverse = np.unique(kind, return_inverse=True)
    codes = np.array([TYPE_CODE.get(str(n), -1) for n in names], dtype=np.int64)
    for n, count in zip(names[codes < 0], np.bincount(inverse, minlength=len(names))[codes < 0], strict=True):
        report.unknown_type[str(n)] += int(count)
    type_code = codes[inverse]
    person = lookups.people.find(crm, person_id)
    account = lookups.accounts.find(crm, account_id)
    known_type = type_code >= 0
    attributable = (person >= 0) | (account >= 0)
    report.unattributed += int((known_type & ~attributable).sum())
    keep = known_type & attributable
    return ActivityColumns(
        person[keep].astype(np.int32), account[keep].astype(np.int32), type_code[keep].astype(np.int8),
        ts[keep].astype(np.int64),
    )


def stream_activity_columns(
    conn: Connection, index: EntityIndex, report: LoadReport, partition_rows: int = PARTITION_ROWS
) -> ActivityColumns:
    """Every live touch with a timestamp, as columns; what cannot be used is counted in ``report``."""
    table = Activity.__table__
    live = table.c.is_deleted.is_(False)
    report.no_timestamp += conn.execute(
        select(func.count()).select_from(table).where(live, table.c.occurred_at.is_(None))
    ).scalar_one()
    report.rows += report.no_timestamp
    query = select(
        table.c.crm,
        table.c.activity_type,
        _epoch_seconds(conn),
        func.coalesce(table.c.person_crm_id, ""),
        func.coalesce(table.c.account_crm_id, ""),
    ).where(live, table.c.occurred_at.is_not(None))
    lookups = _Lookups(KeyLookup(index.account_index), KeyLookup(index.person_index))
    # Options on the statement, not the connection: Connection.execution_options() changes the
    # connection itself, and a server-side cursor would then wrap later statements (even DDL).
    result = conn.execute(query.execution_options(stream_results=True, yield_per=partition_rows))
    parts = [_partition_columns(list(rows), lookups, report) for rows in result.partitions()]
    return ActivityColumns.concat(parts) if parts else ActivityColumns.empty()


def _records(conn: Connection, cls: type, columns: list, where: object) -> Iterator:
    # Columns are selected in the record's field order, so records are built positionally.
    return (cls(*row) for row in conn.execute(select(*columns).where(where).order_by(columns[0])))


def load_scored_people(conn: Connection) -> list[PersonRecord]:
    """Every live person, in id order, with only the fields scoring reads (the others stay empty)."""
    columns = [Person.__table__.c[f] for f in _SCORED_PERSON_FIELDS]
    rows = conn.execute(select(*columns).where(Person.is_deleted.is_(False)).order_by(Person.id))
    return [PersonRecord(**dict(zip(_SCORED_PERSON_FIELDS, row, strict=True))) for row in rows]


def load_score_inputs(
    conn: Connection, config: ScoringConfig, *, partition_rows: int = PARTITION_ROWS
) -> ScoringInputs:
    """Everything scoring needs, with the match table and cross-CRM links applied."""
    accounts = load_accounts(conn)
    canonical = dict(conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all())
    aliases = {(a.crm, a.crm_id): canonical[a.id] for a in accounts if a.id in canonical}
    scored = [a for a in accounts if a.id not in canonical]
    matches: dict[int, int | None] = {}
    for person_id, account_id, decision in conn.execute(select(Match.person_id, Match.account_id, Match.decision)):
        matches[person_id] = canonical.get(account_id, account_id) if decision in TIED else None
    people = load_scored_people(conn)
    opportunities = list(_records(conn, OpportunityRecord, _OPPORTUNITY_COLUMNS, Opportunity.is_deleted.is_(False)))
    index = EntityIndex.build(scored, people, aliases)
    report = LoadReport()
    activities = stream_activity_columns(conn, index, report, partition_rows)
    return assemble_inputs(scored, people, activities, report, opportunities, config, index, matches)
