"""Columnar activities: the adapter between records (or SQL result rows) and the numpy engine.

The engine never sees an object per activity; this module is the only place that loops over
activities in Python, once, while loading.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from scoring.catalogue import TYPE_CODE
from store.records import ActivityRecord

Key = tuple[str, str]  # (crm, crm_id)


@dataclass(frozen=True)
class ActivityColumns:
    """One row per activity. ``person``/``account`` are entity indexes, -1 when absent."""

    person: np.ndarray  # int32
    account: np.ndarray  # int32, the account the activity itself names (before the match roll-up)
    type_code: np.ndarray  # int8, position in store.activity_types.ACTIVITY_TYPES
    ts: np.ndarray  # int64, seconds since the epoch (UTC)

    def __post_init__(self) -> None:
        n = len(self.ts)
        if not (len(self.person) == len(self.account) == len(self.type_code) == n):
            raise ValueError("activity columns must all have the same length")

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, selector: np.ndarray) -> ActivityColumns:
        return ActivityColumns(
            self.person[selector], self.account[selector], self.type_code[selector], self.ts[selector]
        )

    @classmethod
    def concat(cls, parts: Iterable[ActivityColumns]) -> ActivityColumns:
        parts = list(parts)
        return cls(
            np.concatenate([p.person for p in parts]).astype(np.int32, copy=False),
            np.concatenate([p.account for p in parts]).astype(np.int32, copy=False),
            np.concatenate([p.type_code for p in parts]).astype(np.int8, copy=False),
            np.concatenate([p.ts for p in parts]).astype(np.int64, copy=False),
        )

    @classmethod
    def empty(cls) -> ActivityColumns:
        return cls(np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int8), np.empty(0, np.int64))


@dataclass
class LoadReport:
    """What the adapter could not use, so a mapping gap is visible instead of silently lowering scores."""

    rows: int = 0
    unknown_type: Counter[str] = field(default_factory=Counter)
    no_timestamp: int = 0
    unattributed: int = 0  # neither a known person nor a known account


def activity_columns_from_rows(
    rows: Iterable[tuple[str, str, datetime | None, str | None, str | None]],
    person_index: Mapping[Key, int],
    account_index: Mapping[Key, int],
    report: LoadReport | None = None,
) -> ActivityColumns:
    """Rows of ``(crm, activity_type, occurred_at, person_crm_id, account_crm_id)``, e.g. a SQL result."""
    report = report if report is not None else LoadReport()
    person: list[int] = []
    account: list[int] = []
    type_code: list[int] = []
    ts: list[int] = []
    for crm, activity_type, occurred_at, person_crm_id, account_crm_id in rows:
        report.rows += 1
        code = TYPE_CODE.get(activity_type)
        if code is None:
            report.unknown_type[activity_type] += 1
            continue
        if occurred_at is None:
            report.no_timestamp += 1
            continue
        p = person_index.get((crm, person_crm_id), -1) if person_crm_id else -1
        a = account_index.get((crm, account_crm_id), -1) if account_crm_id else -1
        if p < 0 and a < 0:
            report.unattributed += 1
            continue
        person.append(p)
        account.append(a)
        type_code.append(code)
        ts.append(int(occurred_at.timestamp()))
    return ActivityColumns(
        np.array(person, dtype=np.int32),
        np.array(account, dtype=np.int32),
        np.array(type_code, dtype=np.int8),
        np.array(ts, dtype=np.int64),
    )


def activity_columns(
    records: Iterable[ActivityRecord],
    person_index: Mapping[Key, int],
    account_index: Mapping[Key, int],
    report: LoadReport | None = None,
) -> ActivityColumns:
    """Columns from :class:`store.records.ActivityRecord` objects (tests, the sandbox generator)."""
    return activity_columns_from_rows(
        ((r.crm, r.activity_type, r.occurred_at, r.person_crm_id, r.account_crm_id) for r in records),
        person_index,
        account_index,
        report,
    )
