"""What ``abm evaluate`` works with: a generated org as a store, and the evaluation printed or as JSON.

A generated org goes through the Salesforce connector's own mapping and the match stage into
a throwaway store, so the evaluation sees exactly what a sync would have stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, event, select

from config.model import AbmConfig
from config.salesforce_pull import SALESFORCE_OBJECTS
from connectors.activity_rules import ActivityClassifier
from connectors.salesforce.fields import wanted_fields
from connectors.salesforce.mapping import RecordMapper
from connectors.salesforce.objects import SPECS
from scoring.evaluate import Evaluation, GroupRate
from scoring.inputs import ScoringInputs
from scoring.predictive import HoldoutEvaluation, NotTrained
from store import migrate
from store.db import make_engine
from store.schema import Account
from store.upsert import upsert
from worker.match_stage import run_match_stage
from worker.score_inputs import load_score_inputs

console = Console()

TARGETS = {"surging_recall": 0.9, "grade4_lift": 3.0, "predictive_auc": 0.80}
_PAGE = 5_000


# ---------------------------------------------------------------- a generated org as a store


def _describe_types(records: list[dict[str, Any]]) -> dict[str, str]:
    """Salesforce describe types of the fields, from the Python values the generator hands out."""
    kinds: dict[str, str] = {}
    for record in records:
        for name, value in record.items():
            if name in kinds or value is None:
                continue
            if isinstance(value, bool):
                kinds[name] = "boolean"
            elif isinstance(value, datetime):
                kinds[name] = "datetime"
            elif hasattr(value, "isoformat"):
                kinds[name] = "date"
            elif isinstance(value, int):
                kinds[name] = "int"
            elif isinstance(value, float):
                kinds[name] = "double"
            else:
                kinds[name] = "string"
    return kinds


def _pages(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(records)
    while page := list(islice(it, size)):
        yield page


def store_generated_org(engine: Engine, generated: Any, config: AbmConfig) -> dict[str, int]:
    """Put a generated org's Salesforce records into the store the way a sync does, then match.

    Objects go parents first through :class:`connectors.salesforce.mapping.RecordMapper` and the
    store's upsert; the match stage then ties leads to accounts. Returns rows stored per object.
    """
    classifier = ActivityClassifier(config.activities.salesforce, config.activities)
    now = generated.as_of
    counts: dict[str, int] = {}
    for name in SALESFORCE_OBJECTS:
        spec = SPECS[name]
        pages = _pages(generated.salesforce.records(name), _PAGE)
        first = next(pages, [])
        rule_fields = classifier.fields_used(name) if spec.is_activity else set()
        types = _describe_types(first)
        fields = {f: types.get(f, "string") for f in wanted_fields(spec, [], rule_fields) if f in types}
        mapper = RecordMapper(spec, fields, classifier, now)
        counts[name] = 0
        for page in [first, *pages] if first else []:
            with engine.begin() as conn:
                rows = mapper.map_page(conn, page).rows
                if rows:
                    counts[name] += upsert(conn, spec.table, rows, now=now)
    run_match_stage(engine, config.matching)
    return counts


def _unsynced(dbapi_connection: Any, _record: Any) -> None:
    """The evaluation's store is thrown away once read: none of its commits is worth waiting for the disk (with
    the store's usual ``synchronous=NORMAL`` they took 7 of the 27 s spent storing the M org)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def generated_inputs(
    seed: int, size: str, as_of: datetime, config: AbmConfig, workdir: Path
) -> tuple[ScoringInputs, set[int]]:
    """Scoring inputs of a generated org (via a throwaway store in ``workdir``) and the account
    indexes its ground truth says are surging."""
    from sandbox.seed import generate  # the sandbox is only needed for this path

    generated = generate(seed, size, as_of)
    engine = make_engine(f"sqlite:///{workdir / 'generated.db'}")
    event.listen(engine, "connect", _unsynced)  # after make_engine's own settings, so it overrides theirs
    try:
        migrate.upgrade(engine)
        store_generated_org(engine, generated, config)
        with engine.connect() as conn:
            inputs = load_score_inputs(conn, config.scoring)
            crm_id_of = dict(conn.execute(select(Account.id, Account.crm_id)).all())
    finally:
        engine.dispose()
    position = {crm_id_of[int(i)]: k for k, i in enumerate(inputs.account_ids.tolist())}
    surging = {position[a] for a in generated.truth.surging_accounts if a in position}
    return inputs, surging


# ---------------------------------------------------------------- output


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _rates_table(title: str, rows: list[GroupRate], base: float) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("", "accounts", "converted", "rate", "lift"):
        table.add_column(column, justify="right")
    for row in rows:
        lift = row.rate / base if base > 0 and row.accounts else None
        table.add_row(row.label, f"{row.accounts:,}", f"{row.converted:,}", _pct(row.rate if row.accounts else None),
                      "n/a" if lift is None else f"{lift:.2f}x")
    return table


def _check(name: str, value: float | None, target: float, unit: str = "") -> str:
    if value is None:
        return f"{name}: n/a (target ≥ {target}{unit})"
    mark = "[green]meets[/green]" if value >= target else "[red]below[/red]"
    return f"{name}: {value:.3f}{unit} (target ≥ {target}{unit}) {mark}"


def print_evaluation(e: Evaluation) -> None:
    day = lambda t: datetime.fromtimestamp(t, UTC).date().isoformat()  # noqa: E731
    outcome = "won a deal" if e.target == "won" else "opened a deal"
    console.print(f"[bold]Backtest[/bold]: scores as of {day(e.backtest_as_of)} against accounts that {outcome} "
                  f"in the next {e.horizon_days} days (org as of {day(e.as_of)})")
    console.print(f"  accounts: {e.accounts:,}; converted: {e.converted:,} ({_pct(e.base_rate)})")
    for note in e.notes:
        console.print(f"  [yellow]note:[/yellow] {note}")
    console.print(f"  AUC of the grade score: {_num(e.auc_grade_score)}  (engagement alone {_num(e.auc_engagement)}, "
                  f"fit alone {_num(e.auc_fit)})")
    console.print(f"  fit: {e.fit_note}")
    console.print(_rates_table("Conversion per grade (rules)", e.grades, e.base_rate))
    if e.predictive_grades is not None:
        console.print(_rates_table("Conversion per grade (predictive)", e.predictive_grades, e.base_rate))
    console.print(f"  predictive grades: {e.predictive_note}")
    console.print(_rates_table("Conversion per velocity trend", e.trends, e.base_rate))

    p = e.predictive
    if isinstance(p, HoldoutEvaluation):
        h = p.metrics["holdout"]
        console.print(f"[bold]Predictive model[/bold] ({p.target}, time-based holdout of "
                      f"{p.metrics['holdout_snapshots']} snapshots): AUC {h['auc']:.3f}, Brier {h['brier']:.4f}, "
                      f"average precision {h['average_precision']:.3f}, top-decile lift {h['top_decile_lift']:.2f}x; "
                      f"mean probability {_pct(h['mean_probability'])} vs observed {_pct(h['base_rate'])}; "
                      f"trained on {p.metrics['train_rows']:,} rows ({p.metrics['train_positives']:,} positive)")
    else:
        console.print(f"[bold]Predictive model[/bold]: not trained: {p.reason}")

    table = Table(title="Points per activity type: configured, and suggested from won deals "
                  "(touched and win rates at the backtest date)", title_justify="left")
    table.add_column("activity type", no_wrap=True)
    for column in ("configured", "suggested", "touched", "won if touched", "won if not"):
        table.add_column(column, justify="right")
    for s in e.suggestions:
        suggested = f"{s.suggested:g}" if s.suggested is not None else ("no data" if not s.accounts_touched
                                                                         else "too few")
        table.add_row(s.activity_type, f"{s.configured:g}", suggested, f"{s.accounts_touched:,}",
                      _pct(s.win_rate_touched if s.accounts_touched else None), _pct(s.win_rate_untouched))
    console.print(table)

    console.print("[bold]Acceptance figures[/bold]")
    if e.truth is not None:
        console.print("  " + _check(f"surging or rising trend on the {e.truth.surging_accounts:,} truly surging "
                                    "accounts (recall)", e.truth.recall, TARGETS["surging_recall"]))
    lift = e.predictive_grade4_lift if e.predictive_grades is not None else e.grade4_lift
    basis = "predictive" if e.predictive_grades is not None else "rules"
    console.print("  " + _check(f"grade 4 win rate over average ({basis} grades)", lift, TARGETS["grade4_lift"], "x"))
    if e.predictive_grades is not None:
        console.print("  " + _check("grade 4 win rate over average (rules grades)", e.grade4_lift,
                                    TARGETS["grade4_lift"], "x"))
    console.print("  " + _check("predictive AUC on the time-based holdout", e.predictive_auc,
                                TARGETS["predictive_auc"]))


def evaluation_json(e: Evaluation) -> dict[str, Any]:
    p = e.predictive
    out = asdict(replace(e, predictive=NotTrained(p.target, "", {})))
    out["predictive"] = ({"target": p.target, "metrics": p.metrics} if isinstance(p, HoldoutEvaluation)
                         else {"target": p.target, "reason": p.reason, "metrics": p.metrics})
    out.update(base_rate=e.base_rate, grade4_lift=e.grade4_lift, predictive_grade4_lift=e.predictive_grade4_lift,
               predictive_auc=e.predictive_auc, surging_recall=e.truth.recall if e.truth else None)
    return out


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
