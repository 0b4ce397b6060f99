"""The ``abm`` command line. Each command group lives in its own module; this one assembles them."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from worker.cli_config import app as config_app
from worker.cli_db import app as db_app
from worker.cli_demo import demo_command
from worker.cli_evaluate import evaluate_command
from worker.cli_init import init_command
from worker.cli_match import match_command
from worker.cli_report import report_command
from worker.cli_run import resync_command, run_command
from worker.cli_sandbox import app as sandbox_app
from worker.cli_serve import serve_command
from worker.cli_sync import sync_command
from worker.cli_writeback import writeback_command
from worker.context import CliContext
from worker.gc_pause import skip_collections_at_exit
from worker.logs import configure_logging

app = typer.Typer(
    name="abm",
    help="abm-sync: account-based scoring for Salesforce and HubSpot.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals can hold secrets
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.command("match")(match_command)
app.add_typer(sandbox_app, name="sandbox")
app.command("run")(run_command)
app.command("resync")(resync_command)
app.command("serve")(serve_command)
app.command("demo")(demo_command)
app.command("init")(init_command)
app.command("writeback")(writeback_command)
app.command("sync")(sync_command)
app.command("evaluate")(evaluate_command)
app.command("report")(report_command)


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

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
    log_format: LogFormat | None = typer.Option(
        None, "--log-format", help="text for people, json for log shippers (default: logging.format)."
    ),
    log_level: LogLevel | None = typer.Option(None, "--log-level", help="Default: logging.level."),
) -> None:
    """Pull from your CRMs, match leads to accounts, score, write back."""
    fmt = log_format.value if log_format else None
    level = log_level.value if log_level else None
    configure_logging(level or "INFO", fmt or "text")  # until the config says otherwise
    ctx.obj = CliContext(config_path=config, log_level=level, log_format=fmt)


def main() -> None:
    skip_collections_at_exit()
    app()


if __name__ == "__main__":
    main()
