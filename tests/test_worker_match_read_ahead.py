"""The match stage's accounts and contacts read while the pulls run (worker.match_read_ahead): once brought up to
date after the pulls' writes, the accounts, their kept features and the contacts' counts are what the stage reads
from the store then, read again only for the rows stamped since the mark; on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from test_kept_contacts import ACCOUNTS, CONFIG, PEOPLE, every_contact, kept, org, store  # noqa: F401 (org: fixture)

from matching.engine import Matcher
from store.ids import to_18 as sf
from store.records import AccountRecord, PersonRecord
from store.runs import StageReport, create_run, record_stage
from store.schema import Account, Match, Person
from store.types import utcnow
from store.upsert import upsert
from worker import kept_contacts, match_read_ahead, match_stage
from worker.kept_contacts import contact_domains
from worker.match_features import keep_new_features, load_kept_features
from worker.match_read_ahead import read_ahead
from worker.match_stage import load_accounts, read_unheld, run_match_stage


@pytest.fixture(autouse=True)
def exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock: no margin, so that only the rows written after the mark are read again."""
    monkeypatch.setattr(kept_contacts, "CLOCK_MARGIN", timedelta(0))
    monkeypatch.setattr(match_read_ahead, "CLOCK_MARGIN", timedelta(0))


def account_rows(*accounts: AccountRecord, **values: object) -> list[dict]:
    return [{**asdict(a), "object": "Account" if a.crm == "salesforce" else "companies", **values} for a in accounts]


HOOLI = AccountRecord(id=5, crm="salesforce", crm_id=sf("001000000000004"), name="Hooli", website="hooli.xyz")
UNHELD = [  # leads of companies with no account yet
    PersonRecord(id=21, crm="salesforce", crm_id=sf("00Q000000000021"), kind="lead", email="gavin@hooli.xyz",
                 company="Hooli XYZ"),
    PersonRecord(id=22, crm="salesforce", crm_id=sf("00Q000000000022"), kind="lead", email="rh@gmail.com",
                 company="Pied Piper"),
]


def earlier_run(engine: Engine) -> None:
    """What an earlier match stage kept and wrote: the contacts' reading, every account's features, matches (some
    people held by no account)."""
    store(engine, *UNHELD)
    run_match_stage(engine, CONFIG)
    kept(engine, reuse=False)
    with engine.begin() as conn:
        accounts = load_accounts(conn)
        keep_new_features(conn, Matcher(accounts, CONFIG, keep_features=True),
                          load_kept_features(conn, accounts, CONFIG))
        assert {21, 22} <= set(read_unheld(conn, CONFIG))


def pulls_write(engine: Engine) -> None:
    """What pulls write: an account renamed, one deleted, two new ones (Hooli, in each CRM); contacts moved, a new
    one, one deleted; an unheld lead now of Hooli."""
    by_id = {p.id: p for p in PEOPLE}
    with engine.begin() as conn:
        upsert(conn, Account.__table__, account_rows(replace(ACCOUNTS[0], name="Acme Holdings", website="acme.io"),
                                                     AccountRecord(id=4, crm="hubspot", crm_id="78", name="Hooli",
                                                                   website="hooli.xyz"), HOOLI))
        conn.execute(update(Account).where(Account.id == 2).values(is_deleted=True, changed_at=utcnow()))
    store(engine, replace(by_id[10], email="ann@globex.io"), replace(by_id[17], account_crm_id="78"),
          PersonRecord(id=19, crm="hubspot", crm_id="519", kind="contact", email="ida@hooli.xyz", account_crm_id="78"),
          replace(UNHELD[1], company="Hooli", email="richard@hooli.xyz"))
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == 16).values(is_deleted=True, changed_at=utcnow()))


def counts(engine: Engine, **ahead: object) -> Counter:
    with engine.begin() as conn:
        return Counter({(c.crm, c.account_crm_id, c.domain): c.contacts
                        for c in contact_domains(conn, CONFIG, **ahead)})


def test_brought_up_to_date_it_is_what_the_stage_reads_now(
    org: Engine, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    earlier_run(org)
    reading = read_ahead(org, CONFIG, utcnow())
    assert [a.id for a in reading.accounts] == [1, 2, 3] and reading.contacts is not None
    reading_unheld_before = dict(reading.unheld)
    pulls_write(org)
    with org.begin() as conn, caplog.at_level(logging.WARNING, logger="abm.matching"):
        accounts, features, contacts, unheld = reading.take(conn, CONFIG)
        assert accounts == load_accounts(conn)  # Acme renamed, Globex gone, Hooli new, in id order
        assert [a.name for a in accounts] == ["Acme Holdings", "Initech", "Hooli", "Hooli"]
        now = load_kept_features(conn, accounts, CONFIG)
        assert features.digests == now.digests and features.valid == now.valid
        assert set(features.valid) == {3}  # Initech's kept features still hold; the others are read anew
        assert unheld == read_unheld(conn, CONFIG)
        assert unheld[22] != reading_unheld_before[22] and unheld[22][1:] == ("hooli.xyz", None, "hooli")
    assert reading.accounts == [] and reading.contacts is None  # taken: the reading keeps none of it
    assert counts(org, ahead=contacts, changed_since=reading.changed_since) == every_contact(org)
    assert not caplog.records  # from the reading ahead, not every contact again


def test_only_the_rows_stamped_since_the_mark_are_read_again(org: Engine) -> None:  # noqa: F811
    earlier_run(org)
    reading = read_ahead(org, CONFIG, utcnow())
    with org.begin() as conn:  # writes round the change stamp: what was read ahead stands
        conn.execute(update(Account).where(Account.id == 3).values(name="Initech Renamed"))
        conn.execute(update(Person).where(Person.id == 14).values(email="eve@initech.co.uk"))
    with org.begin() as conn:
        accounts, _features, contacts, _unheld = reading.take(conn, CONFIG)
        assert [a.name for a in accounts] == ["Acme", "Globex", "Initech"]
    assert counts(org, ahead=contacts, changed_since=reading.changed_since) != every_contact(org)


def test_the_match_stage_takes_the_reading_ahead_rather_than_read_every_account(
    org: Engine, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    earlier_run(org)
    record_stage(org, create_run(org, "full", "cli", state="running"), StageReport("match"))  # the next: incremental
    reading = read_ahead(org, CONFIG, utcnow())
    pulls_write(org)
    with monkeypatch.context() as patched:
        patched.setattr(match_stage, "load_accounts", lambda conn: pytest.fail("read every account again"))
        patched.setattr(match_stage, "load_kept_features", lambda *a: pytest.fail("read every kept feature again"))
        outcome = run_match_stage(org, CONFIG, incremental=True, ahead=reading)
    with org.connect() as conn:
        assert outcome.accounts == load_accounts(conn)
        held = dict(conn.execute(select(Match.person_id, Match.account_id).where(Match.person_id.in_([21, 22]))).all())
    assert outcome.people > 0 and outcome.features_read == 3  # Acme's and both Hooli's, read from their records
    assert held == {21: HOOLI.id, 22: HOOLI.id}  # claimed by the new account, as read ahead and brought up to date


def test_a_person_read_again_counts_once_towards_writing_the_copy_again(
    org: Engine, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    earlier_run(org)
    store(org, replace(PEOPLE[0], email="ann@acme.io"))  # after the copy: read on top of it by the reading ahead
    reading = read_ahead(org, CONFIG, utcnow())
    monkeypatch.setattr(match_read_ahead, "CLOCK_MARGIN", timedelta(hours=1))  # the stage reads everyone again
    with org.begin() as conn:
        _accounts, _features, contacts, _unheld = reading.take(conn, CONFIG)
    assert contacts is not None and list(contacts.changed) == [PEOPLE[0].id]
    assert counts(org, ahead=contacts, changed_since=reading.changed_since) == every_contact(org)
    assert len(contacts.changed) == len(PEOPLE) + len(UNHELD)  # Ann once
