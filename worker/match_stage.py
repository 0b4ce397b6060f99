"""The match stage: store -> :mod:`matching` (pure) -> ``matches`` and ``account_links``.

The matcher itself knows nothing of the database; this module is the edge that feeds it plain
records and writes back only what changed. Writing only changes matters twice: a rematch of a
million people that moves a thousand of them writes a thousand rows, and the people whose account
moved are exactly the ones scoring must recompute.

Admin pins are read from ``matches.pinned`` and handed to the matcher, which never changes them.

An incremental run rematches only the people whose match can have moved since the last match
stage (see :func:`people_to_rematch`): rematching a million people takes minutes, and a run every
few minutes that changed a thousand records must not. The full run (nightly by default)
rematches everyone, which also picks up the rarer, indirect moves.

People go through the matcher in chunks of ``MATCH_CHUNK``, each with its own previous matches,
and each chunk's changes are written before the next is read: the account index is built once,
but a full rematch of 1.7 million people never holds 1.7 million records, results and stored
rows at once (it held 6 GB that way). What the contact-domain signal and the most-contacts
tie-breaker read of the existing contacts (how many of an account's contacts give each email
domain) is kept between runs (:mod:`worker.kept_contacts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Connection, Engine, func, select

from config.matching import MatchingConfig
from matching.claims import Claims
from matching.domains import email_domain
from matching.engine import Matcher
from matching.index import Features
from matching.inputs_key import match_inputs_key
from matching.link import Linker, named_salesforce_id, salesforce_linker
from matching.names import NameNormalizer
from matching.parallel import match_in_processes
from matching.types import AccountLinkResult, MatchResult, Pin, PreviousMatch
from store.cursor_rows import driver_batches
from store.records import AccountRecord, PersonRecord
from store.schema import ACCOUNT_TOUCHES, DELETED_PEOPLE, Account, AccountLink, Activity, Match, Person, Run
from store.types import utcnow
from store.upsert import upsert
from worker.executor import StopToken
from worker.forked import Forked
from worker.gc_pause import cyclic_gc_paused
from worker.kept_contacts import KeptReadings, contact_domains
from worker.match_features import KeptFeatures, features_by_account, keep_new_features, load_kept_features

if TYPE_CHECKING:
    from worker.match_read_ahead import MatchReadAhead

ACCOUNT_COLUMNS = [Account.__table__.c[f] for f in AccountRecord.__dataclass_fields__]
_PERSON_COLUMNS = [Person.__table__.c[f] for f in PersonRecord.__dataclass_fields__]
_WRITE_BATCH = 10_000
_READ_BATCH = 50_000
# Processes that build the index and match a chunk of people: the stage runs alone in its run, and forked
# workers share the index copy-on-write (matching.parallel). Small jobs stay in one process (a fork costs more
# than it saves); the index build has its own threshold (matching.index).
WORKERS = max(1, min(os.cpu_count() or 1, 4))
_PARALLEL_PEOPLE = 20_000
# People matched and written per chunk: big enough that per-chunk queries cost nothing, small
# enough that a chunk's records and results stay far below the account index in memory.
MATCH_CHUNK = 50_000


@dataclass
class MatchOutcome:
    """Counts for the run record, and who moved (for incremental rescoring)."""

    people: int = 0  # people matched by this stage (everyone, or those an incremental run rematched)
    incremental: bool = False
    started_at: datetime = field(default_factory=utcnow)  # before anything was read: the next run's "since"
    by_decision: dict[str, int] = field(default_factory=dict)
    changed_people: set[int] = field(default_factory=set)  # person ids whose account changed
    # The accounts moved people left (the match table no longer says so, and their roll-ups lost
    # someone), and both sides of every link added, changed or removed: incremental scoring needs them.
    left_accounts: set[int] = field(default_factory=set)
    relinked_accounts: set[int] = field(default_factory=set)
    links: int = 0
    changed_links: int = 0
    features_read: int = 0  # accounts whose matching features were read anew (not kept from an earlier run)
    read_ahead: bool = False  # the accounts and contacts read while the pulls ran were taken
    # A stop request ended the matching between two chunks: the chunks matched are committed, the links were not
    # refreshed, and the next run's match stage works from the last one that succeeded (this one did not).
    stopped: bool = False
    # Every live account as the stage read them (None: not read), for the score stage after it: nothing in
    # between writes accounts, and reading them again cost the L org's increment 1.9 s.
    accounts: list[AccountRecord] | None = None
    # wall seconds per phase: what to look at first when a run is slow
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the wall time of the block to ``phase_seconds[name]``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[name] = self.phase_seconds.get(name, 0.0) + time.perf_counter() - started

    def add(self, chunk: MatchOutcome) -> None:
        """Fold one chunk's counts and moves into this outcome."""
        self.people += chunk.people
        for decision, n in chunk.by_decision.items():
            self.by_decision[decision] = self.by_decision.get(decision, 0) + n
        self.changed_people |= chunk.changed_people
        self.left_accounts |= chunk.left_accounts

    @property
    def matched(self) -> int:
        """People tied to an account: written auto matches, pins and the CRM's own links."""
        return sum(n for d, n in self.by_decision.items() if d in ("auto", "pinned", "crm"))


def load_accounts(conn: Connection) -> list[AccountRecord]:
    # Columns are selected in the record's field order: positional construction is 10x faster
    # than looking each field up by name, which matters at a million people.
    rows = conn.execute(select(*ACCOUNT_COLUMNS).where(Account.is_deleted.is_(False)).order_by(Account.id))
    return [AccountRecord(*r) for r in rows]


def load_people(conn: Connection, ids: Sequence[int]) -> list[PersonRecord]:
    """These live people (``ids`` sorted), in id order."""
    query = select(*_PERSON_COLUMNS).where(Person.is_deleted.is_(False)).order_by(Person.id)
    return [PersonRecord(*r) for start in range(0, len(ids), _WRITE_BATCH)
            for r in conn.execute(query.where(Person.id.in_(ids[start:start + _WRITE_BATCH])))]


def _people_chunks(conn: Connection, only_ids: Sequence[int] | None) -> Iterator[list[PersonRecord]]:
    """Live people in id order, ``MATCH_CHUNK`` at a time: everyone, or the sorted ``only_ids``."""
    if only_ids is not None:
        for start in range(0, len(only_ids), MATCH_CHUNK):
            yield load_people(conn, only_ids[start:start + MATCH_CHUNK])
        return
    query = select(*_PERSON_COLUMNS).where(Person.is_deleted.is_(False)).order_by(Person.id).limit(MATCH_CHUNK)
    after = 0
    while True:
        chunk = [PersonRecord(*r) for r in conn.execute(query.where(Person.id > after))]
        if not chunk:
            return
        yield chunk
        after = chunk[-1].id


def last_match_start(conn: Connection, recent_runs: int = 200) -> datetime | None:
    """When the latest successful match stage started; None if no recent run matched.

    Its ``started_at`` detail, else (runs recorded before the stage noted it) its run's start plus
    the seconds of the stages before it: a little early, never late.
    """
    rows = conn.execute(select(Run.started_at, Run.stages).where(Run.started_at.is_not(None))
                        .order_by(Run.id.desc()).limit(recent_runs))
    for run_started_at, stages in rows:
        stage = (stages or {}).get("match") or {}
        if stage.get("state") != "succeeded":
            continue
        started_at = (stage.get("detail") or {}).get("started_at")
        if started_at:
            return datetime.fromisoformat(started_at)
        before = sum(s.get("seconds", 0) for s in stages.values() if s.get("seq", 0) < stage.get("seq", 0))
        return run_started_at + timedelta(seconds=before)
    return None


def people_to_rematch(conn: Connection, since: datetime) -> tuple[list[int], list[int]]:
    """The people whose match can have moved since ``since``, and the accounts that changed.

    - people never matched (new), and people whose own record changed (``changed_at``: a CRM
      stamp bumped by our own writeback is not a change) in a field the matcher reads (their
      :func:`~matching.inputs_key.match_inputs_key` differs from the one stored with the match:
      a new title or lead status moves nobody);
    - when an account appeared, changed or was deleted: the people matched or proposed to it.
      The people no account holds that it could now claim are found by :func:`claimable_people`
      once the index is built.

    Left for the full run: a person held by one account whom a new or renamed account would
    now win (the matcher's stability rule keeps most of them anyway), and moves through other
    people's records (a new contact's email domain, the recent-activity tie-breaker).
    """
    live = Person.is_deleted.is_(False)
    changed_accounts = list(conn.execute(select(Account.id).where(Account.changed_at > since)).scalars())
    unmatched = select(Person.id).outerjoin(Match, Match.person_id == Person.id).where(live, Match.person_id.is_(None))
    ids = set(conn.execute(unmatched).scalars())
    changed = select(*_PERSON_COLUMNS, Match.inputs_key).join(Match, Match.person_id == Person.id).where(
        live, Person.changed_at > since)
    for row in conn.execute(changed):
        person = PersonRecord(*row[:-1])
        if match_inputs_key(person) != row[-1]:
            ids.add(person.id)
    for start in range(0, len(changed_accounts), _WRITE_BATCH):
        ids.update(conn.execute(select(Match.person_id).join(Person, Person.id == Match.person_id).where(
            live, Match.account_id.in_(changed_accounts[start:start + _WRITE_BATCH]))).scalars())
    return sorted(ids), changed_accounts


UNHELD = ("review", "none")  # the decisions that tie a person to no account
# What the claims read of an unheld person: CRM, email host, website, normalized company name.
UnheldPerson = tuple[str, str, str | None, str]


def claimable_people(conn: Connection, matcher: Matcher, account_ids: Sequence[int],
                     unheld: Mapping[int, UnheldPerson] | None = None) -> set[int]:
    """The people no account holds (review and none decisions) whom these accounts could claim. ``unheld``: those
    people as read beforehand (:func:`read_unheld`), rather than read here."""
    if not account_ids:
        return set()
    claims = Claims(matcher, account_ids)
    if unheld is not None:
        return {pid for pid, (crm, host, website, name) in unheld.items()
                if claims.may_claim_person_read(crm, host, website, name)}
    query = select(Person.id, Person.crm, Person.email, Person.website, Person.company).join(
        Match, Match.person_id == Person.id).where(Person.is_deleted.is_(False), Match.decision.in_(UNHELD))
    return {pid for rows in driver_batches(conn, query, _READ_BATCH) for pid, crm, email, website, company in rows
            if claims.may_claim(crm, email, website, company)}


def read_unheld(conn: Connection, config: MatchingConfig, where: Sequence[ColumnElement[bool]] = (),
                into: dict[int, UnheldPerson] | None = None) -> dict[int, UnheldPerson]:
    """The people no account holds, as :func:`claimable_people` reads them, into ``into`` (a new map by default).
    ``where`` limits the people read: then those of them held by an account now, or deleted, leave ``into``."""
    unheld: dict[int, UnheldPerson] = {} if into is None else into
    normalizer = NameNormalizer(config.extra_legal_terms, config.abbreviations)  # the matcher's (Matcher.__init__)
    names: dict[str | None, str] = {}  # a company's people type its name alike
    query = select(Person.id, Person.crm, Person.email, Person.website, Person.company, Person.is_deleted,
                   Match.decision).join(Match, Match.person_id == Person.id).where(*where)
    if not where:
        query = query.where(Person.is_deleted.is_(False), Match.decision.in_(UNHELD))
    for rows in driver_batches(conn, query, _READ_BATCH):
        for pid, crm, email, website, company, deleted, decision in rows:
            if deleted or decision not in UNHELD:
                unheld.pop(pid, None)
                continue
            name = names.get(company)
            if name is None:
                name = names[company] = normalizer.normalize(company) if company else ""
            unheld[pid] = (crm, email_domain(email), website, name)
    return unheld


def decision_counts(conn: Connection) -> dict[str, int]:
    """Live people per match decision, as the match table holds them after this stage.

    Every match counted per decision from ``ix_matches_decision`` alone, less the deleted people's (a few,
    found through ``ix_people_deleted``): joining every match with its person to test it took 2.8 s of the
    L org's 1% increment. A match goes with its person (the foreign key cascades), so the two agree.
    """
    counts = dict(conn.execute(select(Match.decision, func.count()).group_by(Match.decision)).all())
    deleted = conn.execute(select(Match.decision, func.count()).where(
        Match.person_id.in_(select(Person.id).where(DELETED_PEOPLE))).group_by(Match.decision))
    for decision, n in deleted:
        counts[decision] -= n
    return {decision: int(n) for decision, n in counts.items() if n}


def load_previous(
    conn: Connection, person_ids: Sequence[int]
) -> tuple[dict[int, PreviousMatch], dict[int, Pin], dict[int, tuple]]:
    """These people's last matches (for the stability rule), admin pins, and stored rows (for diffing)."""
    previous: dict[int, PreviousMatch] = {}
    pins: dict[int, Pin] = {}
    stored: dict[int, tuple] = {}
    query = select(Match.person_id, Match.account_id, Match.decision, Match.confidence, Match.method,
                   Match.reason, Match.pinned, Match.pinned_by, Match.inputs_key)
    rows = (row for start in range(0, len(person_ids), _WRITE_BATCH)
            for row in conn.execute(query.where(Match.person_id.in_(person_ids[start:start + _WRITE_BATCH]))))
    for person_id, account_id, decision, confidence, method, reason, pinned, pinned_by, inputs_key in rows:
        previous[person_id] = PreviousMatch(account_id, confidence, decision)
        stored[person_id] = (account_id, decision, confidence, method, reason, inputs_key)
        if pinned:
            pins[person_id] = Pin(account_id, pinned_by)
    return previous, pins, stored


def last_activity_by_account(conn: Connection, accounts: Sequence[AccountRecord]) -> dict[int, datetime]:
    """Most recent touch per account id, for the recent-activity tie-breaker.

    Read from the ``ix_activities_account_last`` index alone (its columns and condition are this query's):
    scanning the touches themselves took 4 of a large org's 6 seconds here. On SQLite, each account's latest
    is one descent of that index (0.7 s for the L org's 197,000 accounts) rather than a pass over all its 7
    million entries grouped by account (1.9 s); PostgreSQL keeps the grouped pass, which it runs as one scan.
    """
    if conn.dialect.name == "sqlite":
        latest = (select(func.max(Activity.occurred_at))
                  .where(Activity.crm == Account.crm, Activity.account_crm_id == Account.crm_id, ACCOUNT_TOUCHES)
                  .correlate(Account).scalar_subquery())
        live = {a.id for a in accounts}
        return {account_id: last for account_id, last in conn.execute(select(Account.id, latest))
                if last is not None and account_id in live}
    ids = {(a.crm, a.crm_id): a.id for a in accounts}
    rows = conn.execute(
        select(Activity.crm, Activity.account_crm_id, func.max(Activity.occurred_at))
        .where(ACCOUNT_TOUCHES)
        .group_by(Activity.crm, Activity.account_crm_id)
    )
    out: dict[int, datetime] = {}
    for crm, crm_id, last in rows:
        account_id = ids.get((crm, crm_id))
        if account_id is not None and last is not None:
            out[account_id] = last
    return out


def _match_row(result: MatchResult, now: datetime, pinned: bool, inputs_key: str | None) -> dict:
    return {
        "person_id": result.person_id,
        "account_id": result.account_id,
        "decision": result.decision,
        "method": result.method,
        "confidence": result.confidence,
        "reason": result.reason,
        "reasons": result.reasons,
        "pinned": pinned,
        "pinned_by": result.pinned_by,
        "matched_at": now,
        "inputs_key": inputs_key,
    }


def _written_account(decision: str | None, account_id: int | None) -> int | None:
    """The account a match actually ties the person to (review and none tie them to nothing)."""
    return account_id if decision in ("auto", "pinned", "crm") else None


def write_matches(
    conn: Connection, results: Sequence[MatchResult], stored: dict[int, tuple], pins: dict[int, Pin],
    inputs_keys: Mapping[int, str] | None = None,
) -> MatchOutcome:
    """Write the results that differ from the stored rows (``inputs_keys``: person id -> the
    fingerprint of what they were matched on, kept so later runs know when to rematch them)."""
    outcome = MatchOutcome(people=len(results))
    now = utcnow()
    rows = []
    keys = inputs_keys or {}
    for r in results:
        outcome.by_decision[r.decision] = outcome.by_decision.get(r.decision, 0) + 1
        before = stored.get(r.person_id)
        key = keys.get(r.person_id)
        after = (r.account_id, r.decision, r.confidence, r.method, r.reason, key)
        if before == after:
            continue
        left = _written_account(before[1] if before else None, before[0] if before else None)
        if left != _written_account(r.decision, r.account_id):
            outcome.changed_people.add(r.person_id)
            if left is not None:
                outcome.left_accounts.add(left)
        rows.append(_match_row(r, now, r.person_id in pins, key))
    for start in range(0, len(rows), _WRITE_BATCH):
        # every row written has a new matched_at, which an index reads (see store.upsert)
        upsert(conn, Match.__table__, rows[start:start + _WRITE_BATCH], key=("person_id",), indexed_apart=False)
    return outcome


def cross_crm_links(conn: Connection, accounts: Sequence[AccountRecord], config: MatchingConfig,
                    changed: Sequence[int] | None) -> list[AccountLinkResult]:
    """The cross-CRM link of every HubSpot company that is a Salesforce account (see :func:`link_accounts`), for a
    stage that built no matcher."""
    return link_accounts(accounts, config, changed, None, stored_links(conn) if changed is not None else {})


def stored_links(conn: Connection) -> dict[int, AccountLinkResult]:
    """HubSpot company id -> its stored link."""
    return {row.account_id: AccountLinkResult(row.account_id, row.canonical_account_id, row.method or "",
                                              row.confidence or 0.0)
            for row in conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id,
                                           AccountLink.method, AccountLink.confidence))}


# How a stored link that came from the Salesforce id the company names says so (matching.link.Linker.link).
BY_NAMED_ID = "salesforceaccountid"


def link_accounts(accounts: Sequence[AccountRecord], config: MatchingConfig, changed: Sequence[int] | None,
                  matcher: Matcher | None, stored: Mapping[int, AccountLinkResult],
                  features: Mapping[int, Features] | None = None) -> list[AccountLinkResult]:
    """The cross-CRM link of every HubSpot company that is a Salesforce account.

    With ``changed`` (an incremental run: the accounts that changed since the last match stage),
    only the companies those changes can affect are linked again: a changed company, one linked to
    a changed account or naming its Salesforce id, and, among those not linked by the Salesforce id
    they name, one whose domain or name blocking now offers a changed account. Every other company
    keeps its ``stored`` link: linking all of them again took half a minute on a large org for each
    account edit. A company linked by the id it names keeps that link while neither it nor that
    account changes, whatever other accounts come close: the id is tried first. On the L org that
    spares the blocking test of 58,000 of its 97,000 companies.

    ``matcher``: the match stage's, built over ``accounts``, which the linker uses rather than index the
    Salesforce accounts again (see :class:`~matching.link.Linker`); ``features`` (account id -> index
    features) are that matcher's, which spare the changed accounts' claims reading each company's domain
    and name again (3 s on a large org).
    """
    hubspot = [a for a in accounts if a.crm == "hubspot"]
    salesforce = [a for a in accounts if a.crm == "salesforce"]
    if not hubspot or not salesforce:
        return []
    linker = Linker(matcher) if matcher is not None else salesforce_linker(salesforce, config)
    if changed is None:
        return [link for company in hubspot if (link := linker.link(company)) is not None]
    changed_ids = set(changed)
    changed_sf_ids = {a.crm_id for a in salesforce if a.id in changed_ids}
    claims = Claims(linker.matcher, changed_ids)
    links: list[AccountLinkResult] = []
    for company in hubspot:
        old = stored.get(company.id)
        again = (company.id in changed_ids or (old is not None and old.canonical_account_id in changed_ids)
                 or named_salesforce_id(company) in changed_sf_ids
                 or ((old is None or old.method != BY_NAMED_ID) and _may_claim(claims, company, features)))
        link = linker.link(company) if again else old
        if link is not None:
            links.append(link)
    return links


def _may_claim(claims: Claims, company: AccountRecord, features: Mapping[int, Features] | None) -> bool:
    """Whether blocking would offer one of the claimed Salesforce accounts to this HubSpot company."""
    read = features.get(company.id) if features is not None else None
    if read is None:
        return claims.may_claim("salesforce", None, company.domain or company.website, company.name)
    name, _legal, _latin, _host, reg = read[:5]  # free mail already left out (matching.index._features)
    return claims.may_claim_read("salesforce", (reg,), name)


def write_links(conn: Connection, links: Sequence[AccountLinkResult]) -> tuple[int, set[int]]:
    """Replace the cross-CRM links with the current ones; returns how many changed, and the
    accounts on either side of a changed link (old and new canonical accounts included)."""
    current = {row.account_id: (row.canonical_account_id, row.method)
               for row in conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id,
                                              AccountLink.method))}
    wanted = {link.account_id: link for link in links}
    gone = [a for a in current if a not in wanted]
    if gone:
        conn.execute(AccountLink.__table__.delete().where(AccountLink.account_id.in_(gone)))
    now = utcnow()
    rows = [
        {"account_id": link.account_id, "canonical_account_id": link.canonical_account_id, "method": link.method,
         "confidence": link.confidence, "linked_at": now}
        for link in links
        if current.get(link.account_id) != (link.canonical_account_id, link.method)
    ]
    if rows:
        upsert(conn, AccountLink.__table__, rows, key=("account_id",))
    touched = {a for a in gone} | {current[a][0] for a in gone}
    for row in rows:
        touched |= {row["account_id"], row["canonical_account_id"]}
        if row["account_id"] in current:
            touched.add(current[row["account_id"]][0])
    return len(rows) + len(gone), touched


def run_match_stage(
    engine: Engine, config: MatchingConfig, *, only_people: Iterable[int] | None = None, incremental: bool = False,
    ahead: MatchReadAhead | None = None, stop: StopToken | None = None,
) -> MatchOutcome:
    """Match people and refresh cross-CRM links, committed in steps: what the index keeps for later runs, each
    chunk of people's matches as it is written, then the links. ``stop``: checked after each chunk, as a pull
    checks it after each batch (a full run's matching of the L org took 263 s); see ``MatchOutcome.stopped``.

    On SQLite a transaction holds the store's one write lock from its first write, and everything else that
    writes (an admin's trigger, the lock's heartbeat) waits for it: in one transaction, the L org's full run held
    it for 286 s. In steps, it is held while a chunk's matches are written, not while the next chunk is matched.
    A stage that fails part way loses nothing by it: the next run rematches everyone changed since the last
    successful match stage, as it would after a rollback, and the chunks committed are right as they are.

    Everyone by default; ``only_people``; or, ``incremental``, those whose match can have moved
    since the last successful match stage (everyone when there was none), with the cross-CRM
    links recomputed only when an account changed. ``ahead``: the accounts and contacts read while the pulls
    ran (:mod:`worker.match_read_ahead`), of which only what changed since is read again (not in a rematch of
    everyone, which reads every contact).
    """
    started_at = utcnow()
    outcome = MatchOutcome()
    phase = outcome.phase
    # Nothing the stage builds forms a reference cycle, and it builds millions of objects (contacts, the index,
    # results): automatic full collections walking them all cost seconds, on every run.
    with engine.connect() as conn, cyclic_gc_paused(), ExitStack() as stack:  # what is not committed rolls back
        links_job: Forked[list[AccountLinkResult]] | None = None
        relink = True
        changed_accounts: list[int] = []
        with phase("scope"):
            if incremental and only_people is None:
                since = last_match_start(conn)
                if since is not None:
                    only_people, changed_accounts = people_to_rematch(conn, since)
                    relink = bool(changed_accounts)
        wanted = None if only_people is None else sorted(set(only_people))
        if wanted is None:
            ahead = None
        outcome.read_ahead = ahead is not None
        with phase("read"):
            read = only_people is None or bool(only_people) or relink
            kept_read: KeptFeatures | None = None
            contacts_read: KeptReadings | None = None
            unheld: dict[int, UnheldPerson] | None = None
            if ahead is not None:
                accounts, kept_read, contacts_read, unheld = ahead.take(conn, config)
            else:
                accounts = load_accounts(conn) if read else []
            outcome.accounts = accounts if read or ahead is not None else None
        features: Mapping[int, Features] | None = None
        if wanted is None or wanted or changed_accounts:
            with phase("read"):
                # everyone's reading of them kept between runs: only a full rematch reads every contact again
                contacts = contact_domains(conn, config, reuse=wanted is not None, ahead=contacts_read,
                                           changed_since=ahead.changed_since if ahead is not None else None)
                kept = kept_read if kept_read is not None else load_kept_features(conn, accounts, config)
                del kept_read, contacts_read
                last_activity = last_activity_by_account(conn, accounts)
            with phase("index"):
                matcher = Matcher(accounts, config, contact_domains=contacts, workers=WORKERS,
                                  last_activity=last_activity, known_features=kept.valid, keep_features=True)
                del contacts, last_activity  # read into the index
                outcome.features_read = keep_new_features(conn, matcher, kept)
                del kept
                features = features_by_account(matcher) if relink else None
                conn.commit()  # the features and copies kept: not held through the matching
            if relink:  # computed beside the claims and the matching, which leave a core idle (worker.forked)
                changed = changed_accounts or None
                job = partial(link_accounts, accounts, config, changed, matcher,
                              stored_links(conn) if changed is not None else {}, features)
                links_job = stack.enter_context(Forked(job))
                del job
            if wanted is not None and changed_accounts:
                with phase("claims"):
                    wanted = sorted(set(wanted) | claimable_people(conn, matcher, changed_accounts, unheld))
            del unheld
            with phase("match"):
                for people in _people_chunks(conn, wanted):
                    previous, pins, stored = load_previous(conn, [p.id for p in people])
                    workers = WORKERS if len(people) >= _PARALLEL_PEOPLE else 1
                    results = match_in_processes(matcher, people, previous, pins, workers=workers)
                    keys = {p.id: match_inputs_key(p) for p in people}
                    outcome.add(write_matches(conn, results, stored, pins, keys))
                    conn.commit()
                    if stop is not None and stop.is_set():
                        outcome.stopped = True
                        break
                del matcher  # the links job keeps its own reference (without fork it runs when its result is asked)
            if outcome.stopped:
                outcome.started_at = started_at
                return outcome  # everything written is committed; leaving the block stops the links job
        outcome.started_at = started_at
        outcome.incremental = only_people is not None
        if outcome.incremental:
            with phase("match"):
                outcome.by_decision = decision_counts(conn)
        with phase("links"):  # with the links computed beside the matching: the wait for them, and their write
            if relink:
                links = (links_job.result() if links_job is not None
                         else cross_crm_links(conn, accounts, config, changed_accounts or None))
                del features
                outcome.changed_links, outcome.relinked_accounts = write_links(conn, links)
                outcome.links = len(links)
            else:
                outcome.links = conn.execute(select(func.count()).select_from(AccountLink)).scalar_one()
        committing = time.perf_counter()
        conn.commit()
    outcome.phase_seconds["commit"] = time.perf_counter() - committing
    return outcome
