"""``abm init``: create the custom fields abm-sync writes to, in each enabled CRM.

Safe to run again at any time: existing fields are left alone, and one with the right name but
the wrong type is reported (exit status 1) rather than changed, since it may hold someone's data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from worker.context import get_context

if TYPE_CHECKING:
    from writeback.provision import ProvisionReport

console = Console()
EXIT_PROBLEMS = 1
_STYLE = {"created": "green", "would_create": "cyan", "exists": "dim", "incompatible": "red", "failed": "red"}


def _summary(report: ProvisionReport) -> Table:
    table = Table(title="Fields" + (" (dry run: nothing created)" if report.dry_run else ""), title_justify="left")
    for column in ("CRM", "Object", "Field", "Status", "Detail"):
        table.add_column(column)
    for f in sorted(report.fields, key=lambda f: (f.crm, f.object, f.status != "incompatible", f.name)):
        style = _STYLE.get(f.status, "")
        table.add_row(f.crm, f.object, f.name, f"[{style}]{f.status.replace('_', ' ')}[/]", f.detail)
    return table


def init_command(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be created; create nothing."),
    crm: list[str] = typer.Option([], "--crm", help="Only this CRM (repeatable): salesforce, hubspot."),
) -> None:
    """Create abm-sync's score fields in Salesforce (Metadata API) and HubSpot (properties), if missing."""
    # The CRM clients load here, not at import: `abm --help` should not wait for them.
    from connectors.hubspot.auth import HubSpotAuthError
    from connectors.salesforce.auth import SalesforceAuthError
    from writeback.connect import provision

    config = get_context(ctx).config
    try:
        crms = config.chosen_crms(crm)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        report = provision(config, crms, dry_run)
    except (SalesforceAuthError, HubSpotAuthError) as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_PROBLEMS) from None
    console.print(_summary(report))
    counts = {status: len(report.with_status(status)) for status in _STYLE}
    console.print(", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items() if n) or "no fields")
    console.print("API calls: " + ", ".join(f"{c} {n}" for c, n in report.api_calls.items()))
    if report.admin_steps:
        console.print("\n[bold]Still to do by an admin[/] (the APIs cannot decide who may see these fields):")
        for step in report.admin_steps:
            console.print(step, markup=False, highlight=False)
    if not report.ok:
        console.print("[red]Some fields are missing or incompatible; abm writeback skips what it cannot write.[/]")
        raise typer.Exit(EXIT_PROBLEMS)
