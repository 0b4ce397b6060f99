"""``abm match``: try lead-to-account matching on CSV exports, without a database or a CRM.

Sales ops use it to see what the matcher would do with their data (and why, with ``--explain``)
before a run writes anything. Bad rows are reported per line and never stop the file; the
matching rules and weights come from the ``matching:`` section of abm.yaml like in a real run.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from worker.context import EXIT_CONFIG, get_context

if TYPE_CHECKING:
    from matching.csv_input import CsvTable, RowProblem

console = Console()
err_console = Console(stderr=True)
SHOWN_PROBLEMS = 20


def _read(path: Path, reader, what: str) -> CsvTable:
    from matching.csv_input import CsvFileError

    try:
        data = path.read_bytes()
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot read the {what} file {path}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        return reader(data, source=path.name)
    except CsvFileError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _write_problems(path: Path, problems: list[RowProblem]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "line", "id", "severity", "problem"])
        for p in problems:
            writer.writerow([p.source, p.line or "", p.record_id or "", p.severity, p.message])


def _report(tables: list[CsvTable], problems_path: Path | None) -> None:
    problems = [p for t in tables for p in t.problems]
    for table in tables:
        if table.ignored_columns:
            err_console.print(f"{table.source}: ignored columns: {', '.join(table.ignored_columns)}",
                              markup=False, highlight=False)
    if not problems:
        return
    errors = sum(p.severity == "error" for p in problems)
    err_console.print(f"[yellow]{len(problems)} row problem(s): {errors} row(s) skipped, "
                      f"{len(problems) - errors} warning(s)[/yellow]")
    for problem in problems[:SHOWN_PROBLEMS]:
        err_console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    if len(problems) > SHOWN_PROBLEMS:
        more = f"; all of them are in {problems_path}" if problems_path else " (use --problems FILE to list them all)"
        err_console.print(f"  ... and {len(problems) - SHOWN_PROBLEMS} more{more}")
    if problems_path:
        _write_problems(problems_path, problems)


def match_command(
    ctx: typer.Context,
    accounts: Path = typer.Option(..., "--accounts", help="Accounts CSV: id, name, website, country, ..."),
    people: Path = typer.Option(..., "--people", help="Leads/contacts CSV: id, company, email, website, ..."),
    out: Path = typer.Option(..., "--out", help="Where to write one match row per person (CSV)."),
    explain: bool = typer.Option(False, "--explain", help="Add the signals, runner-up and candidates."),
    problems: Path | None = typer.Option(None, "--problems", help="Also write every row problem to this CSV."),
) -> None:
    """Match people to accounts from CSV exports and write the matches (see README: Matching an export)."""
    from matching import match as match_people
    from matching.csv_input import EXPLAIN_COLUMNS, OUTPUT_COLUMNS, read_accounts, read_people, result_rows

    config = get_context(ctx).config.matching
    account_table = _read(accounts, read_accounts, "accounts")
    people_table = _read(people, read_people, "people")
    _report([account_table, people_table], problems)
    results = match_people(people_table.records, account_table.records, config)
    columns = OUTPUT_COLUMNS + (EXPLAIN_COLUMNS if explain else ())
    try:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(result_rows(results, people_table, account_table, explain))
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_CONFIG) from None
    decisions = Counter(r.decision for r in results)
    summary = ", ".join(f"{decisions[d]} {d}" for d in ("auto", "review", "none", "crm") if decisions[d])
    console.print(f"{len(account_table.records)} accounts, {len(results)} people: {summary or 'nothing to match'}")
    console.print(f"matches written to {out}")
