"""The score stage: store -> :mod:`scoring` (pure) -> ``scores``, ``score_history``, models.

Two store facts shape the scoring inputs here, not in :mod:`scoring`:
- the match table decides whose touches count for which account (a review or no-match decision
  ties a person to nothing; a contact's CRM account and a converted lead's account are matches
  of their own, written by the match stage);
- a HubSpot company linked to a Salesforce account (``account_links``) is the same business: it is
  not scored on its own, and its contacts, touches and deals count for the Salesforce account.

Predictive models: an incremental run uses the active model of each target (training one only
when there is none); a full run retrains. Every trained model is kept (see :mod:`worker.models`).

Scope: a full run saves every account and person. An incremental run saves only the entities new
data touched since the last successful score stage (see :mod:`worker.score_scope`): everyone
else keeps the row the last rescore of everyone (or the run that last touched them) saved, so
their time decay is refreshed by the full run or the daily rescore of everyone (see
:func:`worker.score_scope.everyone_due`), and writeback has only real changes to send.

What an incremental run reads: only the dirty entities and what their scores need (see
:mod:`worker.score_subset`; an L org's 1% increment reads about half its touches instead of all of
them, as the touched accounts are the busy ones). What depends on the whole population comes from
the :class:`scoring.scores.PopulationState` the last scoring of everyone stored (``score_state``,
written by every stage that read everyone: a full run, the daily rescore of everyone, a fallback):

- fit: the model (lift of every segment value) learned from every won and lost account then. A
  deal won or lost since changes the lifts (anyone's fit) only at the next scoring of everyone;
- percentile grades (``grade.mode: percentiles``): the grade scores at which the ranking of every
  account and every person then drew grades 4, 3 and 2; a rescored entity is graded against those
  lines, not ranked among the few loaded (a tie at a line gets the higher grade). Threshold grades
  and predictive grades need no state;
- predictive: the active models (never retrained by an incremental run), predicting only for the
  entities read, with features computed exactly as a full run computes them (fit from the state).
  An incremental run that reads everyone predicts for the dirty entities only.

Everything else of a saved entity (engagement, sales, marketing, breadth, velocity, trend,
alignment, reasons, probabilities) is what a full scoring at this moment gives, as the touches,
people and deals it reads are all of theirs. Sums over them may add up in another order, so a
breakdown can differ in the last bits of a float (a rounded value only if it sits on a rounding
boundary to the last bit).
With no stored state, a state computed under other ``scoring:`` settings, a model still to be
trained, or more than ``SUBSET_MAX_SHARE`` of the accounts or people touched, the stage reads
everyone as before (and stores the state). Everyone's touches and people are then usually read
already, by a process beside the match stage (:mod:`worker.score_prefetch`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from config.scoring import ScoringConfig
from scoring import predictive as pred
from scoring.features import existing_at, reusable, scores_as_of, with_predictions
from scoring.fit import with_display_names
from scoring.inputs import ScoringInputs
from scoring.scores import PopulationState, ScoreSet, population_state, score
from store.records import AccountRecord
from store.schema import Account, AccountLink
from store.touch_refs import resolve_touch_refs
from store.types import utcnow
from worker.forked import Forked
from worker.gc_pause import cyclic_gc_paused
from worker.models import ActiveModel, active_model, save_model
from worker.score_inputs import load_score_inputs
from worker.score_prefetch import Prefetched, ScorePrefetch, resolved_alike, still_current
from worker.score_scope import Scope, Touched, dirty_scope, touched_by_matching, touched_since
from worker.score_store import (
    SavedScores,
    load_population_state,
    prune_history,
    save_population_state,
    save_score_set,
)
from worker.score_subset import live_people, load_subset_inputs

log = logging.getLogger("abm.scoring")


@dataclass(frozen=True)
class Incremental:
    """An incremental score stage: rescore what changed in the store after ``since`` (the start of
    the last successful score stage), plus what the run's earlier stages know and the store no
    longer says: the accounts moved people left and relinked accounts (the match stage), and the
    accounts an admin asked to resync (rescored with all their people)."""

    since: datetime
    extra_accounts: frozenset[int] = frozenset()
    resync_accounts: frozenset[int] = frozenset()

@dataclass
class ScoreOutcome:
    accounts: int = 0
    people: int = 0
    activities: int = 0
    saved: SavedScores = field(default_factory=SavedScores)
    models: dict[str, str] = field(default_factory=dict)  # target -> what happened, for the run record
    skipped_activities: int = 0  # touches with an unknown type, no time, or nobody to count them for
    unknown_types: dict[str, int] = field(default_factory=dict)
    # Where the stage's time went (load, predictive, score, save), so a slow run says which part is slow.
    phase_seconds: dict[str, float] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utcnow)  # the next incremental run's "since"
    since: datetime | None = None  # an incremental run's: changes after it were rescored
    dirty_accounts: int | None = None  # saved (compared) by an incremental run; None: everyone
    dirty_people: int | None = None
    loaded: str = "everyone"  # or "dirty entities": what the stage read (see the module docstring)
    prefetch: str | None = None  # whether what was read beside the match stage was used, or why not

    def counts(self) -> dict[str, int]:
        return {"scored": self.accounts + self.people, "upserted": self.saved.accounts_changed
                + self.saved.people_changed, "skipped": self.skipped_activities}


# Up to this many people, the two predictive models train side by side, the lead model's in a forked process, so
# the second core works too. Not with OpenMP threads (predictive.py fits on one): their workers spin while they
# wait, and on cores that anything else keeps busy a fit took 6 to 32 times as long (four 2-thread fits at once
# on 2 cores, against four 1-thread ones). A training holds a few snapshots' features at a time (40-55 MB on the
# demo's M org, 73,000 people); larger orgs train one model after the other, which keeps the stage's peak memory
# to one training's.
SIDE_BY_SIDE_PEOPLE = 500_000


def _models(conn: Connection, inputs: ScoringInputs, config: ScoringConfig, as_of: int, retrain: bool,
            now: datetime, notes: dict[str, str], active: Mapping[str, ActiveModel] | None = None,
            ) -> dict[str, tuple[pred.PredictiveModel, int] | None]:
    """The account model and the lead model (trained first where needed) with their versions, or None, by target.
    ``active``: the active models as the stage has already loaded them (an incremental stage's, see :func:`_stored`).

    Training is pure (inputs in, a model's bytes out), so the lead model's can run in a forked process while
    this one trains the account model; both are saved here, account model first, as when they trained in turn.
    """
    targets = (pred.account_target(config.predictive), pred.LEAD_CONVERTS)
    current = {target: (active or {}).get(target) or active_model(conn, target) for target in targets}
    to_train = [target for target in targets if current[target] is None or retrain]
    trained: dict[str, pred.TrainedModel | pred.NotTrained] = {}
    if len(to_train) == 2 and inputs.population.n_people <= SIDE_BY_SIDE_PEOPLE:
        first, second = to_train
        with Forked(lambda: pred.train(inputs, config, as_of, target=second)) as job:
            trained[first] = pred.train(inputs, config, as_of, target=first)
            trained[second] = job.result()
    else:
        for target in to_train:
            trained[target] = pred.train(inputs, config, as_of, target=target)
    return {target: _adopted(conn, target, current[target], trained.get(target), now, notes) for target in targets}


def _adopted(conn: Connection, target: str, current: ActiveModel | None,
             trained: pred.TrainedModel | pred.NotTrained | None, now: datetime,
             notes: dict[str, str]) -> tuple[pred.PredictiveModel, int] | None:
    """The model to predict ``target`` with and its version: the one just trained (saved as a new version), else
    the active one; what happened is noted in ``notes``."""
    if trained is None:
        assert current is not None, "a target with no active model is always trained"
        notes[target] = f"version {current.version} (trained {current.trained_at:%Y-%m-%d})"
        return current.model, current.version
    if isinstance(trained, pred.NotTrained):
        notes[target] = trained.reason if current is None else (
            f"kept version {current.version}: retraining declined ({trained.reason})")
        return (current.model, current.version) if current is not None else None
    version = save_model(conn, trained, now=now)
    auc = trained.metrics.get("auc")
    notes[target] = f"trained version {version}" + (f" (holdout AUC {auc:.3f})" if isinstance(auc, float) else "")
    return pred.load(trained.blob), version


def _scope(conn: Connection, inputs: ScoringInputs, incremental: Incremental, outcome: ScoreOutcome,
           touched: Touched | None = None) -> Scope:
    """The dirty entities of an incremental run (``touched``: what new data touched, when known)."""
    since = incremental.since
    canonical = dict(conn.execute(select(AccountLink.account_id, AccountLink.canonical_account_id)).all())
    if touched is None:
        touched = touched_since(conn, since)
    scope = dirty_scope(touched, canonical, inputs.account_ids, inputs.person_ids,
                        inputs.population.person_account, inputs.activities,
                        extra_accounts=incremental.extra_accounts | incremental.resync_accounts,
                        extra_people_of=incremental.resync_accounts)
    outcome.since = since
    outcome.dirty_accounts, outcome.dirty_people = int(scope.accounts.sum()), int(scope.people.sum())
    return scope


@dataclass(frozen=True)
class _Stored:
    """What an incremental run scores the dirty entities against: the population state and the
    active models, all kept by earlier runs."""

    state: PopulationState
    models: dict[str, ActiveModel]


def _stored(conn: Connection, config: ScoringConfig) -> _Stored | None:
    """The stored state and models, or None when something is missing (the stage then reads
    everyone, as the first incremental run after an upgrade or a settings change does)."""
    state = load_population_state(conn, config)
    if state is None:
        return None
    models: dict[str, ActiveModel] = {}
    if config.predictive.enabled:
        for target in (pred.account_target(config.predictive), pred.LEAD_CONVERTS):
            current = active_model(conn, target)
            if current is None:  # a model to train: that needs everyone's history
                return None
            models[target] = current
    return _Stored(state, models)


# Past this share of the live accounts or people touched, an incremental run reads everyone. The
# dirty-entity reads hold touches as Python rows: on the L org, a day's change that touched 29% of
# the accounts (57,000 after closing over their people) took 126 s and 6.1 GB that way, against
# 89 s and 3.8 GB reading everyone in numpy partitions. A run every few minutes touches far less.
SUBSET_MAX_SHARE = 0.05


def touched_little(conn: Connection, touched: Touched) -> bool:
    """Whether the entities new data touched are few enough to read alone (see SUBSET_MAX_SHARE)."""
    accounts = conn.execute(select(func.count()).select_from(Account).where(Account.is_deleted.is_(False)))
    return (len(touched.account_ids) <= SUBSET_MAX_SHARE * accounts.scalar_one()
            and len(touched.person_ids) <= SUBSET_MAX_SHARE * live_people(conn))


def _score_dirty(conn: Connection, config: ScoringConfig, now: datetime, incremental: Incremental,
                 stored: _Stored, touched: Touched, outcome: ScoreOutcome) -> None:
    """The incremental stage on the dirty entities alone, against the stored population state."""
    as_of = int(now.timestamp())
    phases = outcome.phase_seconds
    started = time.perf_counter()
    subset = load_subset_inputs(conn, config, touched,
                                extra_accounts=incremental.extra_accounts | incremental.resync_accounts,
                                extra_people_of=incremental.resync_accounts)
    state = stored.state
    # Segment values named as the whole population spells them, whichever accounts were loaded.
    population = replace(subset.inputs.population,
                         segments=with_display_names(subset.inputs.population.segments, state.fit))
    inputs = existing_at(replace(subset.inputs, population=population), as_of)
    phases["load"] = time.perf_counter() - started
    account_probability = lead_probability = None
    model_version = None
    rules = None
    if config.predictive.enabled:
        started = time.perf_counter()
        rules = scores_as_of(inputs, config, as_of, state)
        for target, current in stored.models.items():
            outcome.models[target] = f"version {current.version} (trained {current.trained_at:%Y-%m-%d})"
            probability = pred.predict(current.model, inputs, config, as_of, state=state, scores=rules)
            if target == pred.LEAD_CONVERTS:
                lead_probability = probability
            else:
                account_probability, model_version = probability, current.version
        phases["predictive"] = time.perf_counter() - started
    started = time.perf_counter()
    person_probability = pred.person_probabilities(lead_probability, account_probability, population.person_account)
    rules = reusable(inputs, rules)
    scores = _final_scores(inputs, config, as_of, rules, account_probability, person_probability, state)
    del rules
    phases["score"] = time.perf_counter() - started
    started = time.perf_counter()
    outcome.saved = save_score_set(conn, scores, population, inputs.account_ids, inputs.person_ids, config, now,
                                   model_version, only_accounts=subset.account_rows, only_people=subset.person_rows)
    prune_history(conn, now.date(), config.history)
    phases["save"] = time.perf_counter() - started
    outcome.since, outcome.loaded = incremental.since, "dirty entities"
    outcome.dirty_accounts, outcome.dirty_people = len(subset.account_rows), len(subset.person_rows)
    outcome.accounts, outcome.people = population.n_accounts, population.n_people
    outcome.activities = len(inputs.activities.ts)
    _report_skipped(inputs, outcome)


def _predicted(scope: Scope | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Which accounts and people need a probability (None: all): an incremental run that read everyone
    saves its dirty entities only. A dirty person's probability may be their account's, which
    :func:`~worker.score_scope.dirty_scope` makes dirty too."""
    return (None, None) if scope is None else (scope.accounts, scope.people)


def _final_scores(inputs: ScoringInputs, config: ScoringConfig, as_of: int, rules: ScoreSet | None,
                  predictive: np.ndarray | None, person_predictive: np.ndarray | None,
                  state: PopulationState | None = None) -> ScoreSet:
    """The scores to save. The predictions were computed from ``rules`` (the rules-based scores at
    ``as_of``, once for both models; None when predictive scoring is off or their aggregates are not
    the population's, see :func:`scoring.features.reusable`); adding them changes only the grades,
    so the aggregates of ``rules`` are reused rather than every touch read a third time."""
    if rules is None:
        return score(inputs.activities, inputs.population, inputs.opportunities, config, as_of,
                     predictive=predictive, person_predictive=person_predictive, state=state)
    return with_predictions(inputs, config, rules, predictive=predictive, person_predictive=person_predictive,
                            state=state)


def _prefetched(conn: Connection, prefetch: ScorePrefetch | None, since: datetime,
                outcome: ScoreOutcome) -> Prefetched | None:
    """What the process beside the match stage read for this stage, where the store still holds it as read
    (:mod:`worker.score_prefetch`), with a note in ``outcome`` of what was used, and why not."""
    if prefetch is None:
        return None
    started = time.perf_counter()
    result = prefetch.result()
    outcome.phase_seconds["prefetched"] = time.perf_counter() - started  # the wait for it, and its reading
    if isinstance(result, str):
        outcome.prefetch = f"not used: {result}"
        return None
    if result.since != since or not still_current(conn, result):
        outcome.prefetch = "not used: the store changed after it was read"
        return None
    if result.everyone is None:
        outcome.prefetch = "used: what the pulls touched (few: everyone's touches and people not read)"
    elif not resolved_alike(conn, result.everyone):
        outcome.prefetch = "used: what the pulls touched (everyone's touches not: one was resolved since)"
        return replace(result, everyone=None)
    else:
        outcome.prefetch = "used: what the pulls touched, everyone's touches and people"
        if result.copies_ahead:
            outcome.prefetch += f" (kept copies read beside the pulls: {', '.join(result.copies_ahead)})"
    return result


def _touched(conn: Connection, since: datetime, prefetched: Prefetched | None) -> Touched:
    """What changed after ``since``: what the pulls touched as read beside the match stage, when it was."""
    if prefetched is None:
        return touched_since(conn, since)
    return touched_by_matching(conn, since, prefetched.touched)


def _report_skipped(inputs: ScoringInputs, outcome: ScoreOutcome) -> None:
    report = inputs.load_report
    outcome.skipped_activities = sum(report.unknown_type.values()) + report.no_timestamp + report.unattributed
    if report.unknown_type:  # a mapping gap: visible in the run record instead of silently lower scores
        outcome.unknown_types = dict(report.unknown_type)


def run_score_stage(engine: Engine, config: ScoringConfig, now: datetime, *, retrain: bool = False,
                    incremental: Incremental | None = None, accounts: list[AccountRecord] | None = None,
                    prefetch: ScorePrefetch | None = None) -> ScoreOutcome:
    """Score as of ``now`` and save what changed, in one transaction: every account and person,
    or (``incremental``) those new data touched since the last successful score stage. ``accounts``:
    every live account, when the run's match stage has just read them (else read here); ``prefetch``: the
    process reading, beside the match stage, what the pulls touched and (when they touched many) everyone's
    touches and people, taken by an incremental stage (:mod:`worker.score_prefetch`).

    What the loading keeps for the next runs (the copies of big tables, :mod:`store.kept_copies`) is committed
    as soon as it is read, before the models train: on SQLite a transaction holds the store's one write lock from
    its first write, and everything else that writes (an admin's trigger, the lock's heartbeat) waits for it; the
    L org's full run held it for 666 s, 566 of them training and predicting. The copies stand on their own (each
    says what it copies as of when), so the transaction of the models, scores and history loses nothing."""
    as_of = int(now.timestamp())
    outcome = ScoreOutcome()
    phases = outcome.phase_seconds
    # The stage holds millions of objects (rows read, keys, saved rows) and makes no reference cycles:
    # the cyclic collector's full passes over them all cost seconds in each phase and free nothing (on the
    # L org's 1% increment, the save took 30.6 CPU s with the collector running, 18.5 without).
    started = time.perf_counter()
    resolve_touch_refs(engine)  # what the pulls left: read by id rather than by key from now on
    phases["resolve"] = time.perf_counter() - started
    with engine.connect() as conn, cyclic_gc_paused():  # committed in two steps (see above); the rest rolls back
        stored = _stored(conn, config) if incremental is not None else None
        prefetched = _prefetched(conn, prefetch, incremental.since, outcome) if incremental is not None else None
        touched = None
        if incremental is not None:
            started = time.perf_counter()
            touched = _touched(conn, incremental.since, prefetched)
            phases["scope"] = time.perf_counter() - started
            if stored is not None:
                if touched_little(conn, touched):
                    if prefetched is not None:
                        outcome.prefetch = "used: what the pulls touched (the few entities touched read alone)"
                    _score_dirty(conn, config, now, incremental, stored, touched, outcome)
                    conn.commit()
                    return outcome
                outcome.loaded = "everyone (too many touched to read them alone)"
        scope = None
        started = time.perf_counter()
        inputs = existing_at(load_score_inputs(conn, config, kept="refresh" if incremental is None else "reuse",
                                               accounts=accounts,
                                               prefetched=prefetched.everyone if prefetched else None), as_of)
        del prefetched
        del accounts  # in the inputs now, as records or columns
        conn.commit()  # the kept copies the loading refreshed: not held through the training
        phases["load"] = time.perf_counter() - started
        if incremental is not None:
            started = time.perf_counter()
            scope = _scope(conn, inputs, incremental, outcome, touched)
            phases["scope"] = phases.get("scope", 0.0) + time.perf_counter() - started
        population = inputs.population
        account_probability = lead_probability = None
        model_version = None
        rules = None
        if config.predictive.enabled:
            started = time.perf_counter()
            models = _models(conn, inputs, config, as_of, retrain, now, outcome.models,
                             active=stored.models if stored is not None else None)
            account_model, lead_model = models[pred.account_target(config.predictive)], models[pred.LEAD_CONVERTS]
            # The rules-based scores both models read, computed once (see _final_scores), after any
            # training: training's own snapshots are not held alongside them.
            rules = scores_as_of(inputs, config, as_of)
            accounts_wanted, people_wanted = _predicted(scope)
            if account_model is not None:
                account_probability = pred.predict(account_model[0], inputs, config, as_of, scores=rules,
                                                   only=accounts_wanted)
                model_version = account_model[1]
            if lead_model is not None:
                lead_probability = pred.predict(lead_model[0], inputs, config, as_of, scores=rules,
                                                only=people_wanted)
            phases["predictive"] = time.perf_counter() - started
        started = time.perf_counter()
        person_probability = pred.person_probabilities(lead_probability, account_probability,
                                                       population.person_account)
        rules = reusable(inputs, rules)  # when not, freed before the population is scored again
        scores = _final_scores(inputs, config, as_of, rules, account_probability, person_probability)
        del rules
        phases["score"] = time.perf_counter() - started
        started = time.perf_counter()
        outcome.saved = save_score_set(conn, scores, population, inputs.account_ids, inputs.person_ids, config, now,
                                       model_version, only_accounts=None if scope is None else scope.account_rows,
                                       only_people=None if scope is None else scope.person_rows)
        prune_history(conn, now.date(), config.history)
        # Everyone was scored: keep what the population taught, for the next incremental runs.
        save_population_state(conn, population_state(scores, population, inputs.opportunities, config), config,
                              now, as_of)
        conn.commit()
        phases["save"] = time.perf_counter() - started
    outcome.accounts, outcome.people = population.n_accounts, population.n_people
    outcome.activities = len(inputs.activities.ts)
    _report_skipped(inputs, outcome)
    return outcome
