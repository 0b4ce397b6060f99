"""From aggregates to the scores a rep sees: sales, marketing, engagement, breadth, velocity, fit,
grade and alignment, for every account and person, as arrays.

:func:`score` is the full rescore; :func:`rescore_incremental` recomputes only the entities
whose touches changed and ages the rest analytically, with the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from config.scoring import ScoringConfig
from scoring.catalogue import MARKETING_TEAM, SALES_TEAM, Catalogue
from scoring.columns import ActivityColumns
from scoring.engine import (
    Aggregates,
    advance,
    aggregate,
    compact,
    gather,
    merge,
    pad,
    resolve_accounts,
    window_crossings,
)
from scoring.fit import AccountSegments, FitModel, FitResult, apply_fit, compute_fit, learn_fit
from scoring.outcomes import OpportunityColumns
from scoring.personas import PersonaColumns
from scoring.rules import alignment, engagement_0_100, grade_score, grades, percentile_cutoffs, velocity

N_PERSONAS = 4


@dataclass(frozen=True)
class Population:
    """Who is scored: accounts (names, segments) and people (match roll-up, persona, title)."""

    account_names: Sequence[str | None]
    segments: AccountSegments
    person_account: np.ndarray  # int32[n_people]: matched account index, -1 unmatched
    personas: PersonaColumns
    person_titles: Sequence[str | None]

    @property
    def n_accounts(self) -> int:
        return len(self.account_names)

    @property
    def n_people(self) -> int:
        return len(self.person_account)


@dataclass(frozen=True)
class PopulationState:
    """What scoring learns from the whole population rather than from one entity: the fit model
    (learned from every labelled account) and, for percentile grades, the grade scores at which the
    ranking of every account and every person drew grades 4, 3 and 2. A scoring of everyone
    produces it (:func:`population_state`); scoring a subset with it gives each entity the fit and
    grade that scoring gave (see :mod:`worker.score_stage` for when it is refreshed)."""

    fit: FitModel
    account_cutoffs: tuple[float, float, float] | None = None
    person_cutoffs: tuple[float, float, float] | None = None

    def to_json(self) -> dict:
        def cuts(values: tuple[float, float, float] | None) -> list[float | None] | None:
            return None if values is None else [v if np.isfinite(v) else None for v in values]
        return {"fit": self.fit.to_json(), "account_cutoffs": cuts(self.account_cutoffs),
                "person_cutoffs": cuts(self.person_cutoffs)}

    @classmethod
    def from_json(cls, data: dict) -> PopulationState:
        def cuts(values: list[float | None] | None) -> tuple[float, float, float] | None:
            return None if values is None else tuple(float("inf") if v is None else float(v) for v in values)  # type: ignore[return-value]
        return cls(FitModel.from_json(data["fit"]), cuts(data.get("account_cutoffs")), cuts(data.get("person_cutoffs")))


def population_state(scores: ScoreSet, population: Population, opps: OpportunityColumns,
                     config: ScoringConfig) -> PopulationState:
    """The state a scoring of everyone leaves for incremental runs (``scores`` must cover everyone)."""
    fit = learn_fit(population.segments, opps, scores.as_of, config.fit)
    if config.grade.mode != "percentiles":
        return PopulationState(fit)
    p_fit = gather(scores.fit.fit, population.person_account, config.fit.base)
    return PopulationState(fit, percentile_cutoffs(scores.grade_score, config.grade),
                           percentile_cutoffs(grade_score(p_fit, scores.person_engagement, config.grade),
                                              config.grade))


@dataclass(frozen=True)
class ScoreSet:
    """All scores as arrays; :mod:`scoring.reasons` turns one row into words and a breakdown."""

    as_of: int
    agg: Aggregates
    fit: FitResult
    # accounts
    sales: np.ndarray
    marketing: np.ndarray
    engagement_raw: np.ndarray
    engagement: np.ndarray
    breadth: np.ndarray  # distinct engaged people
    committee_coverage: np.ndarray  # share of buying-committee personas engaged, 0-1
    velocity: np.ndarray
    trend: np.ndarray  # code into rules.TRENDS
    grade_score: np.ndarray
    grade: np.ndarray
    alignment: np.ndarray  # code into rules.ALIGNMENTS
    persona_alignment: np.ndarray  # int[n_accounts, 4]: alignment of each persona's people at the account
    key_person: np.ndarray  # int64[n_accounts]: the person to name in the reasons, -1 if none engaged
    predictive: np.ndarray | None
    # people
    person_sales: np.ndarray
    person_marketing: np.ndarray
    person_engagement_raw: np.ndarray
    person_engagement: np.ndarray
    person_velocity: np.ndarray
    person_trend: np.ndarray
    person_grade: np.ndarray
    person_alignment: np.ndarray
    person_predictive: np.ndarray | None


def score(
    acts: ActivityColumns,
    population: Population,
    opps: OpportunityColumns,
    config: ScoringConfig,
    as_of: int,
    *,
    predictive: np.ndarray | None = None,
    person_predictive: np.ndarray | None = None,
    state: PopulationState | None = None,
) -> ScoreSet:
    """Full rescore as of ``as_of`` (seconds since the epoch); only touches before it count.

    ``state``: fit and percentile grades from a scoring of everyone, for scoring a subset of the
    population (an incremental run); without it they are learned and ranked from ``population``."""
    catalogue = Catalogue.from_config(config)
    agg = aggregate(
        acts,
        person_account=population.person_account,
        persona=population.personas.persona,
        catalogue=catalogue,
        as_of=as_of,
        window_days=config.velocity.window_days,
        n_accounts=population.n_accounts,
    )
    return finish(agg, population, opps, config, predictive=predictive, person_predictive=person_predictive,
                  state=state)


def dirty_entities(
    previous: ScoreSet,
    acts: ActivityColumns,
    population: Population,
    config: ScoringConfig,
    as_of: int,
    *,
    new_activities: ActivityColumns | None = None,
    changed_people: np.ndarray | None = None,
    previous_person_account: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(dirty accounts, dirty people) masks between ``previous.as_of`` and ``as_of``.

    Dirty: touched by new activities, by a person whose match or title changed (old and new
    account), or by a touch that crossed a window edge as time passed. Everything else only
    decays, which :func:`scoring.engine.advance` applies without reading any touch.
    """
    n_acc, n_people = population.n_accounts, population.n_people
    dirty_acc = np.zeros(n_acc, dtype=bool)
    dirty_people = np.zeros(n_people, dtype=bool)
    crossing = acts.take(
        window_crossings(
            acts,
            previous.as_of,
            as_of,
            lookback_seconds=config.lookback_days * 86_400,
            window_days=config.velocity.window_days,
        )
    )
    for part in (crossing, new_activities):
        if part is None or len(part) == 0:
            continue
        acc = resolve_accounts(part, population.person_account)
        dirty_acc[acc[acc >= 0]] = True
        dirty_people[part.person[part.person >= 0]] = True
    if changed_people is not None and len(changed_people):
        changed_people = np.asarray(changed_people, dtype=np.int64)
        dirty_people[changed_people] = True
        # Their touches counted somewhere (the old match, or an account the touch names itself)
        # and now count elsewhere or with another persona weight: both sides are dirty.
        changed_mask = np.zeros(n_people, dtype=bool)
        changed_mask[changed_people] = True
        theirs = acts.take(gather(changed_mask, acts.person, False))
        for mapping in (population.person_account, previous_person_account):
            if mapping is None:
                continue
            if len(mapping) < n_people:  # people added since: they had no account before
                mapping = np.concatenate([mapping, np.full(n_people - len(mapping), -1, dtype=mapping.dtype)])
            acc = np.concatenate([mapping[changed_people], resolve_accounts(theirs, mapping)])
            dirty_acc[acc[acc >= 0]] = True
    if previous.agg.n_accounts < n_acc:
        dirty_acc[previous.agg.n_accounts :] = True
    if previous.agg.n_people < n_people:
        dirty_people[previous.agg.n_people :] = True
    return dirty_acc, dirty_people


def rescore_incremental(
    previous: ScoreSet,
    acts: ActivityColumns,
    population: Population,
    opps: OpportunityColumns,
    config: ScoringConfig,
    as_of: int,
    dirty_accounts: np.ndarray,
    dirty_people: np.ndarray,
    *,
    predictive: np.ndarray | None = None,
    person_predictive: np.ndarray | None = None,
) -> ScoreSet:
    """Recompute touches of dirty entities only; ``acts`` must hold at least all of their touches, and all the
    touches of whoever touched a dirty account (daily caps span a person's accounts).

    Clean entities are aged analytically; fit, grade and alignment are cheap per-account
    arithmetic and are recomputed for everyone (a new won deal moves fit for a whole segment).
    """
    catalogue = Catalogue.from_config(config)
    acc = resolve_accounts(acts, population.person_account)
    relevant = gather(dirty_accounts, acc, False) | gather(dirty_people, acts.person, False)
    # A daily cap counts a person's touches of a type and day wherever they count: whoever touched a dirty account
    # brings all their touches, or one the cap drops in a scoring of everyone (that person's earlier touch of the
    # day was at another account) would count here.
    makers = np.zeros(population.n_people, dtype=bool)
    makers[acts.person[relevant & (acts.person >= 0)]] = True
    relevant |= gather(makers, acts.person, False)
    small = compact(acts.take(relevant), population.person_account, population.personas.persona,
                    population.n_accounts, dirty_accounts, dirty_people)
    fresh = aggregate(
        small.acts,
        person_account=small.person_account,
        persona=small.persona,
        catalogue=catalogue,
        as_of=as_of,
        window_days=config.velocity.window_days,
        n_accounts=small.n_accounts,
    )
    aged = advance(pad(previous.agg, population.n_accounts, population.n_people), as_of, catalogue)
    agg = merge(aged, fresh, dirty_accounts, dirty_people, small.account_row, small.person_row)
    return finish(agg, population, opps, config, predictive=predictive, person_predictive=person_predictive)


def finish(
    agg: Aggregates,
    population: Population,
    opps: OpportunityColumns,
    config: ScoringConfig,
    *,
    predictive: np.ndarray | None = None,
    person_predictive: np.ndarray | None = None,
    state: PopulationState | None = None,
) -> ScoreSet:
    """Scores from aggregates: all per-entity arithmetic, no touch is read here."""
    catalogue = Catalogue.from_config(config)
    is_sales = catalogue.team == SALES_TEAM
    is_marketing = catalogue.team == MARKETING_TEAM
    eng = catalogue.engagement

    # One pass over each points matrix: sales, marketing and engagement sums as a matrix product.
    team_sums = np.column_stack([is_sales, is_marketing, eng]).astype(np.float64)
    sales, marketing, eng_points = (agg.account_type_points @ team_sums).T
    engagement_raw = eng_points + config.engagement.new_person_points * agg.account_new_people
    engagement = engagement_0_100(engagement_raw, config.engagement)
    committee = [
        ["decision_maker", "influencer", "end_user", "other"].index(p) for p in config.personas.buying_committee
    ]
    coverage = (
        (agg.account_persona_people[:, committee] > 0).sum(axis=1) / len(committee)
        if committee
        else np.zeros(agg.n_accounts)
    )
    vel, trend = velocity(agg.account_recent, agg.account_previous, agg.account_new_people, config.velocity)
    if state is None:
        fit = compute_fit(population.segments, opps, agg.as_of, config.fit)
    else:
        fit = apply_fit(state.fit, population.segments, config.fit)
    grade = grades(fit.fit, engagement, config.grade, predictive, None if state is None else state.account_cutoffs)

    p_sales, p_marketing, p_raw = (agg.person_type_points @ team_sums).T
    p_engagement = engagement_0_100(p_raw, config.engagement)
    p_vel, p_trend = velocity(agg.person_recent, agg.person_previous, 0, config.velocity)
    matched = population.person_account >= 0
    p_fit = gather(fit.fit, population.person_account, config.fit.base)
    p_grade = grades(p_fit, p_engagement, config.grade, person_predictive,
                     None if state is None else state.person_cutoffs)
    p_alignment = alignment(p_sales, p_marketing, config.alignment)

    # Persona level: the people of each persona matched to the account, sales against marketing.
    pa = population.person_account.astype(np.int64)
    slot = pa[matched] * N_PERSONAS + population.personas.persona[matched].astype(np.int64)
    size = agg.n_accounts * N_PERSONAS
    persona_sales = np.bincount(slot, weights=p_sales[matched], minlength=size).reshape(-1, N_PERSONAS)
    persona_marketing = np.bincount(slot, weights=p_marketing[matched], minlength=size).reshape(-1, N_PERSONAS)
    key = key_people(population.person_account, population.personas.persona, p_raw, agg.n_accounts)

    return ScoreSet(
        as_of=agg.as_of,
        agg=agg,
        fit=fit,
        sales=sales,
        marketing=marketing,
        engagement_raw=engagement_raw,
        engagement=engagement,
        breadth=agg.account_people.astype(np.float64),
        committee_coverage=coverage,
        velocity=vel,
        trend=trend,
        grade_score=grade_score(fit.fit, engagement, config.grade),
        grade=grade,
        alignment=alignment(sales, marketing, config.alignment),
        persona_alignment=alignment(persona_sales, persona_marketing, config.alignment),
        key_person=key,
        predictive=predictive,
        person_sales=p_sales,
        person_marketing=p_marketing,
        person_engagement_raw=p_raw,
        person_engagement=p_engagement,
        person_velocity=p_vel,
        person_trend=p_trend,
        person_grade=p_grade,
        person_alignment=p_alignment,
        person_predictive=person_predictive,
    )


def key_people(
    person_account: np.ndarray, persona: np.ndarray, engagement_raw: np.ndarray, n_accounts: int
) -> np.ndarray:
    """Per account, the engaged person a rep should hear about: the most engaged decision maker,
    else influencer, else anyone (lowest index on a tie, so runs agree).

    Computed from per-person totals rather than per-touch sums so that an incremental rescore,
    which ages people analytically, picks the same person as a full one.
    """
    key = np.full(n_accounts, -1, dtype=np.int64)
    people = np.flatnonzero((person_account >= 0) & (engagement_raw > 0))
    if len(people) == 0:
        return key
    acc = person_account[people].astype(np.int64)
    order = np.lexsort((people, -engagement_raw[people], persona[people], acc))
    acc_sorted = acc[order]
    first = np.flatnonzero(np.concatenate(([True], acc_sorted[1:] != acc_sorted[:-1])))
    key[acc_sorted[first]] = people[order][first]
    return key
