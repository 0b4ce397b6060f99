"""ABM portfolio metrics, hand-computed on a four-account org."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from config.scoring import ScoringConfig
from scoring.inputs import build_inputs
from scoring.portfolio import portfolio
from scoring.scores import score
from store.records import AccountRecord, OpportunityRecord, PersonRecord

T = datetime(2026, 3, 1, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return T - timedelta(days=n)


def opp(i: int, account: int, created: float, closed: float | None, won: bool, amount: float) -> OpportunityRecord:
    return OpportunityRecord(id=i, crm="salesforce", crm_id=f"O{i}", account_crm_id=f"A{account}",
                             is_closed=closed is not None, is_won=won, amount=amount, created_at=days_ago(created),
                             closed_at=days_ago(closed) if closed is not None else None)


@pytest.fixture
def org():
    config = ScoringConfig()  # tracked: grade >= 3; ICP: fit >= 60; engaged: engagement >= 20; impact 365 days
    accounts = [AccountRecord(id=i, crm="salesforce", crm_id=f"A{i}", name=f"Acme {i}", industry="Retail")
                for i in range(4)]
    people = [PersonRecord(id=10 + i, crm="salesforce", crm_id=f"P{i}", kind="contact", title=title,
                           account_crm_id=f"A{acc}")
              for i, (title, acc) in enumerate([("CEO", 0), ("IT Manager", 0), ("Analyst", 0), ("Analyst", 2)])]
    opps = [
        opp(0, 0, 100, 40, True, 10_000),
        opp(1, 0, 60, 20, False, 8_000),
        opp(2, 2, 50, 10, True, 30_000),
        opp(3, 3, 450, 400, False, 1_000),  # before the impact period
        opp(4, 1, 5, None, False, 5_000),  # open
    ]
    inputs = build_inputs(accounts, people, [], opps, config)
    s = score(inputs.activities, inputs.population, inputs.opportunities, config, int(T.timestamp()))
    s = replace(
        s,
        grade=np.array([4, 3, 2, 1], dtype=np.int8),
        fit=replace(s.fit, fit=np.array([80.0, 50.0, 50.0, 10.0])),
        engagement=np.array([50.0, 10.0, 30.0, 0.0]),
        engagement_raw=np.array([40.0, 5.0, 20.0, 0.0]),
        committee_coverage=np.array([2 / 3, 0.0, 1 / 3, 0.0]),
        agg=replace(s.agg, account_people=np.array([2, 0, 1, 0])),
    )
    return inputs, s, config


def test_portfolio_hand_computed(org) -> None:
    inputs, s, config = org
    p = portfolio(s, inputs.population, inputs.opportunities, config)
    assert (p.accounts, p.tracked, p.icp, p.engaged) == (4, 2, 1, 2)  # tracked 0,1; ICP 0; engaged 0,2
    assert p.coverage == 0.5  # account 1 has nobody known
    assert p.known_committee_personas == 1.5  # account 0 knows all three personas, account 1 none
    assert p.penetration == pytest.approx(2 / 3)  # 2 of the 3 known people at tracked accounts engaged
    assert p.committee_engaged == pytest.approx(1 / 3)
    assert p.awareness == 1.0 and p.engagement_rate == 0.5 and p.median_engagement == 30.0
    assert p.precision == 0.5  # engaged 0 and 2; only 0 is ICP
    assert p.relevance == 1.0
    assert (p.impact_tracked.deals_closed, p.impact_tracked.deals_won, p.impact_tracked.win_rate) == (2, 1, 0.5)
    assert p.impact_tracked.median_days_to_win == pytest.approx(60)
    assert (p.impact_other.deals_closed, p.impact_other.win_rate) == (1, 1.0)
    assert p.impact_other.median_days_to_win == pytest.approx(40)
    # win rate of the period 2/3; typical won deal: median(10k, 30k) = 20k; two tracked accounts
    assert p.probability_basis == "win rate"
    assert p.obtainable_revenue == pytest.approx(2 * (2 / 3) * 20_000)
    assert p.open_pipeline_tracked == 5_000
    assert p.as_dict()["impact_tracked"]["deals_won"] == 1


def test_obtainable_revenue_uses_the_predictive_score(org) -> None:
    inputs, s, config = org
    s = replace(s, predictive=np.array([0.5, 0.1, np.nan, np.nan]))
    p = portfolio(s, inputs.population, inputs.opportunities, config)
    assert p.probability_basis == "predictive"
    assert p.obtainable_revenue == pytest.approx((0.5 + 0.1) * 20_000)


def test_impact_uses_tracked_status_at_the_start_of_the_period(org) -> None:
    inputs, s, config = org
    then = np.array([False, False, True, False])
    p = portfolio(s, inputs.population, inputs.opportunities, config, tracked_at_start=then)
    assert (p.impact_tracked.deals_closed, p.impact_tracked.win_rate) == (1, 1.0)
    assert (p.impact_other.deals_closed, p.impact_other.win_rate) == (2, 0.5)


def test_empty_portfolio_has_no_rates() -> None:
    config = ScoringConfig()
    inputs = build_inputs([], [], [], [], config)
    s = score(inputs.activities, inputs.population, inputs.opportunities, config, int(T.timestamp()))
    p = portfolio(s, inputs.population, inputs.opportunities, config)
    assert p.tracked == 0 and p.coverage is None and p.precision is None and p.impact_tracked.win_rate is None
    assert p.obtainable_revenue == 0.0
