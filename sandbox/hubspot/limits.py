"""HubSpot's request limits: a rolling 10-second window, a daily budget, and search's per-second cap.

Connectors are meant to pace themselves from the ``X-HubSpot-RateLimit-*`` headers and never
meet a 429; the sandbox enforces the same policies so a test can prove they do. Limits are
per portal here (HubSpot counts per app and account; the sandbox serves one of each).
Search responses carry no rate-limit headers, as HubSpot's do not.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from sandbox.hubspot.errors import daily_limit, secondly_limit, ten_secondly_limit
from sandbox.limits import DailyLimits

DAILY = "HubSpotDailyApiRequests"
DEFAULT_PER_TEN_SECONDS = 190
DEFAULT_DAILY = 1_000_000
DEFAULT_SEARCH_PER_SECOND = 5
WINDOW_S = 10.0


class _Window:
    """Timestamps of admitted requests inside a rolling window."""

    def __init__(self, seconds: float, maximum: int) -> None:
        self.seconds = seconds
        self.maximum = maximum
        self.stamps: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()

    def remaining(self, now: float) -> int:
        self._trim(now)
        return max(self.maximum - len(self.stamps), 0)

    def wait(self, now: float) -> float:
        """Seconds until a slot frees (0 if one is free now)."""
        self._trim(now)
        if len(self.stamps) < self.maximum:
            return 0.0
        return self.stamps[len(self.stamps) - self.maximum] + self.seconds - now


class HubSpotLimits:
    def __init__(
        self,
        per_ten_seconds: int = DEFAULT_PER_TEN_SECONDS,
        daily: int = DEFAULT_DAILY,
        search_per_second: int = DEFAULT_SEARCH_PER_SECOND,
    ) -> None:
        self._lock = threading.Lock()
        self.daily = DailyLimits({DAILY: daily})
        self._window = _Window(WINDOW_S, per_ten_seconds)
        self._search = _Window(1.0, search_per_second)

    def configure(self, per_ten_seconds: int | None = None, daily: int | None = None,
                  search_per_second: int | None = None) -> None:
        """Change limits on a running sandbox (tests and benchmarks pick a tier)."""
        with self._lock:
            if per_ten_seconds is not None:
                if per_ten_seconds < 1:
                    raise ValueError(f"per_ten_seconds must be >= 1, got {per_ten_seconds}")
                self._window.maximum = per_ten_seconds
            if search_per_second is not None:
                if search_per_second < 1:
                    raise ValueError(f"search_per_second must be >= 1, got {search_per_second}")
                self._search.maximum = search_per_second
        if daily is not None:
            self.daily.set_maximum(DAILY, daily)

    @property
    def per_ten_seconds(self) -> int:
        return self._window.maximum

    @property
    def search_per_second(self) -> int:
        return self._search.maximum

    def headers(self) -> dict[str, str]:
        with self._lock:
            return self._headers(time.monotonic())

    def _headers(self, now: float) -> dict[str, str]:
        """HubSpot's rate-limit headers; the caller holds the lock."""
        remaining, maximum = self._window.remaining(now), self._window.maximum
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily.maximum(DAILY)),
            "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily.remaining(DAILY)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(WINDOW_S * 1000)),
            "X-HubSpot-RateLimit-Max": str(maximum),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Secondly": str(max(maximum // 10, 1)),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(remaining // 10),
        }

    def admit(self, search: bool = False) -> None:
        """Count one request, or raise the 429 HubSpot would send (nothing is counted then)."""
        now = time.monotonic()
        with self._lock:
            wait = self._window.wait(now)
            if wait > 0:
                raise ten_secondly_limit(self._rejection_headers(now, wait, search))
            if search:
                wait = self._search.wait(now)
                if wait > 0:
                    raise secondly_limit({"Retry-After": str(max(1, math.ceil(wait)))})
            if not self.daily.try_consume(DAILY):
                raise daily_limit(self._rejection_headers(now, None, search))
            self._window.stamps.append(now)
            if search:
                self._search.stamps.append(now)

    def _rejection_headers(self, now: float, wait: float | None, search: bool) -> dict[str, str]:
        headers = {} if search else self._headers(now)
        if wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return headers

    def snapshot(self) -> dict[str, int]:
        """The configured limits and what is left of them now (the admin endpoint shows this)."""
        now = time.monotonic()
        with self._lock:
            return {"perTenSeconds": self._window.maximum, "tenSecondsRemaining": self._window.remaining(now),
                    "searchPerSecond": self._search.maximum, "daily": self.daily.maximum(DAILY),
                    "dailyRemaining": self.daily.remaining(DAILY)}

    def exhaust_daily(self) -> None:
        self.daily.exhaust(DAILY)

    def reset(self) -> None:
        """Fresh windows and daily budget (between tests)."""
        with self._lock:
            self._window.stamps.clear()
            self._search.stamps.clear()
        self.daily.reset()
