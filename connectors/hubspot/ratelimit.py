"""Client-side rate limiting that keeps under HubSpot's rolling windows instead of hitting 429.

HubSpot counts requests per rolling 10 seconds (100-190 by tier) and, separately, search
requests per second. A 429 is not free: it still counts against the daily budget, and a storm
of them gets an app throttled harder. So every call waits here first.

The window is counted at the *completion* of each request, not at its start. The server
counts a request when it arrives, which is somewhere between our send and the end of its
answer; a limiter that stamped requests at send time could let the (N+1)th request of a
window arrive less than a window after the first one did, when that first one was slow to
reach the server. Counting from completion makes the guarantee hold whatever the latency:
if fewer than N requests *finished* within the last window before we send, fewer than N
*arrived* within the window the server sees for ours. Libraries such as ``limits`` stamp at
acquisition, which is the wrong end of the request for this argument, hence this class.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RollingWindowLimiter:
    """At most ``max_requests`` per rolling ``window_s`` seconds, counted as described above."""

    def __init__(
        self,
        max_requests: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests}")
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.max_requests = max_requests
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._finished: deque[float] = deque()
        self._in_flight = 0
        self.waited_s = 0.0

    def _delay(self, now: float) -> float:
        """Seconds to wait before one more request may start (0 when it may start now)."""
        while self._finished and self._finished[0] <= now - self.window_s:
            self._finished.popleft()
        busy = len(self._finished) + self._in_flight
        if busy < self.max_requests:
            return 0.0
        if len(self._finished) <= busy - self.max_requests:
            # Every slot is held by requests still in flight (several threads): poll briefly.
            return 0.01
        # The oldest completions that must leave the window before one more may start.
        return self._finished[busy - self.max_requests] + self.window_s - now

    def acquire(self) -> None:
        """Block until a request may start; the caller must :meth:`release` when it ends."""
        while True:
            with self._lock:
                delay = self._delay(self._clock())
                if delay <= 0:
                    self._in_flight += 1
                    return
            self.waited_s += delay
            self._sleep(delay)

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._finished.append(self._clock())

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class HubSpotRateLimiter:
    """The two windows a HubSpot private app lives under: all requests, and search requests."""

    def __init__(
        self,
        requests_per_10s: int,
        search_requests_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.general = RollingWindowLimiter(requests_per_10s, 10.0, clock=clock, sleep=sleep)
        # A fractional per-second rate (e.g. 4.5/s) becomes whole requests over a longer window.
        per_window, window_s = _whole_requests(search_requests_per_second)
        self.search = RollingWindowLimiter(per_window, window_s, clock=clock, sleep=sleep)

    @contextmanager
    def slot(self, *, search: bool = False) -> Iterator[None]:
        if search:
            # The search window first: waiting on it must not hold a slot of the general one.
            with self.search.slot(), self.general.slot():
                yield
        else:
            with self.general.slot():
                yield

    @property
    def waited_s(self) -> float:
        return self.general.waited_s + self.search.waited_s


def _whole_requests(per_second: float) -> tuple[int, float]:
    """``per_second`` as (whole requests, window seconds), never faster than asked."""
    if per_second >= 1:
        count = int(per_second)
        return count, count / per_second
    return 1, 1.0 / per_second


_PORTAL_LIMITERS: dict[tuple[str, int, float], HubSpotRateLimiter] = {}
_PORTAL_LIMITERS_LOCK = threading.Lock()


def portal_limiter(base_url: str, requests_per_10s: int, search_requests_per_second: float) -> HubSpotRateLimiter:
    """One limiter per portal for the whole process: HubSpot counts every call of the app in one rolling
    window, so a run's pull, its write-back and ``abm init`` must see each other's calls (a fresh limiter
    would burst a full window right after another's calls and meet 429s)."""
    key = (base_url, requests_per_10s, search_requests_per_second)
    with _PORTAL_LIMITERS_LOCK:
        if key not in _PORTAL_LIMITERS:
            _PORTAL_LIMITERS[key] = HubSpotRateLimiter(requests_per_10s, search_requests_per_second)
        return _PORTAL_LIMITERS[key]
