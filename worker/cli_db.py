"""``abm db ...``: create and upgrade the schema; the only commands allowed on an old schema."""

from __future__ import annotations

import typer
from rich.console import Console

from worker.context import get_context

app = typer.Typer(help="Create, upgrade and inspect the database schema.", no_args_is_help=True)
console = Console()


@app.command("upgrade")
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Bring the database schema to the version this abm-sync needs (safe to run every deploy)."""
    from store import migrate
    from store.db import redact_url

    cli = get_context(ctx)
    engine = cli.engine(check_schema=False)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    url = redact_url(cli.config.database.url)
    if before == after:
        console.print(f"{url}: already at {after}")
    else:
        console.print(f"{url}: upgraded {before or 'empty'} -> {after}")


@app.command("downgrade")
def downgrade(ctx: typer.Context, revision: str = typer.Argument(..., help="Target revision, or -1.")) -> None:
    """Step the schema back (before installing an older abm-sync). Dropped tables lose their data."""
    from store import migrate

    cli = get_context(ctx)
    engine = cli.engine(check_schema=False)
    migrate.downgrade(engine, revision)
    console.print(f"downgraded to {migrate.current_revision(engine) or 'empty'}")


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the one this version needs."""
    from store import migrate
    from store.db import redact_url

    cli = get_context(ctx)
    state = migrate.status(cli.engine(check_schema=False))
    console.print(f"database: {redact_url(cli.config.database.url)}")
    console.print(f"current:  {state.current or 'empty (no schema)'}")
    console.print(f"head:     {state.head}")
    if state.up_to_date:
        console.print("[green]up to date[/green]")
    else:
        console.print("[yellow]out of date: run `abm db upgrade`[/yellow]")
        raise typer.Exit(1)
