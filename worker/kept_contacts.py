"""The match stage's reading of every contact, kept between runs: an incremental run reads the people changed
since the copy was taken instead of every contact.

The matcher's contact-domain signal and most-contacts tie-breaker need, for every account, how many of its
contacts give each company email domain (:class:`~matching.domains.ContactDomainReader`). Reading that from
every contact took about 9 of an L org's 32-second incremental match stage (1.3 million contacts read, then
each email's domain and the person's names looked at), on every run, while a run changes about 10,000 people.
So each person's reading is kept in ``kept_copies`` as three numbers, 16 bytes a person: store id, the
account the CRM ties a live contact to (a code into the header's list of (crm, account id) keys; -1 for
anyone else, who counts for nothing) and the domain (a code into the header's list of domains). A run reads
the copy back, then the people whose ``changed_at`` is at or after its cutoff (less ``CLOCK_MARGIN``).

Why the copy stays exact: every write that changes what is read of a person (kind, deletion, CRM account,
email, names) moves ``changed_at`` (see :mod:`store.upsert`); people are never removed from the table and a
new one takes an id past every earlier one, so a copy missing a person added since is detected and dropped
(:func:`store.kept_copies.holds_every_added`); a copy read under other matching settings, code or library
versions (:func:`matching.feature_cache.fingerprint`: the free-mail lists, the suffix list) is not read.

The copy is written again once the people read on top of it pass ``REWRITE_SHARE`` of it, and by every full
match stage, which reads every person from the table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter

import numpy as np
from sqlalchemy import ColumnElement, Connection, select

from config.matching import MatchingConfig
from matching import feature_cache
from matching.domains import ContactDomainReader, FreeMail
from matching.types import ContactDomainCount
from store import kept_copies
from store.cursor_rows import driver_batches
from store.schema import Person
from store.types import utcnow

log = logging.getLogger("abm.matching")

NAME = "contacts"  # in kept_copies
FORMAT = 1  # of the header and the columns below: a copy in another format is not read
_DTYPES = ["<i8", "<i4", "<i4"]  # id, account key code (-1: counts for nothing), domain code
READ_ROWS = 100_000
REWRITE_SHARE = 0.02
CLOCK_MARGIN = timedelta(minutes=2)


class _Readings:
    """Every person's reading as three columns, with the values their codes stand for."""

    def __init__(self, columns: list[np.ndarray], accounts: list[tuple[str, str]], domains: list[str]) -> None:
        self.columns = columns
        self.accounts = kept_copies.Codes.of(accounts)
        self.domains = kept_copies.Codes.of(domains)

    @property
    def ids(self) -> np.ndarray:
        return self.columns[0]

    def read(self, conn: Connection, reader: ContactDomainReader, where: Iterable[ColumnElement] = ()) -> np.ndarray:
        """Read the people ``where`` selects (everyone by default) on top, in these codes; returns their ids
        (sorted)."""
        table = Person.__table__
        # Every selected person's id, then the readings of the live contacts with an account among them;
        # everyone else counts for nothing (-1).
        everyone = np.concatenate([np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))
                                   for rows in driver_batches(conn, select(table.c.id).where(*where), READ_ROWS)]
                                  or [np.empty(0, dtype=np.int64)])
        everyone.sort()
        query = select(table.c.id, table.c.crm, table.c.account_crm_id, table.c.email, table.c.first_name,
                       table.c.last_name).where(*where, table.c.kind == "contact", table.c.is_deleted.is_(False),
                                                table.c.account_crm_id.is_not(None))
        ids: list[int] = []
        accounts: list[int] = []
        domains: list[int] = []
        for rows in driver_batches(conn, query, READ_ROWS):
            ids.extend(map(itemgetter(0), rows))
            accounts.extend(map(self.accounts.__getitem__, map(itemgetter(1, 2), rows)))
            readings = map(reader, map(itemgetter(3), rows), map(itemgetter(4), rows), map(itemgetter(5), rows))
            domains.extend(map(self.domains.__getitem__, readings))
        account = np.full(len(everyone), -1, dtype=np.int32)
        domain = np.full(len(everyone), self.domains[""], dtype=np.int32)
        at = np.searchsorted(everyone, np.array(ids, dtype=np.int64))  # the same transaction: all among everyone
        account[at] = accounts
        domain[at] = domains
        self.columns = kept_copies.merge(self.columns, [everyone, account, domain])
        return everyone

    def counts(self) -> list[ContactDomainCount]:
        """How many contacts each (account, domain) has."""
        ids, account, domain = self.columns
        counted = account >= 0
        keys = account[counted].astype(np.int64) * max(1, len(self.domains)) + domain[counted]
        pairs, n = np.unique(keys, return_counts=True)
        accounts, domains = list(self.accounts), list(self.domains)
        width = max(1, len(domains))
        out = []
        for key, count in zip(pairs.tolist(), n.tolist(), strict=True):
            crm, account_crm_id = accounts[key // width]
            out.append(ContactDomainCount(crm, account_crm_id, domains[key % width], count))
        return out

    def save(self, conn: Connection, cutoff: datetime, fingerprint: str) -> None:
        """Keep the readings (as of ``cutoff``), with only the codes still used."""
        ids, account, domain = self.columns
        used_accounts, account_at = np.unique(account[account >= 0], return_inverse=True)
        used_domains, domain_at = np.unique(domain, return_inverse=True)
        account = account.copy()
        account[account >= 0] = account_at
        accounts, domains = list(self.accounts), list(self.domains)
        header = {"cutoff": cutoff.isoformat(), "fingerprint": fingerprint,
                  "accounts": [list(accounts[i]) for i in used_accounts.tolist()],
                  "domains": [domains[i] for i in used_domains.tolist()]}
        kept_copies.save(conn, NAME, FORMAT, [ids, account, domain_at.astype(np.int32)], _DTYPES, header)


def _empty() -> _Readings:
    return _Readings([np.empty(0, dtype=dtype) for dtype in _DTYPES], [], [])


@dataclass
class KeptReadings:
    """The kept copy read back, with the people changed since its cutoff read on top (nothing written)."""

    readings: _Readings
    kept_through: int  # the highest person id the copy held
    changed: np.ndarray  # the ids of the people read on top of it (sorted, no repeats)
    fingerprint: str


def read_kept(conn: Connection, config: MatchingConfig) -> KeptReadings | None:
    """The kept copy and the people changed since its cutoff; None when there is no copy read under these
    settings. Whether it still holds every person is for :func:`contact_domains` to tell."""
    fingerprint = feature_cache.fingerprint(config).hex()
    kept = kept_copies.load(conn, NAME, FORMAT, _DTYPES)
    if kept is None or kept.header.get("fingerprint") != fingerprint:
        return None
    readings = _Readings(kept.columns, [tuple(key) for key in kept.header["accounts"]], kept.header["domains"])
    kept_through = int(readings.ids[-1]) if len(readings.ids) else -1
    cutoff = datetime.fromisoformat(kept.header["cutoff"]) - CLOCK_MARGIN
    changed = readings.read(conn, _reader(config), [Person.__table__.c.changed_at >= cutoff])
    return KeptReadings(readings, kept_through, changed, fingerprint)


def _reader(config: MatchingConfig) -> ContactDomainReader:
    return ContactDomainReader(FreeMail(config.extra_free_mail_domains))


def contact_domains(conn: Connection, config: MatchingConfig, *, reuse: bool = True,
                    ahead: KeptReadings | None = None, changed_since: datetime | None = None,
                    ) -> list[ContactDomainCount]:
    """How many of its live contacts each account's key has under each company email domain ('' for none),
    as reading every contact now gives: from the kept copy and the people changed since when ``reuse`` and a
    copy is there to be read, else from every person (see the module docstring).

    ``ahead``: what :func:`read_kept` gave earlier, when every person written since then is stamped at or after
    ``changed_since`` (by the pulls that ran meanwhile): only those are read again.
    """
    started = utcnow()
    fingerprint = feature_cache.fingerprint(config).hex()
    reader = _reader(config)
    if ahead is not None and changed_since is not None and ahead.fingerprint == fingerprint:
        kept = ahead
        again = kept.readings.read(conn, reader, [Person.__table__.c.changed_at >= changed_since])
        kept.changed = np.union1d(kept.changed, again)  # counted once: the margin reads some of them again
    else:
        kept = read_kept(conn, config) if reuse else None
    if kept is not None:
        readings = kept.readings
        if kept_copies.holds_every_added(conn, Person.__table__.c.id, kept.kept_through, readings.ids):
            if len(kept.changed) > REWRITE_SHARE * len(readings.ids):
                readings.save(conn, started, fingerprint)
            return readings.counts()
        log.warning("the kept reading of the contacts (%d people) is not of the table any more: every contact is "
                    "read again", len(readings.ids))
    readings = _empty()
    readings.read(conn, reader)
    readings.save(conn, started, fingerprint)
    return readings.counts()
