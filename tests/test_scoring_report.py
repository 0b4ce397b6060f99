"""``abm report``: portfolio metrics from the store, with the active predictive model when there is one."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine
from test_scoring_predictive import AS_OF, synthetic_history
from test_scoring_store import in_hubspot, store_org
from typer.testing import CliRunner

from config.scoring import ScoringConfig
from scoring.predictive import TrainedModel, train
from worker.cli import app
from worker.models import save_model
from worker.score_inputs import load_score_inputs

runner = CliRunner()
AT = ["--as-of", AS_OF.date().isoformat()]


def config_file(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "abm.yaml"
    path.write_text(f"database:\n  url: {database_url}\nscoring:\n  predictive:\n    algorithm: logistic\n",
                    encoding="utf-8")
    return path


def test_report_from_the_store(engine: Engine, database_url: str, tmp_path: Path) -> None:
    accounts, people, acts, opps = (in_hubspot(x) for x in synthetic_history(seed=6, n_accounts=120))
    store_org(engine, accounts, people, acts, opps, {})
    cfg = config_file(tmp_path, database_url)
    result = runner.invoke(app, ["--config", str(cfg), "report", "--json", *AT])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["accounts"] == 120 and 0 < data["tracked"] <= 120
    assert data["probability_basis"] == "win rate"  # no model stored yet
    assert 0 <= data["coverage"] <= 1 and 0 <= data["penetration"] <= 1
    assert data["impact_tracked"]["deals_closed"] + data["impact_other"]["deals_closed"] > 0

    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic"}})
    with engine.connect() as conn:
        inputs = load_score_inputs(conn, config)
    trained = train(inputs, config, int(AS_OF.timestamp()))
    assert isinstance(trained, TrainedModel), trained
    with engine.begin() as conn:
        save_model(conn, trained)
    with_model = json.loads(runner.invoke(app, ["--config", str(cfg), "report", "--json", *AT]).stdout)
    assert with_model["probability_basis"] == "predictive"

    text = runner.invoke(app, ["--config", str(cfg), "report", *AT])
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    for phrase in ("ABM portfolio", "coverage", "penetration", "awareness", "precision", "relevance",
                   "obtainable revenue", "tracked at the start"):
        assert phrase in flat, phrase


def test_report_on_an_empty_store(engine: Engine, database_url: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_file(tmp_path, database_url)), "report"])
    assert result.exit_code == 1 and "run a sync first" in result.output
