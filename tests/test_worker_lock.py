"""The lease lock and the run state machine, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from lock_support import alive, held_by_another_process, kill
from sqlalchemy import Engine, update

from store import migrate
from store.db import make_engine
from store.runs import (
    RunStateError,
    StageReport,
    claim_run,
    create_run,
    fail_abandoned,
    finish_run,
    get_run,
    list_runs,
    next_queued_run,
    record_stage,
    running_run,
)
from store.schema import Lock, Run
from store.types import utcnow
from worker.lock import LeaseLock, LockLost, pipeline_lock_alive


def test_only_one_of_many_concurrent_acquirers_wins(engine: Engine) -> None:
    locks = [LeaseLock(engine, holder=f"worker-{i}") for i in range(8)]
    barrier = threading.Barrier(len(locks))
    won: list[str] = []

    def contend(lock: LeaseLock) -> None:
        barrier.wait()
        if lock.acquire():
            won.append(lock.holder)

    threads = [threading.Thread(target=contend, args=(lock,)) for lock in locks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    info = locks[0].info()
    assert info is not None and info.holder == won[0] and not info.expired


def test_a_live_holders_lease_that_ran_out(engine: Engine) -> None:
    """On PostgreSQL the lease decides: run out, it is taken over and the old holder learns it at its next
    heartbeat. On a SQLite file, where a long write transaction keeps the heartbeat from renewing it, the
    holder file decides: a holder alive is never taken over, its lease run out or not."""
    first = LeaseLock(engine, holder="slow", lease=timedelta(seconds=30))
    second = LeaseLock(engine, holder="newcomer")
    assert first.acquire(run_id=7)
    assert not second.acquire()
    with engine.begin() as conn:  # the lease runs out while its holder still works
        conn.execute(update(Lock).values(expires_at=utcnow() - timedelta(seconds=1)))
    if engine.dialect.name == "sqlite":
        assert first.holder_file is not None and first.holder_file.held
        assert not second.acquire() and pipeline_lock_alive(engine)
        first.heartbeat()  # renewed once it can write again
        assert not first.info().expired and first.info().holder == "slow"
        first.release()
        assert second.acquire()
    else:
        assert first.holder_file is None
        assert not pipeline_lock_alive(engine)
        assert second.acquire()
        with pytest.raises(LockLost):
            first.heartbeat()
        first.release()  # releasing someone else's lock does nothing
    assert second.info().holder == "newcomer"
    second.release()
    assert second.info() is None and not pipeline_lock_alive(engine)


def test_a_killed_holders_lock_is_taken_over(engine: Engine, database_url: str) -> None:
    """A worker killed outright releases nothing: its row stays. On a SQLite file the kernel drops its holder
    file with the process, so the lock is free at once; on PostgreSQL, once the lease has run out."""
    survivor = LeaseLock(engine, holder="survivor")
    sqlite = engine.dialect.name == "sqlite"
    with held_by_another_process(database_url, "killed", run_id=3, lease_seconds=300 if sqlite else 10) as victim:
        assert not survivor.acquire() and pipeline_lock_alive(engine)
        kill(victim)
        if sqlite:
            assert not survivor.info().expired  # the row still says "until" ...
            assert not pipeline_lock_alive(engine)  # ... but nobody holds the file
            assert survivor.acquire()
        else:
            assert survivor.wait_acquire(timeout=60, poll=0.2)
    info = survivor.info()
    assert info.holder == "survivor" and info.run_id is None
    survivor.release()


def test_a_forked_child_outliving_a_killed_holder_does_not_keep_the_lock(tmp_path: Path) -> None:
    """Forked processes (the matching pool, a job beside a stage) inherit the holder's open file, and a flock
    belongs to the open file: unless they close it, one outliving a killed worker would keep the lock held.
    SQLite only: on PostgreSQL the lease decides."""
    url = f"sqlite:///{tmp_path / 'abm.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with held_by_another_process(url, "parent", fork_child=True) as victim:
        assert victim.child is not None and pipeline_lock_alive(engine)
        kill(victim)
        assert alive(victim.child)
        assert not pipeline_lock_alive(engine)
        assert LeaseLock(engine, holder="next").acquire()
    engine.dispose()


def test_reacquiring_our_own_lock_and_waiting_for_a_release(engine: Engine) -> None:
    holder = LeaseLock(engine, holder="a")
    waiter = LeaseLock(engine, holder="b")
    assert holder.acquire() and holder.acquire()
    assert not waiter.wait_acquire(timeout=0.3, poll=0.1)
    threading.Timer(0.3, holder.release).start()
    assert waiter.wait_acquire(timeout=5, poll=0.1)


def test_heartbeats_keep_a_short_lease_alive(engine: Engine) -> None:
    lock = LeaseLock(engine, holder="busy", lease=timedelta(seconds=1))
    other = LeaseLock(engine, holder="other")
    assert lock.acquire()
    with lock.kept_alive(every=0.2) as lost:
        time.sleep(1.5)  # longer than the lease: only the heartbeats keep it
        assert not other.acquire()
        assert not lost.is_set()
    lock.release()


def test_run_state_machine_and_stage_totals(engine: Engine) -> None:
    run_id = create_run(engine, "incremental", "cli", {"crm": ["salesforce"]})
    assert next_queued_run(engine) == run_id and running_run(engine) is None
    assert claim_run(engine, run_id)
    assert not claim_run(engine, run_id)  # a second worker cannot claim it again
    assert running_run(engine) == run_id
    record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 10, "upserted": 9},
                                             api_calls={"salesforce": 4}, seconds=1.5))
    record_stage(engine, run_id, StageReport("writeback", counts={"written": 3, "failed": 1},
                                             api_calls={"salesforce": 1, "hubspot": 2}))
    finish_run(engine, run_id, "succeeded")
    with pytest.raises(RunStateError):
        finish_run(engine, run_id, "failed")
    with pytest.raises(RunStateError):
        record_stage(engine, run_id, StageReport("late"))
    run = get_run(engine, run_id)
    assert run["state"] == "succeeded" and run["seconds"] is not None
    assert run["counts"]["read"] == 10 and run["counts"]["written"] == 3 and run["counts"]["failed"] == 1
    assert run["api_calls"] == {"salesforce": 5, "hubspot": 2}
    assert list(run["stages"]) == ["pull:salesforce", "writeback"]
    assert run["stages"]["pull:salesforce"]["seconds"] == 1.5
    assert [r["id"] for r in list_runs(engine)] == [run_id]


def test_a_dead_workers_run_is_closed_as_failed_with_its_stages_kept(engine: Engine) -> None:
    run_id = create_run(engine, "full", "schedule", state="running")
    record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 5}))
    fresh = create_run(engine, "full", "schedule", state="running")
    with engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
    assert fail_abandoned(engine, timedelta(minutes=2)) == [run_id]
    run = get_run(engine, run_id)
    assert run["state"] == "failed" and "no heartbeat" in run["error"]
    assert run["stages"]["pull:salesforce"]["counts"] == {"read": 5}
    assert get_run(engine, fresh)["state"] == "running"


def test_only_final_states_finish_a_run(engine: Engine) -> None:
    run_id = create_run(engine, "full", "api")
    with pytest.raises(RunStateError):
        finish_run(engine, run_id, "running")  # type: ignore[arg-type]
    finish_run(engine, run_id, "cancelled")
    assert get_run(engine, run_id)["state"] == "cancelled"
