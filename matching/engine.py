"""The matcher: blocking, scoring and the decision rules, over plain records.

``match()`` is the public entry point. People are reduced to a query key (normalized company,
corporate domains, geography); identical keys, which are frequent in real exports (every lead
from acme.com who typed "Acme"), are scored once. Person-specific rules then apply in a fixed
order: admin pins, the CRM's own account, the scored decision with tie-breakers, the stability
margin against the previous match, and the optional roll-up to the ultimate parent.
"""

from __future__ import annotations

import itertools
import operator
from array import array
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from config.matching import MatchingConfig
from matching.domains import ContactDomainReader, FreeMail, host_of, is_personal_domain, registrable_domain
from matching.firmographics import compare_industry, compare_size, industry_key
from matching.geo import city_key, countries_of_cities, country_code, mail_country, phone_country, state_code
from matching.index import AccountIndex, Features, sift_hash, word_signature
from matching.names import NameNormalizer, ascii_key, written_in_latin
from matching.parallel import collector_paused, iter_grouped, iter_in_processes, match_in_processes, ordered_beside
from matching.readings import place_free_key, reading_key
from matching.review import best_supported, telling_alternative
from matching.score import Query, Scorer, Signal, _one_slip, abbreviated_words, logistic
from matching.slips import known_one_edit_away
from matching.types import ContactDomainCount, ContactEmail, MatchResult, Pin, PreviousMatch
from store.records import AccountRecord, PersonRecord

_SIGNAL_ORDER = ("domain", "name", "legal", "country", "state", "city", "phone", "industry", "size")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Name levels under which a domain match settles the query: no name-only candidate can do better.
_AGREEING_NAMES = frozenset({"exact", "typo", "abbreviated", "high", "prefix", "prefix_country", "domain_label",
                             "other_script", "transliterated"})
# What is derived from a typed value (a name's normalized parts and pre-ranked accounts, a domain's parts, a place),
# remembered for the people who typed it too, in caches emptied when full (Matcher.cache_limit). In input order a
# value's repeats are scattered over the whole run: a million leads need 100,000 entries to find most of them.
_CACHE_LIMIT = 100_000
# Grouped by the typed name they need far fewer (matching.parallel.GROUPED_CACHE_LIMIT).
# Whole query cores repeat far less (about 5% of a million leads within 100,000 entries, 2% within 20,000) and
# each entry holds its scored candidates with their signals (2.5 KB): kept fewer, for memory.
_CORE_CACHE_LIMIT = 20_000
# Pre-ranking scores (0-100) this close to the best are all scored, whatever max_candidates says.
_NEAR_TOP = 3.0
# Keys (name letters without spaces) at least this long are also looked up one slip away.
_LONG_KEY = 10
# Sort key of a scored candidate (confidence, position, signals): sorted with reverse=True, equal confidences keep
# their order, as with key=-confidence.
_CONFIDENCE = operator.itemgetter(0)
# Scored candidates kept per query key, for tie-breaking, stability and phone re-ranking.
_KEEP = 5
# The reason given to a person whose record holds no company name and no corporate domain.
NOTHING_TO_MATCH = "no company name or corporate domain"


def _one_registered_name(index: AccountIndex, positions: list[int]) -> bool:
    """Accounts with the same name and legal form in the same country are one company entered twice, and so are
    accounts in one country whose names, in two scripts, read the same.

    Company registries do not give one legal name to two companies in one country; a record that
    leaves the legal form or the country out is read as the same, a website that differs (both
    known) as another company.
    """
    first = positions[0]
    legal_forms = {index.legal[p] for p in positions} - {""}
    countries = {index.country[p] for p in positions} - {""}
    websites = {index.reg[p] for p in positions} - {""}
    cities = {index.city[p] for p in positions}
    here = len(cities) == 1 and "" not in cities and len(countries) == 1 and len(websites) <= 1
    if all(index.name[p] == index.name[first] for p in positions):
        # one legal form, or, in one city, one record's legal form the other's with a word added ('Velia S.p.A.',
        # 'Velia S.p.A. Limited'): a form typed onto the name once more, not another company
        return (len(legal_forms) == 1 or (here and _nested(legal_forms))) and len(countries) <= 1 and len(websites) <= 1
    if (here and len(legal_forms) <= 1 and all(index.tokens[p] == index.tokens[first]
                                              or _one_slip(index.tokens[p], index.tokens[first]) for p in positions)):
        return True  # the name once mistyped, in the same city ('Atlantic Haven Internattional', New York)
    # the name once in its own script and once in Latin letters ('上海汇通天成咨询有限公司', 'Huitong Tiancheng
    # Zixun'): the same reading in one country, the legal forms of the Latin records alike (one in another script
    # is a translation)
    latin_forms = {index.legal[p] for p in positions if index.latin[p]} - {""}
    return (len({index.latin[p] for p in positions}) == 2 and len(countries) == 1 and len(websites) <= 1
            and len(latin_forms) <= 1 and len(readings := {_reading_of(index, p) for p in positions}) == 1
            and len(readings.pop()) >= 6)


def _reading_of(index: AccountIndex, position: int) -> str:
    """An account's name read in Latin letters, without the place a Chinese registered name begins with."""
    if index.latin[position]:
        return index.ascii[position]
    japan = index.country[position] == "JP" or index.reg[position].endswith(".jp")
    return place_free_key(index.name[position], japan) or index.ascii[position]


def _nested(legal_forms: set[str]) -> bool:
    """Legal forms each of which holds the words of the shorter ones: 'spa' < 'limited spa'."""
    words = sorted((set(f.split()) for f in legal_forms), key=len)
    return all(a <= b for a, b in zip(words, words[1:], strict=False))


def _one_website(index: AccountIndex, positions: list[int]) -> bool:
    """Accounts that all give the same website are one company entered twice ('Cority Ltd', 'Cority Ltd Corp').

    A domain belongs to one company; two records under it are a duplicate, whatever their names say.
    """
    websites = {index.reg[p] for p in positions}
    return len(websites) == 1 and "" not in websites


def _signals_json(signals: Mapping[str, Signal]) -> dict[str, list]:
    """{signal: [level, weight]}: compact, as it is kept for every person (the details are in the reason)."""
    return {k: [s[0], s[1]] for k, s in signals.items()}


class Matcher:
    """Holds the normalizers and one account index per CRM; reusable across calls."""

    def __init__(
        self,
        accounts: Sequence[AccountRecord],
        config: MatchingConfig,
        *,
        contacts: Sequence[PersonRecord] = (),
        contact_emails: Iterable[ContactEmail | tuple] = (),
        contact_domains: Iterable[ContactDomainCount | tuple] = (),
        last_activity: Mapping[int, datetime] | None = None,
        workers: int = 1,
        known_features: Mapping[int, Features] | None = None,
        keep_features: bool = False,
    ) -> None:
        """``contacts`` are the existing contacts (the contact-domain signal, the most-contacts tie-breaker), or
        ``contact_emails`` the same as plain tuples (people of another kind, or without an account, are left out
        of the former only), or ``contact_domains`` the same already read and counted (a caller that keeps them
        between runs). ``known_features`` and ``keep_features``: see :class:`~matching.index.AccountIndex`
        (an index built over some of the same account records in this process lends its features to this one).
        """
        self.config = config
        self.free_mail = FreeMail(config.extra_free_mail_domains)
        self.normalizer = NameNormalizer(config.extra_legal_terms, config.abbreviations)
        self.placeholders = frozenset(self.normalizer.normalize(p) for p in config.placeholder_names)
        self.customer_types = frozenset(t.strip().lower() for t in config.customer_types)
        self.last_activity = last_activity or {}
        by_crm: dict[str, list[AccountRecord]] = defaultdict(list)
        for account in accounts:
            by_crm[account.crm].append(account)
        with collector_paused():
            self.indexes = {
                crm: AccountIndex(accs, self.normalizer, self.free_mail, config.blocking, workers, known_features,
                                  keep_features)
                for crm, accs in by_crm.items()
            }
        # where an account or a person with a city and no country is (learnt from the accounts with both)
        self.city_country = countries_of_cities(
            (c, k) for index in self.indexes.values() for c, k in zip(index.city, index.country, strict=True))
        inferred: dict[str, set[int]] = {}
        for crm, index in self.indexes.items():
            inferred[crm] = {p for p, (c, k) in enumerate(zip(index.city, index.country, strict=True))
                             if not k and c in self.city_country}
            for p in inferred[crm]:
                index.country[p] = self.city_country[index.city[p]]
        self.scorers = {crm: Scorer(index, config, inferred[crm]) for crm, index in self.indexes.items()}
        self._free_cache: dict[str, bool] = {}
        self._methods: dict[str, str] = {}
        # pure functions of typed values, filled once the shared domains are known; emptied when they hold
        # ``cache_limit`` entries (set lower while people come grouped by name, see matching.parallel.iter_grouped)
        self.cache_limit = _CACHE_LIMIT
        self._name_parts: dict[str | None, tuple[str, tuple[str, ...], str, str, bool, str, str]] = {}
        self._geo_parts: dict[tuple[str | None, str | None, str | None], tuple[str, str, str]] = {}
        self._domain_parts: dict[str | None, tuple[str, str] | None] = {}
        self._core_cache: dict[tuple[str, Any], list[tuple[float, int, dict[str, Signal]]]] = {}
        self._name_cache: dict[tuple[str, str, str], tuple[array, array, array, array]] = {}
        # every account the last scored query core was scored against, for the in-country look of the same person
        self._last_scored: tuple[tuple[str, Any], dict[int, tuple[float, int, dict[str, Signal]]]] | None = None
        with collector_paused():
            self._add_contacts(itertools.chain(
                ((p.crm, p.account_crm_id, p.email, p.first_name, p.last_name)
                 for p in contacts if p.kind == "contact" and p.account_crm_id), contact_emails), contact_domains)
        self.shared_domains: frozenset[str] = frozenset().union(*(i.shared_domains for i in self.indexes.values()))

    def _add_contacts(self, contacts: Iterable[ContactEmail | tuple],
                      counted: Iterable[ContactDomainCount | tuple] = ()) -> None:
        """Each index's existing contacts, as how many of them each (account position, registrable domain of a
        company email or '') has: from the contacts themselves, and from contacts already read and counted."""
        positions = {crm: {crm_id: p for (_, crm_id), p in index.by_crm_id.items()}
                     for crm, index in self.indexes.items()}
        counts: dict[str, Counter[tuple[int, str]]] = {crm: Counter() for crm in self.indexes}
        for crm, account_crm_id, reg, n in counted:
            position = positions[crm].get(account_crm_id) if crm in positions else None
            if position is not None:
                counts[crm][(position, reg)] += n
        read = ContactDomainReader(self.free_mail)
        found: dict[str, list[tuple[int, str]]] = {crm: [] for crm in self.indexes}
        for crm, account_crm_id, email, first_name, last_name in contacts:
            position = positions[crm].get(account_crm_id or "") if crm in positions else None
            if position is not None:
                found[crm].append((position, read(email, first_name, last_name)))
        for crm, pairs in found.items():
            counts[crm].update(pairs)  # a company's contacts share its domain: counted as pairs (in C)
            self.indexes[crm].add_contact_domains(counts[crm])

    # -- queries ---------------------------------------------------------------------------------
    def _is_free(self, reg: str) -> bool:
        known = self._free_cache.get(reg)
        if known is None:
            known = self._free_cache[reg] = reg in self.free_mail
        return known

    def corporate_domains(self, *values: str | None) -> tuple[tuple[str, str], ...]:
        """(host, registrable) of each email/website value that is not a free or disposable provider."""
        out: list[tuple[str, str]] = []
        for value in values:
            if value in self._domain_parts:
                found = self._domain_parts[value]
            else:
                host = host_of(value) if value else ""
                reg = registrable_domain(host) if host else ""
                # the host, not just its registrable domain: lists name providers like x.indevs.in
                found = (host, reg) if reg and not self._is_free(host) and reg not in self.shared_domains else None
                if len(self._domain_parts) >= self.cache_limit:
                    self._domain_parts.clear()
                self._domain_parts[value] = found
            if found is not None and found not in out:
                out.append(found)
        return tuple(out)

    def company_name(self, typed: str | None) -> str:
        """Normalized company name, '' for placeholders like '[not provided]' that say nothing."""
        name = self.normalizer.normalize(typed)
        return "" if name in self.placeholders else name

    def company_query(
        self,
        name: str | None,
        domain_values: tuple[str | None, ...],
        country: str | None,
        state: str | None,
        city: str | None,
        phone: str | None = None,
    ) -> Query:
        """What the comparisons read about a company as a person (or another CRM) describes it."""
        named, geo = self._company_parts(name, country, state, city)
        normalized, tokens, key, legal, latin, slip_name, slip_legal = named
        return Query(name=normalized, tokens=tokens, key=key, domains=self.corporate_domains(*domain_values),
                     legal=legal, latin=latin, country=geo[0], state=geo[1], city=geo[2], phone=phone or "",
                     slip_name=slip_name, slip_legal=slip_legal)

    def _company_parts(self, name: str | None, country: str | None, state: str | None, city: str | None
                       ) -> tuple[tuple[str, tuple[str, ...], str, str, bool, str, str], tuple[str, str, str]]:
        """What a query reads from the typed name, and from the typed place."""
        # each part depends on one or two typed values only, which repeat across people: computed once per value
        named = self._name_parts.get(name)
        if named is None:
            normalized = self.company_name(name)
            legal = self.normalizer.legal_form(name) if normalized else ""
            slip_name, slip_legal = self.normalizer.legal_slip(normalized) if normalized.isascii() else ("", "")
            slip_legal = " ".join(sorted({*legal.split(), *slip_legal.split()})) if slip_name else ""
            named = (normalized, tuple(normalized.split()), reading_key(normalized), legal, written_in_latin(name),
                     slip_name, slip_legal)
            if len(self._name_parts) >= self.cache_limit:
                self._name_parts.clear()
            self._name_parts[name] = named
        geo = self._geo_parts.get((country, state, city))
        if geo is None:
            code = country_code(country) or self.city_country.get(city_key(city), "")
            geo = (code, state_code(state, code), city_key(city))
            if len(self._geo_parts) >= self.cache_limit:
                self._geo_parts.clear()
            self._geo_parts[(country, state, city)] = geo
        return named, geo

    def query_for(self, person: PersonRecord) -> Query:
        # the domain part only: it repeats across a company's people, so its parsing is cached
        email = person.email.rsplit("@", 1)[1] if person.email and "@" in person.email else None
        named, (country, state, city) = self._company_parts(person.company, person.country, person.state,
                                                            person.city)
        normalized, tokens, key, legal, latin, slip_name, slip_legal = named
        domains = self.corporate_domains(email, person.website)
        if domains and (person.last_name or person.first_name):
            domains = tuple(d for d in domains if not is_personal_domain(d[1], person.first_name, person.last_name))
        if not country:
            # no country typed: the phone's country code, else the email's national suffix (web.de, alice.it)
            country = phone_country(person.phone) or mail_country(email)
        if not latin and normalized and (country == "JP" or any(reg.endswith(".jp") for _, reg in domains)):
            key = reading_key(normalized, japan=True)  # kanji typed in Japan are read in Japanese, not in Chinese
        # built once its parts are known: a dataclasses.replace costs more than the construction itself
        return Query(name=normalized, tokens=tokens, key=key, domains=domains, legal=legal, latin=latin,
                     country=country, state=state, city=city, phone=person.phone or "", slip_name=slip_name,
                     slip_legal=slip_legal)

    # -- scoring ---------------------------------------------------------------------------------
    def candidates(self, crm: str, q: Query) -> list[tuple[float, int, dict[str, Signal]]]:
        """Best scored candidates for a query (phone excluded: it is per person), best first."""
        key = self._core_key(crm, q)
        cached = self._core_cache.get(key)
        if cached is not None:
            return cached
        index, scorer = self.indexes[crm], self.scorers[crm]
        core = q  # scored without its phone (per person, added by _with_phone), so people share the result
        scored: dict[int, tuple[float, int, dict[str, Signal]]] = {}
        for position in index.domain_candidates(reg for _, reg in core.domains):
            conf, signals = scorer.score(core, position, with_phone=False)
            scored[position] = (conf, position, signals)
        best = max(scored.values(), key=lambda s: s[0], default=None)
        settled = best is not None and best[0] >= self.config.auto_threshold and (
            not core.name or best[2].get("name", ("",))[0] in _AGREEING_NAMES
        )
        if core.name and not settled:
            for position in self._name_pool(crm, core, scored.keys()):
                conf, signals = scorer.score(core, position, with_phone=False)
                scored[position] = (conf, position, signals)
        ranked = sorted(scored.values(), key=_CONFIDENCE, reverse=True)[:_KEEP]
        self._last_scored = (key, scored)
        if len(self._core_cache) >= _CORE_CACHE_LIMIT:
            self._core_cache.clear()  # bounded: a million distinct people must not pile up a million entries
        self._core_cache[key] = ranked
        return ranked

    @staticmethod
    def _core_key(crm: str, q: Query) -> tuple[str, Any]:
        """What a query's scored candidates depend on: people who share it share them (the phone is per person)."""
        return crm, (q.name, q.legal, q.latin, q.domains, q.country, q.state, q.city)

    def _name_pool(self, crm: str, q: Query, excluded: Collection[int]) -> list[int]:
        """Accounts worth scoring for the typed name, leaving out those already scored by domain.

        A cheap C-level pre-ranking on the ASCII keys (transliterated, so scripts meet) keeps the
        Python-level scoring to at most ``max_candidates`` accounts whose names are not plainly
        different. What depends on the name alone is computed once per name and kept: people who
        type the same company name are far more frequent than people with the same whole query.
        """
        scores, positions, labelled, containing = self._name_ranking(crm, q)
        limit = self.config.blocking.max_candidates
        ranked = list(zip(scores, positions, strict=True))
        if excluded:
            ranked = [r for r in ranked if r[1] not in excluded]
        top = ranked[0][0] if ranked else 0.0
        floor = top - self.config.blocking.prerank_spread
        # `limit` accounts, but never fewer than all the names as close as the best (namesakes must
        # all be seen, or a tie between two companies would pass for a clear match)
        kept = [p for n, (score, p) in enumerate(ranked) if score >= floor and (n < limit or score >= top - _NEAR_TOP)]
        chosen = set(kept)
        # an account whose domain label is the typed name is kept whatever its name says, and so are
        # longer names that contain every typed word: the rivals the ambiguity rule must see
        extra = [p for p in labelled if p not in chosen and p not in excluded]
        extra += [p for p in containing if p not in chosen and p not in excluded][:limit]
        if q.slip_name:  # 'acme gmh': the account named 'acme', whatever the pre-ranking thought of it
            named = self.indexes[crm].by_name.get(q.slip_name, ())
            extra += [p for p in named if p not in chosen and p not in excluded]
        return kept + extra

    def _name_ranking(self, crm: str, q: Query) -> tuple[array, array, array, array]:
        """Pre-rank scores and positions of the name's candidates above the cutoff, best first; the accounts
        whose domain label is the typed name; the accounts whose names contain every typed word.

        Kept as arrays: a hundred thousand cached names as lists of (float, int) tuples weigh ~150 MB."""
        key = (crm, q.name, q.key)
        cached = self._name_cache.get(key)
        if cached is not None:
            return cached
        index = self.indexes[crm]
        limit = self.config.blocking.max_candidates * 5
        found_positions = index.name_candidates(q.name, q.tokens, limit, q.key)
        unknown = False
        for token in q.tokens:
            if token.isascii() and token not in index.idf:
                unknown = True
                if len(token) >= 4:
                    # a word no account has: the accounts with a word one slip from it ('dnyara' ~ 'dynara')
                    found_positions.update(index.slip_candidates(token, limit))
        if q.slip_name:
            found_positions.update(index.by_key.get(ascii_key(q.slip_name), ())[:limit])
        spelt: list[int] = []  # accounts whose name or domain label is the typed name, spelt right
        if unknown:
            spelt = self._spelt_right(index, q, limit, [t not in index.idf for t in q.tokens])
            found_positions.update(spelt)
        # the name read without the place a Chinese registered name begins with ('Yongxin Zixun' for
        # 深圳永信咨询有限公司), and back: kept whatever the pre-ranking thinks of the longer reading
        core = place_free_key(q.name, q.country == "JP") if not q.latin else ""
        keyed = list(index.by_key.get(core, ())[:limit]) if len(core) >= 4 else []
        if q.key.isascii() and len(q.key) >= 4:
            keyed += [p for p in index.by_key.get(q.key, ())[:limit] if not index.latin[p]]
        if keyed:
            found_positions.update(keyed)
            spelt = spelt + [p for p in keyed if p not in spelt]
        if not found_positions and len(q.tokens) >= 3:
            # every word too common to search by and the name as typed is no account's: one with a stray last
            # word or two ('johnson holdings ibc', 'united way group inc group') may be an account's name
            for size in (1, 2):
                found_positions.update(index.by_name.get(" ".join(q.tokens[:-size]), ())[:limit])
        ranked, labelled, containing = self._prerank(index, q, sorted(found_positions), spelt)
        if not ranked and not unknown and q.key:
            # nothing close: a slip may have made a rare word of a common one ('kim and marrtin networks'
            # when another account has the same slip), so look for the name spelt right
            spelt = self._spelt_right(index, q, limit, [True] * len(q.tokens))
            if spelt:
                ranked, labelled, containing = self._prerank(index, q, sorted(found_positions | set(spelt)), spelt)
        if len(self._name_cache) >= self.cache_limit:
            self._name_cache.clear()
        found = self._name_cache[key] = (array("d", [r[0] for r in ranked]), array("i", [r[1] for r in ranked]),
                                         array("i", labelled), array("i", containing))
        return found

    def _spelt_right(self, index: AccountIndex, q: Query, limit: int, suspect: list[bool]) -> list[int]:
        """Accounts whose name or domain label is the typed name one slip away, for names long enough to tell:
        'kobayashi deisakusho' ~ kobayashi-seisakusho.co.jp for 小林製作所株式会社, 'prairie wya' ~ Prairie Way.

        The slip is looked for in the ``suspect`` words only (those no account has), which keeps it cheap.
        """
        if len(q.key) < _LONG_KEY or not q.key.isascii() or q.key != "".join(q.tokens):
            return []
        found: list[int] = []
        offset = 0
        for token, look in zip(q.tokens, suspect, strict=True):
            if look:
                for key in known_one_edit_away(q.key, index.by_key, offset, offset + len(token)):
                    found += index.by_key[key][:limit]
            offset += len(token)
        return found

    def _prerank(self, index: AccountIndex, q: Query, positions: list[int], spelt: list[int]
                 ) -> tuple[list[tuple[float, int]], list[int], list[int]]:
        """(pre-rank score, position) above the cutoff, best first; the accounts kept whatever that score (their
        domain label is the typed name, or they spell it right, or the name is theirs shortened); the accounts
        whose names contain every typed word."""
        ranked: list[tuple[float, int]] = []
        labelled: list[int] = []
        containing: list[int] = []
        if positions and q.key:
            # gathered in C: a list comprehension over the positions costs more than the pre-ranking itself
            keys = operator.itemgetter(*positions)(index.ascii) if len(positions) > 1 else (index.ascii[positions[0]],)
            ranked = [(score, positions[i]) for _, score, i in process.extract(
                q.key, keys, scorer=fuzz.WRatio, limit=None, score_cutoff=self.config.blocking.prerank_cutoff)]
            at = np.array(positions, dtype=np.intp)
            label_key, tokens, token_sets = index.label_key, index.tokens, index.token_sets
            labelled = [p for p in at[index.label_hash[at] == np.uint64(sift_hash(q.key))].tolist()
                        if label_key[p] == q.key] + spelt
            # 'primix corp sol' is too short a string to pre-rank well against 'primix corporation solutions'
            n = len(q.tokens)
            if n > 1:
                first = q.tokens[0]
                same_shape = at[(index.n_tokens[at] == np.uint64(n))
                                & (index.first_hash[at] == np.uint64(sift_hash(first)))].tolist()
                maybe = [p for p in same_shape if tokens[p][0] == first]
                if maybe:
                    passed = {p for _, p in ranked}
                    labelled += [p for p in maybe if p not in passed and abbreviated_words(q.tokens, tokens[p])]
            words = set(q.tokens)
            sig = np.uint64(word_signature(words))
            containing = [p for p in at[(index.token_sig[at] & sig) == sig].tolist() if words <= token_sets[p]]
        elif positions:
            ranked = [(0.0, p) for p in positions]  # nothing to pre-rank on: every candidate is scored
        return ranked, labelled, containing

    # -- decisions -------------------------------------------------------------------------------
    def _tie_key(self, index: AccountIndex, position: int) -> tuple:
        """One sort-key part per configured tie-breaker, smaller is preferred."""
        account = index.accounts[position]
        parts: list[Any] = []
        for breaker in self.config.tie_breakers:
            if breaker == "customer":
                parts.append(0 if index.customer(position, self.customer_types) else 1)
            elif breaker == "most_contacts":
                parts.append(-index.contact_count.get(position, 0))
            elif breaker == "recent_activity":
                parts.append(-(self.last_activity.get(account.id, _EPOCH) - _EPOCH).total_seconds())
            elif breaker == "oldest":
                parts.append(((account.created_at or datetime.max.replace(tzinfo=UTC)) - _EPOCH).total_seconds())
        return tuple(parts)

    def _break_ties(self, index: AccountIndex, ranked: list[tuple[float, int, dict[str, Signal]]]):
        """Pick among candidates within tie_margin of the best; name the tie-breaker that decided.

        When every configured breaker is equal the higher confidence wins, then the lower account id,
        so the outcome never depends on input order.
        """
        top = ranked[0][0]
        tied = [r for r in ranked if r[0] >= top - self.config.tie_margin]
        if len(tied) == 1:
            return ranked[0], None

        def full_key(r: tuple[float, int, dict[str, Signal]]) -> tuple:
            return (*self._tie_key(index, r[1]), -r[0], index.accounts[r[1]].id)

        keyed = sorted(tied, key=full_key)
        winner = keyed[0]
        names = [*(b.replace("_", " ") for b in self.config.tie_breakers), "confidence", "account id"]
        decided_by = next((n for n, a, b in zip(names, full_key(keyed[0]), full_key(keyed[1]), strict=True) if a != b),
                          "account id")
        return winner, f"tie of {len(tied)} broken by {decided_by}"

    def _doubt(self, index: AccountIndex, ranked: list[tuple[float, int, dict[str, Signal]]], position: int,
               signals: dict[str, Signal], tied: bool, typed: tuple[str, ...] = ()) -> str | None:
        """Why an auto match should rather be reviewed, if it should (``review_ambiguous``).

        Three cases: a tie-breaker had to choose between accounts that are not all tied to the
        person's email or web domain (they may be two companies of the same name); the match rests
        on the name alone and the person's city is not the account's (a namesake, or a branch the
        CRM may hold apart); or the match rests on the name alone and a longer account name contains
        it too (someone typed 'Abvo' and there are 'Abvo LLC' and 'Abvo International'), unless the
        legal form tells them apart, or the person's city (industry, company size) is the account's and not
        the other's. A match
        on the first words of the name (``typed``, the brand) is doubted as soon as another account's
        name holds those words too; one on the account's website name (the typed name is its domain label) only
        by an account whose own name or website is the typed name.
        """
        if tied:
            # accounts that all carry the person's own domain (as website or through contacts) are one company
            top = ranked[0][0] - self.config.tie_margin
            tied_positions = [p for c, p, _ in ranked if c >= top]
            if all(sig.get("domain", ("", 0.0))[1] > 0 for c, _, sig in ranked if c >= top):
                return None
            if _one_registered_name(index, tied_positions) or _one_website(index, tied_positions):
                return None
            return "tied accounts may be different companies"
        if any(signals.get(k, ("", 0.0))[1] > 0 for k in ("domain", "phone")):
            return None
        if signals.get("city", ("",))[0] == "different":
            return "only the name agrees and the city differs"
        if signals.get("legal", ("",))[0] == "same":
            return None  # a typed legal form that is the account's own says the full name was meant, not a brand
        brand = signals.get("name", ("",))[0] in ("prefix", "prefix_country", "domain_label")
        mine = set(typed) if brand else set(index.tokens[position])
        agreeing = [k for k in ("city", "industry", "size") if signals.get(k, ("",))[0] == "same"]
        label = signals.get("name", ("",))[0] == "domain_label"
        for other_conf, other, other_signals in ranked:
            theirs = set(index.tokens[other])
            if any(other_signals.get(k, ("",))[0] != "same" for k in agreeing):
                continue  # the person's city (industry, size) is the account's and not the other's: it says which
            if label and other_signals.get("name", ("",))[0] not in ("domain_label", "exact"):
                continue  # the typed name is this account's website name (daonhansol.co.kr), not the other's
            if (other != position and other_conf >= self.config.review_threshold
                    and other_signals.get("name", ("",))[0] in _AGREEING_NAMES
                    and (theirs >= mine if brand else theirs > mine)
                    and other_signals.get("legal", ("",))[0] != "different"
                    and not _one_website(index, [position, other])):
                account = index.accounts[other]
                return f"the name also fits {account.name or account.crm_id}"
        return None

    def _in_country(self, crm: str, q: Query, person: PersonRecord,
                    ranked: list[tuple[float, int, dict[str, Signal]]]) -> list[tuple[float, int, dict[str, Signal]]]:
        """Accounts of the person's country that blocking found for the name (close or holding every typed word)
        but did not score, scored.

        Blocking scores the closest names and a few of those that hold the typed words, whichever country
        they are in: a brand with namesakes abroad ('Norly' typed in Italy; Norly Inc., Norly Ltd, ... and
        Norly Gruppo S.r.l.), or a slip that is another company's name abroad, can leave the person's own
        company out. Looked for only when nothing is written, and what it finds is proposed for review at
        most, so what is written stays what blocking and scoring decided.
        """
        if not q.name or not q.country:
            return []
        index, scorer = self.indexes[crm], self.scorers[crm]
        seen = {p for _, p, _ in ranked}
        country = index.country
        _, positions, _, containing = self._name_ranking(crm, q)
        found = [p for p in dict.fromkeys((*positions, *containing)) if country[p] == q.country and p not in seen]
        if not found:
            return []
        # the name pool has just scored most of them for this very query (not when its core was cached)
        last = self._last_scored
        done = last[1] if last is not None and last[0] == self._core_key(crm, q) else {}
        scored = []
        for position in found[:self.config.blocking.max_candidates]:
            known = done.get(position)
            if known is None:
                conf, signals = scorer.score(q, position, with_phone=False)
                known = (conf, position, signals)
            scored.append(known)
        return sorted(self._with_person(crm, q, person, scored), key=_CONFIDENCE, reverse=True)

    def _review_proposal(self, index: AccountIndex, ranked: list[tuple[float, int, dict[str, Signal]]],
                         chosen: tuple[float, int, dict[str, Signal]]
                         ) -> tuple[tuple[float, int, dict[str, Signal]], str | None]:
        """The account a review proposes, and why when it is not ``chosen`` (see matching/review.py): the best
        supported of tied candidates rather than the tie-breakers' pick, then the one candidate that has right
        what the proposal has wrong of the person's city, industry or size."""
        def full_key(r: tuple[float, int, dict[str, Signal]]) -> tuple:
            return (*self._tie_key(index, r[1]), -r[0], index.accounts[r[1]].id)

        picked = best_supported(ranked, chosen, self.config.tie_margin, full_key)
        why: str | None = "best supported of the tied accounts proposed" if picked[1] != chosen[1] else None
        other = telling_alternative(ranked, picked, self.config.review_threshold)
        if other is not None:
            picked = other
            name = index.accounts[other[1]].name or index.accounts[other[1]].crm_id
            why = f"{name} proposed: it agrees on what the person says beside the name"
        return picked, why

    def _with_person(self, crm: str, q: Query, person: PersonRecord,
                     ranked: list[tuple[float, int, dict[str, Signal]]]):
        """The candidates of a query's shared core, with what only this person says: phone, industry, size."""
        industry = industry_key(person.industry)
        employees = person.employees if isinstance(person.employees, int) else None
        if not q.phone and not industry and not employees:
            return ranked
        scorer, index, firmographic = self.scorers[crm], self.indexes[crm], self.config.firmographic
        out = []
        changed = False
        for conf, position, signals in ranked:
            account = index.accounts[position]
            extra: dict[str, Signal | None] = {}
            if q.phone:
                extra["phone"] = scorer.compare_phone(q, position)
            if industry:
                extra["industry"] = compare_industry(industry, account.industry, firmographic)
            if employees:
                extra["size"] = compare_size(employees, account.employees, firmographic)
            given: dict[str, Signal] = {k: v for k, v in extra.items() if v}
            if given:
                changed = True
                signals = {**signals, **given}
                conf = logistic(self.config.prior + sum(s[1] for s in signals.values()))
            out.append((conf, position, signals))
        return sorted(out, key=_CONFIDENCE, reverse=True) if changed else ranked

    def _decide(self, conf: float) -> str:
        if conf >= self.config.auto_threshold:
            return "auto"
        if conf >= self.config.review_threshold:
            return "review"
        return "none"

    def match_person(
        self,
        person: PersonRecord,
        *,
        previous: PreviousMatch | None = None,
        pin: Pin | None = None,
    ) -> MatchResult:
        """One person's match, applying pins, CRM ownership, scoring, stability and roll-up in that order."""
        if pin is not None:
            return MatchResult(person.id, pin.account_id, "pinned", 1.0, "pin",
                               f"pinned by {pin.pinned_by or 'an admin'}", {"pinned_by": pin.pinned_by},
                               pin.account_id, pin.pinned_by)
        index = self.indexes.get(person.crm)
        if index is None:
            return MatchResult(person.id, None, "none", 0.0, "none", f"no {person.crm} accounts to match against",
                               {})
        if self.config.keep_crm_account:
            for crm_id, method in ((person.account_crm_id if person.kind == "contact" else None, "crm"),
                                   (person.converted_account_crm_id if person.is_converted else None, "converted")):
                position = index.by_crm_id.get((person.crm, crm_id)) if crm_id else None
                if position is not None:
                    account = index.accounts[position]
                    what = "CRM account" if method == "crm" else "converted to"
                    return self._finish(person, index, "crm", 1.0, method, position,
                                        f"{what} {account.name or account.crm_id}", {}, None, None)
        q = self.query_for(person)
        ranked = self._with_person(person.crm, q, person, self.candidates(person.crm, q))
        if not ranked:
            why = NOTHING_TO_MATCH if not q.name and not q.domains else "no candidate account"
            return MatchResult(person.id, None, "none", 0.0, "none", why, {"candidates": 0})
        (conf, position, signals), tie = self._break_ties(index, ranked)
        runner = next((r for r in ranked if r[1] != position), None)
        stability = None
        if previous is not None and previous.account_id is not None and previous.decision in ("auto", "review"):
            prev_pos = index.position.get(previous.account_id)
            if prev_pos is not None and prev_pos != position:
                prev = next((r for r in ranked if r[1] == prev_pos), None)
                if prev is None:
                    prev_conf, prev_signals = self.scorers[person.crm].score(q, prev_pos)
                    prev = self._with_person(person.crm, q, person, [(prev_conf, prev_pos, prev_signals)])[0]
                if conf < prev[0] + self.config.stability_margin and prev[0] >= self.config.review_threshold:
                    stability = f"kept previous match (new candidate better by {conf - prev[0]:.2f} only)"
                    runner = (conf, position, signals)
                    conf, position, signals = prev
                    tie = None
        decision = self._decide(conf)
        doubt = None
        if (decision == "auto" and runner is not None and self.config.ambiguity_margin > 0
                and runner[0] >= conf - self.config.ambiguity_margin and tie is None):
            decision = "review"
            tie = f"runner-up within {self.config.ambiguity_margin:.2f}"
        elif decision == "auto" and self.config.review_ambiguous and stability is None:
            doubt = self._doubt(index, ranked, position, signals, tie is not None, q.tokens)
            if doubt:
                decision = "review"
        proposed = None
        if decision in ("review", "none") and stability is None:
            wider = self._in_country(person.crm, q, person, ranked)
            if wider:
                ranked = sorted([*ranked, *wider], key=_CONFIDENCE, reverse=True)
                if wider[0][0] > conf:
                    # proposed at most: what the candidates the match was decided on did not hold is not written
                    conf, position, signals = wider[0]
                    tie = None
                    proposed = "found among the accounts of the person's country with the typed name"
                    if conf >= self.config.review_threshold:
                        decision = "review"
            if decision == "review":
                (conf, position, signals), unlike_tie = self._review_proposal(index, ranked, (conf, position, signals))
                proposed = unlike_tie or proposed
            if proposed:
                runner = next((r for r in ranked if r[1] != position), None)
        extra: dict[str, Any] = {"signals": _signals_json(signals), "candidates": len(ranked)}
        if runner is not None:
            extra["runner_up"] = {"account_id": index.accounts[runner[1]].id, "confidence": round(runner[0], 4)}
        method = "+".join(k for k in _SIGNAL_ORDER if k in signals and signals[k][1] > 0) or "weak"
        method = self._methods.setdefault(method, method)  # a few dozen combinations: one string each, not 1M
        reason = "; ".join(signals[k][2] for k in _SIGNAL_ORDER if k in signals and signals[k][2])
        notes = [n for n in (tie, stability, doubt, proposed) if n]
        if tie:
            extra["tie"] = tie
        if stability:
            extra["stability"] = stability
        if doubt:
            extra["doubt"] = doubt
        if proposed:
            extra["proposed"] = proposed
        if decision == "none":
            extra["best_account_id"] = index.accounts[position].id
            return MatchResult(person.id, None, "none", round(conf, 4), method,
                               "; ".join([f"best {conf:.2f} below review threshold", reason, *notes]), extra)
        return self._finish(person, index, decision, conf, method, position, reason, extra, notes, signals)

    def _finish(self, person, index, decision, conf, method, position, reason, extra, notes, signals) -> MatchResult:
        matched = index.accounts[position]
        target = matched
        parts = [reason, *(notes or [])]
        if self.config.rollup_to_parent:
            top = index.ultimate_parent(position)
            if top != position:
                target = index.accounts[top]
                parts.append(f"rolled up from {matched.name or matched.crm_id} to {target.name or target.crm_id}")
                extra = {**extra, "rolled_up_from": matched.id}
        return MatchResult(person.id, target.id, decision, round(conf, 4), method,
                           "; ".join(p for p in parts if p), extra, matched.id)


def _matcher_for(people: Sequence[PersonRecord], accounts: Sequence[AccountRecord], config: MatchingConfig,
                 contacts: Sequence[PersonRecord] | None, last_activity: Mapping[int, datetime] | None,
                 workers: int) -> Matcher:
    """The matcher the module-level functions share; the contacts among ``people`` unless given."""
    existing = [p for p in people if p.kind == "contact"] if contacts is None else contacts
    return Matcher(accounts, config, contacts=existing, last_activity=last_activity, workers=workers)


def match(
    people: Sequence[PersonRecord],
    accounts: Sequence[AccountRecord],
    config: MatchingConfig,
    *,
    previous: Mapping[int, PreviousMatch] | None = None,
    pins: Mapping[int, Pin] | None = None,
    last_activity: Mapping[int, datetime] | None = None,
    contacts: Sequence[PersonRecord] | None = None,
    workers: int = 1,
) -> list[MatchResult]:
    """Match every person to an account of the same CRM; one result per person, in input order.

    ``previous`` and ``pins`` are keyed by person id; ``last_activity`` by account id (for the
    recent-activity tie-breaker). ``contacts`` are the existing contacts whose email domains and
    counts feed the contact-domain signal and the most-contacts tie-breaker; by default the
    contacts among ``people``. ``workers`` > 1 spreads the people over forked processes (the
    results are the same). Computed as :func:`match_each` does, then put in input order.
    """
    with ordered_beside(people, workers) as order:  # worked out beside the index build
        matcher = _matcher_for(people, accounts, config, contacts, last_activity, workers)
        grouped = order()
    return match_in_processes(matcher, people, previous or {}, pins or {}, workers, grouped)


def match_iter(
    people: Sequence[PersonRecord],
    accounts: Sequence[AccountRecord],
    config: MatchingConfig,
    *,
    previous: Mapping[int, PreviousMatch] | None = None,
    pins: Mapping[int, Pin] | None = None,
    last_activity: Mapping[int, datetime] | None = None,
    contacts: Sequence[PersonRecord] | None = None,
    workers: int = 1,
) -> Iterator[MatchResult]:
    """:func:`match`'s results one at a time, in input order, as they are computed.

    For callers that write or count results as they come: a million results held at once weigh about
    a gigabyte. The index is built on the first ``next()``; consume the iterator to the end or close it.
    """
    matcher = _matcher_for(people, accounts, config, contacts, last_activity, workers)
    yield from iter_in_processes(matcher, people, previous or {}, pins or {}, workers)


def match_each(
    people: Sequence[PersonRecord],
    accounts: Sequence[AccountRecord],
    config: MatchingConfig,
    *,
    previous: Mapping[int, PreviousMatch] | None = None,
    pins: Mapping[int, Pin] | None = None,
    last_activity: Mapping[int, datetime] | None = None,
    contacts: Sequence[PersonRecord] | None = None,
    workers: int = 1,
) -> Iterator[tuple[int, MatchResult]]:
    """``(position in people, result)`` for every person, as fast as they can be computed: the people are matched
    ordered by the company name they typed, so each name's work is done once for all who typed it
    (:func:`~matching.parallel.grouped_order`), and each slice's results come as soon as it is done.

    For callers that write or count results by person: like :func:`match_iter`, it never holds them all.
    """
    with ordered_beside(people, workers) as order:  # worked out beside the index build
        matcher = _matcher_for(people, accounts, config, contacts, last_activity, workers)
        grouped = order()
    yield from iter_grouped(matcher, people, previous or {}, pins or {}, workers, grouped)
