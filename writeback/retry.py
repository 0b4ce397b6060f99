"""Retrying CRM writes: rate limits are waited out, brief outages retried, the rest stop the run.

The wait strategy is the connectors' shared policy (:mod:`connectors.retry`: ``Retry-After``
when the CRM sends one, else exponential backoff with full jitter). What writeback adds is the
stop rule: a rate-limit wait is not a failure, so a 429 storm is waited out for as long as the
run's allowance of waiting lasts, however many attempts that takes, while errors that are not
rate limits give up after the usual number of attempts.

A write is idempotent (same values to the same ids), so resending a batch is always safe. When
retrying has to give up, :class:`WritebackStopped` ends the CRM's part of the run; every batch
that finished is already recorded, and the next run writes the rest.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from tenacity import RetryCallState

from connectors.budget import ApiBudget, BudgetExhausted
from connectors.retry import RetrySettings, retrying

T = TypeVar("T")
Kind = Literal["rate_limit", "transient", "fatal"]


class WritebackStopped(RuntimeError):
    """The run cannot go on with this CRM now (budget spent, CRM down, waited too long).

    ``whole_crm`` False means only the object being written is affected; the run goes on
    with the CRM's other objects.
    """

    def __init__(self, crm: str, reason: str, *, whole_crm: bool = True) -> None:
        super().__init__(f"{crm}: {reason}")
        self.crm = crm
        self.reason = reason
        self.whole_crm = whole_crm


class RetryPolicy:
    """Runs one CRM's write calls with the budget guard, rate-limit waits and retries.

    ``classify`` says what an exception is; ``retry_after`` reads the server's requested wait
    (seconds) from it when there is one. ``budget`` (the connectors' daily API budget guard)
    is asked before every attempt.
    """

    def __init__(
        self,
        crm: str,
        classify: Callable[[BaseException], Kind],
        retry_after: Callable[[BaseException], float | None],
        *,
        settings: RetrySettings = RetrySettings(),
        max_rate_limit_wait_s: float = 900.0,
        budget: ApiBudget | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.crm = crm
        self.classify = classify
        self.retry_after = retry_after
        self.settings = settings
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.budget = budget
        self.sleep = sleep
        self.rate_limit_waits = 0
        self.rate_limited_s = 0.0
        self._lock = threading.Lock()

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return True
        if self.classify(exc) == "rate_limit":
            with self._lock:  # writers may send from several threads
                if self.rate_limited_s + state.upcoming_sleep > self.max_rate_limit_wait_s:
                    return True
                self.rate_limit_waits += 1
                self.rate_limited_s += state.upcoming_sleep
            return False
        return state.attempt_number >= self.settings.attempts

    def _attempt(self, fn: Callable[[], T], what: str) -> T:
        if self.budget is not None:
            with self._lock:
                self.budget.before_call(what)
        return fn()

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried as above; :class:`WritebackStopped` when it has to give up."""
        policy = retrying(lambda e: self.classify(e) != "fatal", self.retry_after, self.settings,
                          what=f"{self.crm} {what}", sleep=self.sleep).copy(stop=self._stop)
        try:
            return policy(self._attempt, fn, what)
        except BudgetExhausted as exc:
            raise WritebackStopped(self.crm, f"{exc.message}") from exc
        except Exception as exc:
            kind = self.classify(exc)
            if kind == "rate_limit":
                raise WritebackStopped(self.crm, f"rate limited for {self.rate_limited_s:.0f} s in total while "
                                       f"{what}; the rest is written next run") from exc
            if kind == "transient":
                raise WritebackStopped(self.crm, f"{what} kept failing after {self.settings.attempts} attempts "
                                       f"({_short(exc)}); the rest is written next run") from exc
            raise


def is_certificate_problem(exc: BaseException) -> bool:
    """A TLS failure that retrying cannot fix (an untrusted or mismatched certificate), as opposed to a
    connection dropped mid-handshake, which also surfaces as an SSL error but is transient."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        pending.extend([current.__cause__, current.__context__, *current.args, getattr(current, "reason", None)])
    return False


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
