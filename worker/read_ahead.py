"""A stage's reading, started on a thread of the worker while the step before the stage runs.

The pulls run in processes of their own (:mod:`worker.stage_process`), so the worker's interpreter waits
for them doing nothing, and they leave a core idle for much of their time: on the L org's 1% increment,
about 17 of the 36 core-seconds of its 18-second pulls. What the match stage reads of every account and
contact barely depends on what the pulls write (a thousand of 200,000 accounts change), so it is read
meanwhile, and the stage then reads again only what was written since the reading began
(:mod:`worker.match_read_ahead`).

A reading ahead starts with a time mark taken before the step's processes start: every row they write
after it is stamped at or after the mark, which is how the stage tells what to read again. The reading
is the stage's to take (:meth:`ReadAhead.result`); one that failed is logged and the stage reads as usual.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from store.types import utcnow

log = logging.getLogger("abm.pipeline")

T = TypeVar("T")


# The reading thread's niceness: it works on what the step's processes (and the CRMs they call, the sandbox's on
# one machine) leave idle. At the worker's priority, it took the CPU from the Salesforce pull's first seconds.
NICENESS = 10


def _lower_priority() -> None:
    """Lower this thread's priority alone: on Linux a thread is a task of its own, which ``setpriority`` takes by
    its id. Elsewhere the id is not one ``setpriority`` knows, so the thread keeps the worker's priority."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # not allowed here: the reading runs at the worker's priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


class ReadAhead(Generic[T]):
    """``read(mark)`` run on a thread of its own, ``mark`` being the time it was started."""

    def __init__(self, name: str, read: Callable[[datetime], T]) -> None:
        self.name = name
        self.mark = utcnow()  # before the step beside it starts writing: its rows are stamped after this
        self._value: T | None = None
        self._error: BaseException | None = None
        self.seconds = 0.0  # how long the reading took
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run, read),
                                        name=f"read-ahead-{name}", daemon=True)
        self._thread.start()

    def _run(self, read: Callable[[datetime], T]) -> None:
        started = time.perf_counter()
        _lower_priority()
        try:
            self._value = read(self.mark)
        except BaseException as exc:  # handed to whoever takes the result
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - started

    def result(self) -> T | None:
        """The reading, once done; None (logged) when it failed: the stage then reads everything itself. Handed
        over: this keeps no reference to it (a stage frees what it read as it goes)."""
        self._thread.join()
        if self._error is not None:
            log.warning("the %s stage's reading ahead failed, so it reads everything itself: %s", self.name,
                        self._error, exc_info=self._error)
            self._error = None
            return None
        value, self._value = self._value, None
        return value

    def close(self) -> None:
        """Wait for the reading to end (a run that ended before its stage leaves it to finish, not to run on), and
        let go of what it holds (a reading with a ``close``, such as a process it started, is closed)."""
        self._thread.join()
        value, self._value = self._value, None
        close = getattr(value, "close", None)
        if close is not None:
            close()
