"""Scoring of one person-account pair: independent comparisons, each with levels and weights.

Like splink's Fellegi-Sunter model, every comparison lands on one level and each level carries
a log-odds weight from the configuration (agreement positive, disagreement negative, unknown 0).
The confidence is the logistic of prior + weights, so a reviewer can read exactly why a pair
scored what it did: the per-signal breakdown is kept for the ``reasons`` JSON.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, Indel

from config.matching import MatchingConfig
from matching.domains import domain_label
from matching.index import AccountIndex
from matching.names import acronym, ascii_key
from matching.phones import compare as compare_phones
from matching.readings import place_free_key

# A signal: (level, weight, detail shown to people).
Signal = tuple[str, float, str]


@dataclass(slots=True)
class Query:
    """A person (or a company to link) reduced to what the comparisons read.

    Not changed once built, though not declared frozen: a frozen dataclass sets each field through
    ``object.__setattr__``, which doubled the cost of the one Query built per person (1.9 against 0.9 µs).
    """

    name: str
    tokens: tuple[str, ...]
    key: str  # ascii_key of the name
    domains: tuple[tuple[str, str], ...]  # (host, registrable) of corporate email / website, free mail excluded
    legal: str = ""  # canonical legal form stripped from the name
    latin: bool = True  # the name was typed in Latin letters (legal forms in two scripts are not compared)
    country: str = ""
    state: str = ""
    city: str = ""
    phone: str = ""
    # the name read as ending in a mistyped legal form ('acme gmh' -> 'acme', legal 'gmbh'), '' when it does not
    slip_name: str = ""
    slip_legal: str = ""


def label_agrees(key: str, label: str) -> bool:
    """'gaontech' ~ gaontech.co.kr, also with a country code at the end (millerus.com).

    Longer decorations (acmegroup.com, getacme.com) are left out: a company takes them when the plain
    name was already registered, by a namesake.
    """
    if len(key) < 4:
        return False
    return key == label or (label.startswith(key) and len(label) - len(key) <= 2)


def _one_slip(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Same words but one, which is off by a single typing slip (a swap, a dropped, doubled or wrong letter).

    Both spellings of the slipped word must have 5 letters or more: 'tria' vs 'teria' are two names.
    """
    if len(mine) != len(theirs):
        return False
    slipped = [(a, b) for a, b in zip(mine, theirs, strict=True) if a != b]
    if len(slipped) != 1:
        return False
    a, b = slipped[0]
    # keyboard slips are a Latin-alphabet thing: one different character in a CJK name is another word
    return a.isascii() and b.isascii() and min(len(a), len(b)) >= 5 and _slip(a, b)


def _slip(a: str, b: str) -> bool:
    """One edit apart, but not by another first letter: names that differ only there are as often two
    names (Corvo, Norvo; Telica, Belica) as one mistyped; two swapped first letters still count."""
    if OSA.distance(a, b, score_cutoff=1) > 1:
        return False
    return a[0] == b[0] or a[:2] == b[1::-1]


def abbreviated_words(mine: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """The same words in the same order, some of them shortened ('crystal port sol' ~ 'crystal port solutions');
    at least one word is spelt out in both, so a string of initials is not taken for a name."""
    if len(mine) != len(theirs) or len(mine) < 2:
        return False
    shortened = 0
    for a, b in zip(mine, theirs, strict=True):
        if a != b:
            if not abbreviates(a, b):
                return False
            shortened += 1
    return 0 < shortened < len(mine)


def abbreviates(short: str, word: str) -> bool:
    """Whether ``short`` is a usual shortening of ``word``: its first letter, then some of its letters in order,
    and at least two letters shorter ('sol' solutions, 'nets' networks, 'dl' dienstleistungen, 'mfg').

    What the abbreviation table does not list; within a name whose other words agree it is a good sign.
    """
    if len(short) < 2 or len(word) < len(short) + 2 or short[0] != word[0] or not short.isalpha():
        return False
    rest = iter(word[1:])
    return all(ch in rest for ch in short[1:])


def _country_suffix(registrable: str) -> bool:
    """Whether a registrable domain ends in a country-code TLD (acme.co.uk, acme.de), not a generic one."""
    last = registrable.rsplit(".", 1)[-1]
    return len(last) == 2 and last not in _GENERIC_CC


# Country codes used as generic TLDs by companies everywhere.
_GENERIC_CC = frozenset({"io", "co", "ai", "me", "tv", "cc", "ly", "gg", "to", "fm", "sh", "ws"})


# Credit of a word for its abbreviation (below a word spelt out, above a misspelt one's threshold).
_ABBREVIATED = 0.9
# A typed brand is read as the first words of an account's name when its rarest word is in at most this many names.
_BRAND_ACCOUNTS = 3
# ...and read as one account's brand in the person's country when at most this many names have that word.
_BRAND_SCAN = 50
# A domain label this long is a name of its own (golden-creek-capital), not a word many companies register;
# a typed name this long (letters only) that is one slip from such a label means it.
_LONG_LABEL = _LONG_KEY = 10


def _key_similarity(a: str, b: str) -> float:
    """Similarity of two transliterated keys: whole-string, or the shorter inside the longer (a city prefix)."""
    if not a or not b:
        return 0.0
    sim = Indel.normalized_similarity(a, b)
    if min(len(a), len(b)) >= 8:
        sim = max(sim, fuzz.partial_ratio(a, b) / 100.0 * 0.97)
    return sim


# A legal form on fewer than this share of a country's accounts is not one of that country's.
_FOREIGN_SHARE = 0.02
# ...judged only in countries with at least this many accounts that carry a legal form.
_FOREIGN_MIN_ACCOUNTS = 30


def legal_form_shares(countries: Sequence[str], legal_forms: Sequence[str]) -> dict[str, dict[str, float]]:
    """{country: {legal form: share of the country's accounts with a legal form}}, from the accounts themselves.

    Learnt from the CRM rather than listed, so it knows the forms of every country its accounts are in;
    countries with too few accounts to tell are left out.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for country, legal in zip(countries, legal_forms, strict=True):
        if country and legal:
            counts[country][legal] += 1
    out: dict[str, dict[str, float]] = {}
    for country, forms in counts.items():
        total = sum(forms.values())
        if total >= _FOREIGN_MIN_ACCOUNTS:
            out[country] = {legal: n / total for legal, n in forms.items()}
    return out


def logistic(x: float) -> float:
    # clamped by comparisons rather than min() and max(): called for every scored pair, and the same value
    if x > 50.0:
        x = 50.0
    elif x < -50.0:
        x = -50.0
    return 1.0 / (1.0 + math.exp(-x))


class Scorer:
    """Scores pairs against one account index with one configuration."""

    def __init__(self, index: AccountIndex, config: MatchingConfig, inferred_country: Collection[int] = ()) -> None:
        self.index = index
        self.config = config
        self.inferred_country = inferred_country  # positions whose country was read from their city
        self._last_query: tuple[tuple[str, ...], list[float], float] = ((), [], 0.0)
        self._legal_share = legal_form_shares(index.country, index.legal)
        self._brand_cache: dict[tuple[tuple[str, ...], str], str] = {}
        # the last normalized name's similarity to each account it was compared with: people who typed it come one
        # after another (matching.parallel.grouped_order), and what else they say leaves it unchanged
        self._similar_to: tuple[str, dict[int, float]] = ("", {})

    def _query_weights(self, q_tokens: tuple[str, ...]) -> tuple[list[float], float]:
        """IDF of each query token and their sum, computed once per query rather than per candidate."""
        cached = self._last_query
        if cached[0] is not q_tokens:
            idf = self.index.token_idf
            weights = [idf(t) for t in q_tokens]
            cached = self._last_query = (q_tokens, weights, sum(weights))
        return cached[1], cached[2]

    def name_similarity(self, q_name: str, q_tokens: tuple[str, ...], position: int) -> float:
        """:meth:`similarity`, kept for the last name asked about (``q_tokens`` are its words)."""
        name, known = self._similar_to
        if name != q_name:
            known = {}
            self._similar_to = (q_name, known)
        found = known.get(position)
        if found is None:
            found = known[position] = self.similarity(q_name, q_tokens, position)
        return found

    def similarity(self, q_name: str, q_tokens: tuple[str, ...], position: int) -> float:
        """0-1 similarity: max of character-level, order-free and IDF-weighted token agreement.

        The token measures are weighted by inverse document frequency over account names, so
        sharing "international" says little and sharing "globex" a lot. The cheap C-level measures
        come first; the IDF overlap is only computed when they leave the pair below high_at.
        """
        index = self.index
        a_name = index.name[position]
        if q_name == a_name:
            return 1.0
        quick = max(Indel.normalized_similarity(q_name, a_name), fuzz.token_sort_ratio(q_name, a_name) / 100.0)
        if quick >= self.config.name.high_at:
            return quick
        a_tokens = index.tokens[position]
        idf = index.token_idf
        q_idf, q_weight = self._query_weights(q_tokens)
        a_weight = index.weight[position]
        shared = 0.0
        for token, weight in zip(q_tokens, q_idf, strict=True):
            if token in a_tokens:
                shared += weight
            else:
                best, other = 0.0, ""
                if len(token) >= 4:
                    best, other = max(((Indel.normalized_similarity(token, o), o) for o in a_tokens if len(o) >= 4),
                                      default=(0.0, ""))
                if best < 0.8:
                    other = next((o for o in a_tokens if o[0] == token[0] and len(o) > len(token) + 1
                                  and o not in q_tokens and abbreviates(token, o)), "")
                    best = _ABBREVIATED if other else 0.0
                if best >= 0.8:
                    # a misspelt or shortened token is unknown to the index, so it borrows the weight of the word
                    # it stands for
                    shared += min(weight, idf(other)) * best
                    q_weight += idf(other) - weight
        dice = min(1.0, 2.0 * shared / (q_weight + a_weight)) if q_weight + a_weight > 0 else 0.0
        token_set = fuzz.token_set_ratio(q_name, a_name) / 100.0
        return max(quick, dice, token_set * (0.6 + 0.4 * dice))

    def compare_name(self, q: Query, position: int) -> tuple[Signal, float]:
        """The best reading of the typed name against the account: its name, transliterated or as its domain label.

        The three are views of one fact (what the company is called), so the strongest level wins rather
        than adding up. Names in different scripts that transliteration cannot reconcile are unknown.
        """
        weights = self.config.name
        index = self.index
        a_name = index.name[position]
        if not q.name:
            return ("missing", 0.0, "no name"), 0.0
        best: tuple[Signal, float] = (("missing", 0.0, "no name"), 0.0)
        if a_name:
            if q.name.isascii() == a_name.isascii():
                best = self._direct_name_level(q, position)
            else:
                best = self._other_script_level(q, position)
        label = index.label_key[position]
        if label and q.key and best[0][1] < weights.domain_label:
            if label_agrees(q.key, label) or (q.slip_name and label_agrees(ascii_key(q.slip_name), label)):
                best = (("domain_label", weights.domain_label, f"name {q.name} ~ {index.host[position]}"), best[1])
            elif (best[0][1] < weights.typo and len(q.key) >= _LONG_KEY and len(label) >= _LONG_KEY
                  and q.key.isascii() and _slip(q.key, label)):
                best = (("typo", weights.typo, f"name {q.name} ~ {index.host[position]} (typo)"), best[1])
        return best

    def _direct_name_level(self, q: Query, position: int) -> tuple[Signal, float]:
        weights = self.config.name
        a_name = self.index.name[position]
        if q.name == a_name:
            return ("exact", weights.exact, f"name {q.name} = {a_name}"), 1.0
        if q.slip_name and q.slip_name == a_name:
            return ("typo", weights.typo, f"name {q.name} ~ {a_name} (legal form mistyped)"), 1.0
        if not q.name.isascii():
            return self._same_script_level(q, position)
        sim = self.name_similarity(q.name, q.tokens, position)
        detail = f"name {sim:.2f}"
        if _one_slip(q.tokens, self.index.tokens[position]) or (q.key and q.key == self.index.ascii[position]):
            return ("typo", weights.typo, f"name {q.name} ~ {a_name} (typo)"), sim
        if abbreviated_words(q.tokens, self.index.tokens[position]):
            return ("abbreviated", weights.abbreviated, f"name {q.name} ~ {a_name} (abbreviated)"), sim
        brand = self._leads_name(q, position) if weights.prefix > weights.high else ""
        if brand == "rare":
            return ("prefix", weights.prefix, f"name {q.name} ~ {a_name} (its first words)"), sim
        if brand == "country" and weights.prefix_country > weights.medium and not sim >= weights.high_at:
            return ("prefix_country", weights.prefix_country,
                    f"name {q.name} ~ {a_name} (its first words, the only such name in {q.country.upper()})"), sim
        if sim >= weights.high_at:
            return ("high", weights.high, detail), sim
        if (len(q.tokens) == 1 and q.name == self.index.acronym[position]) or a_name == acronym(q.name):
            return ("acronym", weights.acronym, f"name {q.name} ~ {a_name} (acronym)"), sim
        if sim >= weights.medium_at:
            return ("medium", weights.medium, detail), sim
        if sim >= weights.low_at:
            return ("low", weights.low, detail), sim
        return ("different", weights.different, detail), sim

    def _leads_name(self, q: Query, position: int) -> str:
        """'rare' when the typed words are the first words of the account's name and rare ones, 'country'
        when they are only the first words of the one account of the person's country that has them,
        '' otherwise.

        'Pyrwave' for Pyrwave Partners Ltd: people type the brand. Rare means that at most
        ``_BRAND_ACCOUNTS`` accounts carry the rarest typed word: every one of them is then scored, so a
        second account the words also begin (Pyrwave Technologies) is seen and the ambiguity rule sends
        the match to review, and a namesake outside the CRM is unlikely; 'Phillips' or 'United' begin
        too many names to say which. A brand found in many countries but in one account of the person's
        ('Norly' in Italy: Norly Gruppo S.r.l.) is a proposal worth reviewing, not an auto match: another
        Italian Norly may be missing from the CRM. A typed legal form says the full name was typed
        ('Pacworks Inc.' is a namesake of Pacworks Labs Inc, not its brand).
        """
        a_tokens = self.index.tokens[position]
        n = len(q.tokens)
        if q.legal or not 0 < n < len(a_tokens) or a_tokens[:n] != q.tokens or len(q.key) < 4:
            return ""
        key = (q.tokens, q.country)
        found = self._brand_cache.get(key)
        if found is None:
            found = self._brand_cache[key] = self._brand_rarity(q.tokens, q.country)
            if len(self._brand_cache) > 50_000:
                self._brand_cache.clear()
        return found

    def _brand_rarity(self, tokens: tuple[str, ...], country: str) -> str:
        postings = self.index.postings
        known = [postings[t] for t in tokens if t in postings]
        if not known:
            return ""
        rarest = min(known, key=len)
        if len(rarest) <= _BRAND_ACCOUNTS:
            return "rare"
        if not country or len(rarest) > _BRAND_SCAN:
            return ""
        countries = self.index.country
        here = sum(1 for p in rarest.tolist() if countries[p] in (country, ""))
        return "country" if here == 1 else ""

    def _same_script_level(self, q: Query, position: int) -> tuple[Signal, float]:
        """Two names in CJK, Arabic or Hebrew: one different ideograph or word is another company.

        So only a name contained in the other (a city prefix: 武汉瑞华信息技术 ~ 瑞华信息技术) counts as high;
        otherwise transliterations are compared and agreement counts as medium at most.
        """
        weights = self.config.name
        a_name = self.index.name[position]
        compact_q, compact_a = q.name.replace(" ", ""), a_name.replace(" ", "")
        detail = f"name {q.name} ~ {a_name}"
        if min(len(compact_q), len(compact_a)) >= 3 and (compact_q in compact_a or compact_a in compact_q):
            return ("high", weights.high, detail), 0.95
        sim = _key_similarity(q.key, self.index.ascii[position])
        if sim >= weights.medium_at:
            return ("medium", weights.medium, f"{detail} ({sim:.2f})"), sim
        if sim >= weights.low_at:
            return ("low", weights.low, f"{detail} ({sim:.2f})"), sim
        return ("different", weights.different, f"{detail} ({sim:.2f})"), sim

    def _other_script_level(self, q: Query, position: int) -> tuple[Signal, float]:
        """Compare transliterations: the same reading counts as ``transliterated``, a close one as high at most,
        disagreement as unknown."""
        weights = self.config.name
        a_key = self.index.ascii[position]
        sim = _key_similarity(q.key, a_key)
        detail = f"name {q.name} ~ {self.index.name[position]} (transliterated {sim:.2f})"
        if len(a_key) >= 4 and (q.key == a_key or self._place_free(q) == a_key
                                or q.key == self._account_place_free(position)):
            return ("transliterated", weights.transliterated, detail), sim
        if len(q.key) >= _LONG_KEY and len(a_key) >= _LONG_KEY and q.key.isascii() and _slip(q.key, a_key):
            return ("typo", weights.typo, f"{detail} (typo)"), sim  # as against the account's domain label
        if sim >= weights.high_at:
            return ("high", weights.high, detail), sim
        if sim >= weights.medium_at:
            return ("medium", weights.medium, detail), sim
        return ("other_script", weights.other_script, detail), sim

    @staticmethod
    def _place_free(q: Query) -> str:
        """The typed Chinese name's key without the place it begins with (深圳永信咨询: yongxinzixun)."""
        return place_free_key(q.name, q.country == "JP") if not q.latin else ""

    def _account_place_free(self, position: int) -> str:
        index = self.index
        if index.latin[position]:
            return ""
        japan = index.country[position] == "JP" or index.reg[position].endswith(".jp")
        return place_free_key(index.name[position], japan)

    def compare_domain(self, q: Query, position: int, name_sim: float) -> Signal:
        weights = self.config.domain
        if not q.domains:
            return ("missing", 0.0, "")
        index = self.index
        a_host, a_reg = index.host[position], index.reg[position]
        best: Signal | None = None
        for host, reg in q.domains:
            if a_reg and reg == a_reg:
                if host == a_host:
                    return ("exact", weights.exact, f"domain {host} = {a_host}")
                best = ("subdomain", weights.subdomain, f"domain {host} ~ {a_host}")
        if best:
            return best
        for _host, reg in q.domains:
            contacts = index.contact_domains.get(reg)
            if contacts and position in contacts:
                return ("contact", weights.contact, f"contacts at {reg}: {contacts[position]}")
        reg = q.domains[0][1]
        listed = reg in index.by_domain or reg in index.contact_domains
        if not a_reg:
            a_key = index.ascii[position]
            for _host, other in q.domains:
                if a_key and a_key == domain_label(other).replace("-", ""):
                    return ("account_name", weights.account_name, f"domain {other} ~ name {index.name[position]}")
            if listed:
                return ("different", weights.different, f"domain {reg} is another account's")
            if weights.unlisted_no_website:
                return ("unlisted_no_website", weights.unlisted_no_website, f"domain {reg} on no account")
            return ("missing", 0.0, "")
        a_label = domain_label(a_reg)
        for _host, reg in q.domains:
            if (len(a_label) >= 3 and domain_label(reg) == a_label and (name_sim >= self.config.name.medium_at
                                                                         or not q.name)
                    and not (_country_suffix(reg) and _country_suffix(a_reg))):
                # acme.de ~ acme.com; two national suffixes (acme.de, acme.fr) may be two companies
                if (weights.other_tld_unlisted and not listed and not _country_suffix(reg) and q.country
                        and q.country == index.country[position] and (q.name or len(a_label) >= _LONG_LABEL)):
                    # a generic domain no account holds, and the person is where the account is: the company's
                    # other domain (acme.com beside acme.de), not a sister company abroad; a national one
                    # (acme.de beside acme.com) is as often a namesake's
                    return ("other_tld_unlisted", weights.other_tld_unlisted, f"domain {reg} ~ {a_reg}")
                if q.name:
                    return ("other_tld", weights.other_tld, f"domain {reg} ~ {a_reg}")
        if listed:
            return ("different", weights.different, f"domain {reg} != {a_reg} (another account's)")
        return ("unlisted", weights.unlisted, f"domain {reg} != {a_reg}")

    def compare_legal(self, q: Query, position: int) -> Signal | None:
        """Legal forms typed on both sides: 'Miller LLC' and 'Miller Corp.' are two companies more often than one.

        Only within one script: 'Ural Sistemy JSC' against 'ООО «Урал Системы»' is a translation, not evidence.
        """
        theirs = self.index.legal[position]
        mine = q.slip_legal if q.slip_name and q.slip_name == self.index.name[position] else q.legal
        if not mine or not theirs or mine.isascii() != theirs.isascii():
            return None
        if q.latin != self.index.latin[position]:
            return None
        weights = self.config.name
        country = self.index.country[position]
        if mine == theirs:
            signal = ("same", weights.legal_form_same, f"legal form {mine}")
        elif set(mine.split()) & set(theirs.split()):
            signal = ("partial", weights.legal_form_partial, f"legal form {mine} ~ {theirs}")
        elif (country and q.country in ("", country) and self._foreign(mine, country)
              and not self._foreign(theirs, country)):
            # 'Lange Limited' for Lange GmbH in Germany: a form the country's companies do not use is the
            # person's guess at the legal form, not another company's (a British namesake says GB)
            signal = ("foreign", weights.legal_form_foreign, f"legal form {mine} != {theirs} (not used in "
                      f"{country.upper()})")
        else:
            signal = ("different", weights.legal_form_different, f"legal form {mine} != {theirs}")
        return signal if signal[1] else None  # a comparison configured to weigh nothing is not a reason

    def _foreign(self, legal: str, country: str) -> bool:
        """Whether the accounts of a country (enough of them to tell) hardly ever carry this legal form."""
        shares = self._legal_share.get(country)
        return shares is not None and shares.get(legal, 0.0) < _FOREIGN_SHARE

    def compare_geo(self, q: Query, position: int, signals: dict[str, Signal]) -> None:
        """Country, state and city agreement, added to ``signals`` (a blank side adds nothing)."""
        g = self.config.geo
        index = self.index
        if q.country:
            theirs = index.country[position]
            where = f" (city {index.city[position]})" if position in self.inferred_country else ""
            if theirs == q.country:
                signals["country"] = ("same", g.country_same, f"country {q.country.upper()}{where}")
            elif theirs and len(theirs) == len(q.country) == 2:
                # a spelling pycountry does not know is not evidence of another country
                signals["country"] = ("different", g.country_different, f"country {q.country} != {theirs}{where}")
        if q.state:
            theirs = index.state[position]
            if theirs == q.state:
                signals["state"] = ("same", g.state_same, f"state {q.state.upper()}")
            elif theirs:
                signals["state"] = ("different", g.state_different, f"state {q.state} != {theirs}")
        if q.city:
            theirs = index.city[position]
            if theirs == q.city:
                signals["city"] = ("same", g.city_same, f"city {q.city}")
            elif theirs:
                signals["city"] = ("different", g.city_different, f"city {q.city} != {theirs}")

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

    def score(self, q: Query, position: int, with_phone: bool = True) -> tuple[float, dict[str, Signal]]:
        """(confidence, signals by comparison) for one pair; the phone is left out for a query's shared core."""
        name_signal, sim = self.compare_name(q, position)
        signals: dict[str, Signal] = {}
        domain_signal = self.compare_domain(q, position, sim)
        if domain_signal[0] == "account_name" and name_signal[1] >= self.config.name.high:
            domain_signal = ("missing", 0.0, "")  # the domain says what the name already said: no new evidence
        if domain_signal[0] != "missing":
            signals["domain"] = domain_signal
        if name_signal[0] != "missing":
            signals["name"] = name_signal
        legal = self.compare_legal(q, position)
        if legal:
            signals["legal"] = legal
        self.compare_geo(q, position, signals)
        phone = self.compare_phone(q, position) if with_phone and q.phone else None
        if phone:
            signals["phone"] = phone
        total = self.config.prior
        for signal in signals.values():
            total += signal[1]
        return logistic(total), signals
