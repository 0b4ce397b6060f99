"""Saving a :class:`~scoring.scores.ScoreSet`: current scores (only what changed) and daily history.

Scores are rounded to what a rep can see (two decimals) before they are compared with the stored
row, so decay nudging a score in the fifth decimal neither rewrites the row nor, downstream, a CRM
field. ``scored_at`` is therefore "when this score last changed", which is also what the CRM's
"last scored" field should say.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from config.scoring import ScoringConfig
from scoring.reasons import ReasonWriter
from scoring.rules import ALIGNMENTS, TRENDS
from scoring.scores import Population, ScoreSet
from store.schema import Score, ScoreHistory
from store.upsert import upsert

# Columns compared to decide whether a stored score changed (breakdown follows them).
COMPARED = ("engagement", "sales_activity", "marketing", "fit", "grade", "predictive", "breadth", "velocity",
            "trend", "alignment", "reasons_text")
_BATCH = 10_000


def _round(values: np.ndarray | None, digits: int = 2) -> list[float | None]:
    if values is None:
        return []
    return np.round(values.astype(np.float64), digits).tolist()


@dataclass
class SavedScores:
    accounts_changed: int = 0
    people_changed: int = 0
    history_rows: int = 0
    changed_account_ids: frozenset[int] = frozenset()
    changed_person_ids: frozenset[int] = frozenset()


def account_rows(
    scores: ScoreSet, population: Population, account_ids: np.ndarray, config: ScoringConfig,
    model_version: int | None,
) -> Iterator[dict[str, Any]]:
    """One ``scores`` row per account, reasons included (pure)."""
    reasons = ReasonWriter(scores, population, config)
    engagement, sales, marketing = _round(scores.engagement), _round(scores.sales), _round(scores.marketing)
    fit, velocity = _round(scores.fit.fit), _round(scores.velocity)
    predictive = _round(scores.predictive, 4)
    grade, breadth = scores.grade.tolist(), scores.breadth.tolist()
    trend, alignment = scores.trend.tolist(), scores.alignment.tolist()
    for i, entity_id in enumerate(account_ids.tolist()):
        why = reasons.account(i)
        yield {
            "entity_kind": "account", "entity_id": entity_id,
            "engagement": engagement[i], "sales_activity": sales[i], "marketing": marketing[i], "fit": fit[i],
            "grade": int(grade[i]), "predictive": predictive[i] if predictive else None,
            "breadth": float(breadth[i]), "velocity": velocity[i],
            "trend": TRENDS[trend[i]], "alignment": ALIGNMENTS[alignment[i]],
            "reasons_text": why.text, "breakdown": why.breakdown, "model_version": model_version,
        }


def person_rows(
    scores: ScoreSet, population: Population, person_ids: np.ndarray, config: ScoringConfig,
    model_version: int | None,
) -> Iterator[dict[str, Any]]:
    """One ``scores`` row per person; a person's fit is their account's (none when unmatched)."""
    reasons = ReasonWriter(scores, population, config)
    engagement, sales = _round(scores.person_engagement), _round(scores.person_sales)
    marketing, velocity = _round(scores.person_marketing), _round(scores.person_velocity)
    predictive = _round(scores.person_predictive, 4)
    account_fit = _round(scores.fit.fit)
    person_account = population.person_account.tolist()
    grade, trend = scores.person_grade.tolist(), scores.person_trend.tolist()
    alignment = scores.person_alignment.tolist()
    for i, entity_id in enumerate(person_ids.tolist()):
        why = reasons.person(i)
        account = person_account[i]
        yield {
            "entity_kind": "person", "entity_id": entity_id,
            "engagement": engagement[i], "sales_activity": sales[i], "marketing": marketing[i],
            "fit": account_fit[account] if account >= 0 else None,
            "grade": int(grade[i]), "predictive": predictive[i] if predictive else None,
            "breadth": None, "velocity": velocity[i],
            "trend": TRENDS[trend[i]], "alignment": ALIGNMENTS[alignment[i]],
            "reasons_text": why.text, "breakdown": why.breakdown, "model_version": model_version,
        }


def _stored(conn: Connection, kind: str) -> dict[int, tuple]:
    columns = [Score.__table__.c[c] for c in COMPARED]
    rows = conn.execute(select(Score.entity_id, *columns).where(Score.entity_kind == kind))
    return {r[0]: tuple(r[1:]) for r in rows}


def save_scores(conn: Connection, kind: str, rows: Iterator[dict[str, Any]], now: datetime) -> set[int]:
    """Upsert the rows whose visible values changed; returns those entity ids."""
    stored = _stored(conn, kind)
    changed: set[int] = set()
    batch: list[dict[str, Any]] = []
    for row in rows:
        if stored.get(row["entity_id"]) == tuple(row[c] for c in COMPARED):
            continue
        changed.add(row["entity_id"])
        batch.append({**row, "scored_at": now})
        if len(batch) >= _BATCH:
            upsert(conn, Score.__table__, batch, key=("entity_kind", "entity_id"))
            batch = []
    if batch:
        upsert(conn, Score.__table__, batch, key=("entity_kind", "entity_id"))
    return changed


def snapshot_history(conn: Connection, day: date, kind: str = "account") -> int:
    """Copy today's current scores of ``kind`` into ``score_history`` (one row per entity and day)."""
    values = [Score.__table__.c[c] for c in COMPARED if c != "reasons_text"]
    rows: list[dict[str, Any]] = []
    written = 0
    for r in conn.execute(select(Score.entity_id, *values).where(Score.entity_kind == kind)):
        rows.append({"entity_kind": kind, "entity_id": r[0], "day": day,
                     **{c.name: r[i + 1] for i, c in enumerate(values)}})
        if len(rows) >= _BATCH:
            written += upsert(conn, ScoreHistory.__table__, rows, key=("entity_kind", "entity_id", "day"))
            rows = []
    if rows:
        written += upsert(conn, ScoreHistory.__table__, rows, key=("entity_kind", "entity_id", "day"))
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
    history_kinds: Sequence[str] = ("account",),
) -> SavedScores:
    accounts = save_scores(conn, "account", account_rows(scores, population, account_ids, config, model_version), now)
    people = save_scores(conn, "person", person_rows(scores, population, person_ids, config, model_version), now)
    history = sum(snapshot_history(conn, now.date(), kind) for kind in history_kinds)
    return SavedScores(len(accounts), len(people), history, frozenset(accounts), frozenset(people))
