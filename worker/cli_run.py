"""`abm run` and `abm resync`: one run now, in this process, recorded like any other.

Both go through the same queue and lock as the scheduler and the admin API, so a run started from
a shell while `abm serve` is busy waits for it (or, with ``--wait 0``, says who holds the lock)
instead of running beside it.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from worker.context import get_context

if TYPE_CHECKING:
    from worker.triggers import RunOptions

console = Console()
EXIT_FAILED = 1
EXIT_BUSY = 4
_STATE_STYLE = {"succeeded": "green", "paused": "yellow", "failed": "red", "cancelled": "yellow",
                "skipped": "dim"}


def stage_table(run: dict) -> Table:
    table = Table(title=f"Run {run['id']} ({run['kind']}): {run['state']}", title_justify="left")
    for column in ("Stage", "State", "Seconds", "Counts", "API calls"):
        table.add_column(column)
    for name, stage in run["stages"].items():
        counts = ", ".join(f"{k} {v:,}" for k, v in stage.get("counts", {}).items() if v)
        calls = ", ".join(f"{k} {v:,}" for k, v in stage.get("api_calls", {}).items())
        state = stage["state"]
        table.add_row(name, f"[{_STATE_STYLE.get(state, '')}]{state}[/]" if state in _STATE_STYLE else state,
                      f"{stage.get('seconds', 0):.1f}", counts or "-", calls or "-")
    return table


def execute(ctx: typer.Context, options: RunOptions, wait: float, show: bool) -> None:
    from worker.stage_process import start_server_early

    cli = get_context(ctx)
    config = cli.config
    start_server_early(config.worker.stage_processes)
    # The pipeline and the CRM clients: imported once the fork server is on its way (it imports them too).
    from store.runs import finish_run, get_run
    from worker.executor import Executor, LockBusy
    from worker.lock import LeaseLock
    from worker.pipeline import Pipeline
    from worker.rep_view import print_rep_view
    from worker.stages import build_plan
    from worker.triggers import request_run

    engine = cli.engine()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run_id = request_run(engine, options, "cli", queue=True)
        lock = LeaseLock(engine, lease=timedelta(seconds=config.worker.lease_seconds))
        executor = Executor(engine, Pipeline(engine, config, build_plan), lock, stop, lock_wait=wait)
        console.print(f"Run {run_id} ({options.kind}) started.")
        try:
            state = executor.run_queued(run_id)
        except LockBusy as busy:
            finish_run(engine, run_id, "cancelled", f"not run: {busy}")
            console.print(f"[yellow]{busy}[/]; run {run_id} was not started (try again, or --wait SECONDS).")
            raise typer.Exit(EXIT_BUSY) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    run = get_run(engine, run_id)
    assert run is not None
    console.print(stage_table(run))
    if run["error"]:
        console.print(f"[red]{run['error']}[/]", markup=False, highlight=False)
    if state == "paused":
        console.print("[yellow]Paused: the API budget share for today is used; the next run resumes.[/]")
    if show and state in ("succeeded", "paused"):
        print_rep_view(engine, run_id, console)
    if state in ("failed", "cancelled"):
        raise typer.Exit(EXIT_FAILED)


_WAIT_HELP = "Seconds to wait if another worker is running (0: report who holds the lock and stop)."


def run_command(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Re-read everything instead of the changes since last time."),
    crm: list[str] = typer.Option([], "--crm", help="Only this CRM (repeatable): salesforce, hubspot."),
    wait: float = typer.Option(600.0, "--wait", help=_WAIT_HELP),
    show: bool = typer.Option(True, "--show/--quiet", help="Print what a rep would see after the run."),
) -> None:
    """Run the pipeline once, now: pull, match, score, write back."""
    from worker.triggers import InvalidRunOptions, RunOptions

    try:
        options = RunOptions(full=full, crms=tuple(crm))
    except InvalidRunOptions as exc:
        raise typer.BadParameter(str(exc)) from None
    execute(ctx, options, wait, show)


def resync_command(
    ctx: typer.Context,
    full: bool = typer.Option(False, "--full", help="Re-read every record from the CRMs."),
    crm: list[str] = typer.Option([], "--crm", help="Only this CRM (repeatable): salesforce, hubspot."),
    account: list[str] = typer.Option([], "--account", help="Only this account (CRM id; repeatable): its fields and "
                                      "its people's fields are rewritten."),
    rewrite: bool = typer.Option(False, "--rewrite", help="Rewrite every owned field even where unchanged."),
    wait: float = typer.Option(600.0, "--wait", help=_WAIT_HELP),
) -> None:
    """Resync on demand: everything, one CRM, or some accounts; optionally rewrite all fields."""
    from worker.triggers import InvalidRunOptions, RunOptions

    try:
        options = RunOptions(full=full, crms=tuple(crm), accounts=tuple(account), rewrite=rewrite, resync=True)
    except InvalidRunOptions as exc:
        raise typer.BadParameter(str(exc)) from None
    execute(ctx, options, wait, show=False)
