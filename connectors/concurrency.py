"""Running a connector's independent pieces of work (objects, or lanes of objects) side by side.

A pull spends much of its time waiting on the CRM (a rate limit, a Bulk job being prepared) while other
objects could be read or stored: pieces that do not depend on each other's rows run in threads, each
with its own database connection and cursors, so what each commits stays valid whatever the others do.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from connectors.budget import BudgetExhausted

T = TypeVar("T")


def run_concurrently(work: Callable[[T], None], items: Sequence[T], workers: int, *, name: str = "pull") -> None:
    """``work(item)`` for every item, up to ``workers`` at once, started in ``items``' order.

    When one fails the others still finish (what they commit is valid) and not-yet-started ones are
    skipped; the first error is raised after all have ended, a paused budget (:class:`BudgetExhausted`)
    before any other. ``work`` may call :func:`stopped` to skip what is left of its own item once another
    has failed.
    """
    if workers <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        for item in items:
            def guarded(item: T = item) -> None:
                if errors:
                    return
                token = _failed.set(errors)
                try:
                    work(item)
                except BaseException as exc:  # re-raised below, once every item has ended
                    errors.append(exc)
                finally:
                    _failed.reset(token)

            pool.submit(contextvars.copy_context().run, guarded)
    if errors:
        raise next((e for e in errors if isinstance(e, BudgetExhausted)), errors[0])


_failed: contextvars.ContextVar[list[BaseException]] = contextvars.ContextVar("abm_concurrent_failures")


def stopped() -> bool:
    """Whether a piece of work running beside the caller (in :func:`run_concurrently`) has failed."""
    return bool(_failed.get([]))
