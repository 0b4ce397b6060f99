"""Request log and per-endpoint counters.

Tests and benchmarks assert on exact API call counts ("a full sync costs records/2000 query
calls"), so every request is recorded with its route template, status, the fields it wrote
and the fault that hit it. Counters survive the log's size cap so long benchmarks stay exact.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    seq: int
    at: float
    method: str
    path: str
    query: str
    endpoint: str
    status: int | None
    duration_ms: float
    fields_written: tuple[str, ...] = field(default_factory=tuple)
    fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[LoggedRequest] = deque(maxlen=max_entries)
        self._counts: Counter[str] = Counter()
        self._seq = 0

    def record(
        self,
        method: str,
        path: str,
        query: str,
        endpoint: str,
        status: int | None,
        started: float,
        fields_written: tuple[str, ...] = (),
        fault: str | None = None,
    ) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append(
                LoggedRequest(
                    seq=self._seq,
                    at=time.time(),
                    method=method,
                    path=path,
                    query=query,
                    endpoint=endpoint,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    fields_written=fields_written,
                    fault=fault,
                )
            )
            self._counts[f"{method} {endpoint}"] += 1

    def entries(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally filtered by exact method and a path regex (searched)."""
        pattern = re.compile(path) if path else None
        with self._lock:
            items = list(self._entries)
        return [
            e
            for e in items
            if (method is None or e.method == method.upper()) and (pattern is None or pattern.search(e.path))
        ]

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return len(self.entries(method, path))

    def counters(self) -> dict[str, int]:
        """Calls per endpoint, keyed ``"METHOD /route/{template}"``."""
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counts.clear()
