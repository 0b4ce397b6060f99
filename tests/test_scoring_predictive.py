"""Predictive score: leakage-free features, time-based training, calibration, versioned blobs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from config.scoring import ScoringConfig
from scoring.catalogue import DAY, TYPE_CODE
from scoring.columns import ActivityColumns
from scoring.features import (
    ACCOUNT_FEATURES,
    LEAD_FEATURES,
    account_features,
    existing_at,
    lead_features,
    population_as_of,
    reusable,
    scores_as_of,
    with_predictions,
)
from scoring.inputs import ScoringInputs, build_inputs
from scoring.outcomes import NEVER, OpportunityColumns
from scoring.predictive import (
    ACCOUNT_WON,
    LEAD_CONVERTS,
    ModelLoadError,
    NotTrained,
    TrainedModel,
    load,
    person_probabilities,
    predict,
    snapshot_times,
    train,
)
from scoring.rules import grades
from scoring.scores import score
from store.records import AccountRecord, ActivityRecord, OpportunityRecord, PersonRecord

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
TITLES = ["VP Finance", "IT Manager", "Analyst", "CFO", "Software Engineer", None]
MARKETING = ["email_open", "web_visit", "webinar_attended", "content_download", "pricing_page_visit", "demo_request"]
SALES = ["call_connected", "meeting_completed", "demo", "proposal"]


def synthetic_history(seed: int = 1, n_accounts: int = 300, days: int = 600) -> tuple[list, list, list, list]:
    """A small org where deals follow engagement: buying intent shows up as a burst of marketing
    touches weeks before a deal opens, then sales touches while it is open; better-fitting
    industries buy more. Leads convert after bursts of their own. Records, oldest first."""
    rng = np.random.default_rng(seed)
    start = AS_OF - timedelta(days=days)
    accounts, people, acts, opps = [], [], [], []
    pid = 0

    def touch(kind: str, when: datetime, person: PersonRecord) -> None:
        if when < AS_OF:
            n = len(acts)
            acts.append(ActivityRecord(id=n, crm="salesforce", crm_id=f"T{n}", activity_type=kind, occurred_at=when,
                                       person_crm_id=person.crm_id))

    for a in range(n_accounts):
        quality = rng.normal()
        industry = "Manufacturing" if quality + rng.normal(0, 0.7) > 0.3 else rng.choice(["Retail", "Media"])
        created = start - timedelta(days=int(rng.integers(0, 300)))
        accounts.append(AccountRecord(id=a, crm="salesforce", crm_id=f"A{a}", name=f"Company {a}", industry=industry,
                                      employees=int(rng.integers(20, 3000)), created_at=created))
        staff = []
        for _ in range(int(rng.integers(2, 6))):
            staff.append(PersonRecord(id=pid, crm="salesforce", crm_id=f"C{pid}", kind="contact",
                                      title=TITLES[int(rng.integers(0, len(TITLES)))], account_crm_id=f"A{a}",
                                      created_at=created))
            pid += 1
        people.extend(staff)
        # Background noise: a touch every few weeks from anyone.
        for _ in range(int(rng.poisson(days / 40))):
            touch(str(rng.choice(MARKETING[:3])), start + timedelta(days=float(rng.uniform(0, days))),
                  staff[int(rng.integers(0, len(staff)))])
        # Buying cycles: intent burst, then a deal.
        day = float(rng.uniform(0, 120))
        while day < days:
            day += float(rng.exponential(200 / np.exp(0.8 * quality)))
            if day >= days:
                break
            intent = start + timedelta(days=day)
            for person in staff[: int(rng.integers(1, len(staff) + 1))]:
                for _ in range(int(rng.integers(2, 7))):
                    touch(str(rng.choice(MARKETING)), intent + timedelta(days=float(rng.uniform(0, 21))), person)
            opened = intent + timedelta(days=float(rng.uniform(14, 35)))
            closed = opened + timedelta(days=float(rng.uniform(20, 70)))
            won = rng.random() < 1 / (1 + np.exp(-(quality + 0.3)))
            for _ in range(int(rng.integers(2, 6))):
                touch(str(rng.choice(SALES)), opened + (closed - opened) * float(rng.random()), staff[0])
            if opened < AS_OF:
                is_closed = closed < AS_OF
                opps.append(OpportunityRecord(
                    id=len(opps), crm="salesforce", crm_id=f"O{len(opps)}", account_crm_id=f"A{a}",
                    is_closed=is_closed, is_won=bool(won and is_closed), amount=float(rng.integers(5, 100)) * 1000,
                    created_at=opened, closed_at=closed if is_closed else None,
                ))
            day = (closed - start).total_seconds() / 86400
    # Leads: unmatched until they convert; converting follows their own burst.
    for _ in range(n_accounts * 2):
        created = start + timedelta(days=float(rng.uniform(0, days - 30)))
        hot = rng.random() < 0.3
        lead = PersonRecord(id=pid, crm="salesforce", crm_id=f"L{pid}", kind="lead",
                            title=TITLES[int(rng.integers(0, len(TITLES)))], created_at=created)
        burst = created + timedelta(days=float(rng.uniform(5, 200)))
        for _ in range(int(rng.integers(3, 9)) if hot else int(rng.integers(0, 2))):
            touch(str(rng.choice(MARKETING)), burst + timedelta(days=float(rng.uniform(0, 14))), lead)
        converted = burst + timedelta(days=float(rng.uniform(10, 40)))
        if hot and rng.random() < 0.7 and converted < AS_OF:
            target = accounts[int(rng.integers(0, n_accounts))]
            lead = replace(lead, is_converted=True, converted_at=converted, converted_account_crm_id=target.crm_id)
        people.append(lead)
        pid += 1
    return accounts, people, acts, opps


@pytest.fixture(scope="module")
def history() -> ScoringInputs:
    accounts, people, acts, opps = synthetic_history()
    return build_inputs(accounts, people, acts, opps, ScoringConfig())


def ts(when: datetime) -> int:
    return int(when.timestamp())


# ---------------------------------------------------------------- no leakage


def test_features_ignore_everything_after_the_snapshot(history: ScoringInputs) -> None:
    """Adding touches, deals and conversions after ``t`` changes no feature of a row dated ``t``."""
    config = ScoringConfig()
    t = ts(AS_OF) - 200 * DAY
    later = t + 1
    n_acc, n_people = history.population.n_accounts, history.population.n_people
    rng = np.random.default_rng(5)
    future_acts = ActivityColumns(
        rng.integers(0, n_people, 2000).astype(np.int32), np.full(2000, -1, np.int32),
        rng.integers(0, 28, 2000).astype(np.int8), rng.integers(later, ts(AS_OF), 2000).astype(np.int64),
    )
    o = history.opportunities
    future_opps = OpportunityColumns(
        np.concatenate([o.account, rng.integers(0, n_acc, 100)]),
        np.concatenate([o.created, np.full(100, later)]),
        np.concatenate([o.closed, np.full(100, later + DAY)]),
        np.concatenate([o.won, np.ones(100, bool)]),
        np.concatenate([o.amount, np.ones(100)]),
    )
    people = history.people
    converts_later = people.is_lead & (people.converted == NEVER)
    future_people = replace(
        people,
        converted=np.where(converts_later, later + DAY, people.converted),
        linked_by_conversion=people.linked_by_conversion | converts_later,
    )
    future_roll_up = np.where(converts_later, 0, history.population.person_account).astype(np.int32)
    future = replace(
        history,
        activities=ActivityColumns.concat([history.activities, future_acts]),
        opportunities=future_opps,
        people=future_people,
        population=replace(history.population, person_account=future_roll_up),
    )
    for build in (account_features, lead_features):
        before, after = build(history, config, t), build(future, config, t)
        np.testing.assert_array_equal(before.rows, after.rows)
        np.testing.assert_allclose(before.X, after.X, equal_nan=True)
    # ...while the same additions do show up once they are in the past.
    assert not np.allclose(account_features(history, config, ts(AS_OF)).X,
                           account_features(future, config, ts(AS_OF)).X, equal_nan=True)


def test_a_lead_converted_later_does_not_roll_up_before_it_converted(history: ScoringInputs) -> None:
    people = history.people
    converted = np.flatnonzero(people.linked_by_conversion)
    assert len(converted) > 10
    i = int(converted[0])
    before = lead_features(history, ScoringConfig(), int(people.converted[i]) - DAY)
    assert i in before.rows  # still an open lead then
    row = before.X[np.searchsorted(before.rows, i)]
    assert row[LEAD_FEATURES.index("has_account")] == 0.0
    after = lead_features(history, ScoringConfig(), int(people.converted[i]) + DAY)
    assert i not in after.rows  # converted: no longer a lead to predict


def test_deal_history_features_hand_checked() -> None:
    accounts = [AccountRecord(id=0, crm="salesforce", crm_id="A0", created_at=AS_OF - timedelta(days=100))]
    opps = [
        OpportunityRecord(id=0, crm="salesforce", crm_id="O0", account_crm_id="A0", is_closed=True, is_won=True,
                          created_at=AS_OF - timedelta(days=60), closed_at=AS_OF - timedelta(days=30)),
        OpportunityRecord(id=1, crm="salesforce", crm_id="O1", account_crm_id="A0", is_closed=True, is_won=False,
                          created_at=AS_OF - timedelta(days=20), closed_at=AS_OF + timedelta(days=5)),
    ]
    inputs = build_inputs(accounts, [], [], opps, ScoringConfig())
    frame = account_features(inputs, ScoringConfig(), ts(AS_OF))
    row = dict(zip(ACCOUNT_FEATURES, frame.X[0], strict=True))
    assert (row["open_deals"], row["won_deals"], row["lost_deals"]) == (1.0, 1.0, 0.0)  # the loss is in the future
    assert row["days_since_deal_created"] == pytest.approx(20)
    assert row["days_since_won"] == pytest.approx(30)
    assert row["account_age_days"] == pytest.approx(100)
    # An account created after the snapshot has no row.
    assert len(account_features(inputs, ScoringConfig(), ts(AS_OF) - 101 * DAY).rows) == 0


# ---------------------------------------------------------------- training


def test_snapshots_end_a_horizon_before_as_of(history: ScoringInputs) -> None:
    pc = ScoringConfig().predictive  # 90-day horizon, every 30 days, 12 snapshots
    times = snapshot_times(history, pc, ts(AS_OF))
    assert times == sorted(times) and len(times) == 12
    assert times[-1] == ts(AS_OF) - 90 * DAY
    assert np.all(np.diff(times) == 30 * DAY)


def test_account_model_trains_on_time_split_and_beats_chance(history: ScoringInputs) -> None:
    config = ScoringConfig()
    result = train(history, config, ts(AS_OF))
    assert isinstance(result, TrainedModel), result
    assert result.target == ACCOUNT_WON
    m = result.metrics
    assert m["holdout"]["auc"] > 0.7, m
    # Time-based: every training snapshot's horizon ends before the first held-out snapshot.
    horizon = config.predictive.horizon_days * DAY
    assert max(result.params["train_snapshots"]) + horizon <= min(result.params["holdout_snapshots"])
    # Calibrated: the mean probability on the holdout is near the observed rate.
    assert m["holdout"]["mean_probability"] == pytest.approx(m["holdout"]["base_rate"], abs=0.1)
    assert m["holdout_positives"] >= config.predictive.min_holdout_positives


def test_blob_round_trip_predicts_the_same(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic"}})
    result = train(history, config, ts(AS_OF))
    assert isinstance(result, TrainedModel), result
    model = load(result.blob)
    again = load(result.blob)
    p = predict(model, history, config, ts(AS_OF))
    assert p.shape == (history.population.n_accounts,)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_array_equal(p, predict(again, history, config, ts(AS_OF)))
    assert result.params["features"] == list(ACCOUNT_FEATURES)


def test_lead_model_predicts_open_leads_only(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate({"predictive": {"min_positive_labels": 10, "min_holdout_positives": 3}})
    result = train(history, config, ts(AS_OF), target=LEAD_CONVERTS)
    assert isinstance(result, TrainedModel), result
    assert result.metrics["holdout"]["auc"] > 0.7, result.metrics
    p = predict(load(result.blob), history, config, ts(AS_OF))
    open_leads = history.people.is_lead & (history.people.converted == NEVER)
    assert np.isfinite(p[open_leads]).all()
    assert np.isnan(p[~history.people.is_lead]).all()


def test_thin_history_is_reported_not_modelled(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate({"predictive": {"min_positive_labels": 100_000}})
    result = train(history, config, ts(AS_OF))
    assert isinstance(result, NotTrained)
    assert "positive training labels (min_positive_labels: 100000)" in result.reason
    assert result.metrics["train_positives"] > 0
    early = train(history, ScoringConfig(), ts(AS_OF - timedelta(days=480)))
    assert isinstance(early, NotTrained) and "history too short" in early.reason
    off = train(history, ScoringConfig.model_validate({"predictive": {"enabled": False}}), ts(AS_OF))
    assert isinstance(off, NotTrained) and "disabled" in off.reason


def test_load_refuses_garbage_and_other_features(history: ScoringInputs) -> None:
    with pytest.raises(ModelLoadError, match="cannot be read"):
        load(b"not a model")
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump({"format": 1, "target": ACCOUNT_WON, "features": ["x"], "estimator": None,
                 "sklearn_version": "0", "horizon_days": 90}, buffer)
    with pytest.raises(ModelLoadError, match="other features"):
        load(buffer.getvalue())


# ---------------------------------------------------------------- using the probabilities


def test_grade_falls_back_to_rules_where_there_is_no_probability() -> None:
    cfg = ScoringConfig().grade  # predictive thresholds 30 / 15 / 5 percent; rules 65 / 40 / 20
    p = np.array([0.5, np.nan, 0.01, np.nan])
    fit = np.array([0.0, 100.0, 100.0, 0.0])
    eng = np.array([0.0, 100.0, 100.0, 0.0])
    assert grades(fit, eng, cfg, p).tolist() == [4, 4, 1, 1]


def test_person_probabilities_prefer_the_lead_model() -> None:
    lead = np.array([np.nan, 0.2, np.nan, np.nan])
    account = np.array([0.7, 0.1])
    out = person_probabilities(lead, account, np.array([0, 1, 1, -1]))
    np.testing.assert_allclose(out, [0.7, 0.2, 0.1, np.nan])
    assert person_probabilities(None, None, np.array([0])) is None


def test_type_codes_are_stable_feature_columns() -> None:
    assert ACCOUNT_FEATURES.index("points_demo") == TYPE_CODE["demo"]


def test_sampling_keeps_positives_and_weights_the_rest_back() -> None:
    from scoring.predictive import _sample

    y = np.zeros(100, dtype=np.int8)
    y[::10] = 1  # 10 positives, 90 negatives
    index, weight = _sample(y, 30, seed=0)
    assert len(index) == 30 and np.all(np.diff(index) > 0)
    assert y[index].sum() == 10 and np.all(weight[y[index] == 1] == 1.0)
    assert np.allclose(weight[y[index] == 0], 90 / 20)
    assert weight.sum() == pytest.approx(100)
    everything, ones = _sample(y, 100, seed=0)
    assert everything.tolist() == list(range(100)) and np.all(ones == 1)


def test_a_big_history_trains_on_a_weighted_sample(history: ScoringInputs) -> None:
    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic", "max_training_rows": 1000}})
    result = train(history, config, ts(AS_OF))
    assert isinstance(result, TrainedModel), result
    m = result.metrics
    assert m["train_rows"] > 1000  # counted before sampling
    assert m["holdout"]["rows"] == m["holdout_rows"]  # weights add back up to every held-out row
    assert m["holdout"]["auc"] > 0.7
    assert m["holdout"]["mean_probability"] == pytest.approx(m["holdout"]["base_rate"], abs=0.1)


def test_snapshots_keep_a_weighted_sample_not_every_row(history: ScoringInputs) -> None:
    """Memory is bounded by the training limit: each snapshot keeps at most its share of it,
    and its weights still add up to every row it had."""
    from scoring.predictive import HoldoutEvaluation, evaluate_holdout

    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic", "max_training_rows": 1000}})
    evaluation = evaluate_holdout(history, config, ts(AS_OF))
    assert isinstance(evaluation, HoldoutEvaluation), evaluation
    share = -(-1000 // evaluation.metrics["train_snapshots"])
    assert any(len(s.labels) > share for s in evaluation.snapshots)  # sampling did happen
    for snapshot in evaluation.snapshots:
        assert len(snapshot.y) == len(snapshot.X) <= share
        assert snapshot.weight.sum() == pytest.approx(len(snapshot.labels))
        assert snapshot.y.sum() == min(int(snapshot.labels.sum()), share // 2)


# ---------------------------------------------------------------- the score stage's single rules pass


def assert_same_scores(a: object, b: object) -> None:
    """Every field of two ScoreSets (their aggregates and fit too) exactly equal."""
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if hasattr(x, "__dataclass_fields__"):
            assert_same_scores(x, y)
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


@pytest.mark.parametrize("days_before", [0, 300])
def test_predictions_from_one_rules_pass_score_as_a_scoring_with_them(history: ScoringInputs,
                                                                       days_before: int) -> None:
    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic", "min_positive_labels": 10,
                                                          "min_holdout_positives": 3}})
    as_of = ts(AS_OF) - days_before * DAY
    # 300 days back, people created since do not roll up yet: the aggregates are not reusable.
    assert (population_as_of(history, as_of) is history.population) == (days_before == 0)
    assert (reusable(history, scores_as_of(history, config, as_of)) is not None) == (days_before == 0)
    account_model = train(history, config, ts(AS_OF))
    lead_model = train(history, config, ts(AS_OF), target=LEAD_CONVERTS)
    assert isinstance(account_model, TrainedModel) and isinstance(lead_model, TrainedModel)
    rules = scores_as_of(history, config, as_of)
    account_p = predict(load(account_model.blob), history, config, as_of, scores=rules)
    lead_p = predict(load(lead_model.blob), history, config, as_of, scores=rules)
    np.testing.assert_array_equal(account_p, predict(load(account_model.blob), history, config, as_of))
    np.testing.assert_array_equal(lead_p, predict(load(lead_model.blob), history, config, as_of))
    person_p = person_probabilities(lead_p, account_p, history.population.person_account)
    got = with_predictions(history, config, rules, predictive=account_p, person_predictive=person_p)
    expected = score(history.activities, history.population, history.opportunities, config, as_of,
                     predictive=account_p, person_predictive=person_p)
    assert_same_scores(got, expected)
    assert np.isfinite(got.predictive).any() and not np.array_equal(got.grade, rules.grade)


def test_people_dated_after_the_scoring_moment_exist_at_it(history: ScoringInputs) -> None:
    """A creation or conversion time ahead of the stage's clock counts as the moment itself: the
    roll-up at that moment stays the population's own (one pass over the touches serves the
    predictions and the final scores), and every earlier date sees what it saw before."""
    config = ScoringConfig.model_validate({"predictive": {"algorithm": "logistic", "min_positive_labels": 10,
                                                          "min_holdout_positives": 3}})
    as_of = ts(AS_OF)
    people = history.people
    rolled_up = np.flatnonzero(history.population.person_account >= 0)
    ahead, lead = int(rolled_up[0]), int(np.flatnonzero(people.is_lead & (people.converted != NEVER))[0])
    skewed = replace(history, people=replace(
        people, created=np.where(np.arange(len(people.created)) == ahead, as_of + 3600, people.created),
        converted=np.where(np.arange(len(people.created)) == lead, as_of + 60, people.converted),
        linked_by_conversion=people.linked_by_conversion | (np.arange(len(people.created)) == lead)))
    assert reusable(skewed, scores_as_of(skewed, config, as_of)) is None  # without: a second pass

    existing = existing_at(skewed, as_of)
    assert existing.people.created[ahead] == as_of and existing.people.converted[lead] == as_of - 1
    assert population_as_of(existing, as_of) is existing.population
    rules = scores_as_of(existing, config, as_of)
    assert reusable(existing, rules) is rules
    got = with_predictions(existing, config, rules, predictive=None, person_predictive=None)
    assert_same_scores(got, score(existing.activities, existing.population, existing.opportunities, config, as_of))
    for earlier in (as_of - 1, as_of - 30 * DAY):
        np.testing.assert_array_equal(population_as_of(existing, earlier).person_account,
                                      population_as_of(skewed, earlier).person_account)
        np.testing.assert_array_equal(account_features(existing, config, earlier).X,
                                      account_features(skewed, config, earlier).X)
        np.testing.assert_array_equal(lead_features(existing, config, earlier).X,
                                      lead_features(skewed, config, earlier).X)
    assert existing_at(history, as_of) is history  # nothing ahead: the inputs as they are
