"""The API budget guard: a run may use the org's daily allowance only up to a configured share.

CRMs count API calls per org per day, across every integration. A backfill that spends the
whole allowance stops the marketing sync, the ERP integration and the reps' mobile app until
tomorrow. So before each call the guard asks: after this call, would the org's usage pass
``max_share`` of its daily total? If so the run stops cleanly (state saved, run paused) and
the next run continues.

Usage is the org's, not ours: the CRM reports it on responses (Salesforce's
``Sforce-Limit-Info``, HubSpot's ``X-HubSpot-RateLimit-Daily-Remaining``) and on limits
endpoints. Between two reports each call we send is counted locally, and a report replaces
the local estimate with the server's figure, unless the server has only not counted yet the
calls our other threads have in flight (see :meth:`ApiBudget.observe`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field


class BudgetExhausted(Exception):
    """The run must stop for the API budget: pause, keep state, resume next run."""

    def __init__(self, crm: str, message: str) -> None:
        super().__init__(message)
        self.crm = crm
        self.message = message


@dataclass
class ApiBudget:
    crm: str
    max_share: float  # e.g. 0.8: leave 20% of the daily allowance to other integrations
    used: int | None = None  # org-wide calls used today, as last reported (plus ours since)
    total: int | None = None  # the org's daily allowance
    calls: int = 0  # calls this run sent
    # a pull's objects may call from several threads (connectors.concurrency): each call is counted once
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {self.max_share}")

    def observe(self, used: int, total: int) -> None:
        """A usage report from the CRM (it already counts the call that carried it).

        A report below the local estimate by no more than the calls this run sent is the CRM not having
        counted some of them yet (calls in flight from other threads when it answered): the estimate stays,
        or the guard would let the run pass its share by as many calls. A larger drop (the daily count
        starting over) is taken.
        """
        used, total = int(used), int(total)
        with self._lock:
            lagging = self.used is not None and self.total == total and 0 < self.used - used <= self.calls
            if not lagging:
                self.used = used
            self.total = total

    @property
    def ceiling(self) -> int | None:
        """Org-wide usage the run must not pass."""
        return math.floor(self.total * self.max_share) if self.total is not None else None

    @property
    def allowance(self) -> int | None:
        """Calls this run may still make before reaching the ceiling (None until usage is known)."""
        if self.total is None or self.used is None:
            return None
        return max(self.ceiling - self.used, 0)  # type: ignore[operator]

    @property
    def remaining(self) -> int | None:
        """Calls left in the org's daily allowance, for everyone."""
        if self.total is None or self.used is None:
            return None
        return max(self.total - self.used, 0)

    def before_call(self, what: str = "API call") -> None:
        """Count one call, or raise :class:`BudgetExhausted` if it would pass the ceiling."""
        with self._lock:
            self._count(what)

    def _count(self, what: str) -> None:
        allowance = self.allowance
        if allowance is not None and allowance < 1:
            share = round(self.max_share * 100)
            raise BudgetExhausted(
                self.crm,
                f"{self.crm}: stopping before {what}: the org has used {self.used} of {self.total} daily API calls "
                f"and this run may use at most {share}% of them (sync.max_api_share); the run is paused and the "
                "next one continues where this one stopped",
            )
        self.calls += 1
        if self.used is not None:
            self.used += 1
