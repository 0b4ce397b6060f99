"""The score stage's copy of the match table, kept between runs: an incremental run that reads everyone reads the
matches written since the copy was taken instead of every match.

Reading the L benchmark org's 1.8 million matches took 2.7 s of every incremental score stage that reads
everyone, while such a run's match stage wrote about 30,000 of them. What the score stage reads of a match is two
numbers: the person and the account the match ties them to (-1 for none: a review or none decision ties nobody);
the copy (``kept_copies``, :mod:`store.kept_copies`) holds them for every match, in person order. A run reads it
back, then the matches whose ``matched_at`` is at or after its cutoff (less ``CLOCK_MARGIN``), which replace
their old rows.

Why the copy stays exact: the match stage is the one writer of the table, and every row it writes carries a new
``matched_at`` (:func:`worker.match_stage.write_matches`); a match is removed only with its person, and people are
never removed (they are marked deleted); a match of a new person is written when that person is first matched,
and new people take ids past every earlier one (:func:`store.kept_copies.holds_every_added`: a copy missing one is
dropped and every match read again). A copy of another schema revision or format is not read. It is written again
once the matches read on top of it pass ``REWRITE_SHARE`` of it, and by every full run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np
from sqlalchemy import ColumnElement, Connection, case, func, select

from store import kept_copies
from store.cursor_rows import driver_batches
from store.schema import Match
from store.types import utcnow

log = logging.getLogger("abm.scoring")

NAME = "matches"  # in kept_copies
FORMAT = 1  # of the header and the columns below: a copy in another format is not read
PART_ROWS = 2_000_000  # matches per part (32 MB)
READ_ROWS = 200_000
REWRITE_SHARE = 0.05  # of the copy, read on top of it, past which the copy is written again
CLOCK_MARGIN = timedelta(minutes=2)
TIED = ("auto", "pinned", "crm")  # the decisions that tie a person to the account they name

_DTYPES = ["<i8", "<i8"]  # person id, the account the match ties them to (-1: none)


def _read(conn: Connection, where: Iterable[ColumnElement[bool]] = ()) -> list[np.ndarray]:
    """The matches ``where`` selects (every one by default) as (person, tied account) columns, in person order."""
    # the decision read as the account it ties to, by the database: no string per row
    tied = case((Match.decision.in_(TIED), func.coalesce(Match.account_id, -1)), else_=-1)
    people, accounts = [], []
    for rows in driver_batches(conn, select(Match.person_id, tied).where(*where), READ_ROWS):
        people.append(np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows)))
        accounts.append(np.fromiter(map(itemgetter(1), rows), dtype=np.int64, count=len(rows)))
    if not people:
        return [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]
    person, account = np.concatenate(people), np.concatenate(accounts)
    if (person[1:] < person[:-1]).any():  # PostgreSQL's heap order
        order = np.argsort(person, kind="stable")
        person, account = person[order], account[order]
    return [person, account]


def read_all(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    """Every match, read from the table (nothing kept): as :func:`current_matches` gives them."""
    person, account = _read(conn)
    return person, account


def current_matches(conn: Connection, *, reuse: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every match as (person ids ascending, the account each ties its person to or -1): from the kept copy and
    the matches written since when ``reuse`` and a copy is there to be read, else from the table; the copy is
    written again when it was not read or has grown stale (see the module docstring)."""
    started = utcnow()
    kept = kept_copies.load(conn, NAME, FORMAT, _DTYPES) if reuse else None
    if kept is not None:
        cutoff = datetime.fromisoformat(kept.header["cutoff"]) - CLOCK_MARGIN
        changed = _read(conn, [Match.matched_at >= cutoff])
        columns = kept_copies.merge(kept.columns, changed)
        kept_through = int(kept.columns[0][-1]) if len(kept.columns[0]) else -1
        if kept_copies.holds_every_added(conn, Match.person_id, kept_through, columns[0]):
            if len(changed[0]) > REWRITE_SHARE * len(columns[0]):
                _save(conn, columns, started)
            return columns[0], columns[1]
        log.warning("the kept copy of the matches (%d) is not of the table any more: every match is read again",
                    len(columns[0]))
    columns = _read(conn)
    _save(conn, columns, started)
    return columns[0], columns[1]


def _save(conn: Connection, columns: list[np.ndarray], cutoff: datetime) -> None:
    kept_copies.save(conn, NAME, FORMAT, columns, _DTYPES, {"cutoff": cutoff.isoformat()}, PART_ROWS)
