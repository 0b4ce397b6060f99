"""Running queued runs, one at a time, under the pipeline lock.

The executor is the only place a run goes from ``queued`` to a final state. It takes the lease
lock first (so two worker processes on one PostgreSQL never run together), closes any run left
``running`` by a worker that died (whoever holds the lock is the only one allowed to be running),
claims the run, keeps both the lock and the run's heartbeat fresh while the pipeline works, and
records how the run ended. A pipeline exception fails the run with its cause, never the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Engine

from store.runs import claim_run, fail_abandoned, finish_run, get_run, next_queued_run, touch_run
from store.wal import wal_kept_small
from worker.lock import LeaseLock, LockInfo
from worker.triggers import RunOptions

log = logging.getLogger("abm.worker")



class StopToken(Protocol):
    """Checked by long work between batches: set when the worker is stopping or lost its lock."""

    def is_set(self) -> bool: ...


# The pipeline: (run id, options, stop token) -> final state ("succeeded", "paused", "cancelled"...).
# It records its stages itself; it returns instead of raising for expected outcomes.
PipelineFn = Callable[[int, RunOptions, StopToken], str]


class LockBusy(RuntimeError):
    def __init__(self, info: LockInfo | None) -> None:
        holder = f"{info.holder} (run {info.run_id}, lease until {info.expires_at:%H:%M:%S} UTC)" if info else "?"
        super().__init__(f"another worker holds the pipeline lock: {holder}")
        self.info = info


@dataclass
class Executor:
    engine: Engine
    pipeline: PipelineFn
    lock: LeaseLock
    stop: threading.Event
    lock_wait: float = 0.0  # seconds to wait for another worker's run to finish

    def __post_init__(self) -> None:
        self._wake = threading.Event()

    def notify(self) -> None:
        """A run was queued: wake the serving loop now rather than at its next poll."""
        self._wake.set()

    def run_queued(self, run_id: int) -> str:
        """Run one queued run to its end; returns its final state. Raises :class:`LockBusy`
        (the run stays queued) when another worker keeps the lock past ``lock_wait``."""
        if not self.lock.wait_acquire(self.lock_wait, run_id=run_id):
            raise LockBusy(self.lock.info())
        try:
            # We hold the lock: a run still marked running belongs to a worker that died.
            for dead in fail_abandoned(self.engine, stale_after=timedelta(0)):
                log.warning("run %s was left running by a stopped worker; recorded as failed", dead)
            if not claim_run(self.engine, run_id):
                run = get_run(self.engine, run_id)
                return run["state"] if run else "missing"
            return self._execute(run_id)
        finally:
            self.lock.release()

    def _execute(self, run_id: int) -> str:
        run = get_run(self.engine, run_id)
        assert run is not None
        options = RunOptions.from_json(run["options"])
        with self.lock.kept_alive(run_id=run_id) as lost:
            beat = threading.Thread(target=self._beat_run, args=(run_id, lost), daemon=True)
            beat.start()
            try:
                with wal_kept_small(self.engine):
                    state = self.pipeline(run_id, options, _Either(self.stop, lost))
                error = "the pipeline lock was lost (another worker took over)" if lost.is_set() else None
                finish_run(self.engine, run_id, "failed" if error else state, error)  # type: ignore[arg-type]
                return "failed" if error else state
            except Exception as exc:  # the run fails, the worker goes on
                log.exception("run %s failed", run_id)
                finish_run(self.engine, run_id, "failed", describe_error(exc))
                return "failed"
            finally:
                lost.set()  # ends the run heartbeat thread
                beat.join(timeout=5)

    def _beat_run(self, run_id: int, done: threading.Event) -> None:
        interval = max(0.5, self.lock.lease.total_seconds() / 3)
        while not done.wait(interval):
            try:
                touch_run(self.engine, run_id)
            except Exception:  # a hiccup; the next beat retries, the lease has slack
                log.debug("run heartbeat failed", exc_info=True)

    def drain(self) -> list[tuple[int, str]]:
        """Run every queued run, oldest first, until none is left or we are asked to stop."""
        done: list[tuple[int, str]] = []
        while not self.stop.is_set():
            run_id = next_queued_run(self.engine)
            if run_id is None:
                break
            done.append((run_id, self.run_queued(run_id)))
        return done

    def serve(self, poll_seconds: float = 5.0) -> None:
        """The serving loop (a thread of ``abm serve``): drain the queue whenever woken or polled."""
        while not self.stop.is_set():
            try:
                self.drain()
            except LockBusy as busy:
                log.info("%s; will retry", busy)
            except Exception:
                log.exception("executor loop error; will retry")
            self._wake.wait(poll_seconds)
            self._wake.clear()


class _Either:
    """Set when either event is set (stop requested or lock lost)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()


def describe_error(exc: BaseException) -> str:
    """The error and its causes, one line each, for the run record (no traceback, no locals)."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\ncaused by ".join(parts)[:4000]
