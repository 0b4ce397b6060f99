"""An incremental score stage that reads only the dirty entities, against the population state the
last scoring of everyone stored: same scores as a full scoring, less read, fallback without state."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from test_scoring_predictive import AS_OF, synthetic_history
from test_worker_score_stage import ACME, NOW, QUIET, VP, _seed, _touch

from config.matching import MatchingConfig
from config.scoring import GradeConfig, PredictiveConfig, ScoringConfig
from store.schema import Account, Activity, Opportunity, Person, PredictiveModel, Score, ScoreState
from store.types import utcnow
from store.upsert import upsert
from worker import score_stage, score_subset
from worker.match_stage import run_match_stage
from worker.score_inputs import load_score_inputs
from worker.score_scope import dirty_scope, touched_since
from worker.score_stage import Incremental, run_score_stage
from worker.score_store import COMPARED, POPULATION

NO_MODELS = ScoringConfig(predictive=PredictiveConfig(enabled=False))


def _rows(records: list[Any], obj: str) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        row = asdict(record)
        row.pop("id")
        rows.append({**row, "crm": "hubspot", "object": obj})  # HubSpot: the generator's ids are free-form
    return rows


def _touch_hubspot(engine: Engine, crm_id: str, kind: str, person: str, when: datetime) -> None:
    with engine.begin() as conn:
        upsert(conn, Activity.__table__, [{"crm": "hubspot", "object": "emails", "crm_id": crm_id,
                                           "activity_type": kind, "person_crm_id": person, "occurred_at": when}])


def _seed_history(engine: Engine) -> None:
    accounts, people, acts, opps = synthetic_history()
    with engine.begin() as conn:
        upsert(conn, Account.__table__, _rows(accounts, "companies"))
        upsert(conn, Person.__table__, _rows(people, "contacts"))
        upsert(conn, Activity.__table__, _rows(acts, "emails"))
        upsert(conn, Opportunity.__table__, _rows(opps, "deals"))


def _seeded_and_matched(engine: Engine) -> None:
    _seed_history(engine)
    run_match_stage(engine, MatchingConfig())


def _seeded_matched_and_scored_with_models_trained(engine: Engine) -> None:
    _seeded_and_matched(engine)
    trained = run_score_stage(engine, ScoringConfig(), AS_OF, retrain=True)
    assert all(note.startswith("trained") for note in trained.models.values()), trained.models


def _scores(engine: Engine) -> dict[tuple[str, int], tuple]:
    columns = [Score.__table__.c[c] for c in COMPARED]
    with engine.connect() as conn:
        return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(select(Score.entity_kind, Score.entity_id, *columns))}


@pytest.fixture(autouse=True)
def read_alone_whatever_the_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """These orgs are tiny, so any touch is a large share of them: read the dirty entities alone anyway."""
    monkeypatch.setattr(score_stage, "SUBSET_MAX_SHARE", 1.0)


# Both ways the subset finds touches: IN lists over the indexes, or one scan of the table (SCAN_SHARE).
TOUCH_READS = {"by index": 1.0, "by scan": 0.0}


@pytest.fixture(params=list(TOUCH_READS))
def touch_reads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(score_subset, "SCAN_SHARE", TOUCH_READS[request.param])
    return request.param


@pytest.mark.slow
@pytest.mark.backends("sqlite")
@pytest.mark.store_from(build=_seeded_and_matched)
def test_models_trained_side_by_side_are_the_models_trained_in_turn(engine: Engine,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A small org's two models train at once, the lead model's in a forked process: the stored versions, their
    figures and the scores saved with them are those of training one model after the other (a large org's way).

    On one backend: what it compares is training, which no backend touches (the models and scores are stored
    and read back on both by the incremental tests below); on PostgreSQL too it took 70 s and a store of its own.
    """
    config = ScoringConfig()

    def stored() -> tuple[dict[str, tuple], dict[tuple[str, int], tuple]]:
        with engine.connect() as conn:
            rows = conn.execute(select(PredictiveModel.target, PredictiveModel.version, PredictiveModel.is_active,
                                       PredictiveModel.metrics, PredictiveModel.blob)
                                .order_by(PredictiveModel.version.desc()))
            latest: dict[str, tuple] = {}
            for target, version, active, metrics, blob in rows:
                latest.setdefault(target, (version, active, metrics, blob))
        return latest, _scores(engine)

    with monkeypatch.context() as patched:
        patched.setattr(score_stage, "SIDE_BY_SIDE_PEOPLE", 0)  # in turn
        in_turn = run_score_stage(engine, config, AS_OF, retrain=True)
    models_in_turn, scores_in_turn = stored()
    side_by_side = run_score_stage(engine, config, AS_OF, retrain=True)
    models_side_by_side, scores_side_by_side = stored()

    assert set(models_in_turn) == {"account_won", "lead_converts"}
    assert all(note.startswith("trained version 1") for note in in_turn.models.values()), in_turn.models
    assert all(note.startswith("trained version 2") for note in side_by_side.models.values()), side_by_side.models
    for target, (version, active, metrics, blob) in models_side_by_side.items():
        assert (version, active) == (2, True)
        assert (metrics, blob) == models_in_turn[target][2:], target
    assert scores_side_by_side == scores_in_turn


@pytest.mark.store_from(build=_seeded_matched_and_scored_with_models_trained)
@pytest.mark.parametrize(("share", "touches_read"), [(1.0, "by index"), (1.0, "by scan"), (0.0, None)],
                         ids=["dirty entities read alone by index", "dirty entities read alone by scan",
                              "everyone read"])
def test_the_dirty_entities_score_as_a_full_scoring_would_with_models_trained(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, share: float, touches_read: str | None) -> None:
    """New touches at a few accounts and an account's own record edited: the incremental run reads
    only what they need and saves, for each dirty account and person, what a scoring of everyone at
    the same moment saves (fit, predictive probabilities and grades included). So does an incremental
    run that reads everyone (too many touched) and predicts for the dirty entities only (it reads no
    touches by subset, so it has no second way to read them)."""
    monkeypatch.setattr(score_stage, "SUBSET_MAX_SHARE", share)
    if touches_read is not None:
        monkeypatch.setattr(score_subset, "SCAN_SHARE", TOUCH_READS[touches_read])
    config = ScoringConfig()
    with engine.connect() as conn:
        assert set(conn.execute(select(PredictiveModel.target).where(PredictiveModel.is_active)).scalars()) == {
            "account_won", "lead_converts"}
    since = utcnow()
    with engine.begin() as conn:
        contacts = conn.execute(select(Person.crm_id).where(Person.kind == "contact").order_by(Person.id)
                                .limit(40)).scalars().all()
        leads = conn.execute(select(Person.crm_id).where(Person.kind == "lead").order_by(Person.id)
                             .limit(5)).scalars().all()
        unlabelled = conn.execute(select(Account.crm_id).where(~Account.crm_id.in_(
            select(Opportunity.account_crm_id).where(Opportunity.account_crm_id.is_not(None)))).order_by(Account.id).limit(1)).scalar_one()
        conn.execute(update(Account).where(Account.crm_id == unlabelled).values(industry="Retail",
                                                                                changed_at=utcnow()))
    later = AS_OF + timedelta(days=1)
    for n, person in enumerate([*contacts[::10], *leads]):
        _touch_hubspot(engine, f"NEW{n}", "meeting_completed" if n % 2 else "pricing_page_visit", person,
                       later - timedelta(hours=n + 1))
    with engine.connect() as conn:  # the dirty set as the load-everything path defines it
        everyone = load_score_inputs(conn, config)
        scope = dirty_scope(touched_since(conn, since), {}, everyone.account_ids, everyone.person_ids,
                            everyone.population.person_account, everyone.activities)
    dirty = ({("account", i) for i in everyone.account_ids[scope.accounts].tolist()}
             | {("person", i) for i in everyone.person_ids[scope.people].tolist()})

    outcome = run_score_stage(engine, config, later, incremental=Incremental(since))
    assert (outcome.dirty_accounts, outcome.dirty_people) == (int(scope.accounts.sum()), int(scope.people.sum()))
    if share:
        assert outcome.loaded == "dirty entities"
        assert outcome.accounts < everyone.population.n_accounts and outcome.people < everyone.population.n_people
        assert outcome.activities < len(everyone.activities)
    else:
        assert outcome.loaded.startswith("everyone") and outcome.accounts == everyone.population.n_accounts
    incremental = _scores(engine)
    assert any(incremental[k][COMPARED.index("predictive")] is not None for k in dirty if k[0] == "person")

    full = run_score_stage(engine, config, later)  # the same moment, everyone, the same models
    changed = {("account", i) for i in full.saved.changed_account_ids} | {
        ("person", i) for i in full.saved.changed_person_ids}
    assert changed, "decay moved the untouched entities: the full scoring saved them"
    assert not changed & dirty, sorted(changed & dirty)[:5]
    assert {k: incremental[k] for k in dirty} == {k: _scores(engine)[k] for k in dirty}


@pytest.mark.usefixtures("touch_reads")
def test_an_incremental_run_reads_only_the_touched_accounts_touches(engine: Engine) -> None:
    ids = _seed(engine)
    _touch(engine, "00T000000000009AAA", "meeting_completed", None, QUIET, NOW - timedelta(days=4))
    run_match_stage(engine, MatchingConfig())
    everyone = run_score_stage(engine, NO_MODELS, NOW)
    assert (everyone.accounts, everyone.activities) == (2, 4)
    since = utcnow()
    _touch(engine, "00T000000000010AAA", "call_connected", VP, None, NOW + timedelta(days=1))

    later = NOW + timedelta(days=3)
    outcome = run_score_stage(engine, NO_MODELS, later, incremental=Incremental(since))
    assert outcome.loaded == "dirty entities"
    # Acme and its two people (one per CRM) and their four touches; nothing of Quiet Ltd's.
    assert (outcome.accounts, outcome.people, outcome.activities) == (1, 2, 4)
    assert (outcome.dirty_accounts, outcome.dirty_people) == (1, 1)
    with engine.connect() as conn:
        scored_at = dict(conn.execute(select(Score.entity_id, Score.scored_at)
                                      .where(Score.entity_kind == "account")).all())
    assert scored_at[ids[ACME]] == later and scored_at[ids[QUIET]] == NOW


def test_grades_of_dirty_entities_use_the_stored_percentile_cutoffs(engine: Engine) -> None:
    """Ranking one rescored account among the few loaded would give it any grade; it is graded
    against the grade scores at which the last ranking of everyone drew the lines."""
    config = NO_MODELS.model_copy(update={"grade": GradeConfig(mode="percentiles", use_predictive=False)})
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    run_score_stage(engine, config, NOW)
    with engine.begin() as conn:
        state = conn.execute(select(ScoreState.state).where(ScoreState.name == POPULATION)).scalar_one()
        assert state["account_cutoffs"] is not None and state["person_cutoffs"] is not None
        # Lines below every score: whatever the loaded subset, the rescored rows are grade 4.
        conn.execute(update(ScoreState).values(state={**state, "account_cutoffs": [0.0, 0.0, 0.0],
                                                      "person_cutoffs": [0.0, 0.0, 0.0]}))
    since = utcnow()
    _touch(engine, "00T000000000010AAA", "call_connected", VP, None, NOW + timedelta(days=1))
    outcome = run_score_stage(engine, config, NOW + timedelta(days=1), incremental=Incremental(since))
    assert outcome.loaded == "dirty entities"
    with engine.connect() as conn:
        grades = dict(conn.execute(select(Score.entity_id, Score.grade).where(Score.entity_kind == "account")).all())
        vp = conn.execute(select(Score.grade).join(Person, Person.id == Score.entity_id)
                          .where(Score.entity_kind == "person", Person.crm_id == VP)).scalar_one()
    assert grades[ids[ACME]] == 4 and vp == 4
    assert grades[ids[QUIET]] != 4  # not rescored: the full run's ranking of two accounts


def test_without_stored_state_the_stage_reads_everyone_and_stores_the_state(engine: Engine) -> None:
    _seed(engine)
    run_match_stage(engine, MatchingConfig())
    run_score_stage(engine, NO_MODELS, NOW)
    with engine.begin() as conn:
        conn.execute(delete(ScoreState))
    since = utcnow()
    _touch(engine, "00T000000000010AAA", "call_connected", VP, None, NOW + timedelta(days=1))
    fallback = run_score_stage(engine, NO_MODELS, NOW + timedelta(days=1), incremental=Incremental(since))
    assert fallback.loaded == "everyone" and fallback.accounts == 2 and fallback.dirty_accounts == 1
    with engine.connect() as conn:
        assert conn.execute(select(ScoreState.name)).scalars().all() == [POPULATION]
    # Other settings than the stored state's: it is not used either.
    other = NO_MODELS.fit.model_copy(update={"smoothing": 3.0})
    since = utcnow()
    _touch(engine, "00T000000000011AAA", "call_connected", VP, None, NOW + timedelta(days=2))
    again = run_score_stage(engine, NO_MODELS.model_copy(update={"fit": other}), NOW + timedelta(days=2),
                            incremental=Incremental(since))
    assert again.loaded == "everyone"
    since = utcnow()
    _touch(engine, "00T000000000012AAA", "call_connected", VP, None, NOW + timedelta(days=3))
    scoped = run_score_stage(engine, NO_MODELS.model_copy(update={"fit": other}), NOW + timedelta(days=3),
                             incremental=Incremental(since))
    assert scoped.loaded == "dirty entities"


def test_when_many_are_touched_the_stage_reads_everyone(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a large share of the org entity by entity costs more time and memory than reading everyone."""
    _seed(engine)
    run_match_stage(engine, MatchingConfig())
    run_score_stage(engine, NO_MODELS, NOW)
    monkeypatch.setattr(score_stage, "SUBSET_MAX_SHARE", 0.4)  # one account of the two is touched: half of them
    since = utcnow()
    _touch(engine, "00T000000000010AAA", "call_connected", VP, None, NOW + timedelta(days=1))
    outcome = run_score_stage(engine, NO_MODELS, NOW + timedelta(days=1), incremental=Incremental(since))
    assert outcome.loaded.startswith("everyone") and outcome.accounts == 2 and outcome.dirty_accounts == 1
    monkeypatch.setattr(score_stage, "SUBSET_MAX_SHARE", 0.6)
    since = utcnow()
    _touch(engine, "00T000000000011AAA", "call_connected", VP, None, NOW + timedelta(days=2))
    assert run_score_stage(engine, NO_MODELS, NOW + timedelta(days=2),
                           incremental=Incremental(since)).loaded == "dirty entities"


def test_the_people_counted_live_leave_the_deleted_ones_out(engine: Engine) -> None:
    _seed(engine)
    with engine.connect() as conn:
        assert score_subset.live_people(conn) == 2
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.crm_id == "51").values(is_deleted=True))
    with engine.connect() as conn:
        assert score_subset.live_people(conn) == 1
