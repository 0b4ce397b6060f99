"""Backtesting the scoring configuration on the org's own history (``abm evaluate``).

Scores are computed as of a past date (by default one horizon before the as-of date, so the
whole horizon after it is observed) with the current configuration, and compared with what
happened next: did the account win (or open) a deal within the horizon? From that: the AUC of
the grade score, conversion per grade, the lift of grade 4 over the average, conversion per
velocity trend, the predictive model's AUC on its time-based holdout, and a suggested point
value per activity type from its association with won deals, next to the configured value.

When ground truth is known (the sandbox generator's surging accounts), the recall of the
velocity trend on it is measured as well.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from config.scoring import PERSONAS, ScoringConfig
from scoring.catalogue import DAY, TYPE_NAMES
from scoring.features import population_as_of, scores_as_of
from scoring.inputs import ScoringInputs
from scoring.predictive import HoldoutEvaluation, NotTrained, account_target, evaluate_holdout, snapshot_times
from scoring.rules import TRENDS, grades
from scoring.scores import score

# A type needs this many touched account-snapshots, and this many of them converting, for a
# suggestion: fewer, and one lucky account decides the value.
MIN_TOUCHED_ACCOUNTS = 20
MIN_TOUCHED_CONVERTED = 5


@dataclass(frozen=True)
class GroupRate:
    """Accounts in a group (a grade, a trend) and how many of them converted within the horizon."""

    label: str
    accounts: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.accounts if self.accounts else 0.0


@dataclass(frozen=True)
class PointSuggestion:
    activity_type: str
    configured: float
    suggested: float | None  # None: too few accounts touched by this type to say
    accounts_touched: int
    win_rate_touched: float
    win_rate_untouched: float


@dataclass(frozen=True)
class TruthCheck:
    """Recall of the velocity trend on accounts known to be surging (generator ground truth)."""

    surging_accounts: int
    flagged: int  # of them, trend surging or rising

    @property
    def recall(self) -> float:
        return self.flagged / self.surging_accounts if self.surging_accounts else 0.0


@dataclass(frozen=True)
class Evaluation:
    as_of: int  # the org's as-of date (seconds)
    backtest_as_of: int  # scores computed as of this date
    horizon_days: int
    target: str  # "won" or "opened"
    accounts: int  # accounts that existed at the backtest date
    converted: int
    auc_grade_score: float | None
    auc_engagement: float | None
    auc_fit: float | None
    fit_note: str
    grades: list[GroupRate]  # grades 4..1 from the rules
    trends: list[GroupRate]
    predictive: HoldoutEvaluation | NotTrained
    predictive_grades: list[GroupRate] | None  # grades from a model trained before the backtest date
    predictive_note: str
    suggestions: list[PointSuggestion]
    truth: TruthCheck | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def base_rate(self) -> float:
        return self.converted / self.accounts if self.accounts else 0.0

    @staticmethod
    def _lift(table: list[GroupRate] | None, base: float) -> float | None:
        if not table or base <= 0:
            return None
        top = next(g for g in table if g.label == "4")
        return top.rate / base if top.accounts else None

    @property
    def grade4_lift(self) -> float | None:
        return self._lift(self.grades, self.base_rate)

    @property
    def predictive_grade4_lift(self) -> float | None:
        return self._lift(self.predictive_grades, self.base_rate)

    @property
    def predictive_auc(self) -> float | None:
        return self.predictive.metrics["holdout_auc"] if isinstance(self.predictive, HoldoutEvaluation) else None


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None


def _group_rates(labels: np.ndarray, y: np.ndarray, names: list[tuple[int, str]]) -> list[GroupRate]:
    return [GroupRate(name, int((labels == code).sum()), int(y[labels == code].sum())) for code, name in names]


def counting_config(config: ScoringConfig) -> ScoringConfig:
    """The same decay, caps and windows with every touch worth 1 and every persona 1: aggregates
    then count (decayed) touches per type, the raw material for suggesting points."""
    catalogue = {name: entry.model_copy(update={"points": 1.0}) for name, entry in config.catalogue.items()}
    personas = config.personas.model_copy(update={"multipliers": dict.fromkeys(PERSONAS, 1.0)})
    return config.model_copy(update={"catalogue": catalogue, "personas": personas})


def suggest_points(
    inputs: ScoringInputs, config: ScoringConfig, times: list[int], target: str
) -> list[PointSuggestion]:
    """Points per touch of each type from its own association with converting within the horizon.

    Per type, a logistic regression of "converted" on the account's decayed touch count, pooled
    over the snapshot dates ``times`` (oldest first; the last is the backtest date), gives the
    log-odds one more touch is worth. One type at a time, so correlated types (a demo and the
    meeting before it) each keep their own evidence instead of splitting it arbitrarily. The
    values are scaled so an average account keeps the raw points it has under the configured
    values (``engagement.scale_points`` still fits), and negative associations suggest 0.
    The touched and win-rate columns are at the backtest date.
    """
    counting = counting_config(config)
    horizon = config.predictive.horizon_days * DAY
    n = inputs.population.n_accounts
    X_parts, y_parts = [], []
    for t in times:
        agg = score(inputs.activities, population_as_of(inputs, t), inputs.opportunities, counting, t).agg
        existed = inputs.account_created < t
        X_parts.append(agg.account_type_points[existed])
        y_parts.append(inputs.opportunities.outcome_between(n, t, t + horizon, target)[existed])
    if not X_parts:
        return []
    configured = np.array([config.catalogue[name].points for name in TYPE_NAMES])
    X, y = np.concatenate(X_parts), np.concatenate(y_parts)
    last_X, last_y = X_parts[-1] > 0, y_parts[-1]
    per_touch = np.full(len(TYPE_NAMES), np.nan)
    both_outcomes = 0 < y.sum() < len(y)
    for t in range(len(TYPE_NAMES)):
        column = X[:, t]
        touching = column > 0
        enough = touching.sum() >= MIN_TOUCHED_ACCOUNTS and y[touching].sum() >= MIN_TOUCHED_CONVERTED
        if not (both_outcomes and enough) or column.std() == 0:
            continue
        sd = column.std()
        model = LogisticRegression(C=1.0, max_iter=1000).fit((column / sd)[:, None], y)
        per_touch[t] = max(float(model.coef_[0, 0]) / sd, 0.0)
    usable = ~np.isnan(per_touch)
    suggested = np.full(len(TYPE_NAMES), np.nan)
    mean_touches = X.mean(axis=0)
    mass = float(per_touch[usable] @ mean_touches[usable])
    if mass > 0:
        suggested[usable] = per_touch[usable] * float(configured[usable] @ mean_touches[usable]) / mass
    touched = last_X.sum(axis=0)
    untouched = len(last_y) - touched
    win_touched = np.divide((last_X & last_y[:, None]).sum(axis=0), touched, out=np.zeros(len(TYPE_NAMES)),
                            where=touched > 0)
    win_untouched = np.divide((~last_X & last_y[:, None]).sum(axis=0), untouched, out=np.zeros(len(TYPE_NAMES)),
                              where=untouched > 0)
    return [
        PointSuggestion(
            activity_type=name,
            configured=float(configured[i]),
            suggested=None if np.isnan(suggested[i]) else round(float(suggested[i]), 1),
            accounts_touched=int(touched[i]),
            win_rate_touched=float(win_touched[i]),
            win_rate_untouched=float(win_untouched[i]),
        )
        for i, name in enumerate(TYPE_NAMES)
    ]


def evaluate(
    inputs: ScoringInputs,
    config: ScoringConfig,
    as_of: int,
    *,
    backtest_as_of: int | None = None,
    surging_truth: Collection[int] | None = None,
) -> Evaluation:
    """Backtest ``config`` on ``inputs`` (the org as of ``as_of``).

    ``surging_truth``: account indexes known to be surging at ``as_of`` (generator ground truth).
    """
    pc = config.predictive
    horizon = pc.horizon_days * DAY
    back = backtest_as_of if backtest_as_of is not None else as_of - horizon
    notes: list[str] = []
    if back + horizon > as_of:
        notes.append(
            f"the backtest date is less than {pc.horizon_days} days before the as-of date: "
            "outcomes after the as-of date are not known yet and count as 'not converted'"
        )
    n = inputs.population.n_accounts
    existed = inputs.account_created < back
    y_all = inputs.opportunities.outcome_between(n, back, back + horizon, pc.target)
    y = y_all[existed]

    past = scores_as_of(inputs, config, back)
    rules_grades = grades(past.fit.fit, past.engagement, config.grade)[existed]
    grade_names = [(g, str(g)) for g in (4, 3, 2, 1)]

    target = account_target(pc)
    holdout = evaluate_holdout(inputs, config, as_of, target=target)
    predictive_grades = None
    if not pc.enabled:
        predictive_note = "disabled in the configuration"
    else:
        # A holdout evaluation as of (backtest + horizon) has the backtest date as its latest
        # held-out snapshot: its model was fitted only on snapshots settled before then.
        then = holdout if back + horizon == as_of else evaluate_holdout(inputs, config, back + horizon, target=target)
        if isinstance(then, HoldoutEvaluation) and back in then.predictions:
            rows, probability = then.predictions[back]
            p = np.full(n, np.nan)
            p[rows] = probability
            predictive_grades = _group_rates(
                grades(past.fit.fit, past.engagement, config.grade, p)[existed], y, grade_names
            )
            predictive_note = "grades from a model fitted only on history settled before the backtest date"
        else:
            reason = then.reason if isinstance(then, NotTrained) else "no prediction at the backtest date"
            predictive_note = f"no model as of the backtest date: {reason}"

    truth = None
    if surging_truth is not None:
        now = score(inputs.activities, inputs.population, inputs.opportunities, config, as_of)
        idx = np.fromiter(surging_truth, dtype=np.int64)
        flagged = np.isin(now.trend[idx], [TRENDS.index("surging"), TRENDS.index("rising")])
        truth = TruthCheck(len(idx), int(flagged.sum()))

    times = snapshot_times(inputs, pc, back + horizon)  # the backtest date and the snapshots before it
    return Evaluation(
        as_of=as_of,
        backtest_as_of=back,
        horizon_days=pc.horizon_days,
        target=pc.target,
        accounts=int(existed.sum()),
        converted=int(y.sum()),
        auc_grade_score=_auc(y, past.grade_score[existed]),
        auc_engagement=_auc(y, past.engagement[existed]),
        auc_fit=_auc(y, past.fit.fit[existed]),
        fit_note=past.fit.note,
        grades=_group_rates(rules_grades, y, grade_names),
        trends=_group_rates(past.trend[existed], y, [(i, name) for i, name in reversed(list(enumerate(TRENDS)))]),
        predictive=holdout,
        predictive_grades=predictive_grades,
        predictive_note=predictive_note,
        suggestions=suggest_points(inputs, config, times, pc.target),
        truth=truth,
        notes=notes,
    )
