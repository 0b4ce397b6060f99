"""The score stage's kept copy of the people (worker.kept_people): what an incremental run reads from it and from
the people changed since is exactly what reading the table gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta
from functools import partial

import numpy as np
import pytest
from sqlalchemy import Engine, update
from test_scoring_predictive import AS_OF
from test_scoring_store import (  # noqa: F401 (org, stored: fixtures)
    kept_header,
    mark_of_another_format,
    org,
    read_again_from_the_tables,
    reused_from_the_copies,
    rows,
    store_org,
    stored,
)
from test_scoring_store import load_kept as load

from scoring.inputs import ScoringInputs
from store.records import PersonRecord
from store.schema import Person
from store.types import utcnow
from store.upsert import upsert
from worker import kept_people


@pytest.fixture(autouse=True)
def exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock: no margin, so that the people written before the copy are read from it."""
    monkeypatch.setattr(kept_people, "CLOCK_MARGIN", timedelta(0))


def assert_same(a: ScoringInputs, b: ScoringInputs) -> None:
    np.testing.assert_array_equal(a.person_ids, b.person_ids)
    for column in ("person_account", "person_titles"):
        np.testing.assert_array_equal(getattr(a.population, column), getattr(b.population, column), err_msg=column)
    for column in ("persona", "seniority", "department"):
        np.testing.assert_array_equal(getattr(a.population.personas, column), getattr(b.population.personas, column),
                                      err_msg=column)
    for column in ("is_lead", "created", "converted", "linked_by_conversion"):
        np.testing.assert_array_equal(getattr(a.people, column), getattr(b.people, column), err_msg=column)
    np.testing.assert_array_equal(a.activities.person, b.activities.person)


header = partial(kept_header, name=kept_people.NAME)


def store_people(engine: Engine, *people: PersonRecord) -> None:
    with engine.begin() as conn:
        upsert(conn, Person.__table__, rows(people, lambda p: "contacts"))


def test_incremental_read_equals_the_table_after_every_kind_of_change(
    engine: Engine, stored, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = stored
    first = load(engine, "refresh")
    assert header(engine)["rows"] == len(people)
    assert_same(first, load(engine, "ignore"))

    hubspot = [p for p in people if p.crm == "hubspot"]
    lead = next(p for p in hubspot if p.kind == "lead")
    other_account = next(a for a in accounts if a.crm == "hubspot" and a.crm_id != hubspot[2].account_crm_id)
    store_people(engine,
                 replace(hubspot[0], title="Chief Executive Officer"),  # another persona
                 replace(hubspot[1], kind="lead", account_crm_id=None),
                 replace(hubspot[2], account_crm_id=other_account.crm_id),  # another company
                 replace(lead, is_converted=True, converted_at=AS_OF - timedelta(days=1),
                         converted_account_crm_id=other_account.crm_id),
                 replace(hubspot[3], created_at=AS_OF - timedelta(days=5)),
                 PersonRecord(id=70_000, crm="hubspot", crm_id="NEWCOMER", kind="contact", title="VP Sales",
                              account_crm_id=other_account.crm_id))
    with engine.begin() as conn:  # a deletion, as the pulls record it
        conn.execute(update(Person).where(Person.id == hubspot[4].id).values(is_deleted=True, changed_at=utcnow()))
    reused = reused_from_the_copies(engine, caplog)
    assert_same(reused, load(engine, "ignore"))
    assert len(reused.person_ids) == len(first.person_ids)  # one new, one deleted
    assert 70_000 in reused.person_ids and hubspot[4].id not in reused.person_ids
    assert not np.array_equal(reused.population.personas.persona, first.population.personas.persona)


def test_the_copy_is_what_is_read_and_is_dropped_when_not_of_the_table(
    engine: Engine, stored, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    accounts, people, acts, opps, matches = stored
    before = load(engine, "refresh")
    # A write that goes round the change stamp: the copy does not see it...
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == people[0].id).values(title="Chief Executive Officer"))
    assert_same(load(engine, "reuse"), before)
    assert load(engine, "ignore").population.person_titles[0] == "Chief Executive Officer"
    # ... until a person the copy cannot hold shows it is not of the table any more.
    with engine.begin() as conn:
        record = PersonRecord(id=80_000, crm="hubspot", crm_id="ROUND", kind="lead", title="Analyst")
        conn.execute(Person.__table__.insert(), [{**asdict(record), "object": "contacts", "is_deleted": False}])
    assert_same(*read_again_from_the_tables(engine, caplog))
    assert header(engine)["rows"] == len(people) + 1  # read again and kept
    # A copy in another format is not read.
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == people[1].id).values(title="Head of Marketing"))
    mark_of_another_format(engine, kept_people.NAME)
    assert_same(load(engine, "reuse"), load(engine, "ignore"))


def test_the_copy_is_written_again_once_enough_is_read_on_top(engine: Engine, stored,  # noqa: F811
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    accounts, people, acts, opps, matches = stored
    load(engine, "refresh")
    taken = header(engine)["cutoff"]
    monkeypatch.setattr(kept_people, "REWRITE_SHARE", 3 / len(people))
    store_people(engine, *(replace(p, title=f"Director {i}") for i, p in enumerate(people[:2]) if p.crm == "hubspot"))
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] == taken
    store_people(engine, *(replace(p, title=f"Manager {i}") for i, p in enumerate(people[2:4]) if p.crm == "hubspot"))
    assert_same(load(engine, "reuse"), load(engine, "ignore"))
    assert header(engine)["cutoff"] > taken


def test_parts_and_text_survive_the_copy(engine: Engine, org, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Parts of a bounded size, and titles as people type them (other scripts, quotes, none at all)."""
    accounts, people, acts, opps, matches = org
    titles = ["Директор по продажам", 'VP "Growth" \\ Ops', None, "営業部長", "Head of \U0001F680"]
    people = [replace(p, title=titles[i % len(titles)]) if p.crm == "hubspot" else p for i, p in enumerate(people)]
    store_org(engine, accounts, people, acts, opps, matches)
    monkeypatch.setattr(kept_people, "PART_ROWS", 7)
    load(engine, "refresh")
    assert header(engine)["parts"] == -(-len(people) // 7)
    reused = load(engine, "reuse")
    assert_same(reused, load(engine, "ignore"))
    assert set(titles) <= set(reused.population.person_titles)
