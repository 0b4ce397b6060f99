"""Invalid scoring configuration fails ``abm config check`` with the key path of every problem."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from config.scoring import ScoringConfig
from worker.cli import app

runner = CliRunner()

THREE_MISTAKES = """\
scoring:
  catalogue:
    webinar_atended: {points: 5}
    demo: {half_life_days: -3}
  grade:
    thresholds: {grade_4: 40, grade_3: 50, grade_2: 10}
"""


def check(tmp_path: Path, text: str):
    path = tmp_path / "abm.yaml"
    path.write_text(text, encoding="utf-8")
    return runner.invoke(app, ["--config", str(path), "config", "check"])


def flat(output: str) -> str:
    """The output with the console's line wrapping undone."""
    return " ".join(output.split())


def test_unknown_type_negative_half_life_and_overlapping_thresholds_are_all_reported(tmp_path: Path) -> None:
    result = check(tmp_path, THREE_MISTAKES)
    assert result.exit_code == 2
    output = flat(result.output)
    assert "3 configuration problem(s)" in output
    for problem in (
        "scoring.catalogue.webinar_atended: unknown activity type 'webinar_atended' (did you mean 'webinar_attended'?)",
        "scoring.catalogue.demo.half_life_days: must be greater than 0.0, got -3",
        "scoring.grade.thresholds.grade_3: overlapping grade thresholds: grade_3 (50.0) must be below grade_4 (40.0)",
    ):
        assert problem in output, (problem, output)


def test_other_scoring_mistakes_name_their_keys(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        """\
scoring:
  catalogue:
    demo: {team: sale}
    foo: 3
  velocity: {rising_ratio: 3.0, surging_ratio: 2.0}
  grade:
    predictive_thresholds: {grade_4: 10, grade_3: 10, grade_2: 5}
    percentiles: {grade_4: 0.5, grade_3: 0.3, grade_2: 0.3}
""",
    )
    assert result.exit_code == 2
    for path in (
        "scoring.catalogue.demo.team:",
        "scoring.catalogue.foo: unknown activity type 'foo' (known types: email_sent",
        "scoring.velocity: rising_ratio (3.0) must be below surging_ratio (2.0)",
        "scoring.grade.predictive_thresholds.grade_3: overlapping grade thresholds",
        "scoring.grade.percentiles: shares of grades 4, 3 and 2 must sum below 1",
    ):
        assert path in flat(result.output), (path, result.output)


def test_valid_catalogue_override_merges_field_by_field(tmp_path: Path) -> None:
    result = check(tmp_path, "scoring:\n  catalogue:\n    demo: {points: 40}\n")
    assert result.exit_code == 0, result.output
    config = ScoringConfig.model_validate({"catalogue": {"demo": {"points": 40}}})
    assert config.catalogue["demo"].points == 40
    assert config.catalogue["demo"].half_life_days == 60  # kept from the default
    assert len(config.catalogue) == 28
