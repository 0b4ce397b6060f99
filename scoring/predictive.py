"""The predictive score: the probability that an account wins (or opens) a deal, or that a lead
converts, within the horizon, learned from the org's own history with scikit-learn.

Training rows are snapshots of every account (or open lead) taken every
``snapshot_every_days`` before the last date whose horizon is fully observed; features come
from :mod:`scoring.features` (only what was known at the snapshot), the label from the
horizon after it. The split is by time: the latest snapshots are held out, and training uses
only snapshots whose labels were settled before the first held-out one, so nothing a
held-out row could know leaks into training. Probabilities are calibrated (Platt or
isotonic, cross-fitted by snapshot), and the model is refitted on every snapshot for use.

The model leaves here as bytes (joblib) with its metrics and parameters; the worker keeps
versions in ``predictive_models`` and can restore any of them with :func:`load`. Blobs are
pickles: load only blobs this worker wrote to its own store.

scikit-learn and joblib are imported by the functions that train, evaluate and load: with scipy
they take 2 s to import, which every process that imports the scoring code (a run's stage
processes, `abm --help`) would otherwise pay, needed or not.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from config.scoring import PredictiveConfig, ScoringConfig
from scoring.catalogue import DAY
from scoring.features import (
    ACCOUNT_FEATURES,
    LEAD_FEATURES,
    FeatureFrame,
    account_features,
    lead_features,
    scores_as_of,
)
from scoring.inputs import ScoringInputs
from scoring.outcomes import NEVER
from scoring.scores import PopulationState, ScoreSet

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

BLOB_FORMAT = 1
ACCOUNT_WON, ACCOUNT_OPENED, LEAD_CONVERTS = "account_won", "account_opened", "lead_converts"
TARGETS = (ACCOUNT_WON, ACCOUNT_OPENED, LEAD_CONVERTS)


@dataclass(frozen=True)
class TrainedModel:
    """What the worker stores in ``predictive_models``: ``target``, ``blob``, ``metrics``, ``params``."""

    target: str
    blob: bytes
    metrics: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class NotTrained:
    """Why no model was trained (too little labelled history), with the counts that decided it."""

    target: str
    reason: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class PredictiveModel:
    """A loaded model: ``predict_proba`` on feature rows laid out as ``features``."""

    target: str
    features: tuple[str, ...]
    estimator: ClassifierMixin
    sklearn_version: str
    horizon_days: int

    def probability(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.empty(0)
        with threadpool_limits(limits=1, user_api="openmp"):
            return self.estimator.predict_proba(X)[:, 1]


class ModelLoadError(ValueError):
    """A stored model that this version cannot use; the message says what to do."""


# ---------------------------------------------------------------- snapshots and labels


def account_target(config: PredictiveConfig) -> str:
    return ACCOUNT_WON if config.target == "won" else ACCOUNT_OPENED


def snapshot_times(inputs: ScoringInputs, config: PredictiveConfig, as_of: int) -> list[int]:
    """Snapshot dates, oldest first, whose whole horizon lies before ``as_of`` and after the first data."""
    horizon = config.horizon_days * DAY
    first = min(
        int(inputs.activities.ts.min()) if len(inputs.activities) else NEVER,
        int(inputs.opportunities.created.min()) if len(inputs.opportunities) else NEVER,
    )
    times = [as_of - horizon - k * config.snapshot_every_days * DAY for k in range(config.max_snapshots)]
    return sorted(t for t in times if t > first)


def _account_labels(inputs: ScoringInputs, frame: FeatureFrame, horizon: int, target: str) -> np.ndarray:
    hit = inputs.opportunities.outcome_between(
        inputs.population.n_accounts, frame.as_of, frame.as_of + horizon, "won" if target == ACCOUNT_WON else "opened"
    )
    return hit[frame.rows]


def _lead_labels(inputs: ScoringInputs, frame: FeatureFrame, horizon: int) -> np.ndarray:
    converted = inputs.people.converted[frame.rows]
    return (converted >= frame.as_of) & (converted < frame.as_of + horizon)


@dataclass(frozen=True)
class Snapshot:
    """One snapshot: every row's label (for the counts), and the features of a stratified sample
    of its rows with inverse-rate weights.

    Sampling each snapshot as it is built bounds memory by the training limit, not by the org:
    an L org's 12 lead snapshots in full are 1.6 GB of features, of which training reads
    ``max_training_rows`` at most. Rows sampled within (snapshot, label) strata and weighted by
    the inverse of their rate estimate the same rates, AUC and calibration as every row.
    """

    as_of: int
    labels: np.ndarray  # bool, one per entity at the snapshot
    X: np.ndarray  # features of the sampled rows
    y: np.ndarray  # int8 labels of the sampled rows
    weight: np.ndarray  # inverse sampling rate of each sampled row
    names: tuple[str, ...]


def _labelled_frame(
    inputs: ScoringInputs, config: ScoringConfig, t: int, target: str
) -> tuple[FeatureFrame, np.ndarray]:
    horizon = config.predictive.horizon_days * DAY
    scores = scores_as_of(inputs, config, t)
    if target == LEAD_CONVERTS:
        frame = lead_features(inputs, config, t, scores)
        return frame, _lead_labels(inputs, frame, horizon)
    frame = account_features(inputs, config, t, scores)
    return frame, _account_labels(inputs, frame, horizon, target)


def _snapshots(
    inputs: ScoringInputs, config: ScoringConfig, times: Sequence[int], target: str, per_snapshot: int, keep_whole: int
) -> tuple[list[Snapshot], FeatureFrame]:
    """The sampled snapshots at ``times``, and the frame at ``keep_whole`` in full (the one a
    backtest grades every entity at)."""
    out, whole = [], None
    for k, t in enumerate(times):
        frame, labels = _labelled_frame(inputs, config, t, target)
        index, weight = _sample(labels, per_snapshot, config.predictive.random_state + k)
        out.append(Snapshot(t, labels, frame.X[index], labels[index].astype(np.int8), weight, frame.names))
        if t == keep_whole:
            whole = frame
    assert whole is not None, "keep_whole must be one of the snapshot times"
    return out, whole


def _stack(snapshots: Sequence[Snapshot], limit: int, seed: int) -> tuple[np.ndarray, ...]:
    """(X, y, groups, weight) of the snapshots' samples, resampled to ``limit`` rows if more;
    weights multiply, as the two samplings are independent."""
    y = np.concatenate([s.y for s in snapshots])
    weight = np.concatenate([s.weight for s in snapshots])
    groups = np.concatenate([np.full(len(s.y), s.as_of) for s in snapshots])
    keep, again = _sample(y, limit, seed)
    out = np.empty((len(keep), snapshots[0].X.shape[1]))
    start = 0
    for s in snapshots:  # copy only the kept rows, snapshot by snapshot
        end = start + len(s.y)
        lo, hi = np.searchsorted(keep, (start, end))
        out[lo:hi] = s.X[keep[lo:hi] - start]
        start = end
    return out, y[keep], groups[keep], weight[keep] * again


# ---------------------------------------------------------------- model


def _base_estimator(config: PredictiveConfig) -> ClassifierMixin:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if config.algorithm == "gradient_boosting":
        # Shallow, strongly regularized trees: a few thousand positives at most, and scores
        # that must not swing between nightly retrains.
        return HistGradientBoostingClassifier(
            learning_rate=0.05,
            max_iter=250,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=config.random_state,
        )
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=0.5, max_iter=2000),
    )


def _fit_calibrated(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, weight: np.ndarray, config: PredictiveConfig
) -> ClassifierMixin:
    """Calibrated model; calibration folds are whole snapshots, so a calibrator never sees the
    rows its model was fitted on (nor the same accounts at the same date)."""
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    n_groups = len(np.unique(groups))
    n_pos = int(y.sum())
    folds = min(3, n_pos, len(y) - n_pos)
    if n_groups >= 3:
        splits = list(GroupKFold(n_splits=min(3, n_groups)).split(X, y, groups))
        if any(len(np.unique(y[train])) < 2 for train, _ in splits):
            splits = list(StratifiedKFold(folds, shuffle=True, random_state=config.random_state).split(X, y))
    else:
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=config.random_state).split(X, y))
    # ensemble=False: calibrate on out-of-fold predictions, then keep one model fitted on all rows
    # (one model in the blob, a quarter of the fits of an ensemble). One OpenMP thread: on a
    # machine shared with the rest of the worker, spinning threads cost far more than they gain.
    model = CalibratedClassifierCV(clone(_base_estimator(config)), method=config.calibration, cv=splits, ensemble=False)
    with threadpool_limits(limits=1, user_api="openmp"), warnings.catch_warnings():
        # The logistic pipeline takes no weights: they then correct the calibration only, which
        # is where sampling shows (the intercept), so the warning says nothing actionable.
        warnings.filterwarnings("ignore", message=".*does not appear to accept sample_weight.*")
        # All-ones weights (nothing was sampled) fit the same model without them, and skip
        # scikit-learn's weighted-percentile binning, which made training ten times slower.
        return model.fit(X, y, sample_weight=None if np.all(weight == 1.0) else weight)


def _sample(y: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(row indexes, weights): every row when there are at most ``limit``; else every positive
    (up to half the limit) and a random share of the rest, each weighted by the inverse of its
    sampling rate, so weighted rates, AUC and calibration estimate those of all rows."""
    n = len(y)
    if n <= limit:
        return np.arange(n), np.ones(n)
    rng = np.random.default_rng(seed)
    out_index, out_weight = [], []
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y.astype(bool))
    keep_pos = min(len(positives), limit // 2)
    for rows, keep in ((positives, keep_pos), (negatives, limit - keep_pos)):
        chosen = np.sort(rng.choice(rows, size=min(keep, len(rows)), replace=False)) if len(rows) else rows
        out_index.append(chosen)
        out_weight.append(np.full(len(chosen), len(rows) / max(len(chosen), 1)))
    index = np.concatenate(out_index)
    order = np.argsort(index)
    return index[order], np.concatenate(out_weight)[order]


def _metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> dict[str, float]:
    """Holdout figures; ``w`` are the sampling weights (rates and AUC as over every row)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    total = float(w.sum())
    base = float((w * y).sum() / total) if total else 0.0
    order = np.argsort(-p, kind="stable")
    top = order[: int(np.searchsorted(np.cumsum(w[order]), total / 10)) + 1]
    return {
        "auc": float(roc_auc_score(y, p, sample_weight=w)),
        "average_precision": float(average_precision_score(y, p, sample_weight=w)),
        "brier": float(brier_score_loss(y, p, sample_weight=w)),
        "base_rate": base,
        "mean_probability": float((w * p).sum() / total) if total else 0.0,
        "top_decile_lift": float((w[top] * y[top]).sum() / w[top].sum() / base) if base > 0 else 0.0,
        "rows": int(round(total)),
        "positives": int(round((w * y).sum())),
    }


def _counts(snapshots: Sequence[Snapshot]) -> tuple[int, int]:
    return sum(len(s.labels) for s in snapshots), sum(int(s.labels.sum()) for s in snapshots)


@dataclass(frozen=True)
class HoldoutEvaluation:
    """A model fitted on the training snapshots and measured on the held-out ones.

    ``predictions`` maps the latest held-out snapshot time to (entity indexes, probabilities) for
    every entity then: out-of-time predictions a backtest can grade with, since the model never
    saw anything after them.
    """

    target: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    predictions: dict[int, tuple[np.ndarray, np.ndarray]]
    snapshots: list[Snapshot]  # every snapshot's sample, oldest first, for the final refit


def evaluate_holdout(
    inputs: ScoringInputs, config: ScoringConfig, as_of: int, *, target: str | None = None
) -> HoldoutEvaluation | NotTrained:
    """Fit on the training snapshots and measure on the time-based holdout (no final refit).

    Returns :class:`NotTrained` (never raises) when the history is too thin for a model.
    """
    pc = config.predictive
    target = target or account_target(pc)
    if target not in TARGETS:
        raise ValueError(f"unknown predictive target {target!r}; expected one of {', '.join(TARGETS)}")
    if not pc.enabled:
        return NotTrained(target, "predictive scoring is disabled (scoring.predictive.enabled: false)", {})
    times = snapshot_times(inputs, pc, as_of)
    if len(times) < 2:
        return NotTrained(
            target,
            f"history too short: {len(times)} snapshot(s) with a fully observed {pc.horizon_days}-day horizon "
            "before the as-of date (need 2: one to train on, one to hold out)",
            {"snapshots": len(times)},
        )
    n_hold = min(len(times) - 1, max(1, round(pc.holdout_share * len(times))))
    holdout_times = times[-n_hold:]
    train_times = [t for t in times[:-n_hold] if t + pc.horizon_days * DAY <= holdout_times[0]]
    if not train_times:
        return NotTrained(
            target,
            f"history too short: no snapshot's {pc.horizon_days}-day horizon ends before the held-out period "
            f"(raise max_snapshots or lower snapshot_every_days / holdout_share)",
            {"snapshots": len(times)},
        )
    pc_limit, seed = pc.max_training_rows, pc.random_state
    # Enough rows per snapshot for the training snapshots together to fill the limit.
    per_snapshot = -(-pc_limit // len(train_times))
    snapshots, latest = _snapshots(inputs, config, times, target, per_snapshot, keep_whole=holdout_times[-1])
    by_time = {s.as_of: s for s in snapshots}
    train_snaps = [by_time[t] for t in train_times]
    hold_snaps = [by_time[t] for t in holdout_times]
    train_rows, train_pos = _counts(train_snaps)
    hold_rows, hold_pos = _counts(hold_snaps)
    counts = {
        "train_rows": train_rows, "train_positives": train_pos,
        "holdout_rows": hold_rows, "holdout_positives": hold_pos,
        "snapshots": len(times), "train_snapshots": len(train_times), "holdout_snapshots": len(holdout_times),
    }
    short = []
    if train_rows < pc.min_labelled_rows:
        short.append(f"{train_rows} training rows (min_labelled_rows: {pc.min_labelled_rows})")
    if train_pos < pc.min_positive_labels:
        short.append(f"{train_pos} positive training labels (min_positive_labels: {pc.min_positive_labels})")
    if hold_pos < pc.min_holdout_positives:
        short.append(f"{hold_pos} positives in the holdout (min_holdout_positives: {pc.min_holdout_positives})")
    if train_rows - train_pos < 3 or hold_rows - hold_pos < 1:
        short.append("too few negative labels")
    if short:
        return NotTrained(target, "not enough labelled history: " + "; ".join(short), counts)

    X_train, y_train, g_train, w_train = _stack(train_snaps, pc_limit, seed)
    evaluated = _fit_calibrated(X_train, y_train, g_train, w_train, pc)
    X_hold, y_hold, _, w_hold = _stack(hold_snaps, pc_limit, seed + 1)
    with threadpool_limits(limits=1, user_api="openmp"):
        p_hold = evaluated.predict_proba(X_hold)[:, 1]
        p_train = evaluated.predict_proba(X_train)[:, 1]
        # The latest held-out snapshot in full: a backtest grades every account at that date.
        predictions = {latest.as_of: (latest.rows, evaluated.predict_proba(latest.X)[:, 1] if len(latest.rows)
                                      else np.empty(0))}
    holdout = _metrics(y_hold, p_hold, w_hold)
    metrics = {
        **counts,
        "holdout": holdout,
        "train": _metrics(y_train, p_train, w_train),
        "holdout_auc": holdout["auc"],
        "auc": holdout["auc"],  # the figure to show next to a version: measured on the time-based holdout
    }
    params = {
        "target": target,
        "as_of": as_of,
        "predictive": pc.model_dump(),
        "features": list(snapshots[0].names),
        "train_snapshots": train_times,
        "holdout_snapshots": holdout_times,
        "sklearn_version": _sklearn_version(),
        "blob_format": BLOB_FORMAT,
    }
    return HoldoutEvaluation(target, metrics, params, predictions, snapshots)


def train(
    inputs: ScoringInputs, config: ScoringConfig, as_of: int, *, target: str | None = None
) -> TrainedModel | NotTrained:
    """Train, evaluate on the time-based holdout, refit on all snapshots, and serialize.

    ``target`` is one of :data:`TARGETS`; the default is the account outcome in the config.
    Returns :class:`NotTrained` (never raises) when the history is too thin for a model.
    """
    evaluation = evaluate_holdout(inputs, config, as_of, target=target)
    if isinstance(evaluation, NotTrained):
        return evaluation
    pc = config.predictive
    X, y, groups, weight = _stack(evaluation.snapshots, pc.max_training_rows, pc.random_state)
    final = _fit_calibrated(X, y, groups, weight, pc)
    names = evaluation.snapshots[0].names
    all_rows, all_positives = _counts(evaluation.snapshots)
    blob = dumps(PredictiveModel(evaluation.target, names, final, _sklearn_version(), config.predictive.horizon_days))
    metrics = {**evaluation.metrics, "all_rows": all_rows, "all_positives": all_positives}
    return TrainedModel(evaluation.target, blob, metrics, evaluation.params)


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


# ---------------------------------------------------------------- storage


def dumps(model: PredictiveModel) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(
        {
            "format": BLOB_FORMAT,
            "target": model.target,
            "features": list(model.features),
            "estimator": model.estimator,
            "sklearn_version": model.sklearn_version,
            "horizon_days": model.horizon_days,
        },
        buffer,
        compress=3,
    )
    return buffer.getvalue()


def load(blob: bytes) -> PredictiveModel:
    """A stored model, checked against the features this version computes."""
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InconsistentVersionWarning)
            payload = joblib.load(io.BytesIO(blob))
    except Exception as exc:  # a truncated or foreign blob: say so instead of a pickle traceback
        raise ModelLoadError(f"stored predictive model cannot be read ({type(exc).__name__}): retrain it") from None
    if not isinstance(payload, dict) or payload.get("format") != BLOB_FORMAT:
        raise ModelLoadError("stored predictive model has an unknown format: retrain it")
    target = payload["target"]
    expected = LEAD_FEATURES if target == LEAD_CONVERTS else ACCOUNT_FEATURES
    if tuple(payload["features"]) != expected:
        raise ModelLoadError(
            f"stored {target} model was trained on other features than this version computes: retrain it"
        )
    return PredictiveModel(
        target=target,
        features=expected,
        estimator=payload["estimator"],
        sklearn_version=payload["sklearn_version"],
        horizon_days=int(payload["horizon_days"]),
    )


# ---------------------------------------------------------------- prediction


def predict(model: PredictiveModel, inputs: ScoringInputs, config: ScoringConfig, as_of: int, *,
            state: PopulationState | None = None, scores: ScoreSet | None = None,
            only: np.ndarray | None = None) -> np.ndarray:
    """Probabilities for every account (account models) or person (lead model) as of ``as_of``.

    Entities the model does not apply to (an account created later, a contact, a converted
    lead) get NaN, which the grade treats as "no prediction, use the rules". ``state``: the fit of
    a scoring of everyone when ``inputs`` are part of the population (an incremental run).
    ``scores``: :func:`scoring.features.scores_as_of` for these inputs, date and state when the
    caller has it already (the score stage computes it once for both models and the final scores).
    ``only``: a boolean mask of the entities whose probability is wanted, the others get NaN. An
    incremental run that read everyone saves a few of them, and the model's trees cost a second per
    million rows walked: predicting the L org's 1.7 million people for 134,000 saved was 8 of its 10 s.
    A prediction reads its own row only, so the wanted ones are what predicting everyone gives.
    """
    if scores is None:
        scores = scores_as_of(inputs, config, as_of, state)
    if model.target == LEAD_CONVERTS:
        frame = lead_features(inputs, config, as_of, scores)
        n = inputs.population.n_people
    else:
        frame = account_features(inputs, config, as_of, scores)
        n = inputs.population.n_accounts
    out = np.full(n, np.nan)
    rows, X = frame.rows, frame.X
    if only is not None:
        wanted = only[rows]
        rows, X = rows[wanted], X[wanted]
    out[rows] = model.probability(X)
    return out


def person_probabilities(
    lead_probability: np.ndarray | None, account_probability: np.ndarray | None, person_account: np.ndarray
) -> np.ndarray | None:
    """Per person: an open lead's own conversion probability, else the probability of the
    account the person rolls up to (a contact's deal is the account's deal); NaN when neither."""
    if lead_probability is None and account_probability is None:
        return None
    n = len(person_account)
    out = np.full(n, np.nan)
    if account_probability is not None and len(account_probability):
        has = person_account >= 0
        out[has] = account_probability[person_account[has]]
    if lead_probability is not None:
        own = ~np.isnan(lead_probability)
        out[own] = lead_probability[own]
    return out
