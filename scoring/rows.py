"""Rows for the ``scores`` and ``score_history`` tables, as plain dicts the worker upserts.

Keys are the column names of :mod:`store.schema`; values are Python scalars (no numpy types,
no NaN), so any driver takes them as they are; the breakdown comes already encoded for the JSON
column (:class:`~store.types.JsonText`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson

from config.scoring import ScoringConfig
from scoring.engine import gather
from scoring.reasons import ReasonWriter
from scoring.rules import ALIGNMENTS, TRENDS
from scoring.scores import Population, ScoreSet
from store.types import JsonText

ACCOUNT, PERSON = "account", "person"
# keys as json writes them (numbers as text), numpy scalars as numbers
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else value


def _columns(scores: ScoreSet, population: Population, kind: str,
             rows: np.ndarray | None = None, round_to: Mapping[str, int] | None = None) -> dict[str, list[Any]]:
    """The score columns of one kind, as lists (one ``tolist`` per column): of every entity, or of ``rows``
    (indexes) only, as an incremental run saves a few of a million people. ``round_to``: decimals to round
    columns to (with Python's ``round``, value by value)."""
    columns = _raw_columns(scores, population, kind, rows)
    for name, digits in (round_to or {}).items():
        columns[name] = [None if v is None else round(v, digits) for v in columns[name]]
    return columns


def _raw_columns(scores: ScoreSet, population: Population, kind: str,
                 rows: np.ndarray | None = None) -> dict[str, list[Any]]:
    s = scores

    def take(values: np.ndarray) -> np.ndarray:
        return values if rows is None else values[rows]

    if kind == ACCOUNT:
        predictive = s.predictive if s.predictive is not None else np.full(population.n_accounts, np.nan)
        return {
            "engagement": take(s.engagement).tolist(),
            "sales_activity": take(s.sales).tolist(),
            "marketing": take(s.marketing).tolist(),
            "fit": take(s.fit.fit).tolist(),
            "grade": take(s.grade).astype(int).tolist(),
            "predictive": [_opt(p) for p in take(np.asarray(predictive, dtype=float)).tolist()],
            "breadth": take(s.breadth).tolist(),
            "velocity": take(s.velocity).tolist(),
            "trend": [TRENDS[t] for t in take(s.trend).tolist()],
            "alignment": [ALIGNMENTS[a] for a in take(s.alignment).tolist()],
        }
    predictive = s.person_predictive if s.person_predictive is not None else np.full(population.n_people, np.nan)
    fit = gather(s.fit.fit, take(population.person_account), np.nan)
    return {
        "engagement": take(s.person_engagement).tolist(),
        "sales_activity": take(s.person_sales).tolist(),
        "marketing": take(s.person_marketing).tolist(),
        "fit": [_opt(f) for f in fit.tolist()],
        "grade": take(s.person_grade).astype(int).tolist(),
        "predictive": [_opt(p) for p in take(np.asarray(predictive, dtype=float)).tolist()],
        "breadth": [None] * len(fit),
        "velocity": take(s.person_velocity).tolist(),
        "trend": [TRENDS[t] for t in take(s.person_trend).tolist()],
        "alignment": [ALIGNMENTS[a] for a in take(s.person_alignment).tolist()],
    }


def history_rows(
    scores: ScoreSet, population: Population, entity_ids: np.ndarray, day: date, *, kind: str = ACCOUNT,
    only: np.ndarray | None = None, round_to: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One ``score_history`` row per entity for ``day`` (upsert on entity and day: a rerun the same
    day replaces that day's snapshot). ``only`` (indexes) limits the rows, e.g. to changed entities;
    ``round_to``: as for :func:`score_rows`."""
    rows = None if only is None else np.asarray(only, dtype=np.int64)
    cols = _columns(scores, population, kind, rows, round_to)
    ids = (entity_ids if rows is None else entity_ids[rows]).tolist()
    return [
        {"entity_kind": kind, "entity_id": ids[j], "day": day, **{name: values[j] for name, values in cols.items()}}
        for j in range(len(ids))
    ]


def score_rows(
    scores: ScoreSet,
    population: Population,
    entity_ids: np.ndarray,
    config: ScoringConfig,
    scored_at: datetime,
    *,
    kind: str = ACCOUNT,
    only: np.ndarray | None = None,
    model_version: int | None = None,
    round_to: Mapping[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """``scores`` rows with the reasons text and full breakdown, generated lazily: reasons cost
    more than the scores, so the worker can write them in batches as they come.

    ``round_to``: decimals to round score columns to (what a rep sees, which the save compares), a column at a
    time: rounding each row's values after it was built cost 9 µs a row (1.7 s of an L increment's rows).
    """
    rows = None if only is None else np.asarray(only, dtype=np.int64)
    cols = _columns(scores, population, kind, rows, round_to)
    writer = ReasonWriter(scores, population, config)
    # the ids of the rows wanted only: the save builds a million people's rows 2,000 at a time, and listing every
    # id for each slice cost 57 ms a slice (3.8 s of an L increment's 132,000 rescored people)
    ids = (entity_ids if rows is None else entity_ids[rows]).tolist()
    index = np.arange(len(ids), dtype=np.int64) if rows is None else rows
    explained = writer.accounts(index) if kind == ACCOUNT else writer.people(index)
    for j, reasons in enumerate(explained):
        yield {
            "entity_kind": kind,
            "entity_id": ids[j],
            **{name: values[j] for name, values in cols.items()},
            "reasons_text": reasons.text,
            "breakdown": _json_text(reasons.breakdown),
            "model_version": model_version,
            "scored_at": scored_at,
        }


def _json_text(breakdown: dict[str, Any]) -> JsonText:
    """The breakdown encoded for the JSON column, NaN and infinities as null.

    orjson writes them as null itself, and encodes an L org's breakdowns (1.9 KB each) in 1.3 µs
    against 14 µs with ``json`` (2.6 s of the save of an increment that rescored 182,000 entities).
    What orjson refuses (an integer past 64 bits) is encoded by ``json``, made safe first.
    """
    try:
        return JsonText(orjson.dumps(breakdown, option=_ORJSON_OPTIONS).decode())
    except orjson.JSONEncodeError:
        return JsonText(json.dumps(_json_safe(breakdown), ensure_ascii=False, allow_nan=False))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
