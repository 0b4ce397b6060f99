"""The score stage's copy of every touch, kept between runs: an incremental run reads the touches
changed since the copy was taken instead of every touch.

Scoring everyone reads every touch of the org: on the L benchmark org, 5.9 million rows and 16 of the
score stage's 27 seconds of loading, on every incremental run that touched too many entities to read
them alone (see :mod:`worker.score_subset`), while such a run changed about 100,000 of them. The few
numbers the score stage reads of a touch (store id, type, time, whether it is live and timed, the store
ids of its person and account) are kept in ``kept_copies`` (:mod:`store.kept_copies`), 29 bytes per
touch. A run reads them back, then the touches whose ``changed_at`` is at or after the copy's
cutoff (less ``CLOCK_MARGIN``), which replace their old rows.

Why the copy stays exact:

- every write that changes what is kept moves ``changed_at``: the pulls' upserts (a changed person or
  account key also voids the resolved id, see :mod:`store.upsert`), deletes, HubSpot merges, held
  meetings (:mod:`store.held_meetings`);
- the one write that does not, resolving a touch's key to a store id (:mod:`store.touch_refs`), is
  covered another way: a touch kept with its key unresolved is read again unless it is still
  unresolved now (then the score stage reads its key apart, as it does for every such touch);
- touches are never removed from the table, and a new one takes an id past every earlier one, so a copy
  that, with the touches changed since, misses a touch added since (a write that went round the change
  stamp) is not of the table: it is dropped and every touch read again;
- a copy taken by another version of the schema or of this format is not read.

``CLOCK_MARGIN`` covers writers whose clock is a little behind the clock of the worker that took the
copy (two workers sharing one PostgreSQL). The copy is written again once the touches read on top of it
pass ``REWRITE_SHARE`` of it, so that what each run reads stays small, and by every full run, which reads
every touch from the table (the nightly check that nothing drifted).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, func, select

from store import kept_copies
from store.cursor_rows import driver_batches, in_lists
from store.schema import Activity
from store.types import utcnow

log = logging.getLogger("abm.scoring")

NAME = "touches"  # in kept_copies
FORMAT = 1  # of the header and the columns below: a copy in another format is not read
PART_ROWS = 1_000_000  # touches per part (29 MB)
READ_ROWS = 200_000  # driver rows per batch
REWRITE_SHARE = 0.02  # of the copy, read on top of it, past which the copy is written again
CLOCK_MARGIN = timedelta(minutes=2)
NO_KEY, UNRESOLVED = -1, -2  # person and account columns: no key at all; a key not resolved to an id

_COLUMNS: tuple[tuple[str, str], ...] = (("id", "<i8"), ("type", "<i4"), ("ts", "<i8"), ("usable", "|b1"),
                                         ("person", "<i4"), ("account", "<i4"))
_DTYPES = [dtype for _, dtype in _COLUMNS]
COPY = kept_copies.Spec(NAME, FORMAT, tuple(_DTYPES))


@dataclass(frozen=True)
class TouchRows:
    """Touches in store id order: ``type`` indexes ``types``; ``ts`` is 0 where there is no time;
    ``usable``: live and timed (the others are kept only to be counted); ``person`` and ``account``:
    the store id the key resolved to, ``NO_KEY`` or ``UNRESOLVED``."""

    id: np.ndarray
    type: np.ndarray
    ts: np.ndarray
    usable: np.ndarray
    person: np.ndarray
    account: np.ndarray
    types: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.id)

    def arrays(self) -> list[np.ndarray]:
        return [getattr(self, name) for name, _ in _COLUMNS]

    def take(self, selector: np.ndarray) -> TouchRows:
        return TouchRows.of([a[selector] for a in self.arrays()], self.types)

    @classmethod
    def of(cls, columns: Sequence[np.ndarray], types: Sequence[str]) -> TouchRows:
        """From the columns in ``_COLUMNS`` order."""
        identity, kind, ts, usable, person, account = columns
        return cls(identity, kind, ts, usable, person, account, tuple(types))

    @classmethod
    def empty(cls) -> TouchRows:
        return cls.of([np.empty(0, dtype=dtype) for _, dtype in _COLUMNS], ())


_UNTIMED = -(1 << 62)  # the time read for a touch without one (never a real one)

Unresolved = tuple[Collection[int], Collection[int]]
"""The ids of the touches whose person, and whose account, the store has not resolved to an id now."""


def _query(epoch_seconds: ColumnElement, where: Iterable[ColumnElement]) -> Any:
    # Plain columns and COALESCE only: a CASE per row made the read of every touch twice as slow.
    table = Activity.__table__
    return select(table.c.id, table.c.activity_type, func.coalesce(epoch_seconds, _UNTIMED), table.c.is_deleted,
                  func.coalesce(table.c.person_ref, NO_KEY), func.coalesce(table.c.account_ref, NO_KEY)).where(*where)


def _mark_unresolved(ids: np.ndarray, refs: np.ndarray, unresolved: Collection[int]) -> None:
    """``refs`` (read as ``NO_KEY`` where the store holds no id) set to ``UNRESOLVED`` for these touches."""
    if unresolved:
        refs[np.isin(ids, np.fromiter(unresolved, dtype=np.int64, count=len(unresolved)))] = UNRESOLVED


def read_touches(conn: Connection, epoch_seconds: ColumnElement, unresolved: Unresolved,
                 where: Iterable[ColumnElement] = ()) -> TouchRows:
    """The touches ``where`` selects (every touch by default), in id order. Sorted here, not by the database:
    SQLite, asked for id order, reads the whole table in it rather than the few rows an index finds."""
    vocabulary = kept_copies.Codes()
    parts: list[list[np.ndarray]] = []
    for rows in driver_batches(conn, _query(epoch_seconds, where), READ_ROWS):
        # Column by column: 0.03 s per 200,000 rows, where zip(*rows) and arrays of its tuples took 0.08.
        n = len(rows)
        ids, ts, deleted, person, account = (
            np.fromiter(map(itemgetter(i), rows), dtype=dtype, count=n)
            for i, dtype in ((0, np.int64), (2, np.int64), (3, bool), (4, np.int32), (5, np.int32)))
        kinds = np.fromiter(map(vocabulary.__getitem__, map(itemgetter(1), rows)), dtype=np.int32, count=n)
        parts.append([ids, kinds, ts, ~deleted & (ts != _UNTIMED), person, account])
    if not parts:
        return TouchRows.empty()
    columns = [np.concatenate([p[i] for p in parts]) for i in range(len(_COLUMNS))]
    if (columns[0][1:] < columns[0][:-1]).any():  # an index's order, or PostgreSQL's heap order
        order = np.argsort(columns[0], kind="stable")
        columns = [c[order] for c in columns]
    _mark_unresolved(columns[0], columns[4], unresolved[0])
    _mark_unresolved(columns[0], columns[5], unresolved[1])
    return TouchRows.of(columns, tuple(vocabulary))


def _in_types(rows: TouchRows, types: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """``rows``' type codes in the vocabulary ``types`` extended with the names it lacks."""
    vocabulary = {name: i for i, name in enumerate(types)}
    for name in rows.types:
        vocabulary.setdefault(name, len(vocabulary))
    remap = np.array([vocabulary[name] for name in rows.types], dtype=np.int32)
    return (remap[rows.type] if len(rows.types) else rows.type), tuple(vocabulary)


def merge(base: TouchRows, newer: TouchRows) -> TouchRows:
    """``base`` with ``newer`` (id-sorted, distinct ids) in place of the rows of the same ids, and
    after them by id where they are new."""
    if len(newer) == 0:
        return base
    newer_type, types = _in_types(newer, base.types)
    return TouchRows.of(kept_copies.merge(base.arrays(), [newer.id, newer_type, *newer.arrays()[2:]]), types)


@dataclass(frozen=True)
class _Copy:
    rows: TouchRows
    cutoff: datetime


def _load_copy(conn: Connection, ahead: kept_copies.ReadEarlier | None) -> _Copy | None:
    """The kept copy (``ahead``'s while it is still the one stored), or None when there is none or it is not one
    this code can read."""
    kept = COPY.load(conn, ahead)
    if kept is None:
        return None
    return _Copy(TouchRows.of(kept.columns, kept.header["types"]), datetime.fromisoformat(kept.header["cutoff"]))


def encode_copy(rows: TouchRows, cutoff: datetime) -> kept_copies.Encoded:
    """``rows`` (every touch, as of ``cutoff``) as the copy to keep."""
    header = {"cutoff": cutoff.isoformat(), "types": list(rows.types)}
    return kept_copies.encode(NAME, FORMAT, rows.arrays(), _DTYPES, header, PART_ROWS)


def _of_table(conn: Connection, kept_through: int, rows: TouchRows) -> bool:
    """Whether ``rows`` (a copy of the touches up to id ``kept_through``, with the touches changed since read on
    top) can be every touch of the table (see :func:`store.kept_copies.holds_every_added`)."""
    return kept_copies.holds_every_added(conn, Activity.__table__.c.id, kept_through, rows.id)


def _read_ids(conn: Connection, epoch_seconds: ColumnElement, unresolved: Unresolved,
              ids: Collection[int]) -> TouchRows:
    out = TouchRows.empty()
    for chunk in in_lists(ids):
        out = merge(out, read_touches(conn, epoch_seconds, unresolved, [Activity.__table__.c.id.in_(chunk)]))
    return out


def _stale(rows: TouchRows, unresolved: Unresolved) -> np.ndarray:
    """Ids of the touches kept with a key unresolved that the store has resolved since."""
    stale = []
    for column, still in ((rows.person, unresolved[0]), (rows.account, unresolved[1])):
        pending = rows.id[column == UNRESOLVED]
        stale.append(pending[~np.isin(pending, np.fromiter(still, dtype=np.int64, count=len(still)))])
    return np.union1d(*stale)


def read_current(conn: Connection, epoch_seconds: ColumnElement, unresolved: Unresolved, *,
                 reuse: bool = True, ahead: kept_copies.ReadEarlier | None = None) -> kept_copies.Current[TouchRows]:
    """Every touch in the table as it is now, in id order: from the kept copy and what changed since when
    ``reuse`` and a copy is there to be read, else from the table; with the copy to keep when it is due (see the
    module docstring). Writes nothing, so a process beside the stage can read them (:mod:`worker.score_prefetch`).
    ``unresolved``: the ids of the touches whose person, and whose account, are unresolved now. ``ahead``: the copy
    as read earlier, used while it is still the one stored."""
    started = utcnow()
    copy = _load_copy(conn, ahead) if reuse else None
    if copy is not None:
        changed = read_touches(conn, epoch_seconds, unresolved,
                               [Activity.__table__.c.changed_at >= copy.cutoff - CLOCK_MARGIN])
        rows = merge(copy.rows, changed)
        if _of_table(conn, int(copy.rows.id[-1]) if len(copy.rows) else -1, rows):
            stale = _stale(rows, unresolved)
            rows = merge(rows, _read_ids(conn, epoch_seconds, unresolved, stale.tolist()))
            due = len(changed) + len(stale) > REWRITE_SHARE * len(rows)
            return kept_copies.Current(rows, encode_copy(rows, started) if due else None)
        log.warning("the kept copy of the touches (%d) is not of the table any more: every touch is read again",
                    len(rows))
    rows = read_touches(conn, epoch_seconds, unresolved)
    return kept_copies.Current(rows, encode_copy(rows, started))


def current_touches(conn: Connection, epoch_seconds: ColumnElement,
                    unresolved: Unresolved, *, reuse: bool = True) -> TouchRows:
    """Every touch in the table as it is now, in id order (see :func:`read_current`), the copy written again when
    it was not read or has grown stale."""
    return kept_copies.keep(conn, read_current(conn, epoch_seconds, unresolved, reuse=reuse))
