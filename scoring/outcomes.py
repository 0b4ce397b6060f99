"""Opportunities as columns: the labels for fit, the predictive model and the backtests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time

import numpy as np

from store.records import OpportunityRecord

NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class OpportunityColumns:
    account: np.ndarray  # int64 account index, -1 unknown
    created: np.ndarray  # int64 seconds
    closed: np.ndarray  # int64 seconds, NEVER while open
    won: np.ndarray  # bool
    amount: np.ndarray  # float64, 0 when unknown

    def __len__(self) -> int:
        return len(self.account)

    @classmethod
    def empty(cls) -> OpportunityColumns:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, bool),
                   np.empty(0, np.float64))

    def account_labels(self, n_accounts: int, as_of: int) -> tuple[np.ndarray, np.ndarray]:
        """(customer, lost) per account from deals closed before ``as_of``; a customer is never 'lost'."""
        closed = (self.closed < as_of) & (self.account >= 0)
        won = np.zeros(n_accounts, dtype=bool)
        won[self.account[closed & self.won]] = True
        lost = np.zeros(n_accounts, dtype=bool)
        lost[self.account[closed & ~self.won]] = True
        return won, lost & ~won

    def outcome_between(self, n_accounts: int, start: int, end: int, target: str) -> np.ndarray:
        """Accounts that won (target "won") or opened (target "opened") a deal in ``[start, end)``."""
        when = np.where(self.won, self.closed, NEVER) if target == "won" else self.created
        hit = (when >= start) & (when < end) & (self.account >= 0)
        out = np.zeros(n_accounts, dtype=bool)
        out[self.account[hit]] = True
        return out


def _seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def opportunity_columns(
    records: Iterable[OpportunityRecord], account_index: Mapping[tuple[str, str], int]
) -> OpportunityColumns:
    """Closed time is ``closed_at``, else the close date's midnight UTC; created falls back to closed."""
    acc, created, closed, won, amount = [], [], [], [], []
    for r in records:
        close = _seconds(r.closed_at)
        if close is None and r.is_closed and r.close_date is not None:
            close = int(datetime.combine(r.close_date, time(), tzinfo=UTC).timestamp())
        made = _seconds(r.created_at)
        if made is None:
            made = close if close is not None else NEVER
        acc.append(account_index.get((r.crm, r.account_crm_id), -1) if r.account_crm_id else -1)
        created.append(made)
        closed.append(close if (r.is_closed and close is not None) else NEVER)
        won.append(bool(r.is_won and r.is_closed))
        amount.append(float(r.amount or 0.0))
    return OpportunityColumns(
        np.array(acc, dtype=np.int64),
        np.array(created, dtype=np.int64),
        np.array(closed, dtype=np.int64),
        np.array(won, dtype=bool),
        np.array(amount, dtype=np.float64),
    )
