"""``abm writeback``: write changed scores to the CRMs now (or, with ``--dry-run``, show what would change).

It takes the same lock as scheduled runs, so it never writes beside a running worker, and it is
recorded as a run of kind ``writeback`` with the same figures it prints.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from worker.context import get_context

if TYPE_CHECKING:
    from writeback.report import WritebackReport

console = Console()
EXIT_STOPPED = 1
EXIT_BUSY = 4


def _summary(report: WritebackReport) -> Table:
    title = "Writeback" + (" (dry run: nothing written)" if report.dry_run else "") + (" --force" if report.force
                                                                                       else "")
    table = Table(title=title, title_justify="left")
    for column in ("CRM", "Object", "Scored", "Unchanged", "To write", "Written", "Failed", "Waiting retry", "How"):
        table.add_column(column, justify="right" if column not in ("CRM", "Object", "How") else "left")
    for o in report.objects:
        table.add_row(o.crm, o.object, f"{o.records:,}", f"{o.unchanged:,}", f"{o.changed - o.deferred:,}",
                      f"{o.written:,}", f"[red]{o.failed:,}[/]" if o.failed else "0", f"{o.deferred:,}", o.mode)
    return table


def print_report(report: WritebackReport) -> None:
    console.print(_summary(report))
    for o in report.objects:
        if o.samples:
            console.print(f"[bold]{o.crm} {o.object}[/]: sample of changes (old -> new)")
            for sample in o.samples:
                changes = "; ".join(f"{name}: {old} -> {new}" for name, (old, new) in sample.changes.items())
                console.print(f"  {sample.crm_id}  {changes}", markup=False, highlight=False)
        for failure in o.failures:
            console.print(f"  [red]failed[/] {failure.crm_id}: {failure.code}: {failure.message}")
        if o.stopped:
            console.print(f"[yellow]{o.crm} {o.object}: {o.stopped}[/]")
    if not report.dry_run:
        calls = ", ".join(f"{crm} {n:,}" for crm, n in report.api_calls.items()) or "none"
        waited = ", ".join(f"{crm} {s:.0f} s" for crm, s in report.rate_limited_s.items() if s)
        console.print(f"API calls: {calls}" + (f"; waited on rate limits: {waited}" if waited else ""))


def writeback_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show counts and sample changes; write nothing."),
    force: bool = typer.Option(False, "--force", help="Rewrite every field of every scored record."),
    crm: list[str] = typer.Option([], "--crm", help="Only this CRM (repeatable): salesforce, hubspot."),
) -> None:
    """Write changed scores into abm-sync's CRM fields (only what changed since the last write)."""
    from writeback.run import preview_writeback, run_writeback

    cli = get_context(ctx)
    config = cli.config
    try:
        crms = config.chosen_crms(crm)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    engine = cli.engine()
    if dry_run:
        print_report(preview_writeback(engine, config.writeback, crms, force=force))
        return
    from connectors.hubspot.auth import HubSpotAuthError
    from connectors.salesforce.auth import SalesforceAuthError
    from store.runs import create_run, finish_run, record_stage
    from worker.lock import LeaseLock
    from writeback.connect import writers

    try:
        built = writers(config, crms)  # signs in to each CRM
    except (SalesforceAuthError, HubSpotAuthError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_STOPPED) from None
    lock = LeaseLock(engine, lease=timedelta(seconds=config.worker.lease_seconds))
    run_id = create_run(engine, "writeback", "cli", {"force": force, "crms": crms}, state="running")
    if not lock.acquire(run_id):
        holder = lock.info()
        finish_run(engine, run_id, "cancelled", "not run: another worker holds the lock")
        console.print(f"[yellow]Another worker is running ({holder.holder if holder else 'unknown'}); try again "
                      "when it finishes.[/]")
        raise typer.Exit(EXIT_BUSY)
    try:
        with lock.kept_alive(run_id):
            report = run_writeback(engine, config.writeback, built, force=force, run_id=run_id)
        stage = report.stage_report()
        record_stage(engine, run_id, stage)
        finish_run(engine, run_id, "paused" if report.stopped else "succeeded", stage.error)
    except BaseException as exc:
        finish_run(engine, run_id, "failed", f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        lock.release()
    print_report(report)
    if report.stopped:
        console.print("[yellow]Stopped early; everything written so far is kept and the next run writes the rest.[/]")
        raise typer.Exit(EXIT_STOPPED)
