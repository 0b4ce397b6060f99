"""The score stage's kept copy of the match table (worker.kept_matches): what an incremental run reads from it and
from the matches written since is exactly what reading the table gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, insert, update
from test_scoring_store import (  # noqa: F401 (org, stored: fixtures)
    kept_header,
    mark_of_another_format,
    org,
    read_again_from_the_tables,
    reused_from_the_copies,
    store_org,
    stored,
)
from test_scoring_store import load_kept as load

from matching.types import MatchResult
from scoring.inputs import ScoringInputs
from store.schema import Match, Person
from worker import kept_matches
from worker.match_stage import write_matches


@pytest.fixture(autouse=True)
def exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock: no margin, so that the matches written before the copy are read from it."""
    monkeypatch.setattr(kept_matches, "CLOCK_MARGIN", timedelta(0))


def header(engine: Engine) -> dict:
    return kept_header(engine, kept_matches.NAME)


def assert_same(a: ScoringInputs, b: ScoringInputs) -> None:
    np.testing.assert_array_equal(a.person_ids, b.person_ids)
    np.testing.assert_array_equal(a.population.person_account, b.population.person_account)
    np.testing.assert_array_equal(a.activities.account, b.activities.account)


def match(engine: Engine, person_id: int, account_id: int | None, decision: str) -> None:
    """A match as the match stage writes it (a new ``matched_at``)."""
    result = MatchResult(person_id=person_id, account_id=account_id, decision=decision, confidence=0.9,
                         method="domain", reason="test")
    with engine.begin() as conn:
        write_matches(conn, [result], {}, {})


def test_incremental_read_equals_the_table_after_every_kind_of_match(
    engine: Engine, stored, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = stored
    first = load(engine, "refresh")
    assert header(engine)["rows"] == len(matches)
    assert_same(first, load(engine, "ignore"))

    tied, reviewed = list(matches)
    unmatched = [p for p in people if p.id not in matches and p.crm == "hubspot"]
    match(engine, tied, None, "none")  # no longer tied
    match(engine, reviewed, accounts[5].id, "auto")  # now tied
    match(engine, unmatched[0].id, accounts[7].id, "crm")  # first matched
    match(engine, unmatched[1].id, accounts[8].id, "review")  # names an account, ties to nothing
    reused = reused_from_the_copies(engine, caplog)
    assert_same(reused, load(engine, "ignore"))
    assert not np.array_equal(reused.population.person_account, first.population.person_account)


def test_the_copy_is_what_is_read_and_is_dropped_when_not_of_the_table(
    engine: Engine, stored, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = stored
    before = load(engine, "refresh")
    tied = next(iter(matches))
    # A write that goes round the match stage's stamp: the copy does not see it...
    with engine.begin() as conn:
        conn.execute(update(Match).where(Match.person_id == tied).values(decision="none"))
    assert_same(load(engine, "reuse"), before)
    # ... until a match the copy cannot hold shows it is not of the table any more.
    last = max(p.id for p in people)
    with engine.begin() as conn:
        conn.execute(insert(Person.__table__), [{"id": last + 1, "crm": "hubspot", "object": "contacts",
                                                 "crm_id": "ROUND", "kind": "contact", "is_deleted": False,
                                                 "account_crm_id": accounts[1].crm_id}])
        conn.execute(insert(Match.__table__), [{"person_id": last + 1, "account_id": accounts[1].id,
                                                "decision": "auto"}])
    assert_same(*read_again_from_the_tables(engine, caplog))
    assert header(engine)["rows"] == len(matches) + 1  # read again and kept
    # A copy in another format is not read.
    with engine.begin() as conn:
        conn.execute(update(Match).where(Match.person_id == tied).values(decision="auto"))
    mark_of_another_format(engine, kept_matches.NAME)
    assert_same(load(engine, "reuse"), load(engine, "ignore"))


def test_the_copy_is_written_again_once_enough_is_read_on_top(engine: Engine, stored,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    accounts, people, acts, opps, matches = stored
    load(engine, "refresh")
    taken = header(engine)["cutoff"]
    unmatched = [p for p in people if p.id not in matches and p.crm == "hubspot"]
    monkeypatch.setattr(kept_matches, "REWRITE_SHARE", 2 / (len(matches) + 2))
    match(engine, unmatched[0].id, accounts[2].id, "auto")
    match(engine, unmatched[1].id, accounts[3].id, "auto")
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] == taken  # two read on top: half of the four, not past the share yet
    match(engine, unmatched[2].id, accounts[4].id, "auto")
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] > taken and header(engine)["rows"] == len(matches) + 3
