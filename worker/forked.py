"""One computation run in a forked process beside the stage's own work, its result collected later.

The match stage's main process works alone for long stretches (finding the people changed accounts may
claim, reading and writing matches) while the second core idles; the cross-CRM links need none of that
and can be computed meanwhile. The job is forked, so it reads the caller's objects copy-on-write and
nothing is pickled on the way in; only its result comes back. It must not touch the caller's database
connection, which the forked process inherits but must leave alone.

Where fork is not available, the job runs in the calling process when its result is asked for.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from multiprocessing.pool import AsyncResult, Pool
from types import TracebackType
from typing import Any, Generic, TypeVar

from matching.parallel import forked_pool_started

T = TypeVar("T")

# The job the forked process runs: set just before the fork, cleared once the result is in.
_job: Callable[[], Any] | None = None


def _run_job() -> bytes:
    """The job's result, pickled here: the pool then carries bytes, which always unpickle.

    Had the pool carried the result itself, one that cannot be unpickled (a class that refuses its own state)
    would end the pool's result thread in the caller, and the caller would wait for the result for good. The
    caller unpickles these bytes itself, and a failure is raised by :meth:`Forked.result`.
    """
    assert _job is not None, "a forked job started without its function"
    return pickle.dumps(_job(), protocol=pickle.HIGHEST_PROTOCOL)


class Forked(Generic[T]):
    """``fn()`` started now in a forked process (or, without fork, run by :meth:`result`).

    Use as a context manager: leaving it stops the process if its result was never asked for. One
    forked job at a time per process.
    """

    def __init__(self, fn: Callable[[], T]) -> None:
        global _job
        if _job is not None:
            raise RuntimeError("another forked job is still running in this process")
        self._fn = fn
        self._pool: Pool | None = None
        self._pending: AsyncResult | None = None
        if "fork" in multiprocessing.get_all_start_methods():
            _job = fn
            try:
                self._pool = multiprocessing.get_context("fork").Pool(1, initializer=forked_pool_started)
                self._pending = self._pool.apply_async(_run_job)
            except BaseException:
                _job = None
                raise

    def result(self) -> T:
        """The job's result (its exception, raised here, if it failed)."""
        if self._pending is None:
            return self._fn()
        try:
            return pickle.loads(self._pending.get())
        finally:
            self.close()

    def close(self) -> None:
        global _job
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            _job = None

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
