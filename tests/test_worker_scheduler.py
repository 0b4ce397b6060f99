"""The schedule queues runs (never piles them up); the executor is what runs them."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import Engine

from config.worker import ScheduleConfig
from store.runs import claim_run, get_run, list_runs
from worker.scheduler import build_scheduler, queue_scheduled_run
from worker.triggers import RunOptions


def test_scheduled_runs_coalesce_behind_a_waiting_run(engine: Engine) -> None:
    woken = []
    first = queue_scheduled_run(engine, RunOptions(), lambda: woken.append(1))
    assert first is not None and woken == [1]
    assert queue_scheduled_run(engine, RunOptions(full=True)) is None  # one already waits
    assert claim_run(engine, first)  # now it runs: the next tick queues the follow-up
    second = queue_scheduled_run(engine, RunOptions(full=True))
    assert get_run(engine, second)["kind"] == "full" and get_run(engine, second)["trigger"] == "schedule"


def test_scheduler_jobs_follow_the_config(engine: Engine) -> None:
    scheduler = build_scheduler(engine, ScheduleConfig(incremental_every_minutes=30, full_cron="15 2 * * *",
                                                       timezone="Europe/Berlin"))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"incremental", "full"}
    assert jobs["incremental"].trigger.interval.total_seconds() == 1800
    assert "hour='2'" in str(jobs["full"].trigger) and "minute='15'" in str(jobs["full"].trigger)
    assert str(jobs["full"].trigger.timezone) == "Europe/Berlin"
    assert {j.id for j in build_scheduler(engine, ScheduleConfig(full_cron=None)).get_jobs()} == {"incremental"}


def test_a_started_scheduler_queues_a_run_when_its_job_fires(engine: Engine) -> None:
    scheduler = build_scheduler(engine, ScheduleConfig())
    scheduler.start()
    try:
        scheduler.get_job("incremental").modify(next_run_time=datetime.now(scheduler.timezone))
        deadline = time.monotonic() + 10
        while not list_runs(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    runs = list_runs(engine)
    assert len(runs) == 1 and runs[0]["kind"] == "incremental" and runs[0]["state"] == "queued"
