"""The match stage keeps each account's features and reads back only those still valid."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select, update

from config.matching import MatchingConfig
from store.schema import Account, MatchFeatures
from tests.test_worker_match_stage import SF_ACME, SF_GLOBEX, _matches, _seed
from worker.match_stage import run_match_stage


def _kept(engine: Engine) -> dict[int, tuple[str, str]]:
    with engine.connect() as conn:
        return {r.account_id: (r.digest, r.features) for r in
                conn.execute(select(MatchFeatures.account_id, MatchFeatures.digest, MatchFeatures.features))}


def test_features_are_kept_and_read_again_only_for_changed_accounts(engine: Engine) -> None:
    ids = _seed(engine)
    first = run_match_stage(engine, MatchingConfig())
    assert first.features_read == 3 and set(_kept(engine)) == {ids[SF_ACME], ids[SF_GLOBEX], ids["901"]}
    matched, kept = _matches(engine), _kept(engine)

    again = run_match_stage(engine, MatchingConfig())
    assert again.features_read == 0 and _kept(engine) == kept and _matches(engine) == matched

    with engine.begin() as conn:
        conn.execute(update(Account).where(Account.id == ids[SF_GLOBEX]).values(name="Globex Industries GmbH"))
    renamed = run_match_stage(engine, MatchingConfig())
    assert renamed.features_read == 1
    now = _kept(engine)
    assert now[ids[SF_GLOBEX]] != kept[ids[SF_GLOBEX]] and now[ids[SF_ACME]] == kept[ids[SF_ACME]]
    assert "globex industries" in now[ids[SF_GLOBEX]][1]


def test_kept_features_match_exactly_as_features_read_anew(engine: Engine) -> None:
    _seed(engine)
    run_match_stage(engine, MatchingConfig())
    from_kept = run_match_stage(engine, MatchingConfig())
    assert from_kept.features_read == 0
    with_kept = _matches(engine)
    with engine.begin() as conn:
        conn.execute(delete(MatchFeatures))
    anew = run_match_stage(engine, MatchingConfig())
    assert anew.features_read == 3 and anew.changed_people == set() and _matches(engine) == with_kept


def test_a_changed_setting_or_an_unreadable_row_is_read_again(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    assert run_match_stage(engine, MatchingConfig(extra_legal_terms=["corporation"])).features_read == 3

    with engine.begin() as conn:
        conn.execute(update(MatchFeatures).where(MatchFeatures.account_id == ids[SF_ACME]).values(features="[\"acme"))
    matched = _matches(engine)
    outcome = run_match_stage(engine, MatchingConfig(extra_legal_terms=["corporation"]))
    assert outcome.features_read == 1 and _matches(engine) == matched
    assert _kept(engine)[ids[SF_ACME]][1].startswith('["acme"')


def test_deleted_accounts_lose_their_kept_features(engine: Engine) -> None:
    ids = _seed(engine)
    run_match_stage(engine, MatchingConfig())
    with engine.begin() as conn:
        conn.execute(update(Account).where(Account.id == ids[SF_GLOBEX]).values(is_deleted=True))
    run_match_stage(engine, MatchingConfig())
    assert set(_kept(engine)) == {ids[SF_ACME], ids["901"]}
