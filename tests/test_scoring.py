"""Hand-computed checks of the scoring rules: decay, caps, personas, velocity, grades, alignment, reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from config.scoring import ScoringConfig, VelocityConfig
from scoring.catalogue import TYPE_CODE, TYPE_NAMES
from scoring.inputs import build_inputs
from scoring.personas import PersonaClassifier
from scoring.reasons import PHRASES, ReasonWriter
from scoring.rules import ALIGNMENTS, TRENDS, alignment, engagement_0_100, grades, velocity
from scoring.scores import score
from store.records import AccountRecord, ActivityRecord, OpportunityRecord, PersonRecord

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def account(i: int, **kw) -> AccountRecord:
    return AccountRecord(id=i, crm="salesforce", crm_id=f"A{i}", name=kw.pop("name", f"Acme {i}"), **kw)


def person(i: int, title: str | None = "Software Engineer", kind: str = "contact", acc: int | None = 1) -> PersonRecord:
    return PersonRecord(
        id=100 + i, crm="salesforce", crm_id=f"P{i}", kind=kind, title=title,
        account_crm_id=f"A{acc}" if acc is not None and kind == "contact" else None,
    )


_seq = iter(range(1, 10**9))


def act(kind: str, when: datetime, p: int | None = 1, acc: int | None = None) -> ActivityRecord:
    n = next(_seq)
    return ActivityRecord(
        id=n, crm="salesforce", crm_id=f"T{n}", activity_type=kind, occurred_at=when,
        person_crm_id=f"P{p}" if p is not None else None, account_crm_id=f"A{acc}" if acc is not None else None,
    )


def run(accounts, people, acts, config=None, opps=(), matches=None, as_of=AS_OF):
    config = config or ScoringConfig()
    inputs = build_inputs(accounts, people, acts, opps, config, matches)
    return inputs, score(inputs.activities, inputs.population, inputs.opportunities, config, int(as_of.timestamp()))


def tp(scores, i: int, kind: str) -> float:
    return float(scores.agg.account_type_points[i, TYPE_CODE[kind]])


# ---------------------------------------------------------------- decay


def test_each_type_decays_at_its_own_half_life() -> None:
    # demo: 25 points, half-life 60 days; webinar_attended: 12 points, half-life 45 days.
    _, s = run([account(1)], [person(1)], [act("demo", AS_OF - 60 * DAY), act("webinar_attended", AS_OF - 90 * DAY)])
    assert tp(s, 0, "demo") == pytest.approx(12.5)
    assert tp(s, 0, "webinar_attended") == pytest.approx(3.0)
    # demo is sales, webinar marketing; an end user's multiplier is 1.0
    assert s.sales[0] == pytest.approx(12.5)
    assert s.marketing[0] == pytest.approx(3.0)


def test_lookback_and_future_touches_are_ignored() -> None:
    acts = [act("demo", AS_OF - 366 * DAY), act("demo", AS_OF + DAY), act("demo", AS_OF)]
    _, s = run([account(1)], [person(1)], acts)
    assert s.engagement_raw[0] == 0.0


def test_persona_multiplier_applies_per_touch() -> None:
    _, s = run([account(1)], [person(1, "Chief Financial Officer")], [act("demo", AS_OF - 60 * DAY)])
    assert tp(s, 0, "demo") == pytest.approx(12.5 * 1.5)


# ---------------------------------------------------------------- caps


def test_daily_cap_keeps_the_first_touches_of_a_person_per_type_and_day() -> None:
    day = datetime(2026, 2, 20, tzinfo=UTC)  # web_visit: 1 point, half-life 14 days, cap 5 per day
    visits = [act("web_visit", day + timedelta(hours=h)) for h in range(1, 9)]  # 8 visits, 5 count
    visits += [act("web_visit", day + DAY + timedelta(hours=1))] * 1  # next day: counts again
    visits += [act("web_visit", day + timedelta(hours=3), p=2)]  # another person: own cap
    _, s = run([account(1)], [person(1), person(2)], visits)
    as_of = AS_OF.timestamp()
    expected = sum(2 ** (-(as_of - (day + timedelta(hours=h)).timestamp()) / (14 * 86400)) for h in range(1, 6))
    expected += 2 ** (-(as_of - (day + DAY + timedelta(hours=1)).timestamp()) / (14 * 86400))
    expected += 2 ** (-(as_of - (day + timedelta(hours=3)).timestamp()) / (14 * 86400))
    assert tp(s, 0, "web_visit") == pytest.approx(expected)
    assert s.agg.person_type_points[0, TYPE_CODE["web_visit"]] == pytest.approx(expected - 2 ** (
        -(as_of - (day + timedelta(hours=3)).timestamp()) / (14 * 86400)))


def test_touches_without_a_person_are_capped_per_account() -> None:
    day = datetime(2026, 2, 28, tzinfo=UTC)  # demo_request cap 1
    acts = [act("demo_request", day + timedelta(hours=h), p=None, acc=1) for h in (1, 2, 3)]
    _, s = run([account(1)], [], acts)
    age = (AS_OF - (day + timedelta(hours=1))).total_seconds() / 86400
    assert tp(s, 0, "demo_request") == pytest.approx(30 * 2 ** (-age / 60))


def test_cap_ties_at_the_same_second_are_broken_by_account() -> None:
    """Two demos of one person in the same second (cap 1 a day) naming different accounts: the
    lower account index gets it, whatever order the touches were loaded in."""
    when = AS_OF - 2 * DAY
    first, second = act("demo", when, acc=2), act("demo", when, acc=1)
    for order in ([first, second], [second, first]):
        _, s = run([account(1), account(2)], [person(1)], order)
        assert tp(s, 0, "demo") > 0 and tp(s, 1, "demo") == 0.0


# ---------------------------------------------------------------- personas


@pytest.mark.parametrize(
    ("title", "persona", "seniority", "department"),
    [
        ("VP Finance", "decision_maker", "vp", "finance"),
        ("Chief Technology Officer", "decision_maker", "c_level", None),
        ("Head of Sales", "decision_maker", "vp", "sales"),
        ("Geschäftsführer", "decision_maker", "c_level", None),
        ("Teamleiter Vertrieb", "influencer", "manager", "sales"),
        ("Directeur Marketing", "decision_maker", "director", "marketing"),
        ("Chef de projet informatique", "influencer", "manager", "it"),
        ("Gerente de Ventas", "influencer", "manager", "sales"),
        ("Analista de Sistemas", "end_user", "individual", "it"),
        ("Diretor Financeiro", "decision_maker", "director", "finance"),
        ("営業部長", "decision_maker", "director", "sales"),
        ("経理担当", "end_user", "individual", "finance"),
        ("Senior Software Engineer", "end_user", "individual", "engineering"),
        ("IT Manager", "influencer", "manager", "it"),
        ("", "other", None, None),
        (None, "other", None, None),
        ("Intern", "other", None, None),
    ],
)
def test_personas_from_titles(title, persona, seniority, department) -> None:
    c = PersonaClassifier(ScoringConfig().personas).classify(title)
    assert (c.persona, c.seniority, c.department) == (persona, seniority, department)


def test_classify_many_broadcasts_distinct_titles() -> None:
    cols = PersonaClassifier(ScoringConfig().personas).classify_many(["CEO", "Analyst", "CEO", None])
    assert cols.persona.tolist() == [0, 2, 0, 3]


# ---------------------------------------------------------------- velocity


def test_velocity_trend_labels_hand_computed() -> None:
    cfg = VelocityConfig(window_days=14, smoothing_points=5, new_person_points=5, surging_ratio=2.0, rising_ratio=1.3,
                         cooling_ratio=0.7, min_recent_points=10)
    ratio, trend = velocity(np.array([20.0, 10.0, 5.0, 0.0, 6.0]), np.array([5.0, 5.0, 5.0, 20.0, 0.0]),
                            np.array([0, 0, 0, 0, 1]), cfg)
    assert ratio.tolist() == pytest.approx([2.5, 1.5, 1.0, 0.2, 3.2])
    assert [TRENDS[t] for t in trend] == ["surging", "rising", "steady", "cooling", "surging"]


def test_velocity_windows_from_touches() -> None:
    # window 14 days; meeting_completed 20 points (undecayed in the windows), a CEO counts 1.5x
    acts = [act("meeting_completed", AS_OF - 3 * DAY), act("meeting_completed", AS_OF - 20 * DAY, p=2),
            act("email_sent", AS_OF - 2 * DAY)]  # outbound: not engagement, not velocity
    config = ScoringConfig.model_validate({"velocity": {"window_days": 14, "smoothing_points": 5, "rising_ratio": 1.3,
                                                        "min_recent_points": 10}})
    _, s = run([account(1)], [person(1, "CEO"), person(2)], acts, config)
    assert s.agg.account_recent[0] == pytest.approx(30.0)
    assert s.agg.account_previous[0] == pytest.approx(20.0)
    assert s.agg.account_new_people[0] == 1  # the CEO's first touch is in the recent window
    assert s.agg.account_people[0] == 2
    assert s.velocity[0] == pytest.approx((30 + 5 + 5) / (20 + 5))
    assert TRENDS[s.trend[0]] == "rising"


def test_new_people_are_those_whose_first_touch_is_in_the_window() -> None:
    # window 21 days: person 1 only recent, person 2 recent and old, person 3 only old.
    acts = [act("webinar_attended", AS_OF - 2 * DAY, p=1),
            act("webinar_attended", AS_OF - 2 * DAY, p=2), act("webinar_attended", AS_OF - 30 * DAY, p=2),
            act("webinar_attended", AS_OF - 40 * DAY, p=3)]
    _, s = run([account(1)], [person(1), person(2), person(3)], acts)
    assert s.agg.account_new_people[0] == 1
    assert s.agg.account_people[0] == 3
    assert s.agg.account_type_people[0, TYPE_CODE["webinar_attended"]] == 3
    assert s.agg.account_persona_people[0].tolist() == [0, 0, 3, 0]  # three engineers: end users


def test_key_person_is_the_most_engaged_decision_maker() -> None:
    people = [person(1, "Software Engineer"), person(2, "VP Finance"), person(3, "IT Manager")]
    acts = [act("demo", AS_OF - DAY, p=1), act("proposal", AS_OF - DAY, p=1), act("web_visit", AS_OF - DAY, p=2),
            act("webinar_attended", AS_OF - DAY, p=3)]
    inputs, s = run([account(1)], people, acts)
    assert s.key_person[0] == 1  # the VP, though the engineer and the manager engaged more
    assert "VP Finance engaged" in ReasonWriter(s, inputs.population, ScoringConfig()).account(0).text


# ---------------------------------------------------------------- engagement, grade, alignment


def test_engagement_is_a_fixed_saturating_transform() -> None:
    cfg = ScoringConfig().engagement  # scale 60
    assert engagement_0_100(np.array([0.0, 60.0, 120.0]), cfg).tolist() == pytest.approx(
        [0.0, 100 * (1 - math.exp(-1)), 100 * (1 - math.exp(-2))]
    )


def test_grade_thresholds_hand_computed() -> None:
    cfg = ScoringConfig().grade  # 0.4 fit + 0.6 engagement; 65 / 40 / 20
    fit = np.array([100.0, 50.0, 50.0, 0.0, 25.0, 50.0])
    eng = np.array([50.0, 75.0, 50.0, 0.0, 20.0, 25.0])
    # scores: 70, 65, 50, 0, 22, 35
    assert grades(fit, eng, cfg).tolist() == [4, 4, 3, 1, 2, 2]
    # Exactly on a threshold is the higher grade; just below is not.
    edge = ScoringConfig.model_validate({"grade": {"fit_weight": 0.0}}).grade
    assert grades(np.zeros(6), np.array([65.0, 64.999, 40.0, 39.999, 20.0, 19.999]), edge).tolist() == [
        4, 3, 3, 2, 2, 1]


def test_grade_percentiles_and_predictive() -> None:
    cfg = ScoringConfig.model_validate({"grade": {"mode": "percentiles"}}).grade  # 10% / 20% / 30%
    fit = np.zeros(10)
    eng = np.arange(10, dtype=float)
    assert grades(fit, eng, cfg).tolist() == [1, 1, 1, 1, 2, 2, 2, 3, 3, 4]
    p = np.array([0.31, 0.30, 0.2, 0.05, 0.01])  # predictive thresholds 30 / 15 / 5 percent
    assert grades(np.zeros(5), np.zeros(5), ScoringConfig().grade, p).tolist() == [4, 4, 3, 2, 1]


def test_alignment_flags() -> None:
    cfg = ScoringConfig().alignment  # 25 / 25
    labels = alignment(np.array([0.0, 30.0, 25.0, 30.0]), np.array([30.0, 0.0, 25.0, 10.0]), cfg)
    assert [ALIGNMENTS[c] for c in labels] == [
        "marketing_high_sales_low", "sales_high_marketing_low", "aligned_high", "sales_high_marketing_low",
    ]
    assert ALIGNMENTS[alignment(np.array([1.0]), np.array([1.0]), cfg)[0]] == "aligned_low"


def test_account_and_persona_alignment_from_touches() -> None:
    acts = [act("proposal", AS_OF - DAY, p=1), act("demo_request", AS_OF - DAY, p=2)]
    _, s = run([account(1)], [person(1, "CFO"), person(2, "Analyst")], acts)
    assert ALIGNMENTS[s.alignment[0]] == "aligned_high"
    assert ALIGNMENTS[s.persona_alignment[0, 0]] == "sales_high_marketing_low"  # decision makers
    assert ALIGNMENTS[s.persona_alignment[0, 2]] == "marketing_high_sales_low"  # end users
    assert ALIGNMENTS[s.person_alignment[1]] == "marketing_high_sales_low"


# ---------------------------------------------------------------- roll-up


def test_roll_up_uses_match_table_and_activity_account() -> None:
    lead = person(3, "VP Operations", kind="lead", acc=None)
    acts = [act("demo_request", AS_OF - DAY, p=3), act("booth_visit", AS_OF - DAY, p=None, acc=2)]
    _, unmatched = run([account(1), account(2)], [lead], acts)
    assert unmatched.engagement_raw[0] == 0.0
    assert tp(unmatched, 1, "booth_visit") > 0
    _, matched = run([account(1), account(2)], [lead], acts, matches={103: 1})
    assert tp(matched, 0, "demo_request") == pytest.approx(30 * 1.5 * 2 ** (-1 / 60))


# ---------------------------------------------------------------- fit


def test_learned_fit_hand_computed() -> None:
    # 40 labelled accounts: Manufacturing 10 won of 10, Retail 10 won of 30. Overall 20/40 = 0.5.
    accounts, opps = [], []
    for i in range(40):
        industry = "Manufacturing" if i < 10 else "Retail"
        accounts.append(account(i + 1, industry=industry))
        won = i < 20
        opps.append(OpportunityRecord(id=i, crm="salesforce", crm_id=f"O{i}", account_crm_id=f"A{i + 1}",
                                      is_closed=True, is_won=won, closed_at=AS_OF - 30 * DAY))
    accounts.append(account(99, industry="Mining"))
    _, s = run(accounts, [], [], opps=opps)
    # smoothing 10: Manufacturing (10 + 5) / (10 + 10) = 0.75 -> lift log(3); Retail (10+5)/(30+10) = 0.375
    assert s.fit.mode == "learned"
    assert s.fit.fit[0] == pytest.approx(100 * 0.75)
    assert s.fit.fit[20] == pytest.approx(100 * 0.375)
    assert s.fit.fit[40] == pytest.approx(50.0)  # unseen segment: average
    # as of before the deals closed, nothing is learned yet (no leakage)
    _, early = run(accounts, [], [], opps=opps, as_of=AS_OF - 60 * DAY)
    assert early.fit.mode == "rules"


def test_fit_rules_mode() -> None:
    cfg = ScoringConfig.model_validate(
        {"fit": {"mode": "rules", "rules": [{"field": "industry", "values": ["manufacturing"], "points": 30},
                                             {"field": "employee_band", "values": ["200–500 employees"],
                                              "points": 10}]}}
    )
    _, s = run([account(1, industry="Manufacturing", employees=300), account(2, industry="Retail")], [], [], cfg)
    assert s.fit.fit.tolist() == [90.0, 50.0]


# ---------------------------------------------------------------- reasons


def test_reasons_add_up_and_fit_the_field() -> None:
    people = [person(i, t) for i, t in enumerate(["VP Finance", "Analyst", "IT Manager"], start=1)]
    acts = [act("webinar_attended", AS_OF - DAY * d, p=p) for p in (1, 2, 3) for d in (1, 2)]
    acts += [act("demo", AS_OF - 5 * DAY, p=1), act("email_sent", AS_OF - DAY, p=2),
             act("pricing_page_visit", AS_OF - 3 * DAY, p=2), act("content_download", AS_OF - 40 * DAY, p=3)]
    inputs, s = run([account(1, name="Acme Corporation International Holdings")], people, acts)
    writer = ReasonWriter(s, inputs.population, ScoringConfig())
    r = writer.account(0)
    eng = r.breakdown["engagement"]
    assert sum(eng["parts"].values()) == pytest.approx(s.engagement[0], abs=1e-9)
    assert sum(eng["raw_parts"].values()) == pytest.approx(s.engagement_raw[0])
    assert sum(r.breakdown["sales"]["parts"].values()) == pytest.approx(s.sales[0])
    assert sum(r.breakdown["marketing"]["parts"].values()) == pytest.approx(s.marketing[0])
    assert "3 people from Acme Corporation International Holdings attended a webinar" in r.text
    assert "VP Finance engaged" in r.text
    assert len(r.text) <= 255
    p = writer.person(0)
    assert sum(p.breakdown["engagement"]["parts"].values()) == pytest.approx(s.person_engagement[0], abs=1e-9)
    short = ReasonWriter(s, inputs.population, ScoringConfig.model_validate({"reasons": {"max_chars": 60}}))
    assert len(short.account(0).text) <= 60


def test_reasons_of_many_rows_read_at_once_are_each_rows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The save asks for the reasons of thousands of rows at once (their score arrays read a slice at a time):
    each is the reason of that row alone, across slice boundaries and in the order asked."""
    from scoring import reasons

    accounts = [account(i, name=f"Company {i}") for i in range(1, 6)]
    people = [person(i, t, acc=1 + i % 5) for i, t in enumerate(["VP Finance", "Analyst", "CFO", "IT Manager",
                                                                 "Head of Sales", "Engineer", "CEO"], start=1)]
    acts = [act(kind, AS_OF - DAY * (p + d), p=p) for p in range(1, 8) for d, kind in
            enumerate(["webinar_attended", "demo", "email_sent", "pricing_page_visit"][: 1 + p % 4])]
    inputs, s = run(accounts, people, acts)
    writer = ReasonWriter(s, inputs.population, ScoringConfig())
    monkeypatch.setattr(reasons, "READ_ROWS", 2)
    rows = np.array([4, 0, 2, 3, 1], dtype=np.int64)
    assert list(writer.accounts(rows)) == [writer.account(i) for i in rows.tolist()]
    assert len({r.text for r in writer.accounts(rows)}) > 1
    rows = np.array([6, 5, 0, 1, 2, 3, 4], dtype=np.int64)
    assert list(writer.people(rows)) == [writer.person(i) for i in rows.tolist()]


def test_every_type_has_a_phrase() -> None:
    assert set(PHRASES) == set(TYPE_NAMES)
