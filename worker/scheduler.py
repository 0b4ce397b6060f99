"""The schedule of `abm serve`: an incremental run every N minutes and a full run on a crontab.

The scheduler only *queues* runs; the executor runs them one at a time under the lock. Ticks
that find a run already waiting in the queue add nothing, so a long full run followed by a burst
of missed ticks (a laptop waking up, a slow CRM) leads to one catch-up run, not a pile of them.
APScheduler's own coalescing covers ticks missed while the process itself was down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select

from config.worker import ScheduleConfig
from store.schema import Run
from worker.triggers import RunOptions, request_run

log = logging.getLogger("abm.scheduler")


def queue_scheduled_run(engine: Engine, options: RunOptions, notify: Callable[[], None] | None = None) -> int | None:
    """Queue a scheduled run unless one is already waiting; returns the new run's id, if any."""
    with engine.connect() as conn:
        waiting = conn.execute(select(Run.id).where(Run.state == "queued").limit(1)).scalar_one_or_none()
    if waiting is not None:
        log.info("scheduled %s run skipped: run %s is already queued", options.kind, waiting)
        return None
    run_id = request_run(engine, options, "schedule", queue=True)
    log.info("scheduled %s run queued as run %s", options.kind, run_id)
    if notify is not None:
        notify()
    return run_id


def build_scheduler(
    engine: Engine, config: ScheduleConfig, notify: Callable[[], None] | None = None
) -> BackgroundScheduler:
    """A scheduler (not started) with the incremental and full jobs of ``config``."""
    scheduler = BackgroundScheduler(
        timezone=config.timezone,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
    )
    scheduler.add_job(
        queue_scheduled_run,
        IntervalTrigger(minutes=config.incremental_every_minutes, timezone=config.timezone),
        args=[engine, RunOptions(), notify],
        id="incremental",
        name=f"incremental run every {config.incremental_every_minutes} min",
    )
    if config.full_cron:
        scheduler.add_job(
            queue_scheduled_run,
            CronTrigger.from_crontab(config.full_cron, timezone=config.timezone),
            args=[engine, RunOptions(full=True), notify],
            id="full",
            name=f"full run at '{config.full_cron}' ({config.timezone})",
        )
    return scheduler
