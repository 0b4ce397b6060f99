"""What every CLI command needs: the loaded configuration and an up-to-date store.

The CLI's modules import the configuration, the store and the rest when a command runs, never when
they are imported: `abm --help`, a mistyped option and shell completion then answer at once instead
of after the 2-3 s the whole product takes to import (a test keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from worker.logs import configure_logging, masker

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config import AbmConfig, ConfigError

EXIT_CONFIG = 2
EXIT_SCHEMA = 3

err_console = Console(stderr=True)


def register_secrets(config: AbmConfig) -> None:
    """Teach the log masker every secret this configuration can read, before anything logs."""
    masker.register(*config.secret_values())


@dataclass
class CliContext:
    config_path: Path | None = None
    log_level: str | None = None  # --log-level: overrides logging.level
    log_format: str | None = None  # --log-format: overrides logging.format
    _config: AbmConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> AbmConfig:
        if self._config is None:
            from config import ConfigError, load_config

            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                report_config_error(exc)
                raise typer.Exit(EXIT_CONFIG) from None
            register_secrets(self._config)
            configure_logging(self.log_level or self._config.logging.level,
                              self.log_format or self._config.logging.format)
        return self._config

    def engine(self, *, check_schema: bool = True) -> Engine:
        from store.migrate import SchemaOutOfDate
        from store.session import open_store

        try:
            return open_store(self.config.database.url, check_schema=check_schema)
        except SchemaOutOfDate as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_SCHEMA) from None


def report_config_error(exc: ConfigError) -> None:
    where = f" in {exc.source}" if exc.source else ""
    err_console.print(f"[red]{len(exc.problems)} configuration problem(s){where}:[/red]")
    for problem in exc.problems:
        err_console.print(f"  {problem}", markup=False, highlight=False)


def get_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj
