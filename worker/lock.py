"""A lease lock in the database, so two workers on one store never run a pipeline at once.

A process-local lock cannot stop a second `abm serve` on another host from running against the
same PostgreSQL, and a lock that is only released on exit would wedge the product forever when a
worker is killed. So the lock is a row with an expiry: the holder keeps pushing ``expires_at``
forward (heartbeats) while it works, and anyone may take it over once the lease has run out.

Both statements that take the lock are atomic on SQLite and PostgreSQL: an ``UPDATE ... WHERE
expires_at < now`` (PostgreSQL re-checks the condition after waiting on a concurrent updater) and
an ``INSERT ... ON CONFLICT DO NOTHING``; the row count says who won.

On a SQLite file the lease cannot tell who is alive. SQLite has one writer: a long write transaction holds the
write lock (on the L org's full run the match and score stages held it 286 and 666 s, before they committed in
steps; a big pull's writes make the heartbeat wait too), the heartbeat cannot renew the lease meanwhile, and
the lease runs out under a worker busy at its work: a trigger from the admin page would then close its run as
a dead worker's (:func:`worker.triggers.request_run`). So there the holder also holds an exclusive
``flock`` on a file beside the database (:class:`HolderFile`), which no transaction delays and which the
kernel drops the moment the holder's process dies. Every process that can open a SQLite database in WAL
mode runs on its host, so the file speaks for all of them: its flock, not the lease, says whether the
holder is alive, and the row still says who it is and which run it works on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from store.schema import Lock
from store.types import utcnow

try:
    import fcntl
except ImportError:  # not a POSIX system: the lease alone says who holds the lock
    fcntl = None  # type: ignore[assignment]

PIPELINE_LOCK = "pipeline"
DEFAULT_LEASE = timedelta(seconds=60)
# How long taking the holder file retries: another process's check that the holder is alive holds it, shared, for
# the time of two system calls.
_TAKE_RETRY_SECONDS = 0.2


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


class HolderFile:
    """An exclusive ``flock`` on a file beside a SQLite database: held while its holder lives.

    Held from :meth:`take` until :meth:`drop` or the end of the process: the kernel releases it when the process
    dies, however it dies. A process forked from the holder closes its copy (:func:`_forget_in_forked_child`), so
    a pool's process outliving a killed worker does not keep it held.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def beside(cls, engine: Engine, name: str) -> HolderFile | None:
        """The holder file of lock ``name`` on ``engine``'s database: None unless it is a SQLite file."""
        database = engine.url.database
        if fcntl is None or engine.dialect.name != "sqlite" or not database or database == ":memory:" \
                or database.startswith("file:"):
            return None
        return cls(os.path.abspath(f"{database}-{name}.lock"))

    @property
    def held(self) -> bool:
        """Whether this object holds the file."""
        return self._fd is not None

    def take(self) -> bool:
        """Hold the file if no other holder does; True when this object holds it (now or already)."""
        if self._fd is not None:
            return True
        # read-only and readable by all: a flock needs no more, and a file left by another user (an admin's
        # `abm run` as root beside the service's user) must not lock everyone else out
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o644)
        deadline = time.monotonic() + _TAKE_RETRY_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.01)
                continue
            self._fd = fd
            _held.add(self)
            return True

    def drop(self) -> None:
        """Stop holding the file (closing it releases the flock)."""
        if self._fd is not None:
            _held.discard(self)
            fd, self._fd = self._fd, None
            os.close(fd)

    def is_held(self) -> bool:
        """Whether a live holder, in any process (this one included), holds the file."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # nobody ever took it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: two checks at once do not see each other
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the shared flock if it was granted
        return False


_held: set[HolderFile] = set()


def _forget_in_forked_child() -> None:
    """In a forked child: close the inherited holder files, without which the child would keep the parent's
    flock held after the parent's death (the flock belongs to the open file, which both then share)."""
    for holder in _held:
        if holder._fd is not None:
            with contextlib.suppress(OSError):
                os.close(holder._fd)
            holder._fd = None
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_child)


def pipeline_lock_alive(engine: Engine, name: str = PIPELINE_LOCK) -> bool:
    """Whether a live worker holds the lock: on a SQLite file, whether its holder file is held (see the module's
    docstring); elsewhere, whether its lease has not run out (the holder renews it while it lives)."""
    lock = LeaseLock(engine, name)
    info = lock.info()
    if info is None:
        return False
    if lock.holder_file is not None:
        return lock.holder_file.is_held()
    return not info.expired


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
        self.holder_file = HolderFile.beside(engine, name)

    def _insert(self):  # dialect-specific INSERT ... ON CONFLICT DO NOTHING
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(Lock)

    def acquire(self, run_id: int | None = None) -> bool:
        """Take the lock if it is free, expired or already ours; True when we hold it now.

        With a holder file, the file decides: whoever the row names is no longer alive once we hold it,
        whether its lease has run out or not.
        """
        file = self.holder_file
        newly = file is not None and not file.held
        if file is not None and not file.take():
            return False
        won = False
        try:
            won = self._take_row(run_id, whoever_holds_it=file is not None)
        finally:
            if newly and not won:
                file.drop()  # type: ignore[union-attr]  # newly implies a file
        return won

    def _take_row(self, run_id: int | None, whoever_holds_it: bool) -> bool:
        now = utcnow()
        values = {"holder": self.holder, "acquired_at": now, "expires_at": now + self.lease, "run_id": run_id}
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(Lock)
                .where(Lock.name == self.name,
                       true() if whoever_holds_it else or_(Lock.expires_at < now, Lock.holder == self.holder))
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
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(Lock).where(Lock.name == self.name, Lock.holder == self.holder))
        finally:
            if self.holder_file is not None:
                self.holder_file.drop()  # a row left behind names nobody alive: the next holder takes it over

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
