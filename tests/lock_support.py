"""The pipeline lock held by another, real process: the only honest way to test what a holder's death does
(on a SQLite file the kernel's release of its flock is what tells, which no in-process object can fake)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_HOLD = """
import os, sys, time
from datetime import timedelta
from store.db import make_engine
from worker.lock import LeaseLock
url, holder, run_id, lease, fork = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
lock = LeaseLock(make_engine(url), holder=holder, lease=timedelta(seconds=lease))
if not lock.acquire(run_id=run_id or None):
    print("busy", flush=True)
    sys.exit(1)
child = os.fork() if fork == "fork" else -1  # like a matching pool's process, forked while the lock is held
if child == 0:
    time.sleep(600)
    os._exit(0)
print("held", child, flush=True)
time.sleep(600)  # no heartbeats: the lease runs out unless the process is killed first
"""


@dataclass
class Holder:
    process: subprocess.Popen
    child: int | None  # the pid of the process it forked after taking the lock, if asked to


@contextmanager
def held_by_another_process(url: str, holder: str, *, run_id: int = 0, lease_seconds: float = 30.0,
                            fork_child: bool = False) -> Iterator[Holder]:
    """A process that took the lock (or the test fails) and then only sleeps; kill it to play a dead worker.
    ``fork_child``: it forks a child after taking the lock, which sleeps too (killed on the way out)."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, url, holder, str(run_id), str(lease_seconds),
                                "fork" if fork_child else "-"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    child = None
    try:
        answer = process.stdout.readline().split()  # type: ignore[union-attr]
        assert answer[:1] == ["held"], f"the other process could not take the lock: {answer!r}"
        child = int(answer[1]) if fork_child else None
        yield Holder(process, child)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()  # type: ignore[union-attr]
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def kill(holder: Holder) -> None:
    """Kill the holder as the OOM killer would: no chance to release anything (its forked child lives on)."""
    holder.process.send_signal(signal.SIGKILL)
    holder.process.wait(timeout=30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
