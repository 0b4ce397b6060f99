"""The persona codes kept per distinct title (worker.kept_titles): the same codes as classifying every title,
with only the titles not seen before classified, and none of them kept under other rules."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Engine

from config.scoring import PersonaConfig, ScoringConfig
from scoring.personas import PersonaClassifier, PersonaColumns, TitleClass
from worker.kept_titles import classify_titles

TITLES = ["CEO", "VP Sales", None, "Analyst", "CEO", "  ", "Directeur Marketing", "VP Sales", "営業部長"]


def classify(engine: Engine, titles: list[str | None], config: ScoringConfig, reuse: bool = True) -> PersonaColumns:
    with engine.begin() as conn:
        return classify_titles(conn, config, titles, reuse=reuse)


def assert_same(a: PersonaColumns, b: PersonaColumns) -> None:
    for column in ("persona", "seniority", "department"):
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column), err_msg=column)
    assert a.departments == b.departments


@pytest.fixture
def classified(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The titles the rules are applied to."""
    seen: list[str | None] = []
    classify_one = PersonaClassifier.classify

    def counted(self: PersonaClassifier, title: str | None) -> TitleClass:
        seen.append(title)
        return classify_one(self, title)

    monkeypatch.setattr(PersonaClassifier, "classify", counted)
    return seen


def test_only_titles_not_seen_before_are_classified(engine: Engine, classified: list[str | None]) -> None:
    config = ScoringConfig()
    assert_same(classify(engine, TITLES, config, reuse=False), PersonaClassifier(config.personas).classify_many(TITLES))
    classified.clear()
    more = [*TITLES, "Chief Revenue Officer", "Analyst"]
    reused = classify(engine, more, config)
    assert classified == ["Chief Revenue Officer"]
    classified.clear()
    assert_same(reused, PersonaClassifier(config.personas).classify_many(more))
    assert reused.persona[-2] == reused.persona[0]  # a chief is a decision maker, as the CEO
    classified.clear()
    assert_same(classify(engine, more, config), reused)
    assert classified == []  # the new title was kept too


def test_codes_kept_under_other_rules_are_not_read(engine: Engine, classified: list[str | None]) -> None:
    config = ScoringConfig()
    classify(engine, TITLES, config, reuse=False)
    # Analysts become managers: every title is classified again under the new rules.
    personas = config.personas.model_dump()
    personas["seniority_rules"] = [{"value": "manager", "pattern": r"\banalyst\b"}, *personas["seniority_rules"]]
    other = config.model_copy(update={"personas": PersonaConfig.model_validate(personas)})
    classified.clear()
    reclassified = classify(engine, TITLES, other)
    assert set(classified) == set(TITLES)
    assert_same(reclassified, PersonaClassifier(other.personas).classify_many(TITLES))
    assert reclassified.persona[3] != classify(engine, TITLES, config, reuse=False).persona[3]
