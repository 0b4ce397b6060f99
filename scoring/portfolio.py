"""ABM portfolio metrics: how the tracked accounts are covered, reached and converted.

Definitions (all over accounts; "tracked" = grade at or above ``report.tracked_min_grade``,
"ICP" = fit at or above ``report.icp_min_fit``, "engaged" = engagement at or above
``report.engaged_min_engagement``):

- **coverage**: share of tracked accounts with at least one known person (a contact or a
  matched lead), and the known buying-committee personas per tracked account;
- **penetration**: share of the known people at tracked accounts who engaged, and the average
  share of buying-committee personas engaged;
- **awareness**: share of tracked accounts with any engagement in the lookback;
- **engagement**: share of tracked accounts engaged, and their median engagement score;
- **precision**: share of engaged accounts that are ICP (is our engagement landing on the right
  accounts?); **relevance**: share of ICP accounts that are engaged (are the right accounts
  responding?);
- **impact**: for deals closed in the last ``report.impact_days``, win rate and deal velocity
  (median days from creation to a won close) of accounts tracked at the start of that period
  against the others (tracked as of the start, so a win cannot make its own account tracked);
- **obtainable revenue**: for tracked accounts, the sum of win probability (the predictive
  score when there is one, else the period's win rate) times the typical won deal of the
  account's industry (its median, with at least five won deals, else the overall median);
  and the open pipeline of tracked accounts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from config.scoring import PERSONAS, ScoringConfig
from scoring.catalogue import DAY
from scoring.outcomes import OpportunityColumns
from scoring.scores import Population, ScoreSet

MIN_WON_FOR_SEGMENT = 5


@dataclass(frozen=True)
class Impact:
    deals_closed: int
    deals_won: int
    win_rate: float | None
    median_days_to_win: float | None
    median_won_amount: float | None


@dataclass(frozen=True)
class Portfolio:
    accounts: int
    tracked: int
    icp: int
    engaged: int
    coverage: float | None
    known_committee_personas: float | None  # mean personas of the buying committee known per tracked account
    penetration: float | None
    committee_engaged: float | None
    awareness: float | None
    engagement_rate: float | None
    median_engagement: float | None
    precision: float | None
    relevance: float | None
    impact_tracked: Impact
    impact_other: Impact
    obtainable_revenue: float
    open_pipeline_tracked: float
    probability_basis: str  # "predictive" or "win rate"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for the admin page."""
        return asdict(self)


def _share(part: np.ndarray, whole: np.ndarray) -> float | None:
    n = int(whole.sum())
    return float((part & whole).sum() / n) if n else None


def _impact(opps: OpportunityColumns, accounts: np.ndarray, start: int, end: int) -> Impact:
    in_group = np.zeros(len(opps), dtype=bool)
    known = opps.account >= 0
    in_group[known] = accounts[opps.account[known]]
    closed = in_group & (opps.closed >= start) & (opps.closed < end)
    won = closed & opps.won
    n_closed, n_won = int(closed.sum()), int(won.sum())
    days = (opps.closed[won] - opps.created[won]) / DAY
    return Impact(
        deals_closed=n_closed,
        deals_won=n_won,
        win_rate=n_won / n_closed if n_closed else None,
        median_days_to_win=float(np.median(days)) if n_won else None,
        median_won_amount=float(np.median(opps.amount[won])) if n_won else None,
    )


def _typical_deal(opps: OpportunityColumns, industry: np.ndarray, before: int) -> np.ndarray:
    """Median won amount per account: its industry's when that has enough won deals, else overall."""
    won = opps.won & (opps.closed < before) & (opps.account >= 0) & (opps.amount > 0)
    out = np.zeros(len(industry))
    if not won.any():
        return out
    out[:] = float(np.median(opps.amount[won]))
    deal_industry = industry[opps.account[won]]
    for code in np.unique(deal_industry[deal_industry >= 0]):
        amounts = opps.amount[won][deal_industry == code]
        if len(amounts) >= MIN_WON_FOR_SEGMENT:
            out[industry == code] = float(np.median(amounts))
    return out


def portfolio(
    scores: ScoreSet,
    population: Population,
    opps: OpportunityColumns,
    config: ScoringConfig,
    *,
    tracked_at_start: np.ndarray | None = None,
    existing: np.ndarray | None = None,
) -> Portfolio:
    """Portfolio metrics as of ``scores.as_of``.

    ``tracked_at_start``: the tracked mask at the start of the impact period (from scores as of
    that date); without it, today's tracked accounts are used and the caveat applies.
    ``existing``: accounts to count (default all).
    """
    rc = config.report
    n = population.n_accounts
    existing = np.ones(n, dtype=bool) if existing is None else existing
    tracked = existing & (scores.grade >= rc.tracked_min_grade)
    icp = existing & (scores.fit.fit >= rc.icp_min_fit)
    engaged = existing & (scores.engagement >= rc.engaged_min_engagement)

    has_account = population.person_account >= 0
    acc = population.person_account[has_account].astype(np.int64)
    known_people = np.bincount(acc, minlength=n)
    committee = [PERSONAS.index(p) for p in config.personas.buying_committee]
    persona = population.personas.persona[has_account].astype(np.int64)
    k = len(PERSONAS)
    known_persona = np.bincount(acc * k + persona, minlength=n * k).reshape(n, k) > 0
    known_committee = known_persona[:, committee].sum(axis=1) if committee else np.zeros(n)
    engaged_people = scores.agg.account_people

    known_tracked = known_people[tracked].sum()
    as_of = scores.as_of
    start = as_of - rc.impact_days * DAY
    tracked_then = tracked_at_start if tracked_at_start is not None else tracked

    closed_recent = (opps.closed < as_of) & (opps.closed >= start)
    win_rate = float(opps.won[closed_recent].mean()) if closed_recent.any() else 0.0
    if scores.predictive is not None and not np.isnan(scores.predictive[tracked]).all():
        probability = np.where(np.isnan(scores.predictive), win_rate, scores.predictive)
        basis = "predictive"
    else:
        probability = np.full(n, win_rate)
        basis = "win rate"
    deal = _typical_deal(opps, population.segments.codes[:, 0], as_of)
    open_tracked = (opps.created < as_of) & (opps.closed >= as_of) & (opps.account >= 0)  # NEVER: still open
    open_tracked[open_tracked] = tracked[opps.account[open_tracked]]

    return Portfolio(
        accounts=int(existing.sum()),
        tracked=int(tracked.sum()),
        icp=int(icp.sum()),
        engaged=int(engaged.sum()),
        coverage=_share(known_people > 0, tracked),
        known_committee_personas=float(known_committee[tracked].mean()) if tracked.any() else None,
        penetration=float(engaged_people[tracked].sum() / known_tracked) if known_tracked else None,
        committee_engaged=float(scores.committee_coverage[tracked].mean()) if tracked.any() else None,
        awareness=_share(scores.engagement_raw > 0, tracked),
        engagement_rate=_share(engaged, tracked),
        median_engagement=float(np.median(scores.engagement[tracked])) if tracked.any() else None,
        precision=_share(icp, engaged),
        relevance=_share(engaged, icp),
        impact_tracked=_impact(opps, tracked_then & existing, start, as_of),
        impact_other=_impact(opps, ~tracked_then & existing, start, as_of),
        obtainable_revenue=float((probability * deal)[tracked].sum()),
        open_pipeline_tracked=float(opps.amount[open_tracked].sum()),
        probability_basis=basis,
    )
