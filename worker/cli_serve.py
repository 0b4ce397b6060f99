"""`abm serve`: the scheduler, the run executor and the admin server in one process.

On SIGTERM or Ctrl-C the admin server stops taking requests, the scheduler stops queueing, and the
run in progress is asked to stop: it finishes the batch it is writing, records its stages and ends
``cancelled`` (the next run continues from its committed cursors), within
``worker.shutdown_grace_seconds``. Only then does the process exit.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta

import typer

from worker.context import EXIT_CONFIG, err_console, get_context

log = logging.getLogger("abm.serve")


def serve_command(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="Admin server address (default: admin.host, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Admin server port (default: admin.port)."),
    schedule: bool = typer.Option(True, "--schedule/--no-schedule", help="Run on the configured schedule."),
) -> None:
    """Run abm-sync as a service: scheduled runs, triggered runs, and the admin page and API."""
    from worker.stage_process import start_server_early

    cli = get_context(ctx)
    config = cli.config
    start_server_early(config.worker.stage_processes)  # ready for the first run's pulls
    import uvicorn  # the service's machinery is imported when serving, so `abm --help` stays instant

    from config.secrets import MissingSecret
    from worker.admin.app import create_admin_app
    from worker.executor import Executor
    from worker.lock import LeaseLock
    from worker.pipeline import Pipeline
    from worker.scheduler import build_scheduler
    from worker.stages import build_plan

    engine = cli.engine()
    stop = threading.Event()
    lock = LeaseLock(engine, lease=timedelta(seconds=config.worker.lease_seconds))
    executor = Executor(engine, Pipeline(engine, config, build_plan), lock, stop)
    try:
        app = create_admin_app(engine, config, executor.notify)
    except MissingSecret as exc:
        err_console.print(f"[red]error:[/red] the admin server needs a token: {exc}")
        raise typer.Exit(EXIT_CONFIG) from None

    # uvicorn re-raises the signal that stopped it into the previous handler once it is done:
    # ours only asks the run to stop, so the graceful shutdown below still happens.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    worker = threading.Thread(target=executor.serve, args=(config.worker.poll_seconds,), name="abm-executor",
                              daemon=True)  # so an overrunning run cannot keep the process alive past grace
    scheduler = build_scheduler(engine, config.worker.schedule, executor.notify) \
        if schedule and config.worker.schedule.enabled else None
    bind_host, bind_port = host or config.admin.host, port or config.admin.port
    server = uvicorn.Server(uvicorn.Config(app, host=bind_host, port=bind_port, log_config=None, access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=5))
    worker.start()
    if scheduler is not None:
        scheduler.start()
        jobs = "; ".join(job.name for job in scheduler.get_jobs())
    else:
        jobs = "off (runs start only when triggered)"
    log.info("abm serve: admin on http://%s:%s, schedule: %s", bind_host, bind_port, jobs)
    try:
        server.run()
    finally:
        stop.set()
        executor.notify()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        grace = config.worker.shutdown_grace_seconds
        worker.join(timeout=grace)
        if worker.is_alive():
            log.warning("the current run did not stop within %s s; exiting anyway (its lock expires in %s s and "
                        "the next worker records the run as failed)", grace, config.worker.lease_seconds)
        else:
            log.info("abm serve stopped cleanly")
