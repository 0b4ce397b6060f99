"""Feature matrices for the predictive models, as of any date, from the scoring inputs.

Every feature of a row dated ``t`` is computed from what was known before ``t``: touches
before ``t`` (the engine ignores later ones), deals created or closed before ``t``, fit
learned from outcomes closed before ``t``, people and accounts created before ``t``, and
roll-ups that existed at ``t`` (a lead that converted later did not yet belong to the
account). That is what makes a backtest or a training snapshot free of label leakage.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from config.scoring import PERSONAS, ScoringConfig
from scoring.catalogue import DAY, TYPE_NAMES
from scoring.engine import gather
from scoring.fit import DIMENSIONS
from scoring.inputs import ScoringInputs
from scoring.outcomes import NEVER
from scoring.scores import Population, PopulationState, ScoreSet, finish, score

YEARS_10 = 3650.0  # "never happened" for day counts; far beyond any horizon so trees split on it cleanly
# "Unknown" for values that are never negative (ages, fit). Not NaN: a column that is unknown
# for every row (an org whose CRM has no creation dates) must still train.
UNKNOWN = -1.0

ACCOUNT_FEATURES: tuple[str, ...] = (
    *(f"points_{name}" for name in TYPE_NAMES),
    "engagement_raw",
    "engagement",
    "sales",
    "marketing",
    "recent_points",
    "previous_points",
    "velocity",
    "new_people",
    "engaged_people",
    *(f"engaged_{persona}" for persona in PERSONAS),
    "committee_coverage",
    "known_people",
    "fit",
    *(f"fit_{dim}" for dim in DIMENSIONS),
    "open_deals",
    "won_deals",
    "lost_deals",
    "days_since_deal_created",
    "days_since_won",
    "account_age_days",
)

LEAD_FEATURES: tuple[str, ...] = (
    *(f"points_{name}" for name in TYPE_NAMES),
    "engagement_raw",
    "sales",
    "marketing",
    "recent_points",
    "previous_points",
    "velocity",
    *(f"persona_{persona}" for persona in PERSONAS),
    "seniority",
    "has_account",
    "account_fit",
    "account_engagement_raw",
    "account_engaged_people",
    "account_open_deals",
    "lead_age_days",
)


@dataclass(frozen=True)
class FeatureFrame:
    """Feature rows for the entities that existed at ``as_of`` (``rows`` are their indexes)."""

    as_of: int
    rows: np.ndarray  # int64 entity indexes
    X: np.ndarray  # float64[len(rows), n_features]; unknowns are -1, never NaN
    names: tuple[str, ...]


def population_as_of(inputs: ScoringInputs, as_of: int) -> Population:
    """The roll-up as it stood at ``as_of``: people not yet created, and leads that had not yet
    converted into the account they roll up through, belong to no account."""
    people = inputs.people
    not_yet = (people.created > as_of) | (people.linked_by_conversion & (people.converted >= as_of))
    if not not_yet.any():
        return inputs.population
    person_account = np.where(not_yet, -1, inputs.population.person_account).astype(np.int32)
    return replace(inputs.population, person_account=person_account)


def existing_at(inputs: ScoringInputs, as_of: int) -> ScoringInputs:
    """``inputs`` scored at their own moment ``as_of`` (the stage's clock): the people the store
    holds exist then, and the leads it says converted have converted.

    A creation or conversion time after that moment is a clock ahead of the stage's (a CRM
    server's, an import's), not someone yet to come. Left as it is, :func:`population_as_of` would
    take such people out of the roll-up the predictions are computed with, while the final scores
    count them, so the rules' aggregates could not serve the final scores and every touch would
    be read a second time (3.3 s of the L org's incremental score stage, for 3 contacts whose
    HubSpot creation dates were hours ahead). Times are moved to the moment, not beyond it
    (conversion to the second before, as conversion at ``as_of`` counts as not yet), so every
    scoring as of an earlier date sees what it saw before. Unknown conversion times stay unknown.
    """
    people = inputs.people
    created_later = people.created > as_of
    converted_later = (people.converted >= as_of) & (people.converted != NEVER)
    if not created_later.any() and not converted_later.any():
        return inputs
    facts = replace(people, created=np.where(created_later, as_of, people.created),
                    converted=np.where(converted_later, as_of - 1, people.converted))
    return replace(inputs, people=facts)


def scores_as_of(inputs: ScoringInputs, config: ScoringConfig, as_of: int,
                 state: PopulationState | None = None) -> ScoreSet:
    """Rules-based scores as of a past date, with the roll-up of that date. ``state``: the fit of
    a scoring of everyone, when ``inputs`` hold only part of the population (see :func:`score`)."""
    return score(inputs.activities, population_as_of(inputs, as_of), inputs.opportunities, config, as_of,
                 state=state)


def reusable(inputs: ScoringInputs, rules: ScoreSet | None) -> ScoreSet | None:
    """``rules`` when its aggregates are those of ``inputs``' own population (see
    :func:`with_predictions`), else None: a caller then lets go of it before scoring again, rather
    than holding two score sets of everyone at once."""
    if rules is None or population_as_of(inputs, rules.as_of) is not inputs.population:
        return None
    return rules


def with_predictions(inputs: ScoringInputs, config: ScoringConfig, rules: ScoreSet, *,
                     predictive: np.ndarray | None, person_predictive: np.ndarray | None,
                     state: PopulationState | None = None) -> ScoreSet:
    """What :func:`scoring.scores.score` gives for ``inputs`` at ``rules.as_of`` with these predictions,
    where ``rules`` is :func:`scores_as_of` at that date with the same ``state`` (the scores the
    predictions were computed from).

    The predictions only change grades, which :func:`scoring.scores.finish` computes from the
    aggregates: those of ``rules`` are reused instead of reading every touch again (on an L org, one
    of the three passes over 5.9 million touches the score stage made). When the roll-up at that date
    is not the population's own (a person created, or a lead converted, after it: a clock ahead of
    the stage's), the aggregates differ and the population is scored again.
    """
    if reusable(inputs, rules) is None:
        return score(inputs.activities, inputs.population, inputs.opportunities, config, rules.as_of,
                     predictive=predictive, person_predictive=person_predictive, state=state)
    return finish(rules.agg, inputs.population, inputs.opportunities, config, predictive=predictive,
                  person_predictive=person_predictive, state=state)


def _days_since(when: np.ndarray, as_of: int) -> np.ndarray:
    return np.where(when < as_of, (as_of - when) / DAY, YEARS_10)


def _deal_history(inputs: ScoringInputs, n_accounts: int, as_of: int) -> dict[str, np.ndarray]:
    opps = inputs.opportunities
    known = opps.account >= 0
    acc = opps.account[known]
    created, closed, won = opps.created[known], opps.closed[known], opps.won[known]
    seen = created < as_of
    is_open = seen & (closed >= as_of)
    did_close = closed < as_of
    last_created = np.full(n_accounts, -NEVER, dtype=np.int64)
    np.maximum.at(last_created, acc[seen], created[seen])
    last_won = np.full(n_accounts, -NEVER, dtype=np.int64)
    np.maximum.at(last_won, acc[did_close & won], closed[did_close & won])
    return {
        "open_deals": np.bincount(acc[is_open], minlength=n_accounts).astype(np.float64),
        "won_deals": np.bincount(acc[did_close & won], minlength=n_accounts).astype(np.float64),
        "lost_deals": np.bincount(acc[did_close & ~won], minlength=n_accounts).astype(np.float64),
        "days_since_deal_created": _days_since(np.where(last_created == -NEVER, NEVER, last_created), as_of),
        "days_since_won": _days_since(np.where(last_won == -NEVER, NEVER, last_won), as_of),
    }


def account_features(
    inputs: ScoringInputs, config: ScoringConfig, as_of: int, scores: ScoreSet | None = None
) -> FeatureFrame:
    """One row per account that existed at ``as_of``; ``scores`` must be :func:`scores_as_of` if given."""
    s = scores if scores is not None else scores_as_of(inputs, config, as_of)
    agg = s.agg
    n = agg.n_accounts
    pop = population_as_of(inputs, as_of)
    existed_people = (pop.person_account >= 0) & (inputs.people.created <= as_of)
    known_people = np.bincount(pop.person_account[existed_people].astype(np.int64), minlength=n).astype(np.float64)
    deals = _deal_history(inputs, n, as_of)
    created = inputs.account_created
    columns = [
        *np.log1p(agg.account_type_points).T,
        np.log1p(s.engagement_raw),
        s.engagement,
        np.log1p(s.sales),
        np.log1p(s.marketing),
        np.log1p(agg.account_recent),
        np.log1p(agg.account_previous),
        np.log(s.velocity),
        agg.account_new_people.astype(np.float64),
        agg.account_people.astype(np.float64),
        *agg.account_persona_people.T.astype(np.float64),
        s.committee_coverage,
        known_people,
        s.fit.fit,
        *s.fit.parts.T,
        deals["open_deals"],
        deals["won_deals"],
        deals["lost_deals"],
        deals["days_since_deal_created"],
        deals["days_since_won"],
        np.where(created > 0, (as_of - created) / DAY, UNKNOWN),
    ]
    X = np.column_stack(columns) if n else np.empty((0, len(ACCOUNT_FEATURES)))
    rows = np.flatnonzero(created < as_of)
    return FeatureFrame(as_of=as_of, rows=rows, X=X[rows], names=ACCOUNT_FEATURES)


def lead_features(
    inputs: ScoringInputs, config: ScoringConfig, as_of: int, scores: ScoreSet | None = None
) -> FeatureFrame:
    """One row per lead that existed and had not converted at ``as_of``."""
    s = scores if scores is not None else scores_as_of(inputs, config, as_of)
    agg = s.agg
    pop = population_as_of(inputs, as_of)
    people = inputs.people
    # Every column is taken at the rows first: built for every person and then subset, an L org's
    # 1.8 million people made the lead features the score stage's peak (45 float columns, twice).
    rows = np.flatnonzero(people.is_lead & (people.created < as_of) & (people.converted >= as_of))
    acc = pop.person_account.astype(np.int64)[rows]
    deals = _deal_history(inputs, agg.n_accounts, as_of)
    persona = pop.personas.persona.astype(np.int64)[rows]
    seniority = pop.personas.seniority.astype(np.float64)[rows]  # -1 unknown
    created = people.created[rows]
    columns = [
        *np.log1p(agg.person_type_points[rows]).T,
        np.log1p(s.person_engagement_raw[rows]),
        np.log1p(s.person_sales[rows]),
        np.log1p(s.person_marketing[rows]),
        np.log1p(agg.person_recent[rows]),
        np.log1p(agg.person_previous[rows]),
        np.log(s.person_velocity[rows]),
        *(persona == p for p in range(len(PERSONAS))),
        seniority,
        acc >= 0,
        gather(s.fit.fit, acc, UNKNOWN),
        np.log1p(gather(s.engagement_raw, acc, 0.0)),
        gather(agg.account_people.astype(np.float64), acc, 0.0),
        gather(deals["open_deals"], acc, 0.0),
        np.where(created > 0, (as_of - created) / DAY, UNKNOWN),
    ]
    X = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns]) if len(rows) else np.empty(
        (0, len(LEAD_FEATURES))
    )
    return FeatureFrame(as_of=as_of, rows=rows, X=X, names=LEAD_FEATURES)
