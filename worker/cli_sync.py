"""``abm sync --crm NAME [--full] [--objects ...]``: pull one CRM into the store, with progress and a summary.

Each CRM is one entry in :mod:`connectors.registry`, a function with the same shape for all of them, so
the command, its progress bars and its summary stay the same whichever CRM is pulled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.context import EXIT_CONFIG, err_console, get_context

if TYPE_CHECKING:
    from connectors.result import Progress as PullProgress
    from connectors.result import SyncResult

console = Console()


class _Bars:
    """One progress bar per object; the total appears once the CRM says how many records to expect."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: PullProgress) -> None:
        task = self.tasks.get(event.object)
        if task is None:
            task = self.tasks[event.object] = self.progress.add_task(event.object, total=None)
        if event.event == "done":
            total = max(event.read, event.total or 0)
            self.progress.update(task, total=total, completed=total)
            return
        self.progress.update(task, total=event.total, completed=event.read)


def _summary(result: SyncResult) -> Table:
    table = Table(title=f"{result.crm} {'full' if result.full else 'incremental'} pull")
    for column in ("object", "read", "upserted", "deleted", "skipped", "via"):
        table.add_column(column, justify="left" if column in ("object", "via") else "right")
    for name, counts in result.objects.items():
        table.add_row(name, str(counts.read), str(counts.upserted), str(counts.deleted), str(counts.skipped),
                      counts.method or "-")
    totals = result.totals()
    table.add_row("total", *(str(totals[k]) for k in ("read", "upserted", "deleted", "skipped")), "", end_section=True)
    return table


def sync_command(
    ctx: typer.Context,
    crm: str = typer.Option(..., "--crm", help="The CRM to pull: salesforce, hubspot."),
    full: bool = typer.Option(False, "--full", help="Read everything, not only what changed since the last pull."),
    objects: list[str] | None = typer.Option(None, "--objects", help="Pull only these objects (repeatable)."),
) -> None:
    """Pull records from a CRM into the store (incremental unless --full)."""
    from connectors.registry import CRMS, pull_for
    from connectors.result import UnknownObjects

    if crm.lower() not in CRMS:
        err_console.print(f"[red]error:[/red] unknown CRM {crm!r}; expected one of {', '.join(CRMS)}")
        raise typer.Exit(EXIT_CONFIG)
    cli = get_context(ctx)
    config = cli.config
    if not getattr(config, crm.lower()).enabled:
        err_console.print(f"[red]error:[/red] {crm.lower()} is not enabled in the configuration "
                          f"(set {crm.lower()}.enabled: true)")
        raise typer.Exit(EXIT_CONFIG)
    engine = cli.engine()
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            result = pull_for(crm.lower())(engine, config, full=full, objects=objects or None,
                                           progress=_Bars(progress))
    except UnknownObjects as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_CONFIG) from None
    except Exception as exc:  # the run record keeps the details; the operator gets the cause
        err_console.print(f"[red]sync failed:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None
    console.print(_summary(result))
    remaining = "unknown" if result.remaining is None else f"{result.remaining:,}"
    allowance = "" if result.allowance is None else f" ({result.allowance:,} within this run's share)"
    console.print(f"API calls used: {result.api_calls:,}; remaining today: {remaining}{allowance}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if result.paused:
        console.print(f"[yellow]paused:[/yellow] {result.pause_reason}", highlight=False)
    else:
        console.print(f"[green]succeeded[/green] in {result.seconds:.1f} s (run {result.run_id})")
