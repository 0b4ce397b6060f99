"""Requesting runs and executing them under the lock, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from lock_support import held_by_another_process, kill
from sqlalchemy import Engine, update

from store.runs import StageReport, claim_run, create_run, get_run, record_stage
from store.schema import Lock
from store.types import utcnow
from worker.executor import Executor, LockBusy, StopToken
from worker.lock import LeaseLock
from worker.triggers import InvalidRunOptions, RunConflict, RunOptions, request_run


def recording_pipeline(engine: Engine, state: str = "succeeded"):
    def pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 3}, api_calls={"salesforce": 2}))
        return state

    return pipeline


def executor(engine: Engine, pipeline, holder: str = "w1", **kwargs) -> Executor:
    return Executor(engine, pipeline, LeaseLock(engine, holder=holder, lease=timedelta(seconds=2)),
                    threading.Event(), **kwargs)


def test_run_options_round_trip_and_validation() -> None:
    options = RunOptions(full=True, crms=("hubspot",), accounts=("001A",), rewrite=True)
    assert RunOptions.from_json(options.to_json()) == options
    assert options.kind == "account_resync" and RunOptions().kind == "incremental"
    assert RunOptions(resync=True, full=True).kind == "full_resync"
    with pytest.raises(InvalidRunOptions, match="unknown CRM"):
        RunOptions(crms=("dynamics",))
    with pytest.raises(InvalidRunOptions, match="unknown run option"):
        RunOptions.from_json({"ful": True})
    with pytest.raises(InvalidRunOptions, match="true or false"):
        RunOptions.from_json({"full": "yes"})


def test_a_second_request_conflicts_unless_queued(engine: Engine) -> None:
    first = request_run(engine, RunOptions(), "api")
    with pytest.raises(RunConflict) as conflict:
        request_run(engine, RunOptions(full=True), "api")
    assert conflict.value.run_id == first and conflict.value.state == "queued"
    second = request_run(engine, RunOptions(full=True), "schedule", queue=True)
    assert get_run(engine, second)["kind"] == "full"


def test_a_run_whose_worker_died_does_not_refuse_the_next_trigger(engine: Engine, database_url: str) -> None:
    """A killed worker leaves its run ``running``; once it is known dead (on a SQLite file at once, by its
    holder file; on PostgreSQL when its lease has run out), asking for a run closes that one as failed instead
    of answering 'already running' until a scheduled run comes."""
    dead = request_run(engine, RunOptions(), "api")
    with held_by_another_process(database_url, "killed", run_id=dead) as worker:
        assert claim_run(engine, dead)
        with pytest.raises(RunConflict) as alive:  # the worker may be working
            request_run(engine, RunOptions(), "api")
        assert alive.value.run_id == dead and alive.value.state == "running"
        kill(worker)
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:  # its lease runs out, as it does 60 s after its last heartbeat
            conn.execute(update(Lock).values(expires_at=utcnow() - timedelta(seconds=1)))
    fresh = request_run(engine, RunOptions(), "api")
    assert fresh != dead and get_run(engine, fresh)["state"] == "queued"
    closed = get_run(engine, dead)
    assert closed["state"] == "failed" and "no heartbeat" in closed["error"]


def test_a_busy_worker_whose_lease_ran_out_keeps_its_run(engine: Engine) -> None:
    """A stage's long write transaction on SQLite keeps the heartbeat from renewing the lease: a trigger then must
    not take the live worker's run for a dead one's (closed as failed, the run's own end could not be recorded).
    On PostgreSQL, where nothing delays a heartbeat, a lease that ran out does mean a dead worker."""
    run_id = request_run(engine, RunOptions(), "api")
    lock = LeaseLock(engine, holder="busy", lease=timedelta(seconds=30))
    assert lock.acquire(run_id=run_id) and claim_run(engine, run_id)
    with engine.begin() as conn:
        conn.execute(update(Lock).values(expires_at=utcnow() - timedelta(seconds=1)))
    if engine.dialect.name == "sqlite":
        with pytest.raises(RunConflict):
            request_run(engine, RunOptions(), "api")
        assert get_run(engine, run_id)["state"] == "running"
    else:
        request_run(engine, RunOptions(), "api")
        assert get_run(engine, run_id)["state"] == "failed"
    lock.release()


def test_executor_runs_the_queue_in_order_and_records_outcomes(engine: Engine) -> None:
    ok = request_run(engine, RunOptions(), "cli")
    paused = request_run(engine, RunOptions(crms=("salesforce",)), "cli", queue=True)
    outcomes = iter(["succeeded", "paused"])

    def pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        return recording_pipeline(engine, next(outcomes))(run_id, options, stop)

    assert executor(engine, pipeline).drain() == [(ok, "succeeded"), (paused, "paused")]
    run = get_run(engine, ok)
    assert run["state"] == "succeeded" and run["counts"]["read"] == 3 and run["api_calls"] == {"salesforce": 2}
    assert get_run(engine, paused)["state"] == "paused"


def test_a_failing_pipeline_fails_the_run_with_its_cause_and_keeps_stages(engine: Engine) -> None:
    def pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 1}))
        try:
            raise ConnectionError("sandbox went away")
        except ConnectionError as exc:
            raise RuntimeError("match stage could not load accounts") from exc

    run_id = request_run(engine, RunOptions(), "cli")
    assert executor(engine, pipeline).run_queued(run_id) == "failed"
    run = get_run(engine, run_id)
    assert "RuntimeError: match stage" in run["error"] and "caused by ConnectionError: sandbox" in run["error"]
    assert run["stages"]["pull:salesforce"]["counts"] == {"read": 1}


def test_a_busy_lock_leaves_the_run_queued_and_names_the_holder(engine: Engine) -> None:
    LeaseLock(engine, holder="other-host:42").acquire(run_id=99)
    run_id = request_run(engine, RunOptions(), "cli")
    with pytest.raises(LockBusy, match="other-host:42"):
        executor(engine, recording_pipeline(engine), lock_wait=0.2).run_queued(run_id)
    assert get_run(engine, run_id)["state"] == "queued"


def test_the_lock_holder_closes_runs_of_dead_workers(engine: Engine) -> None:
    dead = create_run(engine, "incremental", "schedule", state="running")
    run_id = request_run(engine, RunOptions(), "cli", queue=True)
    executor(engine, recording_pipeline(engine)).run_queued(run_id)
    assert get_run(engine, dead)["state"] == "failed"
    assert get_run(engine, run_id)["state"] == "succeeded"


def test_two_executors_never_run_at_once(engine: Engine) -> None:
    running = []
    overlap = []

    def slow(run_id: int, options: RunOptions, stop: StopToken) -> str:
        running.append(run_id)
        if len(running) > 1:
            overlap.append(tuple(running))
        time.sleep(0.3)
        running.remove(run_id)
        return "succeeded"

    for _ in range(4):
        request_run(engine, RunOptions(), "schedule", queue=True)
    workers = [executor(engine, slow, holder=f"w{i}", lock_wait=10) for i in range(2)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    assert all(get_run(engine, i)["state"] == "succeeded" for i in range(1, 5))
