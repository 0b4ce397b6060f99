"""The match stage's kept reading of the contacts (worker.kept_contacts): what an incremental run gets from
the copy and the people changed since is exactly what reading every contact gives, on SQLite and PostgreSQL,
and the matcher's index built from it is the one built from the contacts themselves."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from config.matching import MatchingConfig
from matching.domains import ContactDomainReader, FreeMail
from matching.engine import Matcher
from store.ids import to_18 as sf
from store.records import AccountRecord, PersonRecord
from store.schema import Account, KeptCopy, Person
from store.types import utcnow
from store.upsert import upsert
from worker import kept_contacts
from worker.kept_contacts import contact_domains

CONFIG = MatchingConfig()
ACME, GLOBEX, UMBRELLA = (sf(f"00100000000000{n}") for n in (1, 2, 3))
CONTACTS = KeptCopy.name == kept_contacts.NAME

ACCOUNTS = [
    AccountRecord(id=1, crm="salesforce", crm_id=ACME, name="Acme", website="acme.com"),
    AccountRecord(id=2, crm="salesforce", crm_id=GLOBEX, name="Globex", website="globex.io"),
    AccountRecord(id=3, crm="hubspot", crm_id="77", name="Initech", website="initech.co.uk"),
]
PEOPLE = [
    PersonRecord(id=10, crm="salesforce", crm_id=sf("003000000000001"), kind="contact",
                 first_name="Ann", last_name="Lee", email="ann@acme.com", account_crm_id=ACME),
    PersonRecord(id=11, crm="salesforce", crm_id=sf("003000000000002"), kind="contact",
                 first_name="Bo", last_name="Park", email="bo@mail.acme.com", account_crm_id=ACME),
    PersonRecord(id=12, crm="salesforce", crm_id=sf("003000000000003"), kind="contact",  # free mail: no domain
                 first_name="Cy", last_name="Ng", email="cy.ng@gmail.com", account_crm_id=ACME),
    PersonRecord(id=13, crm="salesforce", crm_id=sf("003000000000004"), kind="contact",  # her own vanity domain
                 first_name="Jane", last_name="Doe", email="jane@doej.net", account_crm_id=GLOBEX),
    PersonRecord(id=14, crm="salesforce", crm_id=sf("003000000000005"), kind="contact",
                 first_name="Eve", last_name="Ray", email="eve@globex.io", account_crm_id=GLOBEX),
    PersonRecord(id=15, crm="salesforce", crm_id=sf("00Q000000000001"), kind="lead",
                 first_name="Lu", last_name="Ito", email="lu@globex.io", company="Globex"),  # a lead counts for nothing
    PersonRecord(id=16, crm="hubspot", crm_id="501", kind="contact",
                 first_name="Mo", last_name="Diaz", email="mo@initech.co.uk", account_crm_id="77"),
    PersonRecord(id=17, crm="hubspot", crm_id="502", kind="contact",
                 first_name="No", last_name="Email", account_crm_id="77"),
    PersonRecord(id=18, crm="hubspot", crm_id="503", kind="contact",
                 first_name="Al", last_name="One", email="al@initech.co.uk"),  # no company: counts for nothing
]


@pytest.fixture(autouse=True)
def exact_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """One process's clock: no margin, so that the people written before the copy are read from it."""
    monkeypatch.setattr(kept_contacts, "CLOCK_MARGIN", timedelta(0))


def person_rows(*people: PersonRecord) -> list[dict]:
    return [{**asdict(p), "object": p.kind.title() if p.crm == "salesforce" else "contacts"} for p in people]


def store(engine: Engine, *people: PersonRecord) -> None:
    with engine.begin() as conn:
        upsert(conn, Person.__table__, person_rows(*people))


@pytest.fixture
def org(engine: Engine) -> Engine:
    with engine.begin() as conn:
        upsert(conn, Account.__table__, [{**asdict(a), "object": "Account" if a.crm == "salesforce" else "companies"}
                                         for a in ACCOUNTS])
    store(engine, *PEOPLE)
    return engine


def kept(engine: Engine, *, reuse: bool = True, config: MatchingConfig = CONFIG) -> Counter:
    with engine.begin() as conn:
        return Counter({(c.crm, c.account_crm_id, c.domain): c.contacts
                        for c in contact_domains(conn, config, reuse=reuse)})


def contact_tuples(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Person.crm, Person.account_crm_id, Person.email, Person.first_name, Person.last_name)
            .where(Person.is_deleted.is_(False), Person.kind == "contact", Person.account_crm_id.is_not(None)))]


def every_contact(engine: Engine, config: MatchingConfig = CONFIG) -> Counter:
    """The same counts, reading every contact of the table now."""
    read = ContactDomainReader(FreeMail(config.extra_free_mail_domains))
    return Counter((crm, account, read(email, first, last)) for crm, account, email, first, last in
                   contact_tuples(engine))


def header(engine: Engine) -> dict:
    with engine.connect() as conn:
        return conn.execute(select(KeptCopy.header).where(CONTACTS, KeptCopy.part == 0)).scalar_one()


def test_a_first_read_counts_every_contact_by_company_domain(org: Engine) -> None:
    assert kept(org, reuse=False) == {
        ("salesforce", ACME, "acme.com"): 2, ("salesforce", ACME, ""): 1,
        ("salesforce", GLOBEX, "globex.io"): 1, ("salesforce", GLOBEX, ""): 1,
        ("hubspot", "77", "initech.co.uk"): 1, ("hubspot", "77", ""): 1,
    }
    assert header(org)["rows"] == len(PEOPLE)  # everyone, so that a person added round the stamp shows


def test_reuse_equals_reading_every_contact_after_every_kind_of_change(
    org: Engine, caplog: pytest.LogCaptureFixture,
) -> None:
    first = kept(org, reuse=False)
    by_id = {p.id: p for p in PEOPLE}
    store(org,
          replace(by_id[10], email="ann@globex.io"),  # another domain
          replace(by_id[11], account_crm_id=GLOBEX),  # another account
          replace(by_id[14], last_name="Globex"),  # eve@globex.io is now read as her own domain
          replace(by_id[18], account_crm_id="77"),  # tied to a company now
          PersonRecord(id=19, crm="salesforce", crm_id=sf("003000000000006"), kind="contact", first_name="Ida",
                       last_name="Wu", email="ida@globex.io", account_crm_id=GLOBEX),
          PersonRecord(id=20, crm="salesforce", crm_id=sf("00Q000000000002"), kind="lead", email="x@acme.com"))
    with org.begin() as conn:  # deletions, as the pulls record them
        conn.execute(update(Person).where(Person.id.in_([16, 17])).values(is_deleted=True, changed_at=utcnow()))
    with caplog.at_level(logging.WARNING, logger="abm.matching"):
        reused = kept(org)
    assert not caplog.records  # read from the copy and what changed since
    assert reused == every_contact(org)
    assert reused != first
    assert reused[("salesforce", ACME, "globex.io")] == 1  # Ann
    assert reused[("salesforce", GLOBEX, "globex.io")] == 1  # Ida; Eve's is her own now
    assert reused[("salesforce", GLOBEX, "acme.com")] == 1  # Bo, moved
    assert reused[("hubspot", "77", "")] == 0 and reused[("hubspot", "77", "initech.co.uk")] == 1  # Al only


def test_the_copy_is_what_is_read_and_is_dropped_when_not_of_the_table(
    org: Engine, caplog: pytest.LogCaptureFixture,
) -> None:
    before = kept(org, reuse=False)
    # A write that goes round the change stamp: the copy does not see it...
    with org.begin() as conn:
        conn.execute(update(Person).where(Person.id == 10).values(email="ann@initech.co.uk"))
    assert kept(org) == before != every_contact(org)
    # ... until a person the copy cannot hold shows it is not of the table any more.
    with org.begin() as conn:
        conn.execute(Person.__table__.insert(), person_rows(
            PersonRecord(id=30, crm="hubspot", crm_id="530", kind="contact", email="z@initech.co.uk",
                         account_crm_id="77")))
    with caplog.at_level(logging.WARNING, logger="abm.matching"):
        assert kept(org) == every_contact(org)
    assert "not of the table" in caplog.text
    assert header(org)["rows"] == len(PEOPLE) + 1  # read again and kept


def test_a_copy_of_other_settings_or_another_format_is_not_read(org: Engine) -> None:
    kept(org, reuse=False)
    # A setting that changes what a contact's email says: acme.com read as a mail provider.
    acme_is_mail = MatchingConfig(extra_free_mail_domains=["acme.com"])
    assert kept(org, config=acme_is_mail) == every_contact(org, acme_is_mail)
    assert ("salesforce", ACME, "acme.com") not in kept(org, config=acme_is_mail)
    with org.begin() as conn:  # round the stamp, as above: seen only when the copy is not read
        conn.execute(update(Person).where(Person.id == 14).values(email="eve@acme.com"))
        conn.execute(update(KeptCopy).where(CONTACTS, KeptCopy.part == 0)
                     .values(header={**header(org), "format": kept_contacts.FORMAT + 1}))
    assert kept(org, config=acme_is_mail) == every_contact(org, acme_is_mail)


def test_the_copy_is_written_again_once_enough_is_read_on_top(org: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    kept(org, reuse=False)
    taken = header(org)["cutoff"]
    by_id = {p.id: p for p in PEOPLE}
    store(org, replace(by_id[10], email="ann@globex.io"))  # 1 of 9 people: under a share of 0.2
    monkeypatch.setattr(kept_contacts, "REWRITE_SHARE", 0.2)
    kept(org)
    assert header(org)["cutoff"] == taken
    store(org, replace(by_id[11], email="bo@globex.io"))  # read on top with Ann's: 2 of 9
    kept(org)
    assert header(org)["cutoff"] > taken
    assert kept(org) == every_contact(org)


def test_the_matcher_indexes_the_counts_as_it_indexes_the_contacts(org: Engine) -> None:
    accounts = [*ACCOUNTS, AccountRecord(id=4, crm="salesforce", crm_id=UMBRELLA, name="Umbrella")]
    from_contacts = Matcher(accounts, CONFIG, contact_emails=contact_tuples(org))
    with org.begin() as conn:
        from_counts = Matcher(accounts, CONFIG, contact_domains=contact_domains(conn, CONFIG))
    for crm, index in from_contacts.indexes.items():
        other = from_counts.indexes[crm]
        assert (index.contact_domains, index.contact_count, index.shared_domains) == (
            other.contact_domains, other.contact_count, other.shared_domains)
    assert from_contacts.indexes["salesforce"].contact_count == {0: 3, 1: 2}
