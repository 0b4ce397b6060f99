"""What an incremental score stage reads of the pulls' data, read beforehand in a process of its own
(worker.score_prefetch): the same touched entities, touches, people and persona codes as the stage reads itself,
the copies due written by the stage only, and nothing used once the store changed or under other rules; on SQLite
and PostgreSQL."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import pytest
from sqlalchemy import Engine, select
from test_kept_people import assert_same as assert_same_people
from test_kept_touches import assert_same, exact_clock  # noqa: F401 (exact_clock: an autouse fixture)
from test_scoring_predictive import AS_OF
from test_scoring_store import load_kept, org, rows, stored  # noqa: F401 (org, stored: fixtures)

from config.scoring import PredictiveConfig, ScoringConfig
from store import kept_copies
from store.records import PersonRecord
from store.schema import Activity, KeptCopy, Person
from store.touch_refs import resolve_touch_refs
from store.types import utcnow
from store.upsert import upsert
from worker import kept_people, kept_touches, score_stage
from worker.score_inputs import epoch_seconds, load_score_inputs
from worker.score_prefetch import Prefetched, ScorePrefetch, read_copies, read_prefetch, resolved_alike, still_current
from worker.score_scope import touched_by_matching, touched_since
from worker.score_stage import Incremental, run_score_stage

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)  # everything is new since: the score stage reads everyone
NO_MODELS = ScoringConfig(predictive=PredictiveConfig(enabled=False))  # a stored state, then, is all it needs


@pytest.fixture(autouse=True)
def people_exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock for the people's copy too (the touches': ``exact_clock``)."""
    monkeypatch.setattr(kept_people, "CLOCK_MARGIN", timedelta(0))


def kept_parts(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(KeptCopy.name, KeptCopy.part, KeptCopy.header, KeptCopy.data)
                                               .order_by(KeptCopy.name, KeptCopy.part))]


def change_a_few(engine: Engine, org) -> None:  # noqa: F811
    """Writes the pulls make: a touch edited, a person's title changed, a new person."""
    _accounts, people, acts, _opps, _matches = org
    with engine.begin() as conn:
        upsert(conn, Activity.__table__, rows([replace(acts[0], activity_type="meeting_completed",
                                                       occurred_at=AS_OF - timedelta(hours=3))], lambda a: "Task"))
        upsert(conn, Person.__table__, rows([replace(people[0], title="Chief Revenue Officer"),
                                             PersonRecord(id=60_000, crm="hubspot", crm_id="NEWCOMER", kind="contact",
                                                          title="VP Marketing")], lambda p: "contacts"))
    resolve_touch_refs(engine)


def test_what_is_read_beside_the_match_stage_is_what_the_score_stage_reads(
    engine: Engine, stored, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    for module in (kept_touches, kept_people):  # any change makes a copy due
        monkeypatch.setattr(module, "REWRITE_SHARE", 0.0)
    load_kept(engine, "refresh")  # the copies a run before kept
    change_a_few(engine, stored)
    before = kept_parts(engine)
    with engine.connect() as conn:
        prefetched = read_prefetch(conn, LONG_AGO, ScoringConfig())
    assert isinstance(prefetched, Prefetched) and prefetched.everyone is not None
    assert kept_parts(engine) == before  # it writes nothing: the copies due come back encoded
    assert prefetched.everyone.touches.rewrite is not None and prefetched.everyone.people.rewrite is not None
    assert prefetched.everyone.personas.rewrite is not None  # the new titles' codes, to keep
    with engine.connect() as conn:
        assert touched_by_matching(conn, LONG_AGO, prefetched.touched) == touched_since(conn, LONG_AGO)

    with engine.begin() as conn:
        assert still_current(conn, prefetched) and resolved_alike(conn, prefetched.everyone)
        taken = load_score_inputs(conn, ScoringConfig(), kept="reuse", prefetched=prefetched.everyone)
    from_tables = load_kept(engine, "ignore")
    assert_same(taken, from_tables)
    assert_same_people(taken, from_tables)
    after = kept_parts(engine)
    assert after != before  # the stage wrote the copies that were due
    assert_same(load_kept(engine, "reuse"), taken)  # and a later run reads them back


def test_persona_codes_classified_under_other_rules_are_not_used(engine: Engine, stored) -> None:  # noqa: F811
    load_kept(engine, "refresh")
    with engine.connect() as conn:
        prefetched = read_prefetch(conn, LONG_AGO, ScoringConfig())
    assert isinstance(prefetched, Prefetched) and prefetched.everyone is not None
    defaults = ScoringConfig().personas
    everyone_other = {seniority: "other" for seniority in defaults.persona_of_seniority}
    other = ScoringConfig(personas=defaults.model_copy(update={"persona_of_seniority": everyone_other}))
    with engine.begin() as conn:
        taken = load_score_inputs(conn, other, kept="reuse", prefetched=prefetched.everyone)
        mine = load_score_inputs(conn, other, kept="reuse")
    assert_same_people(taken, mine)  # classified under the stage's rules, not the process's
    assert not np.array_equal(mine.population.personas.persona, prefetched.everyone.personas.value.persona)


def test_nothing_read_is_used_once_the_store_changed(engine: Engine, stored) -> None:  # noqa: F811
    load_kept(engine, "refresh")
    with engine.connect() as conn:
        prefetched = read_prefetch(conn, LONG_AGO, ScoringConfig())
    assert isinstance(prefetched, Prefetched)
    change_a_few(engine, stored)
    with engine.connect() as conn:
        assert not still_current(conn, prefetched)


def test_a_touch_resolved_since_voids_what_was_read(engine: Engine, stored) -> None:  # noqa: F811
    _accounts, _people, acts, _opps, _matches = stored
    load_kept(engine, "refresh")
    with engine.begin() as conn:  # a touch and its person, the touch not resolved to the person yet
        upsert(conn, Person.__table__, rows([PersonRecord(id=70_001, crm="hubspot", crm_id="LATE", kind="contact")],
                                            lambda p: "contacts"))
        upsert(conn, Activity.__table__, rows([replace(acts[0], id=70_000, crm_id="EARLY", person_crm_id="LATE")],
                                              lambda a: "Task"))
    with engine.connect() as conn:
        prefetched = read_prefetch(conn, LONG_AGO, ScoringConfig())
    assert isinstance(prefetched, Prefetched) and prefetched.everyone is not None
    assert 70_000 in prefetched.everyone.unresolved[0]
    resolve_touch_refs(engine)  # moves no change stamp
    with engine.connect() as conn:
        assert still_current(conn, prefetched)  # what the pulls touched is still what they touched
        assert not resolved_alike(conn, prefetched.everyone)


def test_few_touched_reads_only_what_they_are(engine: Engine, stored) -> None:  # noqa: F811
    since = utcnow()
    change_a_few(engine, stored)
    with engine.connect() as conn:
        prefetched = read_prefetch(conn, since, ScoringConfig())
        assert isinstance(prefetched, Prefetched) and prefetched.everyone is None
        assert prefetched.touched.person_ids and prefetched.touched.account_ids
        assert touched_by_matching(conn, since, prefetched.touched) == touched_since(conn, since)


def test_the_score_stage_takes_it_from_the_process_and_scores_as_without_it(engine: Engine, stored) -> None:  # noqa: F811
    load_kept(engine, "refresh")
    change_a_few(engine, stored)
    prefetch = ScorePrefetch(engine, LONG_AGO, ScoringConfig())
    folder = prefetch._folder
    outcome = run_score_stage(engine, ScoringConfig(), AS_OF, incremental=Incremental(LONG_AGO), prefetch=prefetch)
    assert outcome.prefetch == "used: what the pulls touched, everyone's touches and people", outcome.prefetch
    assert outcome.loaded == "everyone" and outcome.dirty_people
    assert not os.path.exists(folder)  # its file is gone once read

    again = run_score_stage(engine, ScoringConfig(), AS_OF, incremental=Incremental(LONG_AGO))
    assert again.prefetch is None
    assert (again.saved.accounts_changed, again.saved.people_changed) == (0, 0)  # the same scores without it


def test_a_stage_that_reads_its_few_touched_alone_takes_what_the_pulls_touched(
    engine: Engine, stored, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setattr(score_stage, "SUBSET_MAX_SHARE", 1.0)  # a tiny org: read the dirty entities alone anyway
    run_score_stage(engine, NO_MODELS, AS_OF)  # the stored state the stage scores the few against
    since = utcnow()
    change_a_few(engine, stored)
    with_it = run_score_stage(engine, NO_MODELS, AS_OF, incremental=Incremental(since),
                              prefetch=ScorePrefetch(engine, since, NO_MODELS))
    assert with_it.prefetch == "used: what the pulls touched (the few entities touched read alone)"
    assert with_it.loaded == "dirty entities" and with_it.dirty_people
    without = run_score_stage(engine, NO_MODELS, AS_OF, incremental=Incremental(since))
    assert (without.dirty_accounts, without.dirty_people) == (with_it.dirty_accounts, with_it.dirty_people)
    assert (without.saved.accounts_changed, without.saved.people_changed) == (0, 0)


def test_what_was_read_from_another_start_is_not_used(engine: Engine, stored) -> None:  # noqa: F811
    outcome = run_score_stage(engine, ScoringConfig(), AS_OF, incremental=Incremental(LONG_AGO),
                              prefetch=ScorePrefetch(engine, LONG_AGO + timedelta(days=1), ScoringConfig()))
    assert outcome.prefetch == "not used: the store changed after it was read"


def test_a_process_that_cannot_read_says_why(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from store.db import make_engine

    missing = make_engine(f"sqlite:///{tmp_path / 'nowhere' / 'abm.db'}")
    prefetch = ScorePrefetch(missing, LONG_AGO, ScoringConfig())
    with caplog.at_level(logging.WARNING, logger="abm.scoring"):
        why = prefetch.result()
    assert why == "failed: OperationalError: (sqlite3.OperationalError) unable to open database file", why
    assert "reads beside the match stage failed: OperationalError" in caplog.text  # the whole error, in the log


def test_a_process_still_reading_is_not_waited_for_past_its_time(engine: Engine, stored) -> None:  # noqa: F811
    prefetch = ScorePrefetch(engine, LONG_AGO, ScoringConfig())
    folder = prefetch._folder
    assert prefetch.result(timeout_s=0.0) == "still reading after 0 s"
    assert not os.path.exists(folder) and not prefetch._process.is_alive()


def test_closing_stops_the_process_and_removes_its_file(engine: Engine, stored) -> None:  # noqa: F811
    prefetch = ScorePrefetch(engine, LONG_AGO, ScoringConfig())
    folder, process = prefetch._folder, prefetch._process
    prefetch.close()
    assert not os.path.exists(folder) and not process.is_alive()
    prefetch.close()  # twice is fine


def test_copies_read_before_the_pulls_end_are_used_while_they_are_still_those_stored(engine: Engine, stored) -> None:  # noqa: F811
    load_kept(engine, "refresh")  # the copies a run before kept
    with engine.connect() as conn:
        ahead = read_copies(conn)
    assert set(ahead) == {"touches", "people", "titles"}
    change_a_few(engine, stored)  # the pulls write on
    with engine.connect() as conn:
        assert kept_people.COPY.load(conn, ahead) is ahead["people"]
    with engine.begin() as conn:  # the people's copy kept again meanwhile
        rewrite = kept_people.read_current(conn, partial(epoch_seconds, conn), reuse=False).rewrite
        assert rewrite is not None
        kept_copies.write(conn, rewrite)
    with engine.connect() as conn:
        assert kept_people.COPY.load(conn, ahead) is not ahead["people"]  # read again: it is not the one stored
        prefetched = read_prefetch(conn, LONG_AGO, ScoringConfig(), ahead)
    assert isinstance(prefetched, Prefetched) and prefetched.everyone is not None
    assert prefetched.copies_ahead == ("touches", "titles")
    with engine.begin() as conn:
        taken = load_score_inputs(conn, ScoringConfig(), kept="reuse", prefetched=prefetched.everyone)
    from_tables = load_kept(engine, "ignore")
    assert_same(taken, from_tables)
    assert_same_people(taken, from_tables)


def test_a_copy_kept_before_copies_had_ids_is_never_taken_for_the_one_stored(engine: Engine, stored) -> None:  # noqa: F811
    load_kept(engine, "refresh")
    with engine.connect() as conn:
        ahead = {name: kept_copies.Kept({k: v for k, v in kept.header.items() if k != "copy"}, kept.columns)
                 for name, kept in read_copies(conn).items()}
        assert kept_people.COPY.load(conn, ahead) is not ahead["people"]


def test_a_process_started_with_the_pulls_reads_the_copies_then_what_they_wrote_once_set_going(
    engine: Engine, stored,  # noqa: F811
) -> None:
    load_kept(engine, "refresh")
    prefetch = ScorePrefetch(engine, None, ScoringConfig())  # the pulls start
    change_a_few(engine, stored)
    prefetch.begin(LONG_AGO)  # they are done
    with pytest.raises(RuntimeError, match="already set going"):
        prefetch.begin(LONG_AGO)
    outcome = run_score_stage(engine, ScoringConfig(), AS_OF, incremental=Incremental(LONG_AGO), prefetch=prefetch)
    assert outcome.prefetch == ("used: what the pulls touched, everyone's touches and people (kept copies read "
                                "beside the pulls: touches, people, titles)"), outcome.prefetch
    again = run_score_stage(engine, ScoringConfig(), AS_OF, incremental=Incremental(LONG_AGO))
    assert (again.saved.accounts_changed, again.saved.people_changed) == (0, 0)  # the same scores without it


def test_a_process_never_set_going_reads_nothing_and_goes(engine: Engine, stored) -> None:  # noqa: F811
    prefetch = ScorePrefetch(engine, None, ScoringConfig())
    folder, process = prefetch._folder, prefetch._process
    assert prefetch.result() == "never set going"
    assert not os.path.exists(folder) and not process.is_alive()

    waiting = ScorePrefetch(engine, None, ScoringConfig())
    process = waiting._process
    waiting.close()  # a run that ended during its pulls
    assert not process.is_alive()
