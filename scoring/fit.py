"""ICP fit: what customers have in common, sharpened by customers versus lost accounts per segment.

Learned mode compares, for each segment value (an industry, an employee band...), the rate of
won among won+lost accounts with the overall rate, shrunk toward the overall rate by
``smoothing`` pseudo-accounts so a segment with two accounts cannot dominate. The per-segment
log-odds lifts add up; fit is ``100 * sigmoid(sum)``, so an average account is 50.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from config.scoring import FitConfig
from scoring.outcomes import OpportunityColumns
from store.records import AccountRecord

DIMENSIONS = ("industry", "employee_band", "revenue_band", "country")


def _band_labels(edges: Sequence[float], unit: str, money: bool) -> list[str]:
    def fmt(x: float) -> str:
        if not money:
            return f"{int(x):,}"
        for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if x >= div:
                return f"${x / div:g}{suffix}"
        return f"${x:g}"

    labels = [f"under {fmt(edges[0])} {unit}".strip()]
    labels += [f"{fmt(lo)}–{fmt(hi)} {unit}".strip() for lo, hi in zip(edges, edges[1:], strict=False)]
    labels.append(f"{fmt(edges[-1])}+ {unit}".strip())
    return labels


@dataclass(frozen=True)
class AccountSegments:
    """Segment value code per account and dimension (-1 = unknown), and the value names."""

    codes: np.ndarray  # int32[n_accounts, 4]
    names: tuple[tuple[str, ...], ...]  # per dimension

    def label(self, account: int, dim: int) -> str | None:
        code = int(self.codes[account, dim])
        return self.names[dim][code] if code >= 0 else None


def account_segments(accounts: Sequence[AccountRecord], config: FitConfig) -> AccountSegments:
    """Industry and country as written (case-folded for grouping), size and revenue as bands."""
    def categorical(values: list[str | None]) -> tuple[np.ndarray, tuple[str, ...]]:
        names: dict[str, int] = {}
        display: list[str] = []
        codes = np.full(len(values), -1, dtype=np.int32)
        for i, v in enumerate(values):
            if v and v.strip():
                key = v.strip().casefold()
                if key not in names:
                    names[key] = len(display)
                    display.append(v.strip())
                codes[i] = names[key]
        return codes, tuple(display)

    def banded(values: list[float | None], edges: list[float]) -> np.ndarray:
        arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        codes = np.searchsorted(np.asarray(edges, dtype=np.float64), arr, side="right").astype(np.int32)
        codes[np.isnan(arr) | (arr <= 0)] = -1
        return codes

    industry, industry_names = categorical([a.industry for a in accounts])
    country, country_names = categorical([a.country for a in accounts])
    employees = banded([a.employees for a in accounts], config.employee_bands)
    revenue = banded([a.annual_revenue for a in accounts], config.revenue_bands)
    codes = np.stack([industry, employees, revenue, country], axis=1) if accounts else np.empty((0, 4), np.int32)
    names = (
        industry_names,
        tuple(_band_labels(config.employee_bands, "employees", money=False)),
        tuple(_band_labels(config.revenue_bands, "revenue", money=True)),
        country_names,
    )
    return AccountSegments(codes=codes, names=names)


@dataclass(frozen=True)
class FitResult:
    fit: np.ndarray  # float64[n_accounts], 0-100
    parts: np.ndarray  # float64[n_accounts, 4]: log-odds lift per dimension (learned) or rule points (rules)
    mode: str  # "learned" or "rules"
    labelled: int  # won + lost accounts the learned mode had
    note: str  # why this mode, for evaluate and the admin page


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def compute_fit(
    segments: AccountSegments, opps: OpportunityColumns, as_of: int, config: FitConfig
) -> FitResult:
    """Fit for every account, learned from outcomes closed before ``as_of`` (no peeking ahead)."""
    n = segments.codes.shape[0]
    won, lost = opps.account_labels(n, as_of)
    labelled = int(won.sum() + lost.sum())
    if config.mode == "learned" and labelled >= config.min_labelled_accounts and won.any() and lost.any():
        parts = np.zeros((n, len(DIMENSIONS)))
        base = won.sum() / labelled
        is_lab = won | lost
        for d in range(len(DIMENSIONS)):
            code = segments.codes[:, d].astype(np.int64)
            k = len(segments.names[d]) + 1  # last slot: unknown
            slot = np.where(code >= 0, code, k - 1)
            pos = np.bincount(slot[won], minlength=k)
            tot = np.bincount(slot[is_lab], minlength=k)
            rate = (pos + config.smoothing * base) / (tot + config.smoothing)
            lift = _logit(rate) - _logit(base)
            lift[k - 1] = 0.0  # unknown says nothing
            parts[:, d] = lift[slot]
        fit = 100.0 / (1.0 + np.exp(-parts.sum(axis=1)))
        note = f"learned from {int(won.sum())} customers and {int(lost.sum())} lost accounts"
        return FitResult(fit, parts, "learned", labelled, note)
    parts = np.zeros((n, len(DIMENSIONS)))
    for rule in config.rules:
        d = DIMENSIONS.index(rule.field)
        wanted = {v.strip().casefold() for v in rule.values}
        hits = np.array([name.casefold() in wanted for name in segments.names[d]] + [False], dtype=bool)
        code = segments.codes[:, d]
        parts[:, d] += np.where(hits[np.where(code >= 0, code, len(hits) - 1)], rule.points, 0.0)
    fit = np.clip(config.base + parts.sum(axis=1), 0.0, 100.0)
    if config.mode == "rules":
        note = "rules (scoring.fit.mode: rules)"
    else:
        note = (
            f"rules: only {labelled} won/lost accounts before the as-of date "
            f"(learned fit needs {config.min_labelled_accounts} with both outcomes)"
        )
    return FitResult(fit, parts, "rules", labelled, note)


# ---------------------------------------------------------------- stored fit (incremental runs)

_CATEGORICAL = (0, 3)  # industry, country: value names; the bands are codes fixed by the config


@dataclass(frozen=True)
class FitModel:
    """What :func:`compute_fit` learned from the whole population, in a form that can be stored and
    applied to any subset of accounts: the log-odds lift of every segment value (by its case-folded
    name for industry and country, by band code for the bands), and the display name each value
    had. An incremental run scores a few thousand accounts; learning fit from those alone would give
    another fit, so it applies the model the last scoring of everyone learned instead."""

    mode: str  # "learned" or "rules"
    labelled: int
    note: str
    lifts: tuple[dict[str, float], ...]  # per dimension: value key -> lift (learned mode only)
    display: tuple[dict[str, str], ...]  # per categorical dimension: value key -> name shown in reasons

    def to_json(self) -> dict:
        return {"mode": self.mode, "labelled": self.labelled, "note": self.note,
                "lifts": list(self.lifts), "display": list(self.display)}

    @classmethod
    def from_json(cls, data: dict) -> FitModel:
        return cls(data["mode"], int(data["labelled"]), data["note"], tuple(data["lifts"]), tuple(data["display"]))


def _value_keys(segments: AccountSegments, d: int) -> list[str]:
    if d in _CATEGORICAL:
        return [name.casefold() for name in segments.names[d]]
    return [str(code) for code in range(len(segments.names[d]))]


def learn_fit(segments: AccountSegments, opps: OpportunityColumns, as_of: int, config: FitConfig) -> FitModel:
    """The model behind :func:`compute_fit` for these accounts (``apply_fit`` of it on the same
    accounts gives the same :class:`FitResult`)."""
    result = compute_fit(segments, opps, as_of, config)
    display = tuple({name.casefold(): name for name in reversed(segments.names[d])} if d in _CATEGORICAL else {}
                    for d in range(len(DIMENSIONS)))
    if result.mode != "learned":
        return FitModel(result.mode, result.labelled, result.note, tuple({} for _ in DIMENSIONS), display)
    lifts: list[dict[str, float]] = []
    for d in range(len(DIMENSIONS)):
        code = segments.codes[:, d]
        keys = _value_keys(segments, d)
        table: dict[str, float] = {}
        for c, lift in zip(code.tolist(), result.parts[:, d].tolist(), strict=True):
            if c >= 0:
                table.setdefault(keys[c], lift)
        lifts.append(table)
    return FitModel(result.mode, result.labelled, result.note, tuple(lifts), display)


def apply_fit(model: FitModel, segments: AccountSegments, config: FitConfig) -> FitResult:
    """Fit of these accounts from a stored model: a segment value the model never saw (or an unknown
    one) adds nothing, as a value without labelled accounts does when fit is learned."""
    n = segments.codes.shape[0]
    if model.mode != "learned":
        rules = compute_fit(segments, OpportunityColumns.empty(), 0, config.model_copy(update={"mode": "rules"}))
        return FitResult(rules.fit, rules.parts, model.mode, model.labelled, model.note)
    parts = np.zeros((n, len(DIMENSIONS)))
    for d in range(len(DIMENSIONS)):
        table = model.lifts[d]
        by_code = np.array([table.get(k, 0.0) for k in _value_keys(segments, d)] + [0.0], dtype=np.float64)
        code = segments.codes[:, d]
        parts[:, d] = by_code[np.where(code >= 0, code, len(by_code) - 1)]
    fit = 100.0 / (1.0 + np.exp(-parts.sum(axis=1)))
    return FitResult(fit, parts, model.mode, model.labelled, model.note)


def with_display_names(segments: AccountSegments, model: FitModel) -> AccountSegments:
    """The segments with each known value named as the whole population first spelled it, so a
    reason reads the same whichever subset of accounts was loaded."""
    names = tuple(
        tuple(model.display[d].get(name.casefold(), name) for name in segments.names[d]) if d in _CATEGORICAL
        else segments.names[d]
        for d in range(len(DIMENSIONS)))
    return AccountSegments(segments.codes, names)
