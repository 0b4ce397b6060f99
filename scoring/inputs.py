"""Building the engine's inputs from plain records: the roll-up, personas, segments, outcomes.

Used for record-sized sets (tests, the sandbox generator, a notebook). The worker's store glue
(:mod:`worker.score_store`) builds the same structures from SQL result columns directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from config.scoring import ScoringConfig
from scoring.columns import ActivityColumns, LoadReport, activity_columns
from scoring.fit import account_segments
from scoring.outcomes import OpportunityColumns, opportunity_columns
from scoring.personas import PersonaClassifier
from scoring.scores import Population
from store.records import AccountRecord, ActivityRecord, OpportunityRecord, PersonRecord


@dataclass(frozen=True)
class ScoringInputs:
    population: Population
    activities: ActivityColumns
    opportunities: OpportunityColumns
    account_ids: np.ndarray  # int64: store id of the account at each index
    person_ids: np.ndarray  # int64: store id of the person at each index
    load_report: LoadReport


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


def build_inputs(
    accounts: Sequence[AccountRecord],
    people: Sequence[PersonRecord],
    activities: Iterable[ActivityRecord],
    opportunities: Iterable[OpportunityRecord],
    config: ScoringConfig,
    matches: Mapping[int, int | None] | None = None,
) -> ScoringInputs:
    """``matches`` maps person id -> account id (the canonical match table; None = no account)."""
    account_index = {(a.crm, a.crm_id): i for i, a in enumerate(accounts)}
    account_pos = {a.id: i for i, a in enumerate(accounts)}
    person_index = {(p.crm, p.crm_id): i for i, p in enumerate(people)}
    report = LoadReport()
    acts = activity_columns(activities, person_index, account_index, report)
    titles = [p.title for p in people]
    population = Population(
        account_names=[a.name for a in accounts],
        segments=account_segments(accounts, config.fit),
        person_account=person_accounts(people, account_index, matches or {}, account_pos),
        personas=PersonaClassifier(config.personas).classify_many(titles),
        person_titles=titles,
    )
    return ScoringInputs(
        population=population,
        activities=acts,
        opportunities=opportunity_columns(opportunities, account_index),
        account_ids=np.array([a.id for a in accounts], dtype=np.int64),
        person_ids=np.array([p.id for p in people], dtype=np.int64),
        load_report=report,
    )
