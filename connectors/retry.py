"""Retrying CRM calls: exponential backoff with jitter, ``Retry-After`` honoured, validation errors never.

A 429 or a 503 is the CRM asking us to slow down, and a dropped connection or a timeout is
the network hiccuping: waiting and trying again is the right answer, and it is not a failure
of the run. A 400 (bad query, invalid field) will fail the same way every time, so retrying
it only burns API allowance. Each connector says which of its exceptions are transient and
where a server-requested delay can be read; the policy itself is shared.

Jitter is "full jitter" (a random wait between 0 and the exponential cap) so that several
workers throttled at once do not come back in lockstep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.wait import wait_base

from store.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 8  # tries in all, the first one included
    initial_seconds: float = 1.0  # cap of the first backoff; doubles on every retry
    max_seconds: float = 120.0  # cap of any backoff
    max_retry_after_seconds: float = 900.0  # a longer Retry-After than this is cut to it


class _RetryAfterOrBackoff(wait_base):
    """The server's ``Retry-After`` when it sent one, else exponential backoff with full jitter."""

    def __init__(self, retry_after: Callable[[BaseException], float | None], settings: RetrySettings) -> None:
        self.retry_after = retry_after
        self.cap = settings.max_retry_after_seconds
        self.backoff = wait_random_exponential(multiplier=settings.initial_seconds, max=settings.max_seconds)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        requested = self.retry_after(error) if error is not None else None
        if requested is not None:
            return max(0.0, min(float(requested), self.cap))
        return float(self.backoff(retry_state))


def retrying(
    is_transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None],
    settings: RetrySettings = RetrySettings(),
    *,
    what: str = "CRM call",
    sleep: Callable[[float], Any] = time.sleep,
) -> Retrying:
    """A tenacity ``Retrying`` for one logical call: ``for attempt in retrying(...): with attempt: ...``.

    After the last attempt the call's own exception is raised (``reraise``), so callers see
    the CRM's error, not a tenacity wrapper.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s failed (%s); retry %d of %d in %.1f s",
            what, _describe(error), state.attempt_number, settings.attempts - 1, wait,
        )

    return Retrying(
        retry=retry_if_exception(is_transient),
        wait=_RetryAfterOrBackoff(retry_after, settings),
        stop=stop_after_attempt(settings.attempts),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "no error"
    status = getattr(error, "status", None)
    return f"HTTP {status}" if status else type(error).__name__


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; HTTP dates are rare from CRMs)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - utcnow()).total_seconds()) if when.tzinfo else None
    return seconds if seconds >= 0 else None
