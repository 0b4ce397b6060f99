"""``abm evaluate``: the backtest's figures, suggested points, and the command on a store and a sandbox org."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine
from test_scoring_predictive import AS_OF, synthetic_history
from test_scoring_store import in_hubspot, store_org
from typer.testing import CliRunner

from config.scoring import ScoringConfig
from scoring.catalogue import TYPE_CODE, TYPE_NAMES
from scoring.evaluate import Evaluation, GroupRate, evaluate, suggest_points
from scoring.inputs import ScoringInputs, build_inputs
from scoring.predictive import HoldoutEvaluation
from store.records import AccountRecord, ActivityRecord, OpportunityRecord, PersonRecord
from worker.cli import app

runner = CliRunner()
FAST = {"predictive": {"algorithm": "logistic"}}


@pytest.fixture(scope="module")
def history() -> ScoringInputs:
    accounts, people, acts, opps = synthetic_history(seed=2)
    return build_inputs(accounts, people, acts, opps, ScoringConfig())


def test_backtest_figures_are_consistent(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate(FAST)
    as_of = int(AS_OF.timestamp())
    e = evaluate(history, config, as_of)
    assert e.backtest_as_of == as_of - 90 * 86_400
    assert sum(g.accounts for g in e.grades) == e.accounts == sum(t.accounts for t in e.trends)
    assert sum(g.converted for g in e.grades) == e.converted > 0
    assert [g.label for g in e.grades] == ["4", "3", "2", "1"]
    assert e.grade4_lift == pytest.approx(e.grades[0].rate / e.base_rate)
    # Engagement ahead of deals is the synthetic org's signal: the grade ranks well above chance.
    assert e.auc_grade_score > 0.7 and e.grade4_lift > 1.5
    assert isinstance(e.predictive, HoldoutEvaluation) and e.predictive_auc > 0.7
    assert e.predictive_grades is not None and sum(g.accounts for g in e.predictive_grades) == e.accounts
    assert e.truth is None and e.notes == []
    assert [s.activity_type for s in e.suggestions] == list(TYPE_NAMES)


def test_a_recent_backtest_date_is_flagged(history: ScoringInputs) -> None:
    as_of = int(AS_OF.timestamp())
    e = evaluate(history, ScoringConfig.model_validate(FAST), as_of, backtest_as_of=as_of - 30 * 86_400)
    assert any("not known yet" in n for n in e.notes)


def test_lift_and_rates_hand_computed() -> None:
    grades = [GroupRate("4", 10, 5), GroupRate("3", 20, 2), GroupRate("2", 30, 2), GroupRate("1", 40, 1)]
    assert grades[0].rate == 0.5 and GroupRate("x", 0, 0).rate == 0.0
    base = 10 / 100
    assert Evaluation._lift(grades, base) == pytest.approx(5.0)
    assert Evaluation._lift([GroupRate("4", 0, 0)], base) is None
    assert Evaluation._lift(grades, 0.0) is None


def test_suggested_points_follow_the_evidence() -> None:
    """Demos precede wins, blog visits do not: demos get more points, blog visits none, and the
    suggested values keep an average account's raw points where the configured ones put them."""
    rng = np.random.default_rng(0)
    t0 = AS_OF - timedelta(days=200)
    accounts, people, acts, opps = [], [], [], []
    for a in range(400):
        accounts.append(AccountRecord(id=a, crm="salesforce", crm_id=f"A{a}", created_at=t0 - timedelta(days=400)))
        people.append(PersonRecord(id=a, crm="salesforce", crm_id=f"P{a}", kind="contact", title="Analyst",
                                   account_crm_id=f"A{a}"))
        buyer = rng.random() < 0.3
        for _ in range(int(rng.integers(1, 4))):  # blog visits, unrelated to buying
            acts.append(ActivityRecord(id=len(acts), crm="salesforce", crm_id=f"T{len(acts)}",
                                       activity_type="blog_visit", person_crm_id=f"P{a}",
                                       occurred_at=t0 - timedelta(days=float(rng.uniform(1, 20)))))
        if buyer or rng.random() < 0.1:
            when = t0 - timedelta(days=float(rng.uniform(1, 10)))
            acts.append(ActivityRecord(id=len(acts), crm="salesforce", crm_id=f"T{len(acts)}", activity_type="demo",
                                       person_crm_id=f"P{a}", occurred_at=when))
        if buyer:
            opps.append(OpportunityRecord(id=a, crm="salesforce", crm_id=f"O{a}", account_crm_id=f"A{a}",
                                          is_closed=True, is_won=True, created_at=t0 - timedelta(days=5),
                                          closed_at=t0 + timedelta(days=20)))
    config = ScoringConfig()
    inputs = build_inputs(accounts, people, acts, opps, config)
    suggestions = {s.activity_type: s for s in suggest_points(inputs, config, [int(t0.timestamp())], "won")}
    demo, blog = suggestions["demo"], suggestions["blog_visit"]
    assert demo.suggested is not None and blog.suggested == 0.0
    assert demo.win_rate_touched > 0.7 and demo.win_rate_untouched < 0.05
    assert demo.accounts_touched == sum(1 for a in acts if a.activity_type == "demo")
    assert suggestions["proposal"].suggested is None and suggestions["proposal"].accounts_touched == 0
    # Mass kept: sum(suggested * mean decayed touches) == sum(configured * mean decayed touches) over usable types.
    from scoring.evaluate import counting_config
    from scoring.scores import score

    counts = score(inputs.activities, inputs.population, inputs.opportunities, counting_config(config),
                   int(t0.timestamp())).agg.account_type_points.mean(axis=0)
    used = [TYPE_CODE["demo"], TYPE_CODE["blog_visit"]]
    configured = sum(config.catalogue[TYPE_NAMES[t]].points * counts[t] for t in used)
    suggested = sum(suggestions[TYPE_NAMES[t]].suggested * counts[t] for t in used)
    assert suggested == pytest.approx(configured, rel=0.01)


# ---------------------------------------------------------------- the command


def config_file(tmp_path: Path, database_url: str, extra: str = "") -> Path:
    path = tmp_path / "abm.yaml"
    path.write_text(f"database:\n  url: {database_url}\nscoring:\n  predictive:\n    algorithm: logistic\n{extra}",
                    encoding="utf-8")
    return path


def test_evaluate_command_on_the_store(engine: Engine, database_url: str, tmp_path: Path) -> None:
    accounts, people, acts, opps = (in_hubspot(x) for x in synthetic_history(seed=3, n_accounts=150))
    store_org(engine, accounts, people, acts, opps, {})
    cfg = config_file(tmp_path, database_url)
    result = runner.invoke(app, ["--config", str(cfg), "evaluate", "--as-of", AS_OF.date().isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["accounts"] == 150 and data["converted"] > 0
    assert data["predictive_auc"] is not None and data["predictive"]["target"] == "account_won"
    assert data["surging_recall"] is None  # no ground truth in a store
    assert len(data["suggestions"]) == len(TYPE_NAMES)
    text = runner.invoke(app, ["--config", str(cfg), "evaluate", "--as-of", AS_OF.date().isoformat()])
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    for phrase in ("AUC of the grade score", "Conversion per grade (rules)", "Points per activity type",
                   "grade 4 win rate over average", "predictive AUC on the time-based holdout"):
        assert phrase in flat, phrase


def test_evaluate_command_on_an_empty_store(engine: Engine, database_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_file(tmp_path, database_url)), "evaluate"])
    assert result.exit_code == 1
    assert "no accounts to evaluate" in result.output


def test_evaluate_command_refuses_an_unknown_size(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_file(tmp_path, "sqlite:///unused.db")), "evaluate",
                                 "--sandbox-size", "XL"])
    assert result.exit_code == 2
    assert "must be S, M or L" in " ".join(result.output.split())


def test_evaluate_on_a_generated_sandbox_org(tmp_path: Path) -> None:
    """The no-store path: a generated S org through the connector's mapping and matching, with truth."""
    cfg = config_file(tmp_path, "sqlite:///unused.db")
    result = runner.invoke(app, ["--config", str(cfg), "evaluate", "--sandbox-size", "S", "--as-of", "2026-01-01",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["accounts"] > 400 and data["truth"]["surging_accounts"] > 20
    assert data["surging_recall"] >= 0.9
    assert data["grade4_lift"] >= 3.0
    assert data["predictive_auc"] >= 0.8


@pytest.mark.slow
def test_acceptance_on_the_generated_m_org(tmp_path: Path) -> None:
    """Issue 7's acceptance on the M org with the default configuration (about two minutes)."""
    path = tmp_path / "abm.yaml"
    path.write_text("database:\n  url: sqlite:///unused.db\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(path), "evaluate", "--sandbox-size", "M", "--as-of", "2026-01-01",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["surging_recall"] >= 0.9
    lift = data["predictive_grade4_lift"] if data["predictive_grades"] is not None else data["grade4_lift"]
    assert lift >= 3.0 and data["grade4_lift"] >= 3.0
    assert data["predictive_auc"] >= 0.80
    assert datetime.fromtimestamp(data["as_of"], UTC) == datetime(2026, 1, 1, tzinfo=UTC)


def test_without_enough_history_the_grade_rests_on_rules(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic", "min_positive_labels": 10_000}})
    e = evaluate(history, config, int(AS_OF.timestamp()))
    assert e.predictive_auc is None and e.predictive_grades is None
    assert "min_positive_labels: 10000" in e.predictive.reason
    assert "no model as of the backtest date" in e.predictive_note
    assert e.grade4_lift is not None  # the rules still grade
    off = evaluate(history, ScoringConfig.model_validate({"predictive": {"enabled": False}}), int(AS_OF.timestamp()))
    assert off.predictive_note == "disabled in the configuration" and "disabled" in off.predictive.reason
