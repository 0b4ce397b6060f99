"""The score stage's copy of what it reads of every person, kept between runs: an incremental run that reads
everyone reads the people changed since the copy was taken instead of every person.

On the L benchmark org, reading the 1.7 million people's scored fields (keys, kind, title, CRM account,
conversion facts, creation time) took 4.5 to 7 seconds of every incremental score stage that reads everyone,
while such a run changed about 18,000 of them. The copy (``kept_copies``, :mod:`store.kept_copies`) holds
those fields for every person, deleted ones included (so that a person added round the change stamp shows):
numbers and codes in fixed-width columns, the CRM ids and titles as JSON text. A run reads it back, then the
people whose ``changed_at`` is at or after its cutoff (less ``CLOCK_MARGIN``), which replace their old rows.

Why the copy stays exact: every write that changes a person's scored fields moves ``changed_at`` (the pulls'
upserts, deletes and sweeps, HubSpot merges: see :mod:`store.upsert`); people are never removed from the table
and a new one takes an id past every earlier one (:func:`store.kept_copies.holds_every_added`: a copy missing
one is dropped and everyone read again); a copy of another schema revision or format is not read. It is
written again once the people read on top of it pass ``REWRITE_SHARE`` of it, and by every full run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np
from sqlalchemy import ColumnElement, Connection, select

from scoring.inputs import PeopleColumns
from scoring.outcomes import NEVER
from store import kept_copies
from store.cursor_rows import driver_batches
from store.kept_copies import Codes
from store.schema import Person
from store.types import utcnow

log = logging.getLogger("abm.scoring")

NAME = "people"  # in kept_copies
FORMAT = 1  # of the header and the columns below: a copy in another format is not read
PART_ROWS = 1_000_000  # people per part
READ_ROWS = 200_000
REWRITE_SHARE = 0.02
CLOCK_MARGIN = timedelta(minutes=2)
TEXT = kept_copies.TEXT

# (name, dtype): crm and kind are codes into the header's names of them.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "<i8"), ("live", "|b1"), ("crm", "|i1"), ("kind", "|i1"), ("is_converted", "|b1"),
    ("converted_at", "<i8"), ("created_at", "<i8"), ("crm_id", TEXT), ("title", TEXT), ("account_crm_id", TEXT),
    ("converted_account_crm_id", TEXT))
_DTYPES = [dtype for _, dtype in _COLUMNS]
COPY = kept_copies.Spec(NAME, FORMAT, tuple(_DTYPES))

Seconds = Callable[[ColumnElement], ColumnElement]


def _numbers(rows: list[tuple], i: int, dtype: type) -> np.ndarray:
    return np.fromiter(map(itemgetter(i), rows), dtype=dtype, count=len(rows))


def _texts(rows: list[tuple], i: int) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = list(map(itemgetter(i), rows))
    return out


def _coded(rows: list[tuple], i: int, codes: Codes) -> np.ndarray:
    return np.fromiter(map(codes.__getitem__, map(itemgetter(i), rows)), dtype=np.int8, count=len(rows))


def _seconds(rows: list[tuple], i: int, missing: int) -> np.ndarray:
    return np.fromiter((missing if v is None else v for v in map(itemgetter(i), rows)), np.int64, count=len(rows))


def _read(conn: Connection, seconds: Seconds, crms: Codes, kinds: Codes,
          where: Iterable[ColumnElement] = ()) -> list[np.ndarray]:
    """The people ``where`` selects (everyone by default), as the columns of ``_COLUMNS``, in id order."""
    table = Person.__table__
    query = select(table.c.id, table.c.is_deleted, table.c.crm, table.c.kind, table.c.is_converted,
                   seconds(table.c.converted_at), seconds(table.c.created_at), table.c.crm_id, table.c.title,
                   table.c.account_crm_id, table.c.converted_account_crm_id).where(*where)
    parts = [[_numbers(rows, 0, np.int64), ~_numbers(rows, 1, bool), _coded(rows, 2, crms), _coded(rows, 3, kinds),
              _numbers(rows, 4, bool), _seconds(rows, 5, NEVER), _seconds(rows, 6, 0),
              *(_texts(rows, i) for i in range(7, 11))]
             for rows in driver_batches(conn, query, READ_ROWS)]
    if not parts:
        return [np.empty(0, dtype=object if dtype == TEXT else dtype) for dtype in _DTYPES]
    columns = [np.concatenate([p[i] for p in parts]) for i in range(len(_COLUMNS))]
    if (columns[0][1:] < columns[0][:-1]).any():  # PostgreSQL's heap order
        order = np.argsort(columns[0], kind="stable")
        columns = [c[order] for c in columns]
    return columns


def _live(columns: list[np.ndarray], crms: list[str], kinds: list[str]) -> PeopleColumns:
    ids, live, crm, kind, is_converted, converted_at, created_at, crm_id, title, account, converted_account = (
        columns)
    crm_names = np.array([sys.intern(name) for name in crms], dtype=object)
    kind_names = np.array([sys.intern(name) for name in kinds], dtype=object)
    return PeopleColumns(
        id=ids[live], crm=crm_names[crm[live]].tolist() if len(crms) else [],
        crm_id=crm_id[live].tolist(), kind=kind_names[kind[live]].tolist() if len(kinds) else [],
        title=title[live].tolist(), account_crm_id=account[live].tolist(), is_converted=is_converted[live],
        converted_at=converted_at[live], converted_account_crm_id=converted_account[live].tolist(),
        created_at=created_at[live])


def read_current(conn: Connection, seconds: Seconds, *, reuse: bool = True,
                 ahead: kept_copies.ReadEarlier | None = None) -> kept_copies.Current[PeopleColumns]:
    """Every live person as the score stage reads them, in id order: from the kept copy and the people changed
    since when ``reuse`` and a copy is there to be read, else from the table; with the copy to keep when it is
    due (see the module docstring). Writes nothing, so a process beside the stage can read them
    (:mod:`worker.score_prefetch`). ``seconds``: a time column as whole seconds since the epoch, computed by the
    database. ``ahead``: the copy as read earlier, used while it is still the one stored."""
    started = utcnow()
    kept = COPY.load(conn, ahead) if reuse else None
    if kept is not None:
        crms, kinds = Codes.of(kept.header["crms"]), Codes.of(kept.header["kinds"])
        cutoff = datetime.fromisoformat(kept.header["cutoff"]) - CLOCK_MARGIN
        changed = _read(conn, seconds, crms, kinds, [Person.__table__.c.changed_at >= cutoff])
        columns = kept_copies.merge(kept.columns, changed)
        kept_through = int(kept.columns[0][-1]) if len(kept.columns[0]) else -1
        if kept_copies.holds_every_added(conn, Person.__table__.c.id, kept_through, columns[0]):
            due = len(changed[0]) > REWRITE_SHARE * len(columns[0])
            return kept_copies.Current(_live(columns, list(crms), list(kinds)),
                                       _encode(columns, crms, kinds, started) if due else None)
        log.warning("the kept copy of the people (%d) is not of the table any more: everyone is read again",
                    len(columns[0]))
    crms, kinds = Codes(), Codes()
    columns = _read(conn, seconds, crms, kinds)
    return kept_copies.Current(_live(columns, list(crms), list(kinds)), _encode(columns, crms, kinds, started))


def current_people(conn: Connection, seconds: Seconds, *, reuse: bool = True) -> PeopleColumns:
    """Every live person as the score stage reads them, in id order (see :func:`read_current`), the copy written
    again when it was not read or has grown stale."""
    return kept_copies.keep(conn, read_current(conn, seconds, reuse=reuse))


def _encode(columns: list[np.ndarray], crms: Codes, kinds: Codes, cutoff: datetime) -> kept_copies.Encoded:
    header = {"cutoff": cutoff.isoformat(), "crms": list(crms), "kinds": list(kinds)}
    return kept_copies.encode(NAME, FORMAT, columns, _DTYPES, header, PART_ROWS)
