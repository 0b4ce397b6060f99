"""Resolving touches' CRM keys to the store ids of their person and account, once, in the database.

A touch names its person and account by CRM key (``person_crm_id``, ``account_crm_id``), as the CRM
gives them, and may land before the record it names. The score stage reads every touch of an org
(5.9 million on an L org); turning each one's two string keys into entities in Python took it 12 of
its 37 CPU seconds of loading, every run. So the keys are resolved here, by index lookups in the
database, for the touches not resolved yet: after a pull that is the touches it added or whose keys
it changed (the upsert voids a resolved id when its key changes), plus the few that name a record
the store does not hold (yet). Each pull stage resolves its CRM's touches as it ends (about 2 CPU s
for 90,000 touches, while the other CRM's pull still waits on its API), and the score stage
whatever is left, before its own transaction.

The work is cut into short transactions of ``CHUNK`` touches: a first pull of millions of touches
resolves them in minutes, and one transaction that long would hold SQLite's single write lock past
the busy timeout of the other CRM's pull and of the run lock's heartbeat. Each transaction names
its touches by id, and nothing else in its ``WHERE`` may lead SQLite to an index: given "unresolved"
and the CRM, its planner (with no statistics) chose the partial index of every unresolved touch
and scanned all of them for each chunk's ids. On the L org's first pull, 5.5 million unresolved
touches, a chunk then held the write lock for over a minute and the HubSpot pull beside it failed
(``database is locked``).

A key names no object (a Salesforce id is a lead's or a contact's; HubSpot's are per object type):
where two records of one CRM share it, the live one with the highest id is taken, as the score
stage's own key lookup takes the last live record read in id order.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, Table, select, update

from store.schema import ACCOUNT_UNRESOLVED, PERSON_UNRESOLVED, Account, Activity, Person

CHUNK = 20_000  # touches per transaction (bound parameters: SQLite allows 32,766): well under a second of the lock


def _resolved_id(target: Table, key: ColumnElement) -> ColumnElement:
    return (select(target.c.id).where(target.c.crm == Activity.__table__.c.crm, target.c.crm_id == key)
            .order_by(target.c.is_deleted, target.c.id.desc()).limit(1).scalar_subquery())


def resolve_touch_refs(engine: Engine, crm: str | None = None, chunk: int = CHUNK) -> tuple[int, int]:
    """Fill in ``person_ref`` and ``account_ref`` where they are unknown and the store holds the record
    named (of one CRM's touches, or all), committing every ``chunk`` touches; returns how many touches
    got a person and an account."""
    touches = Activity.__table__
    of_crm = [] if crm is None else [touches.c.crm == crm]
    sides = ((touches.c.person_ref, touches.c.person_crm_id, Person.__table__, PERSON_UNRESOLVED),
             (touches.c.account_ref, touches.c.account_crm_id, Account.__table__, ACCOUNT_UNRESOLVED))
    with engine.connect() as conn:  # each side read from its own partial index
        pending = sorted({i for *_, unresolved in sides
                          for i in conn.execute(select(touches.c.id).where(unresolved, *of_crm)).scalars()})
    counts = [0, 0]
    for begin in range(0, len(pending), chunk):
        # Its own touches by id, not an id range: the other CRM's pull resolves its own touches, between
        # these in id order, at the same time (two transactions updating the same rows deadlocked on
        # PostgreSQL). A key that is null finds nobody, so "unresolved" comes down to the missing id.
        ids = pending[begin:begin + chunk]
        with engine.begin() as conn:
            for n, (ref, key, target, _) in enumerate(sides):
                found = _resolved_id(target, key)
                resolve = (update(touches).where(touches.c.id.in_(ids), ref.is_(None), found.is_not(None))
                           .values({ref: found}))
                counts[n] += conn.execute(resolve).rowcount
    return counts[0], counts[1]
