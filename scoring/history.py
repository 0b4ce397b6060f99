"""Trends from the daily snapshots: how an account's scores moved over the configured window.

The velocity trend (surging, rising...) compares two short windows of touches; this is the
longer view a manager reads on the history chart: where engagement was ``trend_window_days``
ago, where it is now, and the least-squares slope in between, per entity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from config.scoring import HistoryConfig


@dataclass(frozen=True)
class HistoryTrend:
    """Per entity with at least one snapshot in the window (sorted by ``entity_id``)."""

    entity_id: np.ndarray  # int64
    start: np.ndarray  # value at the first snapshot in the window
    end: np.ndarray  # value at the last snapshot in the window
    change: np.ndarray  # end - start
    slope_per_day: np.ndarray  # least-squares slope; 0 with a single snapshot
    snapshots: np.ndarray  # int64, snapshots in the window


def window_start(today: date, config: HistoryConfig) -> date:
    """First day of the trend window that ends ``today`` (inclusive)."""
    return today - timedelta(days=config.trend_window_days)


def prune_before(today: date, config: HistoryConfig) -> date:
    """Snapshots dated before this day are past ``keep_days`` and can be deleted."""
    return today - timedelta(days=config.keep_days)


def trend(
    entity_id: np.ndarray, day: np.ndarray, value: np.ndarray, today: date, config: HistoryConfig
) -> HistoryTrend:
    """Trend of ``value`` per entity over the window ending ``today``.

    ``entity_id``, ``day`` (``datetime.date`` or day ordinals) and ``value`` are the columns of
    ``score_history`` rows, in any order; rows outside the window and NULL values are ignored.
    """
    ordinal = np.array([d.toordinal() if isinstance(d, date) else int(d) for d in day], dtype=np.int64)
    ids = np.asarray(entity_id, dtype=np.int64)
    vals = np.array([np.nan if v is None else v for v in value], dtype=np.float64)
    lo, hi = window_start(today, config).toordinal(), today.toordinal()
    keep = (ordinal >= lo) & (ordinal <= hi) & ~np.isnan(vals)
    ids, ordinal, vals = ids[keep], ordinal[keep], vals[keep]
    order = np.lexsort((ordinal, ids))
    ids, ordinal, vals = ids[order], ordinal[order], vals[order]
    if len(ids) == 0:
        empty = np.empty(0)
        return HistoryTrend(np.empty(0, np.int64), empty, empty, empty, empty, np.empty(0, np.int64))
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    ends = np.concatenate((starts[1:], [len(ids)])) - 1
    group = np.repeat(np.arange(len(starts)), np.diff(np.concatenate((starts, [len(ids)]))))
    n = np.bincount(group).astype(np.float64)
    x = (ordinal - lo).astype(np.float64)
    sx, sy = np.bincount(group, x), np.bincount(group, vals)
    sxx, sxy = np.bincount(group, x * x), np.bincount(group, x * vals)
    denom = n * sxx - sx * sx
    slope = np.divide(n * sxy - sx * sy, denom, out=np.zeros_like(denom), where=denom > 0)
    start, end = vals[starts], vals[ends]
    return HistoryTrend(ids[starts], start, end, end - start, slope, n.astype(np.int64))
