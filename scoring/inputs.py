"""Building the engine's inputs from plain records: the roll-up, personas, segments, outcomes.

Used for record-sized sets (tests, the sandbox generator, a notebook). The worker's store glue
(:mod:`worker.score_inputs`) builds the same structures from SQL result columns directly: people
come as :class:`PeopleColumns` (records are turned into those here), so both paths share one
implementation of the roll-up and the people facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np

from config.scoring import ScoringConfig
from scoring.columns import ActivityColumns, LoadReport, activity_columns
from scoring.fit import account_segments
from scoring.outcomes import NEVER, OpportunityColumns, opportunity_columns
from scoring.personas import PersonaClassifier, PersonaColumns
from scoring.scores import Population
from store.records import AccountRecord, ActivityRecord, OpportunityRecord, PersonRecord


@dataclass(frozen=True)
class PeopleFacts:
    """What the predictive model and backtests need to know about people as of a past date."""

    is_lead: np.ndarray  # bool
    created: np.ndarray  # int64 seconds; 0 when unknown (treated as always there)
    converted: np.ndarray  # int64 seconds a lead converted, NEVER if not (or unknown when)
    linked_by_conversion: np.ndarray  # bool: rolls up only because the lead converted into the account

    @classmethod
    def unknown(cls, n_people: int) -> PeopleFacts:
        return cls(np.zeros(n_people, bool), np.zeros(n_people, np.int64), np.full(n_people, NEVER, np.int64),
                   np.zeros(n_people, bool))


@dataclass(frozen=True)
class ScoringInputs:
    population: Population
    activities: ActivityColumns
    opportunities: OpportunityColumns
    account_ids: np.ndarray  # int64: store id of the account at each index
    person_ids: np.ndarray  # int64: store id of the person at each index
    load_report: LoadReport
    account_created: np.ndarray  # int64 seconds; 0 when unknown (treated as always there)
    people: PeopleFacts


@dataclass(frozen=True)
class PeopleColumns:
    """The fields scoring reads of every person, one sequence per field, in position order.

    An L org's 1.8 million people as records took 20 CPU seconds to load through SQLAlchemy rows
    (timestamps parsed into datetimes, one frozen dataclass per person) and over a gigabyte; the
    store loader fills these columns from the driver's tuples, with times as epoch seconds.
    """

    id: np.ndarray  # int64 store ids
    crm: Sequence[str]
    crm_id: Sequence[str]
    kind: Sequence[str]  # "lead" or "contact"
    title: Sequence[str | None]
    account_crm_id: Sequence[str | None]
    is_converted: np.ndarray  # bool
    converted_at: np.ndarray  # int64 seconds; NEVER when unknown
    converted_account_crm_id: Sequence[str | None]
    created_at: np.ndarray  # int64 seconds; 0 when unknown (treated as always there)

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_records(cls, people: Sequence[PersonRecord] | PeopleColumns) -> PeopleColumns:
        if isinstance(people, PeopleColumns):
            return people
        return cls(
            id=np.array([p.id for p in people], dtype=np.int64),
            crm=[p.crm for p in people],
            crm_id=[p.crm_id for p in people],
            kind=[p.kind for p in people],
            title=[p.title for p in people],
            account_crm_id=[p.account_crm_id for p in people],
            is_converted=np.array([bool(p.is_converted) for p in people], dtype=bool),
            converted_at=np.array([_seconds(p.converted_at, NEVER) for p in people], dtype=np.int64),
            converted_account_crm_id=[p.converted_account_crm_id for p in people],
            created_at=np.array([_seconds(p.created_at, 0) for p in people], dtype=np.int64),
        )


@dataclass(frozen=True)
class MatchColumns:
    """The match table as columns: the people it holds (store ids, ascending) and the account each is tied
    to (store id; -1: tied to nothing, as a review or no-match decision leaves them). A million people's
    matches as a dict cost seconds to build and to look up one person at a time; as columns, a lookup of
    everyone is a sorted search."""

    person: np.ndarray  # int64, ascending
    account: np.ndarray  # int64, -1 for none

    @classmethod
    def of(cls, matches: Mapping[int, int | None] | MatchColumns | None) -> MatchColumns:
        """From person id -> account id (None: tied to nothing), or as they are."""
        if isinstance(matches, MatchColumns):
            return matches
        items = sorted((matches or {}).items())
        return cls(np.array([p for p, _ in items], dtype=np.int64),
                   np.array([-1 if a is None else a for _, a in items], dtype=np.int64))

    def find(self, person_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each person has a match row, and the account it ties them to (-1 where none or no row)."""
        at = np.searchsorted(self.person, person_ids)
        at = np.minimum(at, max(len(self.person) - 1, 0))
        held = (self.person[at] == person_ids) if len(self.person) else np.zeros(len(person_ids), dtype=bool)
        account = np.where(held, self.account[at] if len(self.account) else -1, -1)
        return held, account


def _positions_of(account_pos: Mapping[int, int], account_ids: np.ndarray) -> np.ndarray:
    """The positions of these account store ids: -1 for an id ``account_pos`` lacks (and for -1)."""
    keys = np.fromiter(account_pos.keys(), dtype=np.int64, count=len(account_pos))
    values = np.fromiter(account_pos.values(), dtype=np.int64, count=len(account_pos))
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    if not len(keys):
        return np.full(len(account_ids), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, account_ids), len(keys) - 1)
    return np.where(keys[at] == account_ids, values[at], -1)


def person_accounts(
    people: PeopleColumns,
    account_index: Mapping[tuple[str, str], int],
    matches: Mapping[int, int | None] | MatchColumns,
    account_pos: Mapping[int, int],
) -> np.ndarray:
    """Account index per person: the match table's answer, else the CRM's own link.

    A contact's account and a converted lead's account are facts from the CRM, so they count
    even before matching has run; a lead with neither rolls up only through a match.
    """
    held, account = MatchColumns.of(matches).find(np.asarray(people.id, dtype=np.int64))
    out = np.full(len(people), -1, dtype=np.int32)
    out[held] = _positions_of(account_pos, account[held])
    for i in np.flatnonzero(~held).tolist():  # people the matcher has not seen yet: few
        kind = people.kind[i]
        crm_account = people.account_crm_id[i] if kind == "contact" else people.converted_account_crm_id[i]
        if crm_account:
            out[i] = account_index.get((people.crm[i], crm_account), -1)
    return out


def _seconds(value: datetime | None, missing: int) -> int:
    return int(value.timestamp()) if value is not None else missing


def people_facts(
    people: PeopleColumns, person_account: np.ndarray, matches: Mapping[int, int | None] | MatchColumns
) -> PeopleFacts:
    """Creation and conversion times, and which roll-ups exist only because a lead converted.

    A converted lead without a match-table entry rolls up through the account it converted
    into; before that date the roll-up did not exist, and a backtest must not use it.
    """
    is_lead = np.array([kind == "lead" for kind in people.kind], dtype=bool)
    converted = np.where(is_lead & people.is_converted, people.converted_at, NEVER).astype(np.int64)
    held, _ = MatchColumns.of(matches).find(np.asarray(people.id, dtype=np.int64))
    by_conversion = is_lead & ~held & np.array([bool(crm_id) for crm_id in people.converted_account_crm_id],
                                               dtype=bool)
    return PeopleFacts(
        is_lead=is_lead,
        created=np.asarray(people.created_at, dtype=np.int64),
        converted=converted,
        linked_by_conversion=by_conversion & (person_account >= 0),
    )


# Up to this many keys, people are found by one pass over their ids rather than an index of every key.
FEW_KEYS = 1_000


@dataclass(frozen=True)
class EntityIndex:
    """Positions of accounts and people, and which CRM keys (aliases included) name which account."""

    account_index: dict[tuple[str, str], int]  # (crm, crm_id) -> account position, aliases included
    account_pos: dict[int, int]  # account store id -> position
    person_crm: Sequence[str]  # each person's CRM and id, in position order
    person_crm_id: Sequence[str]

    @cached_property
    def person_index(self) -> dict[tuple[str, str], int]:
        """(crm, crm_id) -> person position, built when first needed: for an L org's 1.8 million people it
        takes 0.7 s, and a store that resolved its touches to ids needs it for a few keys at most."""
        return {key: i for i, key in enumerate(zip(self.person_crm, self.person_crm_id, strict=True))}

    def find_people(self, crm: Sequence[str], crm_id: Sequence[str | None]) -> np.ndarray:
        """Position per key, -1 where the key is unknown or the id empty (the last person of a key, as
        :attr:`person_index` has it)."""
        if "person_index" in self.__dict__ or len(crm_id) > FEW_KEYS:
            index = self.person_index
            return np.array([index.get((c, i), -1) if i else -1 for c, i in zip(crm, crm_id, strict=True)],
                            dtype=np.int64)
        wanted = {i for i in crm_id if i}
        found: dict[tuple[str, str], int] = {}
        for position, person_id in enumerate(self.person_crm_id):
            if person_id in wanted:
                found[(self.person_crm[position], person_id)] = position
        return np.array([found.get((c, i), -1) if i else -1 for c, i in zip(crm, crm_id, strict=True)],
                        dtype=np.int64)

    @classmethod
    def build(
        cls,
        accounts: Sequence[AccountRecord],
        people: Sequence[PersonRecord] | PeopleColumns,
        aliases: Mapping[tuple[str, str], int] | None = None,
    ) -> EntityIndex:
        account_index = {(a.crm, a.crm_id): i for i, a in enumerate(accounts)}
        account_pos = {a.id: i for i, a in enumerate(accounts)}
        for key, account_id in (aliases or {}).items():
            if account_id in account_pos:
                account_index.setdefault(key, account_pos[account_id])
        people = PeopleColumns.from_records(people)
        return cls(account_index, account_pos, people.crm, people.crm_id)


def build_inputs(
    accounts: Sequence[AccountRecord],
    people: Sequence[PersonRecord],
    activities: Iterable[ActivityRecord],
    opportunities: Iterable[OpportunityRecord],
    config: ScoringConfig,
    matches: Mapping[int, int | None] | None = None,
    aliases: Mapping[tuple[str, str], int] | None = None,
) -> ScoringInputs:
    """``matches`` maps person id -> account id (the canonical match table; None = no account).

    ``aliases`` maps other CRM keys of the same business to an account's id: a HubSpot company
    linked to a Salesforce account is not scored on its own; its touches, contacts and deals count
    for the Salesforce account, so one account's score gathers both CRMs' activity.
    """
    columns = PeopleColumns.from_records(people)
    index = EntityIndex.build(accounts, columns, aliases)
    report = LoadReport()
    acts = activity_columns(activities, index.person_index, index.account_index, report)
    return assemble_inputs(accounts, columns, acts, report, opportunities, config, index, matches)


def assemble_inputs(
    accounts: Sequence[AccountRecord],
    people: Sequence[PersonRecord] | PeopleColumns,
    activities: ActivityColumns,
    report: LoadReport,
    opportunities: Iterable[OpportunityRecord],
    config: ScoringConfig,
    index: EntityIndex,
    matches: Mapping[int, int | None] | MatchColumns | None = None,
    personas: PersonaColumns | None = None,
) -> ScoringInputs:
    """The inputs from records and activities already in columns (the store loader streams those).
    ``personas``: the people's persona codes when the caller has them (see :mod:`worker.kept_titles`)."""
    people = PeopleColumns.from_records(people)
    titles = list(people.title)
    matches = MatchColumns.of(matches)
    person_account = person_accounts(people, index.account_index, matches, index.account_pos)
    population = Population(
        account_names=[a.name for a in accounts],
        segments=account_segments(accounts, config.fit),
        person_account=person_account,
        personas=personas if personas is not None else PersonaClassifier(config.personas).classify_many(titles),
        person_titles=titles,
    )
    return ScoringInputs(
        population=population,
        activities=activities,
        opportunities=opportunity_columns(opportunities, index.account_index),
        account_ids=np.array([a.id for a in accounts], dtype=np.int64),
        person_ids=np.asarray(people.id, dtype=np.int64),
        load_report=report,
        account_created=np.array([_seconds(a.created_at, 0) for a in accounts], dtype=np.int64),
        people=people_facts(people, person_account, matches),
    )
