"""Scoring of one person-account pair: independent comparisons, each with levels and weights.

Like splink's Fellegi-Sunter model, every comparison lands on one level and each level carries
a log-odds weight from the configuration (agreement positive, disagreement negative, unknown 0).
The confidence is the logistic of prior + weights, so a reviewer can read exactly why a pair
scored what it did: the per-signal breakdown is kept for the ``reasons`` JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel

from config.matching import MatchingConfig
from matching.domains import domain_label
from matching.index import AccountIndex
from matching.names import acronym
from matching.phones import compare as compare_phones

# A signal: (level, weight, detail shown to people).
Signal = tuple[str, float, str]


@dataclass(frozen=True, slots=True)
class Query:
    """A person (or a company to link) reduced to what the comparisons read."""

    name: str
    tokens: tuple[str, ...]
    domains: tuple[tuple[str, str], ...]  # (host, registrable) of corporate email / website, free mail excluded
    country: str = ""
    state: str = ""
    city: str = ""
    phone: str = ""


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(x, 50.0), -50.0)))


class Scorer:
    """Scores pairs against one account index with one configuration."""

    def __init__(self, index: AccountIndex, config: MatchingConfig) -> None:
        self.index = index
        self.config = config

    def name_similarity(self, q_name: str, q_tokens: tuple[str, ...], position: int) -> float:
        """0-1 similarity: max of character-level, order-free and IDF-weighted token agreement.

        The token measures are weighted by inverse document frequency over account names, so
        sharing "international" says little and sharing "globex" a lot.
        """
        a_name = self.index.name[position]
        if q_name == a_name:
            return 1.0
        a_tokens = self.index.tokens[position]
        idf = self.index.token_idf
        char = Indel.normalized_similarity(q_name, a_name)
        q_weight = sum(idf(t) for t in q_tokens)
        a_weight = sum(idf(t) for t in a_tokens)
        shared = 0.0
        a_set = set(a_tokens)
        for token in q_tokens:
            if token in a_set:
                shared += idf(token)
            elif len(token) >= 4:
                best, other = max(((Indel.normalized_similarity(token, o), o) for o in a_tokens if len(o) >= 4),
                                  default=(0.0, ""))
                if best >= 0.8:
                    # a misspelt token is unknown to the index, so it borrows the weight of the word it matches
                    shared += min(idf(token), idf(other)) * best
                    q_weight += idf(other) - idf(token)
        dice = min(1.0, 2.0 * shared / (q_weight + a_weight)) if q_weight + a_weight > 0 else 0.0
        token_set = fuzz.token_set_ratio(q_name, a_name) / 100.0
        token_sort = fuzz.token_sort_ratio(q_name, a_name) / 100.0
        return max(char, token_sort, dice, token_set * (0.6 + 0.4 * dice))

    def compare_name(self, q: Query, position: int) -> tuple[Signal, float]:
        weights = self.config.name
        a_name = self.index.name[position]
        if not q.name or not a_name:
            return ("missing", 0.0, "no name"), 0.0
        sim = self.name_similarity(q.name, q.tokens, position)
        if q.name == a_name:
            return ("exact", weights.exact, f"name {q.name} = {a_name}"), sim
        detail = f"name {sim:.2f}"
        if sim >= weights.high_at:
            return ("high", weights.high, detail), sim
        if (len(q.tokens) == 1 and q.name == self.index.acronym[position]) or a_name == acronym(q.name):
            return ("acronym", weights.acronym, f"name {q.name} ~ {a_name} (acronym)"), sim
        if sim >= weights.medium_at:
            return ("medium", weights.medium, detail), sim
        if sim >= weights.low_at:
            return ("low", weights.low, detail), sim
        return ("different", weights.different, detail), sim

    def compare_domain(self, q: Query, position: int, name_sim: float) -> Signal:
        weights = self.config.domain
        if not q.domains:
            return ("missing", 0.0, "")
        a_host, a_reg = self.index.host[position], self.index.reg[position]
        best: Signal | None = None
        for host, reg in q.domains:
            if a_reg and reg == a_reg:
                if host == a_host:
                    return ("exact", weights.exact, f"domain {host} = {a_host}")
                best = ("subdomain", weights.subdomain, f"domain {host} ~ {a_host}")
        if best:
            return best
        for _host, reg in q.domains:
            contacts = self.index.contact_domains.get(reg)
            if contacts and position in contacts:
                return ("contact", weights.contact, f"contacts at {reg}: {contacts[position]}")
        if not a_reg:
            return ("missing", 0.0, "")
        a_label = domain_label(a_reg)
        for _host, reg in q.domains:
            if len(a_label) >= 3 and domain_label(reg) == a_label and name_sim >= self.config.name.medium_at:
                return ("other_tld", weights.other_tld, f"domain {reg} ~ {a_reg}")
        return ("different", weights.different, f"domain {q.domains[0][1]} != {a_reg}")

    def compare_geo(self, q: Query, position: int) -> list[tuple[str, Signal]]:
        g = self.config.geo
        out: list[tuple[str, Signal]] = []
        for key, mine, theirs, same, different in (
            ("country", q.country, self.index.country[position], g.country_same, g.country_different),
            ("state", q.state, self.index.state[position], g.state_same, g.state_different),
            ("city", q.city, self.index.city[position], g.city_same, g.city_different),
        ):
            if mine and theirs:
                if mine == theirs:
                    out.append((key, ("same", same, f"{key} {mine.upper() if key != 'city' else mine}")))
                else:
                    out.append((key, ("different", different, f"{key} {mine} != {theirs}")))
        return out

    def compare_phone(self, q: Query, position: int) -> Signal | None:
        theirs = self.index.phone[position]
        if not q.phone or not theirs:
            return None
        p = self.config.phone
        region = q.country if len(q.country) == 2 else (p.default_region or "")
        a_country = self.index.country[position]
        a_region = a_country if len(a_country) == 2 else (p.default_region or "")
        level = compare_phones(q.phone, region, theirs, a_region, p.switchboard_digits)
        if level == "same":
            return ("same", p.same, "phone same")
        if level == "switchboard":
            return ("switchboard", p.same_switchboard, "phone same switchboard")
        return None

    def score(self, q: Query, position: int) -> tuple[float, dict[str, Signal]]:
        """(confidence, signals by comparison) for one pair."""
        name_signal, sim = self.compare_name(q, position)
        signals: dict[str, Signal] = {}
        domain_signal = self.compare_domain(q, position, sim)
        if domain_signal[0] != "missing":
            signals["domain"] = domain_signal
        if name_signal[0] != "missing":
            signals["name"] = name_signal
        for key, signal in self.compare_geo(q, position):
            signals[key] = signal
        phone = self.compare_phone(q, position)
        if phone:
            signals["phone"] = phone
        total = self.config.prior + sum(s[1] for s in signals.values())
        return logistic(total), signals
