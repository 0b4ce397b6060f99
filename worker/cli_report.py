"""``abm report``: the ABM portfolio metrics of the tracked accounts, from the store.

Scores are computed fresh as of now from the store (the same inputs the score stage uses), with
the active predictive model when there is one, so the report never disagrees with the rules
because a run is a day old. Impact compares accounts tracked at the start of the period, from
scores as of that date, so a win cannot make its own account look tracked.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from worker.context import get_context

if TYPE_CHECKING:
    from scoring.portfolio import Impact, Portfolio

console = Console()


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _money(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _impact_cells(i: Impact) -> list[str]:
    days = "n/a" if i.median_days_to_win is None else f"{i.median_days_to_win:.0f}"
    return [f"{i.deals_closed:,}", f"{i.deals_won:,}", _pct(i.win_rate), days, _money(i.median_won_amount)]


def print_portfolio(p: Portfolio, tracked_min_grade: int, impact_days: int) -> None:
    console.print(f"[bold]ABM portfolio[/bold]: {p.tracked:,} tracked accounts (grade {tracked_min_grade} or 4) "
                  f"of {p.accounts:,}; {p.icp:,} ICP; {p.engaged:,} engaged")
    table = Table(show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it says")
    rows = [
        ("coverage", _pct(p.coverage), "tracked accounts with at least one known person"),
        ("buying committee known", "n/a" if p.known_committee_personas is None else
         f"{p.known_committee_personas:.2f}", "committee personas known per tracked account"),
        ("penetration", _pct(p.penetration), "known people at tracked accounts who engaged"),
        ("committee engaged", _pct(p.committee_engaged), "share of committee personas engaged per tracked account"),
        ("awareness", _pct(p.awareness), "tracked accounts with any engagement"),
        ("engagement", _pct(p.engagement_rate), "tracked accounts engaged"),
        ("median engagement", "n/a" if p.median_engagement is None else f"{p.median_engagement:.1f}",
         "engagement score of tracked accounts"),
        ("precision", _pct(p.precision), "engaged accounts that are ICP"),
        ("relevance", _pct(p.relevance), "ICP accounts that are engaged"),
        ("obtainable revenue", _money(p.obtainable_revenue),
         f"tracked accounts: win probability ({p.probability_basis}) x typical won deal"),
        ("open pipeline", _money(p.open_pipeline_tracked), "open deals of tracked accounts"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    impact = Table(title=f"Impact: deals closed in the last {impact_days} days", title_justify="left")
    for column in ("accounts", "closed", "won", "win rate", "median days to win", "median won amount"):
        impact.add_column(column, justify="left" if column == "accounts" else "right", no_wrap=column == "accounts")
    impact.add_row("tracked at the start", *_impact_cells(p.impact_tracked))
    impact.add_row("others", *_impact_cells(p.impact_other))
    console.print(impact)


def report_command(
    ctx: typer.Context,
    as_of_day: datetime | None = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                                              help="Report as of this day (default: now)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """ABM portfolio metrics: coverage, penetration, awareness, engagement, precision and relevance,
    impact (win rate, deal velocity) and obtainable revenue of the tracked accounts."""
    # Scoring (numpy, scikit-learn) loads here, not at import: `abm --help` should not wait for it.
    import numpy as np

    from scoring import predictive as pred
    from scoring.catalogue import DAY
    from scoring.features import scores_as_of
    from scoring.portfolio import portfolio
    from scoring.rules import grades
    from worker.models import active_model
    from worker.score_inputs import load_score_inputs

    cli = get_context(ctx)
    config = cli.config.scoring
    as_of = int((as_of_day.replace(tzinfo=UTC) if as_of_day is not None else datetime.now(UTC)).timestamp())
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            inputs = load_score_inputs(conn, config)
            model = active_model(conn, pred.account_target(config.predictive)) if config.predictive.enabled else None
    finally:
        engine.dispose()
    if inputs.population.n_accounts == 0:
        console.print("[yellow]no accounts in the store: run a sync first[/yellow]")
        raise typer.Exit(1)
    probability = pred.predict(model.model, inputs, config, as_of) if model is not None else None
    scores = scores_as_of(inputs, config, as_of)
    if probability is not None:
        scores = replace(scores, predictive=probability,
                         grade=grades(scores.fit.fit, scores.engagement, config.grade, probability))
    start = as_of - config.report.impact_days * DAY
    then = scores_as_of(inputs, config, start)
    tracked_then = (then.grade >= config.report.tracked_min_grade) & (inputs.account_created < start)
    result = portfolio(scores, inputs.population, inputs.opportunities, config, tracked_at_start=tracked_then)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))
    else:
        print_portfolio(result, config.report.tracked_min_grade, config.report.impact_days)
