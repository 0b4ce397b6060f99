"""worker.forked: a job run in a forked process beside the caller's own work."""

from __future__ import annotations

import os
import threading
import time

import pytest

from worker import forked
from worker.forked import Forked


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


def test_without_fork_the_job_runs_when_its_result_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with Forked(lambda: os.getpid()) as job:
        assert job.result() == os.getpid()
