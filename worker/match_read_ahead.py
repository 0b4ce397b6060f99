"""What the match stage reads of every account and contact, read while the pulls run (:mod:`worker.read_ahead`).

An incremental match stage reads every live account, their kept index features (:mod:`worker.match_features`),
the kept reading of the contacts with the people changed since it was kept (:mod:`worker.kept_contacts`) and
the people no account holds, with their companies' names normalized, for the changed accounts' claims: about
6 of its 20 seconds on the L org's 1% increment, while the pulls before it had left a core idle for about
17 seconds. Read during the pulls, from the store as it stands then, and afterwards the stage reads again
only the accounts and people stamped at or after the mark taken before the pulls started (less
``CLOCK_MARGIN``, for a clock set back meanwhile): 2,000 accounts and 13,000 people of that increment.

Not read ahead: what scans the tables the pulls write. Finding the people with no match scans every person
against the match table (0.7 s warm): beside the pulls it read the people table from disk once evicted, and
the Salesforce pull took 22-26 s instead of 16-19 s.

Why that is exact: every write that changes what is read of an account or a person moves its ``changed_at``
(:mod:`store.upsert`; a deletion too), nothing but the run's pulls writes accounts or people while they run
(the run lock keeps other runs out), and kept features are written by the match stage alone. A row not
stamped since the mark is as the reading found it, whenever it read it; a row stamped since is read again.
Matches (who is held) are written by the match stage alone, after the reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from sqlalchemy import Connection, Engine, select

from config.matching import MatchingConfig
from store.records import AccountRecord
from store.schema import Account, Person
from worker.kept_contacts import KeptReadings, read_kept
from worker.match_features import KeptFeatures, load_kept_features, refresh_kept_features
from worker.match_stage import ACCOUNT_COLUMNS, UnheldPerson, load_accounts, read_unheld

CLOCK_MARGIN = timedelta(minutes=2)


@dataclass
class MatchReadAhead:
    """The accounts, their kept features, the contacts' kept reading and the people no account holds, as read
    from ``mark`` on."""

    mark: datetime  # taken before the pulls started: whatever they write is stamped at or after it
    accounts: list[AccountRecord]
    features: KeptFeatures
    contacts: KeptReadings | None  # None: no kept reading under these settings (the stage reads every contact)
    unheld: dict[int, UnheldPerson]  # the people no account holds, as the claims read them (match_stage.read_unheld)

    @property
    def changed_since(self) -> datetime:
        """Rows stamped at or after this are read again."""
        return self.mark - CLOCK_MARGIN

    def take(self, conn: Connection, config: MatchingConfig) -> Taken:
        """Every live account as ``load_accounts`` reads it now and their kept features still valid, and the people
        no account holds as ``read_unheld`` reads them now, reading again only the accounts and people changed
        since the mark; and the contacts' kept reading, for :func:`contact_domains` to bring up to date (with
        :attr:`changed_since`). Taken once: the reading keeps none of it."""
        changed: list[AccountRecord] = []
        gone: list[int] = []
        query = select(*ACCOUNT_COLUMNS, Account.is_deleted).where(Account.changed_at >= self.changed_since)
        for *fields, deleted in conn.execute(query):
            if deleted:
                gone.append(fields[0])
            else:
                changed.append(AccountRecord(*fields))
        accounts, features, contacts, unheld = self.accounts, self.features, self.contacts, self.unheld
        self.accounts, self.features, self.contacts, self.unheld = [], KeptFeatures({}, {}), None, {}
        if changed or gone:
            by_id = {account.id: account for account in accounts}
            for account_id in gone:
                by_id.pop(account_id, None)
            by_id.update((account.id, account) for account in changed)
            accounts = sorted(by_id.values(), key=attrgetter("id"))
        refresh_kept_features(conn, features, changed, gone, config)
        read_unheld(conn, config, [Person.changed_at >= self.changed_since], into=unheld)
        return Taken(accounts, features, contacts, unheld)


class Taken(NamedTuple):
    """What the match stage takes of a reading ahead, brought up to date (see :meth:`MatchReadAhead.take`)."""

    accounts: list[AccountRecord]
    features: KeptFeatures
    contacts: KeptReadings | None
    unheld: dict[int, UnheldPerson]


def read_ahead(engine: Engine, config: MatchingConfig, mark: datetime) -> MatchReadAhead:
    """Read what :class:`MatchReadAhead` holds, through one connection, writing nothing."""
    with engine.connect() as conn:
        accounts = load_accounts(conn)
        features = load_kept_features(conn, accounts, config)
        contacts = read_kept(conn, config)
        unheld = read_unheld(conn, config)
    return MatchReadAhead(mark, accounts, features, contacts, unheld)
