"""Which accounts and people an incremental run rescores: those new data touched since the last
successful score stage.

Scores drift every day with time decay, so rescoring (and then writing back) everyone on every
run rewrites nearly every score row and CRM field for no new information: on an L org that was
1.8 million score rows and 170,000 CRM writes after 1% of the records changed. A mature product
refreshes decay on a slower beat (the full run, or the first incremental run once the last rescore
of everyone is ``rescore_everyone_hours`` old: :func:`everyone_due`) and lets the other runs update
what new data touched. "Touched" is read from the store, not from the run, so a run whose score stage failed
leaves its changes for the next one:

- a touch added, changed or deleted (``changed_at``): its person and the account it names;
- a person whose record changed (title, kind, conversion): the person and their account;
- a deal added or changed: its account (deal history feeds fit and the predictive model);
- an account whose record changed (segments move fit): the account and all its people, whose
  rows show the account's fit;
- a match written since (``matched_at``): the person and their new account; the account a moved
  person left is in the match stage's outcome (the table no longer says it);
- a cross-CRM link changed: the accounts on both sides.

A dirty person's touches that name no account count for the person's account, so that account
is dirty too; touches that name an account always count there, whoever the person is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, select, tuple_

from scoring.columns import ActivityColumns
from scoring.engine import gather, resolve_accounts
from store.runs import last_stage_start
from store.schema import Account, AccountLink, Activity, Match, Opportunity, Person


def everyone_due(conn: Connection, now: datetime, every_hours: int | None) -> bool:
    """Whether an incremental run should rescore everyone: the last score stage that did is older
    than ``every_hours`` (or beyond the recent runs read). Decay moves every score a little each day
    and grades rank against every account, so rows no new data touched would otherwise keep
    yesterday's numbers until the next full run, which may be a week away."""
    if every_hours is None:
        return False
    last = last_stage_start(conn, "score", scope="everyone")
    return last is None or now - last >= timedelta(hours=every_hours)


@dataclass
class Touched:
    """Store ids new data touched since a moment (accounts not yet resolved to canonical ones)."""

    account_ids: set[int]
    person_ids: set[int]
    refit_account_ids: set[int]  # accounts whose own record changed: their people show their fit


def touched_since(conn: Connection, since: datetime) -> Touched:
    """What changed in the store after ``since`` (see the module docstring)."""
    return touched_by_matching(conn, since, touched_by_pulls(conn, since))


def touched_by_pulls(conn: Connection, since: datetime) -> Touched:
    """What the pulls changed after ``since``: touches, people, deals and accounts, and the accounts they name.

    Keys are matched with ``(crm, crm_id) IN (subquery)``, not joins: the only index on those
    columns starts with ``object``, so SQLite planned a join as one scan of every person of a CRM
    per changed touch (ten minutes for 50,000 changed touches on an M org; under a second this way).
    """
    def named(table: Any, crm: Any, crm_id: Any, where: Any) -> set[int]:
        keys = select(crm, crm_id).where(where, crm_id.is_not(None))
        return set(conn.execute(select(table.id).where(tuple_(table.crm, table.crm_id).in_(keys))).scalars())

    changed_acts = Activity.changed_at > since
    people = named(Person, Activity.crm, Activity.person_crm_id, changed_acts)
    accounts = named(Account, Activity.crm, Activity.account_crm_id, changed_acts)
    changed_people = Person.changed_at > since
    people |= set(conn.execute(select(Person.id).where(changed_people)).scalars())
    accounts |= named(Account, Person.crm, Person.account_crm_id, changed_people)
    accounts |= named(Account, Opportunity.crm, Opportunity.account_crm_id, Opportunity.changed_at > since)
    refit = set(conn.execute(select(Account.id).where(Account.changed_at > since)).scalars())
    return Touched(accounts | refit, people, refit)


def touched_by_matching(conn: Connection, since: datetime, by_pulls: Touched) -> Touched:
    """``by_pulls`` (:func:`touched_by_pulls` from the same ``since``) with what the match table and the cross-CRM
    links say changed after ``since``: a changed (or deleted) person's matched account, the people matched since
    and their accounts, both sides of a link made since."""
    accounts, people = set(by_pulls.account_ids), set(by_pulls.person_ids)
    accounts |= set(conn.execute(select(Match.account_id).join(Person, Person.id == Match.person_id)
                                 .where(Person.changed_at > since, Match.account_id.is_not(None))).scalars())
    for person_id, account_id in conn.execute(select(Match.person_id, Match.account_id)
                                              .where(Match.matched_at > since)):
        people.add(person_id)
        if account_id is not None:
            accounts.add(account_id)
    for a, c in conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)
                             .where(AccountLink.linked_at > since)):
        accounts |= {a, c}
    return Touched(accounts, people, set(by_pulls.refit_account_ids))


def positions(ids: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    """Positions in ``ids`` (store ids in ascending order, as the loaders read them) of the
    ``wanted`` ids present there; absent ones (deleted, or a linked company) are left out."""
    want = np.fromiter(wanted, dtype=np.int64)
    if len(ids) == 0 or len(want) == 0:
        return np.empty(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, want), len(ids) - 1)
    return at[ids[at] == want]


@dataclass(frozen=True)
class Scope:
    """Masks of the accounts and people an incremental run rescores and saves."""

    accounts: np.ndarray  # bool[n_accounts]
    people: np.ndarray  # bool[n_people]

    @property
    def account_rows(self) -> np.ndarray:
        return np.flatnonzero(self.accounts)

    @property
    def person_rows(self) -> np.ndarray:
        return np.flatnonzero(self.people)


def dirty_scope(
    touched: Touched,
    canonical: dict[int, int],
    account_ids: np.ndarray,
    person_ids: np.ndarray,
    person_account: np.ndarray,
    activities: ActivityColumns,
    extra_accounts: Collection[int] = (),
    extra_people_of: Collection[int] = (),
) -> Scope:
    """The dirty masks from store ids. ``canonical`` maps a linked company to the account it is
    scored as; ``extra_accounts`` (moved people's old accounts, relinked accounts) are dirty too;
    ``extra_people_of`` are accounts all of whose people are dirty (an admin's account resync)."""
    def canon(ids: Iterable[int]) -> list[int]:
        return [canonical.get(i, i) for i in ids]

    accounts = np.zeros(len(account_ids), dtype=bool)
    people = np.zeros(len(person_ids), dtype=bool)
    accounts[positions(account_ids, canon([*touched.account_ids, *extra_accounts]))] = True
    people[positions(person_ids, touched.person_ids)] = True
    whole = np.zeros(len(account_ids), dtype=bool)
    whole[positions(account_ids, canon([*touched.refit_account_ids, *extra_people_of]))] = True
    people |= gather(whole, person_account, False)
    # A dirty person's account, and wherever their touches count (persona weight, new touches).
    tied = person_account[people]
    accounts[tied[tied >= 0]] = True
    theirs = resolve_accounts(activities.take(gather(people, activities.person, False)), person_account)
    accounts[theirs[theirs >= 0]] = True
    return Scope(accounts, people)
