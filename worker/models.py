"""Predictive model versions in the store: keep every trained model, use one, restore an older one.

A retrained model can be worse (a bad data week, a changed sales process); an admin who sees
grades jump must be able to put yesterday's model back without a data scientist. So each trained
model is kept with its holdout metrics, exactly one per target is active, and restoring is a flag
flip. Blobs are joblib pickles this worker wrote itself; they are never accepted from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from scoring.predictive import ModelLoadError, PredictiveModel, TrainedModel, load
from store.schema import PredictiveModel as ModelRow
from store.types import utcnow


@dataclass(frozen=True)
class ModelVersion:
    target: str
    version: int
    is_active: bool
    trained_at: datetime
    metrics: dict[str, Any]
    params: dict[str, Any]


def _version(row: Any) -> ModelVersion:
    return ModelVersion(row.target, row.version, row.is_active, row.trained_at, row.metrics or {}, row.params or {})


def list_versions(conn: Connection, target: str | None = None) -> list[ModelVersion]:
    query = select(ModelRow.target, ModelRow.version, ModelRow.is_active, ModelRow.trained_at, ModelRow.metrics,
                   ModelRow.params).order_by(ModelRow.target, ModelRow.version.desc())
    if target is not None:
        query = query.where(ModelRow.target == target)
    return [_version(r) for r in conn.execute(query)]


def save_model(conn: Connection, trained: TrainedModel, *, activate: bool = True, now: datetime | None = None) -> int:
    """Store a newly trained model as the next version of its target; returns the version."""
    version = (conn.execute(select(func.max(ModelRow.version)).where(ModelRow.target == trained.target))
               .scalar_one() or 0) + 1
    if activate:
        conn.execute(update(ModelRow).where(ModelRow.target == trained.target).values(is_active=False))
    conn.execute(ModelRow.__table__.insert().values(
        target=trained.target, version=version, is_active=activate, trained_at=now or utcnow(),
        metrics=trained.metrics, params=trained.params, blob=trained.blob))
    return version


def activate_version(conn: Connection, target: str, version: int) -> None:
    """Make ``version`` the model in use for ``target`` (restoring an older one is this)."""
    exists = conn.execute(select(ModelRow.id).where(ModelRow.target == target, ModelRow.version == version)).first()
    if exists is None:
        known = [v.version for v in list_versions(conn, target)]
        raise LookupError(f"no {target} model version {version}; stored versions: {known or 'none'}")
    conn.execute(update(ModelRow).where(ModelRow.target == target).values(is_active=ModelRow.version == version))


@dataclass(frozen=True)
class ActiveModel:
    version: int
    trained_at: datetime
    model: PredictiveModel


def active_model(conn: Connection, target: str) -> ActiveModel | None:
    """The model in use for ``target``; None when there is none or it cannot be loaded by this
    version (the caller retrains: a stale pickle must not stop scoring)."""
    row = conn.execute(select(ModelRow.version, ModelRow.trained_at, ModelRow.blob)
                       .where(ModelRow.target == target, ModelRow.is_active.is_(True))).first()
    if row is None:
        return None
    try:
        return ActiveModel(row.version, row.trained_at, load(row.blob))
    except ModelLoadError:
        return None


def is_stale(model: ActiveModel | None, max_age: timedelta, now: datetime | None = None) -> bool:
    return model is None or (now or utcnow()) - model.trained_at > max_age
