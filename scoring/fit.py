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
