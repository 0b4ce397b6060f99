"""A lease lock in the database, so two workers on one store never run a pipeline at once.

A process-local lock cannot stop a second `abm serve` on another host from running against the
same PostgreSQL, and a lock that is only released on exit would wedge the product forever when a
worker is killed. So the lock is a row with an expiry: the holder keeps pushing ``expires_at``
forward (heartbeats) while it works, and anyone may take it over once the lease has run out.

Both statements that take the lock are atomic on SQLite and PostgreSQL: an ``UPDATE ... WHERE
expires_at < now`` (PostgreSQL re-checks the condition after waiting on a concurrent updater) and
an ``INSERT ... ON CONFLICT DO NOTHING``; the row count says who won.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.schema import Lock
from store.types import utcnow

PIPELINE_LOCK = "pipeline"
DEFAULT_LEASE = timedelta(seconds=60)


def default_holder() -> str:
    """Who holds the lock, readable by an admin: host, process and a per-process nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LockInfo:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    run_id: int | None

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()


class LockLost(RuntimeError):
    """The lease ran out (or was taken over) while we believed we held it."""


def pipeline_lock_alive(engine: Engine, name: str = PIPELINE_LOCK) -> bool:
    """Whether a worker holds the lock and its lease has not run out (it renews it while it lives)."""
    info = LeaseLock(engine, name).info()
    return info is not None and not info.expired


class LeaseLock:
    """One named lease lock. ``acquire`` never blocks; ``wait_acquire`` polls until a deadline."""

    def __init__(
        self,
        engine: Engine,
        name: str = PIPELINE_LOCK,
        *,
        holder: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or default_holder()
        self.lease = lease

    def _insert(self):  # dialect-specific INSERT ... ON CONFLICT DO NOTHING
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(Lock)

    def acquire(self, run_id: int | None = None) -> bool:
        """Take the lock if it is free, expired or already ours; True when we hold it now."""
        now = utcnow()
        values = {"holder": self.holder, "acquired_at": now, "expires_at": now + self.lease, "run_id": run_id}
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(Lock)
                .where(Lock.name == self.name, or_(Lock.expires_at < now, Lock.holder == self.holder))
                .values(**values)
            ).rowcount
            if taken == 1:
                return True
            # RETURNING, not rowcount: psycopg reports -1 for this statement.
            inserted = conn.execute(
                self._insert()
                .values(name=self.name, **values)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(Lock.name)
            ).first()
            return inserted is not None

    def wait_acquire(self, timeout: float, run_id: int | None = None, poll: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.acquire(run_id):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def heartbeat(self, run_id: int | None = None) -> None:
        """Extend the lease; raises :class:`LockLost` if someone else holds it now."""
        now = utcnow()
        values: dict[str, object] = {"expires_at": now + self.lease}
        if run_id is not None:
            values["run_id"] = run_id
        with self.engine.begin() as conn:
            kept = conn.execute(
                update(Lock).where(Lock.name == self.name, Lock.holder == self.holder).values(**values)
            ).rowcount
        if kept != 1:
            raise LockLost(f"lock {self.name!r} is no longer held by {self.holder}")

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(Lock).where(Lock.name == self.name, Lock.holder == self.holder))

    def info(self) -> LockInfo | None:
        """The current holder, expired or not (None when nobody holds the lock)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(Lock).where(Lock.name == self.name)).first()
        if row is None:
            return None
        m = row._mapping
        return LockInfo(m["name"], m["holder"], m["acquired_at"], m["expires_at"], m["run_id"])

    @contextmanager
    def kept_alive(self, run_id: int | None = None, every: float | None = None) -> Iterator[threading.Event]:
        """Heartbeat in a background thread while the block runs; the yielded event is set if the
        lease is lost, so long work can stop instead of running beside a new holder."""
        lost = threading.Event()
        stop = threading.Event()
        interval = every if every is not None else max(0.5, self.lease.total_seconds() / 3)

        def beat() -> None:
            while not stop.wait(interval):
                try:
                    self.heartbeat(run_id)
                except LockLost:
                    lost.set()
                    return
                except Exception:  # a database hiccup: try again next beat; the lease has slack
                    continue

        thread = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join(timeout=interval + 5)
