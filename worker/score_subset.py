"""Loading only what an incremental score stage needs: the dirty accounts and people, and what
their scores read, found and read with ``IN`` lists over the store's indexes instead of reading
every account, person and touch (78 of the 114 seconds of an L org's incremental score stage).

The dirty set is the one :func:`worker.score_scope.dirty_scope` defines, computed here from the
store rather than from loaded arrays. What is then read, so that every dirty entity's aggregates
are exactly those of a scoring of everyone:

- the dirty accounts, and every person tied to one (the match table, else the CRM's own link):
  breadth, personas, key person, known people;
- every touch that names a dirty account (its own key or a linked company's), and the people who
  made them: a touch naming an account counts there whoever made it;
- every touch of each of those people and of the dirty people: daily caps run per person and
  type over all of a person's touches, wherever they count;
- the accounts those people are tied to and those touches name ("context" accounts), so that each
  touch counts where a scoring of everyone counts it; they are scored along but never saved;
- the deals of the dirty accounts (deal history is a predictive feature).

What no subset can give (the fit learned from every labelled account, the cutoffs of percentile
grades) comes from the stored :class:`scoring.scores.PopulationState` (see
:mod:`worker.score_stage`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from config.scoring import ScoringConfig
from scoring.catalogue import TYPE_CODE
from scoring.columns import LoadReport
from scoring.inputs import EntityIndex, ScoringInputs, assemble_inputs
from store.cursor_rows import driver_batches, in_lists
from store.records import AccountRecord, OpportunityRecord, PersonRecord
from store.schema import DELETED_PEOPLE, Account, AccountLink, Activity, Match, Opportunity, Person
from worker.score_inputs import (
    _SCORED_PERSON_FIELDS,
    PARTITION_ROWS,
    TIED,
    KeyLookup,
    _Lookups,
    columns_from_arrays,
    epoch_seconds,
)
from worker.score_scope import Touched

# Past this share of all people, their touches are found by one scan of the table, not by index.
SCAN_SHARE = 0.1

_ACCOUNT_COLUMNS = [Account.__table__.c[f] for f in AccountRecord.__dataclass_fields__]
_OPPORTUNITY_COLUMNS = [Opportunity.__table__.c[f] for f in OpportunityRecord.__dataclass_fields__]
_PERSON_COLUMNS = [Person.__table__.c[f] for f in _SCORED_PERSON_FIELDS]

Key = tuple[str, str]


@dataclass(frozen=True)
class SubsetInputs:
    """Scoring inputs for part of the population, and which of their rows are dirty (to save)."""

    inputs: ScoringInputs
    account_rows: np.ndarray  # int64 rows of ``inputs`` accounts to save
    person_rows: np.ndarray  # int64 rows of ``inputs`` people to save


class _AccountKeys:
    """Every live account's key and the account it is scored as (a linked company counts for its
    canonical account): the small table that resolves what touches, deals and people name."""

    def __init__(self, conn: Connection) -> None:
        canonical = dict(conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all())
        rows = conn.execute(select(Account.id, Account.crm, Account.crm_id).where(Account.is_deleted.is_(False))).all()
        self.scored = {i for i, _, _ in rows if i not in canonical}
        self.canonical = canonical
        self.key_to_account: dict[Key, int] = {}
        self.keys_of: dict[int, list[Key]] = {}
        for account_id, crm, crm_id in rows:  # own keys first: an alias never hides an account's own key
            if account_id in self.scored:
                self.key_to_account[(crm, crm_id)] = account_id
        for account_id, crm, crm_id in rows:
            target = canonical.get(account_id)
            if target is not None and target in self.scored:
                self.key_to_account.setdefault((crm, crm_id), target)
        for key, account_id in self.key_to_account.items():
            self.keys_of.setdefault(account_id, []).append(key)
        self.aliases = {(crm, crm_id): canonical[i] for i, crm, crm_id in rows if i in canonical}

    def canon(self, ids: Iterable[int]) -> set[int]:
        """The scored accounts these store ids count as (deleted or unknown ones dropped)."""
        out = {self.canonical.get(i, i) for i in ids}
        return out & self.scored

    def keys(self, accounts: Iterable[int]) -> set[Key]:
        return {key for a in accounts for key in self.keys_of.get(a, ())}


class _People:
    """Person rows and their account, read on demand and kept, so each is read once per stage."""

    def __init__(self, conn: Connection, accounts: _AccountKeys) -> None:
        self.conn, self.accounts = conn, accounts
        self.rows: dict[int, tuple] = {}  # id -> scored fields, live people only
        self.by_key: dict[Key, int] = {}
        self.match: dict[int, int | None] = {}  # person id -> canonical account, None: tied to nothing

    def _add(self, rows: Iterable[tuple]) -> list[int]:
        added = []
        for row in rows:
            if row[0] not in self.rows:
                self.rows[row[0]] = tuple(row)
                self.by_key[(row[1], row[2])] = row[0]
                added.append(row[0])
        self._read_matches(added)
        return added

    def _read_matches(self, ids: list[int]) -> None:
        for chunk in in_lists(ids):
            query = select(Match.person_id, Match.account_id, Match.decision).where(Match.person_id.in_(chunk))
            for person_id, account_id, decision in self.conn.execute(query):
                tied = decision in TIED and account_id is not None
                self.match[person_id] = self.accounts.canonical.get(account_id, account_id) if tied else None

    def by_ids(self, ids: Iterable[int]) -> set[int]:
        """The live ones of these people (read if not yet)."""
        wanted = set(ids)
        missing = wanted - self.rows.keys()
        for chunk in in_lists(missing):
            self._add(self.conn.execute(select(*_PERSON_COLUMNS).where(Person.id.in_(chunk),
                                                                       Person.is_deleted.is_(False))))
        return wanted & self.rows.keys()

    def by_keys(self, keys: Iterable[Key]) -> set[int]:
        """Ids of the live people with these ``(crm, crm_id)`` keys. Looked up by crm, object and
        crm_id, the unique index's columns (crm_id alone has no index)."""
        wanted = set(keys)
        missing = {k for k in wanted if k not in self.by_key}
        if missing:
            objects = self.conn.execute(select(Person.crm, Person.object).distinct()).all()
            for crm in {crm for crm, _ in missing}:
                kinds = [o for c, o in objects if c == crm]
                for chunk in in_lists({crm_id for c, crm_id in missing if c == crm}):
                    rows = self.conn.execute(select(*_PERSON_COLUMNS).where(
                        Person.crm == crm, Person.object.in_(kinds), Person.crm_id.in_(chunk),
                        Person.is_deleted.is_(False)))
                    self._add(rows)
        return {self.by_key[k] for k in wanted if k in self.by_key}

    def account_of(self, person_id: int) -> int | None:
        """The scored account a (loaded) person rolls up to, as :func:`scoring.inputs.person_accounts`."""
        if person_id in self.match:
            account = self.match[person_id]
            return account if account in self.accounts.scored else None
        _, crm, _, kind, _, account_crm_id, _, _, converted_account_crm_id, _ = self.rows[person_id]
        crm_account = account_crm_id if kind == "contact" else converted_account_crm_id
        return self.accounts.key_to_account.get((crm, crm_account)) if crm_account else None

    def tied_to(self, accounts: Collection[int]) -> set[int]:
        """The live people who roll up to these scored accounts: by a tying match (to the account or
        a company linked to it), or by the CRM's own link when the match table has no row for them."""
        if not accounts:
            return set()
        store_ids = set(accounts) | {a for a, c in self.accounts.canonical.items() if c in accounts}
        candidates: set[int] = set()
        # ``|| ''`` keeps the decision from leading through its index (SQLite's idiom, the same in PostgreSQL):
        # without statistics, SQLite's planner would walk every tying match rather than these accounts'
        tied = Match.decision.concat("").in_(TIED)
        for chunk in in_lists(store_ids):
            candidates.update(self.conn.execute(select(Match.person_id).where(Match.account_id.in_(chunk),
                                                                             tied)).scalars())
        keys = self.accounts.keys(accounts)
        crm_ids = {crm_id for _, crm_id in keys}
        for column, position in ((Person.account_crm_id, 5), (Person.converted_account_crm_id, 8)):
            for chunk in in_lists(crm_ids):
                rows = self.conn.execute(select(*_PERSON_COLUMNS).where(column.in_(chunk),
                                                                        Person.is_deleted.is_(False)))
                linked = [r for r in rows if (r[1], r[position]) in keys]
                self._add(linked)
                candidates.update(r[0] for r in linked)
        return {p for p in self.by_ids(candidates) if self.account_of(p) in accounts}


class _Touches:
    """Touch rows read by person key or by account key (each key read once), or found by one
    sequential scan when the wanted people are a large share of everyone: past that share, fetching
    row after row through an index costs more than reading the table in order."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.parts: list[tuple[np.ndarray, ...]] = []  # (id, crm, type, seconds, person key, account key)
        self.people_done: set[Key] = set()
        self.accounts_done: set[Key] = set()
        table = Activity.__table__
        self._select = select(table.c.id, table.c.crm, table.c.activity_type, epoch_seconds(conn),
                              func.coalesce(table.c.person_crm_id, ""),
                              func.coalesce(table.c.account_crm_id, "")).where(
            table.c.is_deleted.is_(False), table.c.occurred_at.is_not(None))

    def _keep(self, rows: list[tuple]) -> None:
        if rows:
            self.parts.append(tuple(np.array(c) for c in zip(*rows, strict=True)))

    def _read(self, column: Any, keys: set[Key], done: set[Key], position: int) -> list[tuple]:
        missing = keys - done
        out: list[tuple] = []
        for chunk in in_lists({crm_id for _, crm_id in missing}):
            result = self.conn.execute(self._select.where(column.in_(chunk)))
            out.extend(r for r in result.cursor.fetchall() if (r[1], r[position]) in missing)
            result.close()
        self._keep(out)
        done |= missing
        return out

    def of_people(self, keys: set[Key]) -> list[tuple]:
        """The touches these people made (only those not read for them before)."""
        return self._read(Activity.__table__.c.person_crm_id, keys, self.people_done, 4)

    def naming(self, keys: set[Key]) -> None:
        """The touches that name these accounts' keys (only those not read for them before)."""
        self._read(Activity.__table__.c.account_crm_id, keys, self.accounts_done, 5)

    def scan(self, people: set[Key], accounts: set[Key]) -> None:
        """Every touch these people made or that names these accounts, in one pass over the table.
        Rows come straight from the driver's cursor (no result rows built for the millions that are
        left out; the columns need no conversion) and are kept by set lookups."""
        for rows in driver_batches(self.conn, self._select, PARTITION_ROWS):
            self._keep([r for r in rows if (r[1], r[4]) in people or (r[1], r[5]) in accounts])
        self.people_done |= people
        self.accounts_done |= accounts

    def columns(self) -> tuple[np.ndarray, ...]:
        """(crm, type, seconds, person key, account key) of every touch read once, in store id order
        (the order a full read has them in, so sums add up in the same order)."""
        if not self.parts:
            return tuple(np.empty(0, dtype=dtype) for dtype in (str, str, np.int64, str, str))
        joined = [np.concatenate([p[i] for p in self.parts]) for i in range(6)]
        _, first = np.unique(joined[0], return_index=True)
        return tuple(c[first] for c in joined[1:])

    def makers(self, accounts: set[Key]) -> set[Key]:
        """``(crm, person key)`` of the people who made the touches read that name these accounts."""
        out: set[Key] = set()
        lookup = KeyLookup(dict.fromkeys(accounts, 0))
        for _, crm, _, _, person, account in self.parts:
            named = lookup.find(crm, account) >= 0
            out.update(zip(crm[named].tolist(), person[named].tolist(), strict=True))
        return {k for k in out if k[1]}

    def pairs(self, position: int) -> set[Key]:
        """Distinct ``(crm, person key)`` (position 4) or ``(crm, account key)`` (5) of the touches read."""
        out: set[Key] = set()
        for part in self.parts:
            out.update(zip(part[1].tolist(), part[position].tolist(), strict=True))
        out.discard(("", ""))
        return {k for k in out if k[1]}


def load_subset_inputs(
    conn: Connection, config: ScoringConfig, touched: Touched, *,
    extra_accounts: Collection[int] = (), extra_people_of: Collection[int] = (),
) -> SubsetInputs:
    """The inputs of the dirty entities (see the module docstring) and which rows are dirty."""
    accounts = _AccountKeys(conn)
    people = _People(conn, accounts)
    touches = _Touches(conn)

    # The dirty set, as worker.score_scope.dirty_scope defines it.
    dirty_accounts = accounts.canon([*touched.account_ids, *extra_accounts])
    whole = accounts.canon([*touched.refit_account_ids, *extra_people_of])
    dirty_people = people.by_ids(touched.person_ids) | people.tied_to(whole)
    person_keys = {people.rows[p][1:3] for p in dirty_people}
    for p in dirty_people:
        account = people.account_of(p)
        if account is not None:
            dirty_accounts.add(account)
    by_key = people.by_key
    for _, crm, kind, _ts, person_crm_id, account_crm_id in touches.of_people(person_keys):
        if kind not in TYPE_CODE:
            continue
        named = accounts.key_to_account.get((crm, account_crm_id)) if account_crm_id else None
        account = named if named is not None else people.account_of(by_key[(crm, person_crm_id)])
        if account is not None:
            dirty_accounts.add(account)

    # What their scores read.
    dirty_keys = accounts.keys(dirty_accounts)
    known = dirty_people | people.tied_to(dirty_accounts)
    if len(known) > SCAN_SHARE * live_people(conn):
        touches.scan({people.rows[p][1:3] for p in known}, dirty_keys)
    else:
        touches.of_people({people.rows[p][1:3] for p in known})
        touches.naming(dirty_keys)
    makers = touches.makers(dirty_keys)
    everyone = known | people.by_keys(makers)
    touches.of_people({people.rows[p][1:3] for p in everyone})
    context = {people.account_of(p) for p in everyone}
    context |= {accounts.key_to_account.get(key) for key in touches.pairs(5)}
    loaded_accounts = dirty_accounts | (context - {None})

    account_records = [AccountRecord(*r) for chunk in in_lists(loaded_accounts)
                       for r in conn.execute(select(*_ACCOUNT_COLUMNS).where(Account.id.in_(chunk)))]
    account_records.sort(key=lambda a: a.id)
    person_records = [_person(people.rows[p]) for p in sorted(everyone)]
    opportunities = []
    wanted_deals = accounts.keys(dirty_accounts)
    for chunk in in_lists({crm_id for _, crm_id in wanted_deals}):
        query = select(*_OPPORTUNITY_COLUMNS).where(Opportunity.account_crm_id.in_(chunk),
                                                    Opportunity.is_deleted.is_(False))
        opportunities.extend(OpportunityRecord(*r) for r in conn.execute(query) if (r[1], r[3]) in wanted_deals)
    opportunities.sort(key=lambda o: o.id)

    index = EntityIndex.build(account_records, person_records, accounts.aliases)
    report = LoadReport()
    lookups = _Lookups(index)
    activities = columns_from_arrays(*touches.columns(), lookups, report)
    matches = {p: people.match[p] for p in everyone if p in people.match}
    inputs = assemble_inputs(account_records, person_records, activities, report, opportunities, config, index,
                             matches)
    return SubsetInputs(inputs, _rows(inputs.account_ids, dirty_accounts), _rows(inputs.person_ids, dirty_people))


def _person(row: tuple) -> PersonRecord:
    pid, crm, crm_id, kind, title, account_crm_id, is_converted, converted_at, converted_account_crm_id, created = row
    return PersonRecord(pid, crm, crm_id, kind, title=title, account_crm_id=account_crm_id,
                        is_converted=is_converted, converted_at=converted_at,
                        converted_account_crm_id=converted_account_crm_id, created_at=created)


def live_people(conn: Connection) -> int:
    """How many people are not deleted: every person, counted off the smallest index, less the deleted ones, few and
    indexed apart (``ix_people_deleted``). Testing every person's flag read the whole table: 0.39 s on the L org's
    1.8 million people, against 0.04 s."""
    everyone = conn.execute(select(func.count()).select_from(Person)).scalar_one()
    return everyone - conn.execute(select(func.count()).select_from(Person).where(DELETED_PEOPLE)).scalar_one()


def _rows(ids: np.ndarray, wanted: Collection[int]) -> np.ndarray:
    want = np.array(sorted(wanted), dtype=np.int64)
    if len(ids) == 0 or len(want) == 0:
        return np.empty(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(ids, want), len(ids) - 1)
    return at[ids[at] == want]
