"""Retrying CRM calls: rate limits are waited out, brief outages retried, the rest stop the run.

A write is idempotent (same values to the same ids), so resending a batch after a 429, a 5xx
or a dropped connection is safe. A rate-limit wait is not a failure and costs no record an
error; only when the run has waited longer than its allowance, or the CRM keeps failing, does
the run stop, with everything written so far already in the baseline, to resume next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception

T = TypeVar("T")
Kind = Literal["rate_limit", "transient", "fatal"]


class WritebackStopped(RuntimeError):
    """The run cannot go on with this CRM now (budget spent, CRM down, waited too long).

    Nothing is lost: every batch that finished is recorded, the rest is written next run.
    ``whole_crm`` False means only the object being written is affected; the run goes on
    with the CRM's other objects.
    """

    def __init__(self, crm: str, reason: str, *, whole_crm: bool = True) -> None:
        super().__init__(f"{crm}: {reason}")
        self.crm = crm
        self.reason = reason
        self.whole_crm = whole_crm


class RetryPolicy:
    """Runs calls, waiting on rate limits and retrying transient errors, per one CRM's rules.

    ``classify`` says what an exception is; ``retry_after`` reads the server's requested wait
    (seconds) from it when there is one.
    """

    def __init__(
        self,
        crm: str,
        classify: Callable[[BaseException], Kind],
        retry_after: Callable[[BaseException], float | None],
        *,
        max_rate_limit_wait_s: float = 900.0,
        max_transient_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.crm = crm
        self.classify = classify
        self.retry_after = retry_after
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self.max_transient_attempts = max_transient_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.rate_limit_waits = 0
        self.rate_limited_s = 0.0
        self.transient_retries = 0

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None
        backoff = min(self.max_backoff_s, self.backoff_s * 2 ** (state.attempt_number - 1))
        if self.classify(exc) == "rate_limit":
            asked = self.retry_after(exc)
            seconds = asked if asked is not None else backoff
            self.rate_limit_waits += 1
            self.rate_limited_s += seconds
            return seconds
        self.transient_retries += 1
        return backoff

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return True
        if self.classify(exc) == "rate_limit":
            return self.rate_limited_s >= self.max_rate_limit_wait_s
        return state.attempt_number >= self.max_transient_attempts

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried as above; :class:`WritebackStopped` when retrying has to give up."""
        retrying = Retrying(
            retry=retry_if_exception(lambda e: self.classify(e) != "fatal"),
            wait=self._wait,
            stop=self._stop,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return retrying(fn)
        except Exception as exc:
            kind = self.classify(exc)
            if kind == "rate_limit":
                raise WritebackStopped(self.crm, f"rate limited for {self.rate_limited_s:.0f} s in total while "
                                       f"{what}; the rest is written next run") from exc
            if kind == "transient":
                raise WritebackStopped(self.crm, f"{what} kept failing after {self.max_transient_attempts} "
                                       f"attempts ({_short(exc)}); the rest is written next run") from exc
            raise


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
