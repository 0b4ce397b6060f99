"""worker.forked: a job run in a forked process beside the caller's own work."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker import forked
from worker.forked import Forked

ROOT = Path(__file__).resolve().parent.parent


def test_the_job_runs_in_another_process_and_its_result_comes_back() -> None:
    shared = list(range(100_000))  # read copy-on-write: nothing pickled on the way in
    with Forked(lambda: (os.getpid(), sum(shared))) as job:
        pid, total = job.result()
    assert pid != os.getpid() and total == sum(shared)
    assert forked._job is None


def test_its_exception_is_raised_by_result() -> None:
    def fails() -> None:
        raise ValueError("no link for you")

    with Forked(fails) as job, pytest.raises(ValueError, match="no link for you"):
        job.result()
    assert forked._job is None


class _RefusesItsState:
    """Pickles, but cannot be unpickled: what a frozen dataclass compiled by mypyc did to the match stage."""

    def __reduce__(self) -> tuple:
        return (_refuse, ())


def _refuse() -> None:
    raise TypeError("this state cannot be restored")


def test_a_result_that_cannot_be_unpickled_is_raised_by_result_not_waited_for() -> None:
    outcome: list[BaseException | object] = []

    def wait_for_it() -> None:
        with Forked(_RefusesItsState) as job:
            try:
                outcome.append(job.result())
            except TypeError as exc:
                outcome.append(exc)

    waiting = threading.Thread(target=wait_for_it, daemon=True)
    waiting.start()
    waiting.join(timeout=60)
    assert not waiting.is_alive(), "result() waited for good"
    assert len(outcome) == 1 and isinstance(outcome[0], TypeError)
    assert "cannot be restored" in str(outcome[0])
    assert forked._job is None


def test_one_job_at_a_time_and_leaving_stops_it() -> None:
    with Forked(lambda: time.sleep(60)) as job:
        with pytest.raises(RuntimeError, match="still running"):
            Forked(lambda: 1)
        started = time.perf_counter()
    assert time.perf_counter() - started < 10  # stopped, not waited for
    assert job._pool is None and forked._job is None
    with Forked(lambda: 2) as again:
        assert again.result() == 2


@pytest.fixture
def stop_handlers() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT handled as `abm run` and `abm serve` handle them: a request to stop after this batch."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# `abm run` and `abm serve` turn SIGTERM into a stop request; a forked job must still stop when it is left.
_LEAVE_UNDER_STOP_HANDLERS = textwrap.dedent("""
    import signal, threading, time
    from worker.forked import Forked
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.perf_counter()
    with Forked(lambda: time.sleep(60)):
        time.sleep(0.5)
    with Forked(lambda: 3) as job:
        assert job.result() == 3
    print(round(time.perf_counter() - started, 1), stop.is_set())
""")


def test_leaving_stops_the_job_though_the_worker_turns_sigterm_into_a_stop_request() -> None:
    """Inherited, the handler kept the job's process alive, and leaving waited for it for good (seen in a test
    run: the match stage never returned). In a process of its own, so that a failure cannot hang the suite."""
    done = subprocess.run([sys.executable, "-c", _LEAVE_UNDER_STOP_HANDLERS], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    seconds, stop_requested = done.stdout.split()
    assert float(seconds) < 10 and stop_requested == "False"  # the job's SIGTERM went to the job alone


def test_forked_pools_restore_the_default_handlers(stop_handlers: threading.Event) -> None:
    from matching.parallel import forked_pool_started

    with multiprocessing.get_context("fork").Pool(1, initializer=forked_pool_started) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.default_int_handler)


def test_without_fork_the_job_runs_when_its_result_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with Forked(lambda: os.getpid()) as job:
        assert job.result() == os.getpid()
