"""``abm config ...``: check a configuration before a run trips over it."""

from __future__ import annotations

import typer
from rich.console import Console

from worker.context import get_context

app = typer.Typer(help="Inspect and validate the configuration.", no_args_is_help=True)
console = Console()


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Validate the config file and report every problem at once (exit status 2 if any)."""
    from store.db import redact_url

    cli = get_context(ctx)
    config = cli.config  # exits 2 with every problem listed
    console.print("[green]configuration OK[/green]")
    console.print(f"  database: {redact_url(config.database.url)}")
    for name, section in (("salesforce", config.salesforce), ("hubspot", config.hubspot)):
        state = "enabled" if section.enabled else "disabled"
        console.print(f"  {name}: {state}")
