"""Reasons in words a rep understands, and the full breakdown behind them.

The text names the biggest contributions (``3 people from Acme attended a webinar (+21)``),
who engaged, the trend and the fit, and is cut at a phrase boundary to fit the CRM's
255-character text field. The breakdown keeps every part; the engagement parts are expressed
on the 0-100 scale and add up exactly to the engagement score.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from config.scoring import PERSONAS, ScoringConfig
from scoring.catalogue import TYPE_NAMES, Catalogue
from scoring.fit import DIMENSIONS
from scoring.rules import ALIGNMENTS, TRENDS
from scoring.scores import Population, ScoreSet

PHRASES: dict[str, str] = {
    "email_sent": "were emailed by sales",
    "email_reply": "replied to an email",
    "call": "were called",
    "call_connected": "took a call",
    "meaningful_conversation": "had a meaningful conversation",
    "meeting_scheduled": "scheduled a meeting",
    "meeting_completed": "met with sales",
    "demo": "saw a demo",
    "proposal": "received a proposal",
    "post_close_followup": "had a post-close follow-up",
    "email_open": "opened marketing emails",
    "email_click": "clicked marketing emails",
    "web_visit": "visited the website",
    "blog_visit": "read the blog",
    "pricing_page_visit": "viewed the pricing page",
    "newsletter_subscription": "subscribed to the newsletter",
    "video_view": "watched a video",
    "content_download": "downloaded content",
    "form_submission": "submitted a form",
    "webinar_registration": "registered for a webinar",
    "webinar_attended": "attended a webinar",
    "event_registration": "registered for an event",
    "event_attended": "attended an event",
    "booth_visit": "visited our booth",
    "demo_request": "requested a demo",
    "campaign_response": "responded to a campaign",
    "cs_meeting": "met customer success",
    "support_case": "opened a support case",
}


@dataclass(frozen=True)
class Reasons:
    text: str
    breakdown: dict[str, Any]


def _join(phrases: list[str], limit: int) -> str:
    out = ""
    for phrase in phrases:
        candidate = f"{out}; {phrase}" if out else phrase
        if len(candidate) > limit:
            break
        out = candidate
    if not out and phrases:
        out = phrases[0][: limit - 1] + "…"
    return out


def _scaled(raw_parts: dict[str, float], total: float, raw_total: float) -> dict[str, float]:
    """Parts on the 0-100 scale; the rounding remainder goes to the biggest so they sum exactly."""
    scale = total / raw_total if raw_total > 0 else 0.0
    parts = {k: v * scale for k, v in raw_parts.items()}
    if parts:
        top = max(parts, key=parts.__getitem__)
        parts[top] += total - sum(parts.values())
    return parts


def _top_types(points: list[float], types: list[int], n: int) -> list[int]:
    """The ``n`` types of ``types`` with the most points (more than none), most first, ties in
    ``types`` order. Sorting only the types that scored: a person has points in a few of the
    catalogue's types, and sorting all of them for each of a million rows cost a fifth of the text."""
    return sorted([t for t in types if points[t] > 0], key=points.__getitem__, reverse=True)[:n]


READ_ROWS = 2_000  # rows whose score arrays are read at once (as lists: a few MB)


class ReasonWriter:
    """Reasons for rows of one :class:`ScoreSet`; built once, asked for the entities being saved a slice at a time
    (:meth:`accounts`, :meth:`people`; :meth:`account` and :meth:`person` for one).

    Rows are read with ``tolist()`` and handled as Python floats: per-element numpy access
    costs more than the whole text.
    """

    def __init__(self, scores: ScoreSet, population: Population, config: ScoringConfig) -> None:
        self.scores, self.population, self.config = scores, population, config
        cat = Catalogue.from_config(config)
        # membership by type code: each row's few scored types are looked up, not every type of each group
        self._is_eng = [bool(cat.engagement[t]) for t in range(cat.n_types)]
        self._is_sales = [cat.team[t] == 0 for t in range(cat.n_types)]
        self._is_marketing = [cat.team[t] == 1 for t in range(cat.n_types)]
        self._basis = "predictive" if scores.predictive is not None and config.grade.use_predictive else "rules"

    @staticmethod
    def _parts(row: list[float], scored: list[int], member: list[bool]) -> dict[str, float]:
        """Points by type name of the ``scored`` types (those with points, in type order) in a group."""
        return {TYPE_NAMES[t]: row[t] for t in scored if member[t]}

    def _scored(self, row: list[float]) -> tuple[list[int], list[int], dict[str, float]]:
        """The types a row has points in, those of them that count for engagement (both in type order),
        and the engagement points by type name: each row's few scored types are read once."""
        scored = [t for t, points in enumerate(row) if points]
        engagement_types = [t for t in scored if self._is_eng[t]]
        return scored, engagement_types, {TYPE_NAMES[t]: row[t] for t in engagement_types}

    def _fit_text(self, i: int, parts: list[float]) -> str | None:
        seg = self.population.segments
        order = sorted(range(len(parts)), key=lambda d: -parts[d])
        named = [label for d in order if parts[d] > 0 and (label := seg.label(i, d))]
        return f"fit: {', '.join(named[:2])}" if named else None

    def account(self, i: int) -> Reasons:
        """Text and breakdown for account ``i``."""
        return next(self.accounts(np.array([i], dtype=np.int64)))

    def person(self, i: int) -> Reasons:
        """Text and breakdown for person ``i``."""
        return next(self.people(np.array([i], dtype=np.int64)))

    def accounts(self, rows: np.ndarray) -> Iterator[Reasons]:
        """Text and breakdown for the accounts ``rows`` (indexes), in order. Each score array is read for
        ``READ_ROWS`` rows at once (one ``tolist`` each): read element by element, they cost a third of the text."""
        for start in range(0, len(rows), READ_ROWS):
            yield from self._accounts(rows[start:start + READ_ROWS])

    def people(self, rows: np.ndarray) -> Iterator[Reasons]:
        """Text and breakdown for the people ``rows`` (indexes), in order (read as :meth:`accounts` reads)."""
        for start in range(0, len(rows), READ_ROWS):
            yield from self._people(rows[start:start + READ_ROWS])

    def _accounts(self, rows: np.ndarray) -> Iterator[Reasons]:
        s, pop, config, agg = self.scores, self.population, self.config, self.scores.agg
        columns = [v[rows].tolist() for v in (
            agg.account_type_points, s.engagement_raw, s.engagement, agg.account_new_people, agg.account_type_people,
            s.key_person, s.trend, s.velocity, s.fit.parts, agg.account_persona_people, s.persona_alignment, s.sales,
            s.marketing, agg.account_people, s.committee_coverage, agg.account_recent, agg.account_previous, s.fit.fit,
            s.grade, s.grade_score, s.alignment)]
        predictive = s.predictive[rows].tolist() if s.predictive is not None else None
        names, titles, personas = pop.account_names, pop.person_titles, pop.personas.persona
        for j, i in enumerate(rows.tolist()):
            (tp, eng_raw, eng, new_people, type_people, key_person, trend_code, ratio, fit_parts, persona_people,
             persona_alignment, sales, marketing, people, coverage, recent, previous, fit, grade, rules_score,
             alignment_code) = (column[j] for column in columns)
            scored, engagement_types, raw_parts = self._scored(tp)
            bonus = config.engagement.new_person_points * new_people
            if bonus:
                raw_parts["new_people"] = bonus
            eng_parts = _scaled(raw_parts, eng, eng_raw)
            scale = eng / eng_raw if eng_raw > 0 else 0.0

            name = names[i] or "this account"
            phrases: list[str] = []
            for t in _top_types(tp, engagement_types, config.reasons.top_n):
                n = type_people[t]
                who = f"{n} people from {name}" if n > 1 else (f"1 person from {name}" if n else name)
                phrases.append(f"{who} {PHRASES[TYPE_NAMES[t]]} (+{tp[t] * scale:.0f})")
            if key_person >= 0 and titles[key_person] and PERSONAS[personas[key_person]] in ("decision_maker",
                                                                                                "influencer"):
                phrases.append(f"{titles[key_person]} engaged")
            trend = TRENDS[trend_code]
            if trend in ("surging", "rising", "cooling"):
                phrases.append(f"{trend}: {ratio:.1f}x the previous {config.velocity.window_days} days")
            fit_text = self._fit_text(i, fit_parts)
            if fit_text:
                phrases.append(fit_text)

            breakdown: dict[str, Any] = {
                "engagement": {"score": eng, "raw_points": eng_raw, "parts": eng_parts, "raw_parts": raw_parts},
                "sales": {"score": sales, "parts": self._parts(tp, scored, self._is_sales)},
                "marketing": {"score": marketing, "parts": self._parts(tp, scored, self._is_marketing)},
                "breadth": {
                    "people": people,
                    "personas": {PERSONAS[p]: persona_people[p] for p in range(4)},
                    "committee_coverage": coverage,
                },
                "velocity": {
                    "ratio": ratio,
                    "trend": trend,
                    "recent_points": recent,
                    "previous_points": previous,
                    "new_people": new_people,
                    "window_days": config.velocity.window_days,
                },
                "fit": {
                    "score": fit,
                    "mode": s.fit.mode,
                    "parts": {
                        DIMENSIONS[d]: {"value": pop.segments.label(i, d), "contribution": fit_parts[d]}
                        for d in range(len(DIMENSIONS))
                    },
                },
                "grade": {"grade": int(grade), "basis": self._basis, "rules_score": rules_score},
                "alignment": {
                    "account": ALIGNMENTS[alignment_code],
                    "personas": {PERSONAS[p]: ALIGNMENTS[persona_alignment[p]] for p in range(4)},
                },
            }
            if predictive is not None:
                breakdown["predictive"] = predictive[j]
            yield Reasons(_join(phrases, config.reasons.max_chars), breakdown)

    def _people(self, rows: np.ndarray) -> Iterator[Reasons]:
        s, config = self.scores, self.config
        columns = [v[rows].tolist() for v in (
            s.agg.person_type_points, s.person_engagement_raw, s.person_engagement, self.population.personas.persona,
            s.person_trend, s.person_sales, s.person_marketing, s.person_velocity, s.person_grade,
            s.person_alignment)]
        predictive = s.person_predictive[rows].tolist() if s.person_predictive is not None else None
        for j in range(len(rows)):
            tp, raw, eng, persona_code, trend_code, sales, marketing, ratio, grade, alignment_code = (
                column[j] for column in columns)
            scored, engagement_types, raw_parts = self._scored(tp)
            eng_parts = _scaled(raw_parts, eng, raw)
            scale = eng / raw if raw > 0 else 0.0
            phrases = [
                f"{PHRASES[TYPE_NAMES[t]]} (+{tp[t] * scale:.0f})"
                for t in _top_types(tp, engagement_types, config.reasons.top_n)
            ]
            persona = PERSONAS[persona_code]
            if persona != "other":
                phrases.append(persona.replace("_", " "))
            trend = TRENDS[trend_code]
            if trend in ("surging", "rising", "cooling"):
                phrases.append(trend)
            breakdown: dict[str, Any] = {
                "engagement": {"score": eng, "raw_points": raw, "parts": eng_parts, "raw_parts": raw_parts},
                "sales": {"score": sales, "parts": self._parts(tp, scored, self._is_sales)},
                "marketing": {"score": marketing, "parts": self._parts(tp, scored, self._is_marketing)},
                "persona": persona,
                "velocity": {"ratio": ratio, "trend": trend},
                "grade": int(grade),
                "alignment": ALIGNMENTS[alignment_code],
            }
            if predictive is not None:
                breakdown["predictive"] = predictive[j]
            yield Reasons(_join(phrases, config.reasons.max_chars), breakdown)


def account_reasons(scores: ScoreSet, population: Population, i: int, config: ScoringConfig) -> Reasons:
    """Text and breakdown for account ``i`` (for one-offs; use :class:`ReasonWriter` in loops)."""
    return ReasonWriter(scores, population, config).account(i)


def person_reasons(scores: ScoreSet, population: Population, i: int, config: ScoringConfig) -> Reasons:
    """Text and breakdown for person ``i`` (for one-offs; use :class:`ReasonWriter` in loops)."""
    return ReasonWriter(scores, population, config).person(i)
