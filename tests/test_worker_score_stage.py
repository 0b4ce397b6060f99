"""The score stage on a real store: roll-up through matches and cross-CRM links, models kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from config.matching import MatchingConfig
from config.scoring import ScoringConfig
from scoring.predictive import TrainedModel
from store.schema import Account, Activity, Person, Score
from store.types import utcnow
from store.upsert import upsert
from worker.match_stage import run_match_stage
from worker.models import activate_version, list_versions, save_model
from worker.score_stage import Incremental, run_score_stage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACME = "001000000000001AAA"
QUIET = "001000000000002AAA"
VP = "003000000000001AAA"


def _seed(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [
            {"crm": "salesforce", "object": "Account", "crm_id": ACME, "name": "Acme Corporation",
             "domain": "acme.com", "website": "acme.com", "country": "US", "industry": "Software", "employees": 300},
            {"crm": "salesforce", "object": "Account", "crm_id": "001000000000002AAA", "name": "Quiet Ltd",
             "domain": "quiet.co.uk", "website": "quiet.co.uk", "country": "GB", "industry": None, "employees": None},
            {"crm": "hubspot", "object": "companies", "crm_id": "901", "name": "Acme Corp", "domain": "acme.com",
             "website": "acme.com", "country": "US", "industry": None, "employees": None}])
        conn.execute(Account.__table__.update().where(Account.crm_id == "901").values(linked_salesforce_id=ACME))
        upsert(conn, Person.__table__, [
            {"crm": "salesforce", "object": "Contact", "crm_id": "003000000000001AAA", "kind": "contact",
             "email": "vp@acme.com", "title": "VP Sales", "account_crm_id": ACME},
            {"crm": "hubspot", "object": "contacts", "crm_id": "51", "kind": "contact", "email": "cmo@acme.com",
             "title": "CMO", "account_crm_id": "901"}])
        touches = [("salesforce", "Task", "00T000000000001AAA", "meeting_completed", "003000000000001AAA", None, 2),
                   ("hubspot", "emails", "e1", "email_click", "51", None, 1),
                   ("hubspot", "meetings", "m1", "meeting_completed", None, "901", 3)]
        upsert(conn, Activity.__table__, [
            {"crm": crm, "object": obj, "crm_id": cid, "activity_type": kind, "person_crm_id": person,
             "account_crm_id": account, "occurred_at": NOW - timedelta(days=days)}
            for crm, obj, cid, kind, person, account, days in touches])
        return dict(conn.execute(select(Account.crm_id, Account.id)).all())


def test_both_crms_touches_count_for_the_salesforce_account(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    outcome = run_score_stage(engine, ScoringConfig(), NOW)
    assert outcome.accounts == 2 and outcome.people == 2 and outcome.activities == 3
    assert outcome.skipped_activities == 0
    # Three touches and no deals: no model, and the run record says why.
    assert outcome.models["account_won"] and not outcome.models["account_won"].startswith("trained")
    with engine.connect() as conn:
        query = select(Score.entity_id, Score.breakdown).where(Score.entity_kind == "account")
        scored = dict(conn.execute(query).all())
    assert ids["901"] not in scored  # the linked HubSpot company is not scored on its own
    parts = scored[ids[ACME]]["engagement"]["raw_parts"]
    assert {"meeting_completed", "email_click"} <= set(parts)  # Salesforce and HubSpot touches together
    assert scored[ids["001000000000002AAA"]]["engagement"]["raw_points"] == 0

    again = run_score_stage(engine, ScoringConfig(), NOW)
    assert again.saved.accounts_changed == 0 and again.saved.people_changed == 0


def test_model_versions_are_kept_and_an_older_one_can_be_restored(engine: Engine) -> None:
    with engine.begin() as conn:
        first = save_model(conn, TrainedModel("account_won", b"v1", {"auc": 0.81}, {}))
        second = save_model(conn, TrainedModel("account_won", b"v2", {"auc": 0.74}, {}))
        assert (first, second) == (1, 2)
        assert [(v.version, v.is_active) for v in list_versions(conn, "account_won")] == [(2, True), (1, False)]
        activate_version(conn, "account_won", 1)
        assert [(v.version, v.is_active) for v in list_versions(conn, "account_won")] == [(2, False), (1, True)]
        with pytest.raises(LookupError, match="stored versions: \\[2, 1\\]"):
            activate_version(conn, "account_won", 7)


def _touch(engine: Engine, crm_id: str, kind: str, person: str | None, account: str | None, when: datetime) -> None:
    with engine.begin() as conn:
        upsert(conn, Activity.__table__, [{"crm": "salesforce", "object": "Task", "crm_id": crm_id,
                                           "activity_type": kind, "person_crm_id": person,
                                           "account_crm_id": account, "occurred_at": when}])


def _scored_at(engine: Engine) -> dict[tuple[str, int], datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(Score.entity_kind, Score.entity_id, Score.scored_at))
        return {(kind, entity): when for kind, entity, when in rows}  # UTCDateTime: aware, in UTC


def _people(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Person.crm_id, Person.id)).all())


def test_an_incremental_run_saves_only_what_new_data_touched(engine: Engine) -> None:
    ids = _seed(engine)
    _touch(engine, "00T000000000009AAA", "meeting_completed", None, QUIET, NOW - timedelta(days=4))
    run_match_stage(engine, MatchingConfig())
    run_score_stage(engine, ScoringConfig(), NOW)
    people = _people(engine)
    since = utcnow()
    _touch(engine, "00T000000000010AAA", "call_connected", VP, None, NOW + timedelta(days=1))

    later = NOW + timedelta(days=3)
    outcome = run_score_stage(engine, ScoringConfig(), later, incremental=Incremental(since))
    assert (outcome.dirty_accounts, outcome.dirty_people) == (1, 1)
    scored = _scored_at(engine)
    assert scored["account", ids[ACME]] == later  # the new call's account (its person's match)
    assert scored["person", people[VP]] == later  # and the person who made it
    assert scored["account", ids[QUIET]] == NOW  # untouched: decay waits for the full run
    assert scored["person", people["51"]] == NOW  # Acme's other person: nothing of theirs changed

    # Decay alone would have changed Quiet Ltd's row: a full run at the same moment re-saves it.
    run_score_stage(engine, ScoringConfig(), later)
    assert _scored_at(engine)["account", ids[QUIET]] == later


def test_an_incremental_run_rescores_both_accounts_of_a_person_whose_match_moved(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    run_score_stage(engine, ScoringConfig(), NOW)
    people = _people(engine)
    since = utcnow()
    with engine.begin() as conn:  # the VP moves to Quiet Ltd in the CRM
        upsert(conn, Person.__table__, [{"crm": "salesforce", "object": "Contact", "crm_id": VP, "kind": "contact",
                                         "email": "vp@quiet.co.uk", "title": "VP Sales", "account_crm_id": QUIET}])
    moved = run_match_stage(engine, MatchingConfig(), incremental=True, only_people=[people[VP]])
    assert moved.changed_people == {people[VP]} and moved.left_accounts == {ids[ACME]}

    later = NOW + timedelta(hours=1)
    run_score_stage(engine, ScoringConfig(), later,
                    incremental=Incremental(since, extra_accounts=frozenset(moved.left_accounts)))
    scored = _scored_at(engine)
    assert scored["account", ids[QUIET]] == later and scored["account", ids[ACME]] == later
    assert scored["person", people[VP]] == later and scored["person", people["51"]] == NOW


def test_the_accounts_the_match_stage_read_serve_the_score_stage(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's match stage hands its read of the live accounts to the score stage, which then scores
    what it would have read itself, without reading them again."""
    _seed(engine)
    matched = run_match_stage(engine, MatchingConfig())
    assert matched.accounts is not None and sorted(a.crm_id for a in matched.accounts) == [ACME, QUIET, "901"]
    read_itself = run_score_stage(engine, ScoringConfig(), NOW)
    with engine.connect() as conn:
        expected = conn.execute(select(Score.entity_kind, Score.entity_id, Score.engagement, Score.grade,
                                       Score.reasons_text).order_by(Score.entity_kind, Score.entity_id)).all()
        conn.execute(Score.__table__.delete())
        conn.commit()
    from worker import score_inputs

    reads: list[int] = []
    load_accounts = score_inputs.load_accounts
    monkeypatch.setattr(score_inputs, "load_accounts", lambda conn: reads.append(1) or load_accounts(conn))
    handed = run_score_stage(engine, ScoringConfig(), NOW, accounts=matched.accounts)
    assert reads == []
    assert (handed.accounts, handed.people, handed.activities) == (read_itself.accounts, read_itself.people,
                                                                   read_itself.activities)
    with engine.connect() as conn:
        assert conn.execute(select(Score.entity_kind, Score.entity_id, Score.engagement, Score.grade,
                                   Score.reasons_text).order_by(Score.entity_kind, Score.entity_id)).all() == expected
    assert expected
    run_score_stage(engine, ScoringConfig(), NOW)
    assert reads == [1]  # not handed any: read here


def test_a_runs_match_stage_leaves_its_accounts_to_its_score_stage(engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from config import AbmConfig
    from worker import score_inputs, stages
    from worker.pipeline import RunContext
    from worker.triggers import RunOptions

    _seed(engine)
    ctx = RunContext(engine, AbmConfig(), 1, RunOptions(full=True), threading.Event())
    stages.match_stage(ctx)
    assert sorted(a.crm_id for a in ctx.shared["live_accounts"]) == [ACME, QUIET, "901"]
    reads: list[int] = []
    load_accounts = score_inputs.load_accounts
    monkeypatch.setattr(score_inputs, "load_accounts", lambda conn: reads.append(1) or load_accounts(conn))
    report = stages.score_stage(ctx)
    assert report.counts["scored"] == 4 and reads == [] and "live_accounts" not in ctx.shared
