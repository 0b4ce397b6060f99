"""``abm evaluate``: backtest the scoring configuration on the org's history and print the evidence.

By default the org is the store (what the last sync pulled). ``--sandbox-size`` evaluates a
freshly generated sandbox org instead, with no store to set up: its Salesforce records go
through the Salesforce connector's own mapping and the match stage into a throwaway SQLite
store, exactly as a sync would put them there (minus HTTP), and the generator's ground truth
adds the checks only it can answer (did the accounts it made surging get a surging trend?).

The work lives in :mod:`worker.evaluation_report` and loads when the command runs (it brings
scikit-learn), so the rest of the CLI starts without it.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, time
from pathlib import Path

import typer

from worker.context import get_context


def _timestamp(day: datetime | None, default: datetime) -> int:
    if day is None:
        return int(default.timestamp())
    return int(datetime.combine(day.date(), time(), tzinfo=UTC).timestamp())


def evaluate_command(
    ctx: typer.Context,
    as_of: datetime | None = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                          help="The org's as-of date (default: now)."),
    backtest_date: datetime | None = typer.Option(None, "--backtest-date", formats=["%Y-%m-%d"],
                                                  help="Score as of this date (default: one horizon before as-of)."),
    sandbox_size: str | None = typer.Option(None, "--sandbox-size",
                                            help="Evaluate a generated sandbox org of this size (S, M, L) instead "
                                                 "of the store, with ground-truth checks."),
    sandbox_seed: int = typer.Option(1, "--sandbox-seed", help="Seed of the generated org."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Backtest the current scoring configuration: AUC, conversion per grade, lift of grade 4, predictive
    AUC on a time-based holdout, and suggested points per activity type next to the configured ones."""
    from scoring.evaluate import evaluate
    from worker.evaluation_report import console, evaluation_json, generated_inputs, json_default, print_evaluation
    from worker.score_inputs import load_score_inputs

    cli = get_context(ctx)
    config = cli.config
    now = datetime.now(UTC)
    surging: set[int] | None = None
    if sandbox_size is not None:
        if sandbox_size.upper() not in ("S", "M", "L"):
            raise typer.BadParameter("must be S, M or L", param_hint="--sandbox-size")
        org_as_of = datetime.combine((as_of or now).date(), time(), tzinfo=UTC)
        with tempfile.TemporaryDirectory(prefix="abm-evaluate-") as workdir:
            inputs, surging = generated_inputs(sandbox_seed, sandbox_size.upper(), org_as_of, config, Path(workdir))
        at = int(org_as_of.timestamp())
    else:
        engine = cli.engine()
        try:
            with engine.connect() as conn:
                inputs = load_score_inputs(conn, config.scoring)
        finally:
            engine.dispose()
        at = _timestamp(as_of, now)
    if inputs.population.n_accounts == 0:
        console.print("[yellow]no accounts to evaluate: run a sync first[/yellow]")
        raise typer.Exit(1)
    back = _timestamp(backtest_date, now) if backtest_date is not None else None
    result = evaluate(inputs, config.scoring, at, backtest_as_of=back, surging_truth=surging)
    if as_json:
        typer.echo(json.dumps(evaluation_json(result), default=json_default))
    else:
        print_evaluation(result)
