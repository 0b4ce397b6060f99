"""Reasons in words a rep understands, and the full breakdown behind them.

The text names the biggest contributions (``3 people from Acme attended a webinar (+21)``),
who engaged, the trend and the fit, and is cut at a phrase boundary to fit the CRM's
255-character text field. The breakdown keeps every part; the engagement parts are expressed
on the 0-100 scale and add up exactly to the engagement score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


class ReasonWriter:
    """Reasons for rows of one :class:`ScoreSet`; built once, called per entity being saved.

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
        s, pop, config, agg = self.scores, self.population, self.config, self.scores.agg
        tp = agg.account_type_points[i].tolist()
        eng_raw = float(s.engagement_raw[i])
        eng = float(s.engagement[i])
        scored, engagement_types, raw_parts = self._scored(tp)
        new_people = int(agg.account_new_people[i])
        bonus = config.engagement.new_person_points * new_people
        if bonus:
            raw_parts["new_people"] = bonus
        eng_parts = _scaled(raw_parts, eng, eng_raw)
        scale = eng / eng_raw if eng_raw > 0 else 0.0

        name = pop.account_names[i] or "this account"
        type_people = agg.account_type_people[i].tolist()
        phrases: list[str] = []
        for t in _top_types(tp, engagement_types, config.reasons.top_n):
            people = type_people[t]
            who = f"{people} people from {name}" if people > 1 else (f"1 person from {name}" if people else name)
            phrases.append(f"{who} {PHRASES[TYPE_NAMES[t]]} (+{tp[t] * scale:.0f})")
        key_person = int(s.key_person[i])
        if (
            key_person >= 0
            and pop.person_titles[key_person]
            and PERSONAS[pop.personas.persona[key_person]] in ("decision_maker", "influencer")
        ):
            phrases.append(f"{pop.person_titles[key_person]} engaged")
        trend = TRENDS[s.trend[i]]
        ratio = float(s.velocity[i])
        if trend in ("surging", "rising", "cooling"):
            phrases.append(f"{trend}: {ratio:.1f}x the previous {config.velocity.window_days} days")
        fit_parts = s.fit.parts[i].tolist()
        fit_text = self._fit_text(i, fit_parts)
        if fit_text:
            phrases.append(fit_text)

        persona_people = agg.account_persona_people[i].tolist()
        persona_alignment = s.persona_alignment[i].tolist()
        breakdown: dict[str, Any] = {
            "engagement": {"score": eng, "raw_points": eng_raw, "parts": eng_parts, "raw_parts": raw_parts},
            "sales": {"score": float(s.sales[i]), "parts": self._parts(tp, scored, self._is_sales)},
            "marketing": {"score": float(s.marketing[i]), "parts": self._parts(tp, scored, self._is_marketing)},
            "breadth": {
                "people": int(agg.account_people[i]),
                "personas": {PERSONAS[p]: persona_people[p] for p in range(4)},
                "committee_coverage": float(s.committee_coverage[i]),
            },
            "velocity": {
                "ratio": ratio,
                "trend": trend,
                "recent_points": float(agg.account_recent[i]),
                "previous_points": float(agg.account_previous[i]),
                "new_people": new_people,
                "window_days": config.velocity.window_days,
            },
            "fit": {
                "score": float(s.fit.fit[i]),
                "mode": s.fit.mode,
                "parts": {
                    DIMENSIONS[d]: {"value": pop.segments.label(i, d), "contribution": fit_parts[d]}
                    for d in range(len(DIMENSIONS))
                },
            },
            "grade": {"grade": int(s.grade[i]), "basis": self._basis, "rules_score": float(s.grade_score[i])},
            "alignment": {
                "account": ALIGNMENTS[s.alignment[i]],
                "personas": {PERSONAS[p]: ALIGNMENTS[persona_alignment[p]] for p in range(4)},
            },
        }
        if s.predictive is not None:
            breakdown["predictive"] = float(s.predictive[i])
        return Reasons(_join(phrases, config.reasons.max_chars), breakdown)

    def person(self, i: int) -> Reasons:
        """Text and breakdown for person ``i``."""
        s, config = self.scores, self.config
        tp = s.agg.person_type_points[i].tolist()
        raw = float(s.person_engagement_raw[i])
        eng = float(s.person_engagement[i])
        scored, engagement_types, raw_parts = self._scored(tp)
        eng_parts = _scaled(raw_parts, eng, raw)
        scale = eng / raw if raw > 0 else 0.0
        phrases = [
            f"{PHRASES[TYPE_NAMES[t]]} (+{tp[t] * scale:.0f})"
            for t in _top_types(tp, engagement_types, config.reasons.top_n)
        ]
        persona = PERSONAS[self.population.personas.persona[i]]
        if persona != "other":
            phrases.append(persona.replace("_", " "))
        trend = TRENDS[s.person_trend[i]]
        if trend in ("surging", "rising", "cooling"):
            phrases.append(trend)
        breakdown: dict[str, Any] = {
            "engagement": {"score": eng, "raw_points": raw, "parts": eng_parts, "raw_parts": raw_parts},
            "sales": {"score": float(s.person_sales[i]), "parts": self._parts(tp, scored, self._is_sales)},
            "marketing": {"score": float(s.person_marketing[i]), "parts": self._parts(tp, scored, self._is_marketing)},
            "persona": persona,
            "velocity": {"ratio": float(s.person_velocity[i]), "trend": trend},
            "grade": int(s.person_grade[i]),
            "alignment": ALIGNMENTS[s.person_alignment[i]],
        }
        if s.person_predictive is not None:
            breakdown["predictive"] = float(s.person_predictive[i])
        return Reasons(_join(phrases, config.reasons.max_chars), breakdown)


def account_reasons(scores: ScoreSet, population: Population, i: int, config: ScoringConfig) -> Reasons:
    """Text and breakdown for account ``i`` (for one-offs; use :class:`ReasonWriter` in loops)."""
    return ReasonWriter(scores, population, config).account(i)


def person_reasons(scores: ScoreSet, population: Population, i: int, config: ScoringConfig) -> Reasons:
    """Text and breakdown for person ``i`` (for one-offs; use :class:`ReasonWriter` in loops)."""
    return ReasonWriter(scores, population, config).person(i)
