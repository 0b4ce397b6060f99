"""Building the engine's inputs from plain records: the roll-up, personas, segments, outcomes.

Used for record-sized sets (tests, the sandbox generator, a notebook). The worker's store glue
(:mod:`worker.score_inputs`) builds the same structures from SQL result columns directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from config.scoring import ScoringConfig
from scoring.columns import ActivityColumns, LoadReport, activity_columns
from scoring.fit import account_segments
from scoring.outcomes import NEVER, OpportunityColumns, opportunity_columns
from scoring.personas import PersonaClassifier
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


def person_accounts(
    people: Sequence[PersonRecord],
    account_index: Mapping[tuple[str, str], int],
    matches: Mapping[int, int | None],
    account_pos: Mapping[int, int],
) -> np.ndarray:
    """Account index per person: the match table's answer, else the CRM's own link.

    A contact's account and a converted lead's account are facts from the CRM, so they count
    even before matching has run; a lead with neither rolls up only through a match.
    """
    out = np.full(len(people), -1, dtype=np.int32)
    for i, p in enumerate(people):
        if p.id in matches:
            account_id = matches[p.id]
            out[i] = account_pos.get(account_id, -1) if account_id is not None else -1
            continue
        crm_account = p.account_crm_id if p.kind == "contact" else p.converted_account_crm_id
        if crm_account:
            out[i] = account_index.get((p.crm, crm_account), -1)
    return out


def _seconds(value: datetime | None, missing: int) -> int:
    return int(value.timestamp()) if value is not None else missing


def people_facts(
    people: Sequence[PersonRecord], person_account: np.ndarray, matches: Mapping[int, int | None]
) -> PeopleFacts:
    """Creation and conversion times, and which roll-ups exist only because a lead converted.

    A converted lead without a match-table entry rolls up through the account it converted
    into; before that date the roll-up did not exist, and a backtest must not use it.
    """
    converted = np.array(
        [_seconds(p.converted_at, NEVER) if p.kind == "lead" and p.is_converted else NEVER for p in people],
        dtype=np.int64,
    )
    by_conversion = np.array(
        [p.kind == "lead" and p.id not in matches and bool(p.converted_account_crm_id) for p in people], dtype=bool
    )
    return PeopleFacts(
        is_lead=np.array([p.kind == "lead" for p in people], dtype=bool),
        created=np.array([_seconds(p.created_at, 0) for p in people], dtype=np.int64),
        converted=converted,
        linked_by_conversion=by_conversion & (person_account >= 0),
    )


@dataclass(frozen=True)
class EntityIndex:
    """Positions of accounts and people, and which CRM keys (aliases included) name which account."""

    account_index: dict[tuple[str, str], int]  # (crm, crm_id) -> account position, aliases included
    account_pos: dict[int, int]  # account store id -> position
    person_index: dict[tuple[str, str], int]  # (crm, crm_id) -> person position

    @classmethod
    def build(
        cls,
        accounts: Sequence[AccountRecord],
        people: Sequence[PersonRecord],
        aliases: Mapping[tuple[str, str], int] | None = None,
    ) -> EntityIndex:
        account_index = {(a.crm, a.crm_id): i for i, a in enumerate(accounts)}
        account_pos = {a.id: i for i, a in enumerate(accounts)}
        for key, account_id in (aliases or {}).items():
            if account_id in account_pos:
                account_index.setdefault(key, account_pos[account_id])
        return cls(account_index, account_pos, {(p.crm, p.crm_id): i for i, p in enumerate(people)})


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
    index = EntityIndex.build(accounts, people, aliases)
    report = LoadReport()
    acts = activity_columns(activities, index.person_index, index.account_index, report)
    return assemble_inputs(accounts, people, acts, report, opportunities, config, index, matches)


def assemble_inputs(
    accounts: Sequence[AccountRecord],
    people: Sequence[PersonRecord],
    activities: ActivityColumns,
    report: LoadReport,
    opportunities: Iterable[OpportunityRecord],
    config: ScoringConfig,
    index: EntityIndex,
    matches: Mapping[int, int | None] | None = None,
) -> ScoringInputs:
    """The inputs from records and activities already in columns (the store loader streams those)."""
    titles = [p.title for p in people]
    matches = matches or {}
    person_account = person_accounts(people, index.account_index, matches, index.account_pos)
    population = Population(
        account_names=[a.name for a in accounts],
        segments=account_segments(accounts, config.fit),
        person_account=person_account,
        personas=PersonaClassifier(config.personas).classify_many(titles),
        person_titles=titles,
    )
    return ScoringInputs(
        population=population,
        activities=activities,
        opportunities=opportunity_columns(opportunities, index.account_index),
        account_ids=np.array([a.id for a in accounts], dtype=np.int64),
        person_ids=np.array([p.id for p in people], dtype=np.int64),
        load_report=report,
        account_created=np.array([_seconds(a.created_at, 0) for a in accounts], dtype=np.int64),
        people=people_facts(people, person_account, matches),
    )
