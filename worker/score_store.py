"""Saving a :class:`~scoring.scores.ScoreSet` (rows from :mod:`scoring.rows`): current scores, only
what changed, and the daily history snapshot.

Scores are rounded to what a rep can see (two decimals) before they are compared with the stored
row, so decay nudging a score in the fifth decimal neither rewrites the row nor, downstream, a CRM
field. ``scored_at`` is therefore "when this score last changed", which is also what the CRM's
"last scored" field should say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, delete, select

from config.scoring import HistoryConfig, ScoringConfig
from scoring.history import prune_before
from scoring.rows import ACCOUNT, PERSON, history_rows, score_rows
from scoring.scores import Population, PopulationState, ScoreSet
from store.schema import Score, ScoreHistory, ScoreState
from store.upsert import PreparedUpsert, upsert
from worker.forked_slices import iter_built

# Columns compared to decide whether a stored score changed (breakdown follows them).
COMPARED = ("engagement", "sales_activity", "marketing", "fit", "grade", "predictive", "breadth", "velocity",
            "trend", "alignment", "reasons_text")
_BATCH = 10_000
# Rows past which they are built in a forked process beside the writes (a fork costs more than building a few
# thousand rows saves).
FORKED_ROWS = 20_000
ROWS_PER_SLICE = 2_000
T = TypeVar("T")


_DIGITS = {"predictive": 4}
# The number columns of COMPARED and the decimals people see of each (score_rows rounds them as it builds rows).
VISIBLE_DIGITS = {column: _DIGITS.get(column, 2) for column in
                  ("engagement", "sales_activity", "marketing", "fit", "predictive", "breadth", "velocity")}


def visible(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its scores rounded to what people see (2 decimals; probabilities 4)."""
    out = dict(row)
    for column in COMPARED:
        value = out.get(column)
        if isinstance(value, float):
            out[column] = round(value, _DIGITS.get(column, 2))
    return out


@dataclass
class SavedScores:
    accounts_changed: int = 0
    people_changed: int = 0
    history_rows: int = 0
    changed_account_ids: frozenset[int] = frozenset()
    changed_person_ids: frozenset[int] = frozenset()


def _batches(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _score_upsert(conn: Connection, columns: Iterable[str]) -> PreparedUpsert:
    """The upsert of score rows with these columns. The database compares each row with the stored one (the
    conflict update applies only when a ``COMPARED`` column differs) and tells which it wrote, so nothing is read
    back to decide: reading the stored rows of an L increment's 190,000 rescored entities to compare them here took
    3.4 s, for the 99.5% of them that changed. Every row written has a new scored_at, which an index reads (see
    store.upsert: ``indexed_apart``)."""
    return PreparedUpsert(conn, Score.__table__, tuple(columns), key=("entity_kind", "entity_id"), indexed_apart=False,
                          changed_when=COMPARED)


def save_scores(conn: Connection, kind: str, rows: Iterable[dict[str, Any]], *, batch_size: int = _BATCH,
                rounded: bool = False) -> set[int]:
    """Upsert the rows whose visible values changed; returns those entity ids. ``rounded``: the rows are
    :func:`visible` already. A batch of rows is held at a time."""
    written: list[tuple[str, int]] = []
    prepared: PreparedUpsert | None = None
    for raw in _batches(rows, batch_size):
        batch = raw if rounded else [visible(row) for row in raw]
        prepared = prepared or _score_upsert(conn, batch[0])
        prepared.write(prepared.driver_values(batch), written)
    return {entity_id for _, entity_id in written}


def save_history(conn: Connection, rows: list[dict[str, Any]], *, rounded: bool = False) -> int:
    """Upsert today's snapshot rows (a rerun the same day refreshes the day, never duplicates it). ``rounded``:
    the rows are :func:`visible` already."""
    written = 0
    for begin in range(0, len(rows), _BATCH):
        batch = rows[begin:begin + _BATCH] if rounded else [visible(r) for r in rows[begin:begin + _BATCH]]
        written += upsert(conn, ScoreHistory.__table__, batch, key=("entity_kind", "entity_id", "day"))
    return written


def save_score_set(
    conn: Connection,
    scores: ScoreSet,
    population: Population,
    account_ids: np.ndarray,
    person_ids: np.ndarray,
    config: ScoringConfig,
    now: datetime,
    model_version: int | None = None,
    *,
    only_accounts: np.ndarray | None = None,
    only_people: np.ndarray | None = None,
) -> SavedScores:
    """Save current scores of accounts and people, and today's account snapshot.

    ``only_accounts`` / ``only_people`` (row indexes) limit the save to an incremental run's dirty
    entities: the other rows keep their stored values, and today's snapshot gets only those accounts.
    """
    def rows_of(kind: str, ids: np.ndarray, only: np.ndarray | None) -> tuple[int, Callable[[int, int], list]]:
        """How many rows of the kind to save, and how to build the visible rows ``[start, end)`` of them."""
        wanted = np.arange(len(ids), dtype=np.int64) if only is None else np.asarray(only, dtype=np.int64)

        def build(start: int, end: int) -> list[dict[str, Any]]:
            return list(score_rows(scores, population, ids, config, now, kind=kind, only=wanted[start:end],
                                   model_version=model_version, round_to=VISIBLE_DIGITS))

        return len(wanted), build

    n_accounts, build_accounts = rows_of(ACCOUNT, account_ids, only_accounts)
    n_people, build_people = rows_of(PERSON, person_ids, only_people)

    def build_rows(start: int, end: int) -> list[dict[str, Any]]:  # the accounts' rows, then the people's
        split = min(max(n_accounts, start), end)
        return build_accounts(start, split) + build_people(split - n_accounts, end - n_accounts)

    total = n_accounts + n_people
    written: list[tuple[str, int]] = []
    if total:
        prepared = _score_upsert(conn, build_rows(0, 1)[0])

        def build(start: int, end: int) -> list[list[Any]]:
            return prepared.driver_values(build_rows(start, end))

        # Many rows are built, as the driver takes them, by a forked process beside the writes (see
        # worker.forked_slices): one for both kinds, forking a process of a few GB costs about 0.7 s
        with closing(iter_built(build, total, forked=total >= FORKED_ROWS, slice_size=ROWS_PER_SLICE)) as values:
            for batch in _batches(values, _BATCH):
                prepared.write(batch, written)
    accounts = {entity_id for kind, entity_id in written if kind == ACCOUNT}
    people = {entity_id for kind, entity_id in written if kind == PERSON}
    history = save_history(conn, history_rows(scores, population, account_ids, now.date(), kind=ACCOUNT,
                                              only=only_accounts, round_to=VISIBLE_DIGITS), rounded=True)
    return SavedScores(len(accounts), len(people), history, frozenset(accounts), frozenset(people))


def prune_history(conn: Connection, today: date, config: HistoryConfig) -> None:
    """Delete the snapshots past ``config.keep_days``, found by their day (``ix_score_history_day``): each score
    stage asks, and two years of an L org's daily snapshots are a hundred million rows."""
    conn.execute(delete(ScoreHistory).where(ScoreHistory.day < prune_before(today, config)))


POPULATION = "population"


def config_fingerprint(config: ScoringConfig) -> str:
    """A hash of the scoring settings: a stored population state computed under other settings
    (another fit mode, other bands, other grade shares, another catalogue) is not used."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_population_state(conn: Connection, state: PopulationState, config: ScoringConfig, now: datetime,
                          as_of: int) -> None:
    """Keep what a scoring of everyone learned (see :class:`scoring.scores.PopulationState`)."""
    upsert(conn, ScoreState.__table__, [{"name": POPULATION, "computed_at": now, "as_of": as_of,
                                         "config_hash": config_fingerprint(config), "state": state.to_json()}],
           key=("name",))


def load_population_state(conn: Connection, config: ScoringConfig) -> PopulationState | None:
    """The stored state when it was computed with these settings; else None (score everyone)."""
    row = conn.execute(select(ScoreState.config_hash, ScoreState.state)
                       .where(ScoreState.name == POPULATION)).first()
    if row is None or row.config_hash != config_fingerprint(config):
        return None
    return PopulationState.from_json(row.state)
