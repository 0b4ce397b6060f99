"""The ``abm`` command line. Each command group lives in its own module; this one assembles them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import typer

from worker.cli_config import app as config_app
from worker.cli_db import app as db_app
from worker.cli_sandbox import app as sandbox_app
from worker.context import CliContext

app = typer.Typer(
    name="abm",
    help="abm-sync: account-based scoring for Salesforce and HubSpot.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals can hold secrets
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")


def _version() -> str:
    try:
        return version("abm-sync")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"abm-sync {_version()}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None, "--config", "-c", envvar="ABM_CONFIG", help="Config file (default: ./abm.yaml if present)."
    ),
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Pull from your CRMs, match leads to accounts, score, write back."""
    ctx.obj = CliContext(config_path=config)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
