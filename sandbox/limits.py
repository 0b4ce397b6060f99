"""Daily API budgets (Salesforce's DailyApiRequests, HubSpot's daily limit, ...).

CRMs count calls per rolling day and refuse work once the budget is spent; connectors must
stop cleanly and resume. Counters reset when the UTC date changes, and tests can exhaust
or reset them on demand.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass
class _Counter:
    maximum: int
    used: int = 0


class DailyLimits:
    """Named daily counters with a maximum each."""

    def __init__(self, maxima: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._day = self._today()
        self._counters: dict[str, _Counter] = {}
        for name, maximum in (maxima or {}).items():
            self.define(name, maximum)

    @staticmethod
    def _today() -> date:
        return datetime.now(UTC).date()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            for counter in self._counters.values():
                counter.used = 0

    def define(self, name: str, maximum: int) -> None:
        if maximum < 0:
            raise ValueError(f"daily limit {name} must be >= 0, got {maximum}")
        with self._lock:
            self._counters[name] = _Counter(maximum=maximum)

    def _get(self, name: str) -> _Counter:
        try:
            return self._counters[name]
        except KeyError:
            raise KeyError(f"unknown daily limit {name!r}; defined: {sorted(self._counters)}") from None

    def try_consume(self, name: str, amount: int = 1) -> bool:
        """Count ``amount`` calls; False (and nothing counted) if that would pass the maximum."""
        with self._lock:
            self._roll()
            counter = self._get(name)
            if counter.used + amount > counter.maximum:
                return False
            counter.used += amount
            return True

    def used(self, name: str) -> int:
        with self._lock:
            self._roll()
            return self._get(name).used

    def maximum(self, name: str) -> int:
        with self._lock:
            return self._get(name).maximum

    def remaining(self, name: str) -> int:
        with self._lock:
            self._roll()
            counter = self._get(name)
            return max(counter.maximum - counter.used, 0)

    def set_maximum(self, name: str, maximum: int) -> None:
        with self._lock:
            self._get(name).maximum = maximum

    def exhaust(self, name: str) -> None:
        """Spend the whole budget, as if other integrations had used it up today."""
        with self._lock:
            counter = self._get(name)
            counter.used = counter.maximum

    def reset(self, name: str | None = None) -> None:
        with self._lock:
            for key, counter in self._counters.items():
                if name is None or key == name:
                    counter.used = 0

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            self._roll()
            return {
                name: {"Max": c.maximum, "Remaining": max(c.maximum - c.used, 0)}
                for name, c in self._counters.items()
            }
