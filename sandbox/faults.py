"""Fault injection: make the sandbox misbehave the way production CRMs do.

Connectors must survive 429 storms, 5xx, expired sessions, spent daily budgets, slow or
hung responses, dropped connections (before the request is served, or after: the change is
made but its answer is lost, as when a client times out on a slow call) and records that
refuse a write. Rules match requests by
HTTP method and a path regex and fire a given number of times; they are set through the
Python API (tests, benchmarks) or the sandbox-only admin endpoint (``/__sandbox__/faults``).
Nothing here is specific to one CRM: each surface renders the error body for a status.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("status", "latency", "hang", "drop", "lose_answer")


@dataclass
class FaultRule:
    """One rule. ``times`` None means "until cleared"; ``path`` is searched, not fully matched."""

    kind: str
    method: str = "*"
    path: str = ".*"
    times: int | None = 1
    status: int | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    body: Any = None
    id: int = 0
    fired: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "status" and (self.status is None or not 400 <= self.status <= 599):
            raise ValueError(f"a status fault needs an HTTP error status (400-599), got {self.status!r}")
        if self.kind in ("latency", "hang") and self.seconds <= 0:
            raise ValueError(f"a {self.kind} fault needs seconds > 0, got {self.seconds!r}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1 or None (unlimited), got {self.times!r}")
        self.method = self.method.upper()
        try:
            self._pattern = re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"invalid path regex {self.path!r}: {exc}") from None

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method == method.upper()) and self._pattern.search(path) is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_pattern", None)
        return data


@dataclass(frozen=True)
class WriteRejection:
    """A record that refuses writes, like one blocked by a validation rule or a trigger."""

    record_id: str
    message: str
    fields: tuple[str, ...]
    error_code: str


class FaultInjector:
    """The set of active rules; thread-safe because tests set rules while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rejections: dict[str, WriteRejection] = {}
        self._ids = itertools.count(1)

    # -- request faults -------------------------------------------------------------------
    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def fail(
        self,
        status: int,
        method: str = "*",
        path: str = ".*",
        times: int | None = 1,
        retry_after: float | None = None,
        body: Any = None,
    ) -> FaultRule:
        """Answer ``status`` (429 adds ``Retry-After`` when given) instead of serving the request."""
        return self.add(
            FaultRule("status", method, path, times, status=status, retry_after=retry_after, body=body)
        )

    def delay(self, seconds: float, method: str = "*", path: str = ".*", times: int | None = 1) -> FaultRule:
        """Serve the request normally, ``seconds`` late."""
        return self.add(FaultRule("latency", method, path, times, seconds=seconds))

    def hang(self, seconds: float, method: str = "*", path: str = ".*", times: int | None = 1) -> FaultRule:
        """Say nothing for ``seconds`` (past the client's timeout), then close without answering."""
        return self.add(FaultRule("hang", method, path, times, seconds=seconds))

    def drop(self, method: str = "*", path: str = ".*", times: int | None = 1) -> FaultRule:
        """Close the connection without any response."""
        return self.add(FaultRule("drop", method, path, times))

    def lose_answer(self, method: str = "*", path: str = ".*", times: int | None = 1) -> FaultRule:
        """Serve the request (its change is made), then close the connection without the answer."""
        return self.add(FaultRule("lose_answer", method, path, times))

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching this request, counted as fired (and spent when its times run out)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.fired += 1
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    # -- record faults --------------------------------------------------------------------
    def reject_writes(
        self,
        record_ids: Iterable[str],
        message: str = "Update rejected by a validation rule (sandbox fault)",
        fields: Iterable[str] = (),
        error_code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    ) -> None:
        """Make writes to these records fail with a per-record field error."""
        with self._lock:
            for record_id in record_ids:
                self._rejections[record_id] = WriteRejection(record_id, message, tuple(fields), error_code)

    def write_rejection(self, record_id: str | None) -> WriteRejection | None:
        if not record_id:
            return None
        with self._lock:
            return self._rejections.get(record_id)

    def rejections(self) -> list[WriteRejection]:
        with self._lock:
            return list(self._rejections.values())

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._rejections.clear()

    def add_from_json(self, spec: dict[str, Any]) -> FaultRule | list[WriteRejection]:
        """Admin endpoint entry point: ``{"kind": "status", "status": 503, "path": "/query", ...}``
        or ``{"kind": "reject_writes", "record_ids": [...], "message": ...}``."""
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object with a 'kind'")
        spec = dict(spec)
        kind = spec.get("kind")
        if kind == "reject_writes":
            ids = spec.pop("record_ids", None)
            if not isinstance(ids, list) or not ids:
                raise ValueError("reject_writes needs a non-empty 'record_ids' list")
            spec.pop("kind")
            allowed = {"message", "fields", "error_code"}
            unknown = set(spec) - allowed
            if unknown:
                raise ValueError(f"unknown keys for reject_writes: {sorted(unknown)}")
            self.reject_writes(ids, **spec)
            return [r for r in self.rejections() if r.record_id in set(ids)]
        allowed = {"kind", "method", "path", "times", "status", "retry_after", "seconds", "body"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown keys for a {kind!r} fault: {sorted(unknown)}; allowed: {sorted(allowed)}")
        return self.add(FaultRule(**spec))
