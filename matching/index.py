"""Candidate generation (blocking): which accounts a person is even compared with.

Three indexes, none of them all-pairs: registrable domain (and the company label for
acme.de-vs-acme.com), rare name tokens with their IDF (a token in more than a few percent of
accounts is too common to block on, but still counts in the similarity), and character n-grams
for the misspelled tokens of a name. Feature columns are parallel lists indexed by position, which
is what the scorer reads in its inner loop.
"""

from __future__ import annotations

import math
import multiprocessing
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from config.matching import BlockingConfig
from matching.domains import FreeMail, domain_label, host_of, registrable_domain
from matching.geo import city_key, country_code, state_code
from matching.names import NameNormalizer, acronym, ascii_key, written_in_latin
from matching.parallel import forked_pool_started
from matching.readings import place_free_key, reading_key
from matching.slips import known_one_edit_away
from store.records import AccountRecord


def ngrams(token: str, size: int) -> list[str]:
    """Character n-grams of a token padded with spaces, so short tokens still have a few."""
    padded = f" {token} "
    if len(padded) <= size:
        return [padded]
    return [padded[i : i + size] for i in range(len(padded) - size + 1)]


def sift_hash(text: str) -> int:
    """``hash(text)`` as an unsigned 64-bit number (for a numpy uint64 column)."""
    return hash(text) & 0xFFFF_FFFF_FFFF_FFFF


def word_signature(words: Iterable[str]) -> int:
    """One bit (of 64) per word, chosen by its hash: a name holds every word of another only if its signature holds
    the other's bits (the converse need not be true)."""
    sig = 0
    for word in words:
        sig |= 1 << (hash(word) & 63)
    return sig


# Fewer accounts than this are normalized in the calling process alone: a fork costs more than it saves.
_PARALLEL_FROM = 20_000
# Misspelt words whose accounts are kept (each an array of up to `limit` positions).
_MISSPELT_KEPT = 50_000


# What ``_features`` gives for each account: name, legal form, written in Latin, host, registrable domain, country,
# state, city, then what is read from them: acronym, reading key, domain label key, key without a Chinese place,
# and the sifting numbers of the pre-ranking (see AccountIndex.n_tokens).
Features = tuple[str, str, bool, str, str, str, str, str, str, str, str, str, tuple[int, int, int, int]]


def _features(accounts: Sequence[AccountRecord], normalizer: NameNormalizer, free_mail: FreeMail) -> list[Features]:
    """The costly, per-account part of the index build: everything read from one account alone.

    The readings (kanji through pykakasi, Hangul, the place a Chinese name begins with) are here rather than
    in the index loop so that forked processes share them: read in the calling process alone, they left one
    core idle for seconds at 200,000 accounts.
    """
    out = []
    for acc in accounts:
        name, legal = normalizer.split(acc.name)
        host = host_of(acc.domain or acc.website)
        reg = registrable_domain(host)
        if reg and host in free_mail:
            host = reg = ""
        country = country_code(acc.country)
        japan = country == "JP" or reg.endswith(".jp")
        label_key = domain_label(reg).replace("-", "") if reg else ""
        out.append((name, legal, written_in_latin(acc.name), host, reg, country, state_code(acc.state, country),
                    city_key(acc.city), acronym(name), reading_key(name, japan), label_key,
                    place_free_key(name, japan), sifting_numbers(name, label_key)))
    return out


def sifting_numbers(name: str, label_key: str) -> tuple[int, int, int, int]:
    """The pre-ranking's sifting numbers of a normalized name and domain label key (see AccountIndex.n_tokens).

    Built on ``hash``, so they hold in this process and its forks only (they share its hash seed): features kept
    between runs (matching.feature_cache) are stored without them and given this process's on the way back in.
    """
    tokens = name.split()
    return len(tokens), sift_hash(tokens[0]) if tokens else 0, sift_hash(label_key), word_signature(tokens)


def _features_of(bounds: tuple[int, int]) -> list[Features]:
    assert _shared_build is not None, "a worker started without the accounts"
    accounts, normalizer, free_mail = _shared_build
    return _features(accounts[bounds[0] : bounds[1]], normalizer, free_mail)


_shared_build: tuple[Sequence[AccountRecord], NameNormalizer, FreeMail] | None = None


def account_features(accounts: Sequence[AccountRecord], normalizer: NameNormalizer, free_mail: FreeMail,
                     workers: int = 1, known: Mapping[int, Features] | None = None) -> list[Features]:
    """``_features`` of every account, the later part computed by ``workers - 1`` forked processes (same values).

    ``known`` (account id -> features) are features already read from these very records by an index built with
    the same normalizer and free-mail list, in this process (the sifting hashes are this process's): a second
    index over some of the same accounts (the cross-CRM linker's) then reads only the others.
    """
    if known:
        missing = [a for a in accounts if a.id not in known]
        computed = dict(zip((a.id for a in missing), account_features(missing, normalizer, free_mail, workers),
                            strict=True))
        return [known[a.id] if a.id in known else computed[a.id] for a in accounts]
    global _shared_build
    if workers <= 1 or len(accounts) < _PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return _features(accounts, normalizer, free_mail)
    own = len(accounts) // workers
    step = -(-(len(accounts) - own) // (workers - 1))
    bounds = [(start, min(start + step, len(accounts))) for start in range(own, len(accounts), step)]
    _shared_build = (accounts, normalizer, free_mail)
    try:
        with multiprocessing.get_context("fork").Pool(workers - 1, initializer=forked_pool_started) as pool:
            pending = pool.map_async(_features_of, bounds, chunksize=1)
            out = _features(accounts[:own], normalizer, free_mail)
            for part in pending.get():
                out.extend(part)
    finally:
        _shared_build = None
    return out


def sorted_intersection(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """The values of ``mine`` also in ``theirs``, both sorted and without repeats (a name word's postings), in order.

    ``np.intersect1d`` sorts both together: with a rare word's few accounts against a common word's tens of
    thousands, looking each up in the longer one is 35 times faster (7 against 247 µs for 50 in 50,000)."""
    if len(theirs) == 0:
        return mine[:0]
    at = np.searchsorted(theirs, mine)
    at[at == len(theirs)] = 0  # past the end: larger than all of theirs, so unequal to theirs[0]
    return mine[theirs[at] == mine]


class AccountIndex:
    """Normalized features of a set of accounts plus the blocking indexes over them."""

    def __init__(
        self,
        accounts: Sequence[AccountRecord],
        normalizer: NameNormalizer,
        free_mail: FreeMail,
        blocking: BlockingConfig,
        workers: int = 1,
        known_features: Mapping[int, Features] | None = None,
        keep_features: bool = False,
    ) -> None:
        self.accounts = list(accounts)
        self.blocking = blocking
        self.name: list[str] = []
        self.tokens: list[tuple[str, ...]] = []
        self.token_sets: list[frozenset[str]] = []  # the same words as a set, for containment tests
        self.acronym: list[str] = []
        self.legal: list[str] = []  # canonical legal form stripped from the name
        self.latin: list[bool] = []  # the name is written in Latin letters (legal forms compare within a script)
        self.ascii: list[str] = []  # ascii_key of the name (transliterated when in another script)
        self.label_key: list[str] = []  # domain label without hyphens: nagoya-tsushin.co.jp -> nagoyatsushin
        self.host: list[str] = []
        self.reg: list[str] = []
        self.country: list[str] = []
        self.state: list[str] = []
        self.city: list[str] = []
        self.phone: list[str] = []
        self.position: dict[int, int] = {}
        self.by_crm_id: dict[tuple[str, str], int] = {}
        by_domain: dict[str, list[int]] = defaultdict(list)
        by_label: dict[str, list[int]] = defaultdict(list)
        by_name: dict[str, list[int]] = defaultdict(list)
        by_acronym: dict[str, list[int]] = defaultdict(list)
        by_key: dict[str, list[int]] = defaultdict(list)
        postings: dict[str, list[int]] = defaultdict(list)
        features = account_features(self.accounts, normalizer, free_mail, workers, known_features)
        # kept on request, for another index over the same accounts (``known_features``); tens of megabytes of
        # tuples at 200,000 accounts otherwise (their strings are the columns below)
        self.features: list[Features] | None = features if keep_features else None
        sifting: list[tuple[int, int, int, int]] = []
        for i, (acc, feature) in enumerate(zip(self.accounts, features, strict=True)):
            # One int object shared by every structure below. Compiled (mypyc), `i` is a machine integer, and each
            # list or dict it went into would get an int object of its own: 55 MB more at 200,000 accounts.
            at: Any = i
            name, legal, latin, host, reg, country, state, city, initials, key, label_key, core, sift = feature
            sifting.append(sift)
            self.legal.append(legal)
            self.latin.append(latin)
            tokens = tuple(name.split())
            self.name.append(name)
            self.tokens.append(tokens)
            self.token_sets.append(frozenset(tokens))
            self.acronym.append(initials)
            self.ascii.append(key)
            self.label_key.append(label_key)
            if len(key) >= 3:
                by_key[key].append(at)
            if len(label_key) >= 3 and label_key != key:
                by_key[label_key].append(at)
            if len(core) >= 4 and core not in (key, label_key):  # 深圳永信咨询 ~ Yongxin Zixun
                by_key[core].append(at)
            self.host.append(host)
            self.reg.append(reg)
            self.country.append(country)
            self.state.append(state)
            self.city.append(city)
            self.phone.append(acc.phone or "")
            self.position[acc.id] = at
            self.by_crm_id[(acc.crm, acc.crm_id)] = at
            if reg:
                by_domain[reg].append(at)
                label = domain_label(reg)
                if len(label) >= 3:
                    by_label[label].append(at)
            if name:
                by_name[name].append(at)
                if self.acronym[-1]:
                    by_acronym[self.acronym[-1]].append(at)
                for token in set(tokens):
                    postings[token].append(at)
        self.by_domain = dict(by_domain)
        self.by_label = dict(by_label)
        self.by_name = dict(by_name)
        self.by_acronym = dict(by_acronym)
        self.by_key = dict(by_key)
        # Per-account numbers that let the pre-ranking sift a name's candidates in numpy rather than by reading
        # each account's tuple of words (objects scattered over the heap): how many words, a hash of the first
        # word and of the domain label key, and a 64-bit signature of the words (one bit per word's hash). They
        # only narrow; the words themselves decide, so a hash collision costs a comparison, never a result.
        columns = np.array(sifting, dtype=np.uint64).reshape(-1, 4).T
        self.n_tokens, self.first_hash, self.label_hash, self.token_sig = (np.ascontiguousarray(c) for c in columns)
        total = max(len(self.accounts), 1)
        self.size = total
        self.idf = {t: math.log((total + 1) / (len(p) + 0.5)) for t, p in postings.items()}
        self.unseen_idf = math.log((total + 1) / 0.5)
        self.weight = [sum(self.idf[t] for t in tokens) for tokens in self.tokens]  # IDF mass of each name
        max_df = max(blocking.min_token_accounts, int(blocking.max_token_share * total))
        self.postings = {t: np.asarray(p, dtype=np.int32) for t, p in postings.items() if len(p) <= max_df}
        # The typo index is over distinct name tokens, not accounts: far smaller, and a misspelt word
        # finds the words it may stand for, whose postings then give the accounts.
        self.known_tokens = [t for t, p in self.postings.items()]
        grams: dict[str, list[int]] = defaultdict(list)
        for token_id, token in enumerate(self.known_tokens):
            for gram in set(ngrams(token, blocking.ngram)):
                grams[gram].append(token_id)
        self.grams = {g: np.asarray(ids, dtype=np.int32) for g, ids in grams.items()
                      if len(ids) <= blocking.max_ngram_tokens}
        self.contact_domains: dict[str, dict[int, int]] = {}
        self.shared_domains: set[str] = set()
        self.contact_count: dict[int, int] = {}
        # what a word no account has finds (by n-grams, by one slip): a misspelt word recurs in many typed names
        self._misspelt: dict[tuple[str, int, bool], array] = {}

    def add_contact_domains(self, counts: Mapping[tuple[int, str], int]) -> None:
        """Register existing contacts: how many of them each (account position, registrable domain of a company
        email or '') has. The domain must be the registrable form of an email host that is not free mail, or ''.
        Counted pairs, not contacts: a company's contacts share its domain.
        """
        domains: dict[str, dict[int, int]] = defaultdict(dict)
        count = self.contact_count
        for (position, reg), n in counts.items():
            count[position] = count.get(position, 0) + n
            if reg:
                domains[reg][position] = n
        for reg, by_position in domains.items():
            if reg in self.shared_domains:
                continue
            merged = self.contact_domains.setdefault(reg, {})
            for position, n in by_position.items():
                merged[position] = merged.get(position, 0) + n
            if len(merged) >= self.blocking.shared_domain_accounts and reg not in self.by_domain:
                # contacts of many accounts use it: a provider the free-mail lists miss (daum.net, a telco's mail)
                self.shared_domains.add(reg)
                del self.contact_domains[reg]

    def token_idf(self, token: str) -> float:
        return self.idf.get(token, self.unseen_idf)

    def domain_candidates(self, regs: Iterable[str]) -> set[int]:
        found: set[int] = set()
        for reg in regs:
            found.update(self.by_domain.get(reg, ()))
            found.update(self.contact_domains.get(reg, ()))
            label = domain_label(reg)
            if len(label) >= 3:
                found.update(self.by_label.get(label, ()))
        return found

    def name_candidates(self, name: str, tokens: Sequence[str], limit: int, key: str | None = None) -> set[int]:
        """Exact name or its ASCII key (other scripts, domain labels), acronym, then the rarest tokens (intersected
        while too many), then n-grams of unknown tokens."""
        found: set[int] = set(self.by_name.get(name, ()))
        key = ascii_key(name) if key is None else key
        if len(key) >= 3:
            found.update(self.by_key.get(key, ())[:limit])
        if len(tokens) == 1:
            found.update(self.by_acronym.get(name, ()))
        acr = acronym(name)
        if acr:
            found.update(self.by_name.get(acr, ()))
        postings, idf = self.postings, self.idf
        # ties broken by the word itself: set order follows the per-process hash seed, and a person's match
        # must not change from one run to the next with nothing changed
        usable = sorted((t for t in set(tokens) if t in postings), key=lambda t: (len(postings[t]), t))
        if usable:
            current = postings[usable[0]]
            for token in usable[1:]:
                if len(current) <= limit:
                    break
                narrowed = sorted_intersection(current, postings[token])
                if len(narrowed):
                    current = narrowed
            if len(current) > limit:
                current = current[:limit]
            found.update(current.tolist())
            if len(usable) > 1 and len(postings[usable[1]]) <= limit:
                found.update(postings[usable[1]].tolist())
        unknown = [t for t in tokens if t not in idf and len(t) >= 3]
        if unknown:
            found.update(self.ngram_candidates(unknown, limit))
        return found

    def ngram_candidates(self, tokens: Sequence[str], limit: int) -> list[int]:
        """Accounts with a word sharing at least min_ngram_overlap of the n-grams of a misspelt token."""
        found: list[int] = []
        for token in tokens:
            found += self._misspelt_word(token, limit, False)
            if len(found) >= limit:
                return found[:limit]
        return found

    def slip_candidates(self, token: str, limit: int) -> array:
        """Accounts with a word one slip from a word no account has ('dnyara' ~ 'dynara'), ``limit`` a word."""
        return self._misspelt_word(token, limit, True)

    def _misspelt_word(self, token: str, limit: int, by_slip: bool) -> array:
        """:meth:`slip_candidates` (``by_slip``) or one token's :meth:`ngram_candidates`, kept: the same misspelt
        word comes back in other typed names (25,089 different ones in 59,599 of the benchmark's names). Kept as
        arrays: 4 bytes a position rather than 36 as a list of ints."""
        key = (token, limit, by_slip)
        kept = self._misspelt.get(key)
        if kept is not None:
            return kept
        found: list[int] = []
        if by_slip:
            for word in known_one_edit_away(token, self.postings):
                found += self.postings[word][:limit].tolist()
        else:
            grams = set(ngrams(token, self.blocking.ngram))
            arrays = [self.grams[g] for g in grams if g in self.grams]
            if arrays:
                ids, counts = np.unique(np.concatenate(arrays), return_counts=True)
                need = max(2, math.ceil(self.blocking.min_ngram_overlap * len(grams)))
                keep = counts >= need
                ids, counts = ids[keep], counts[keep]
                for token_id in ids[np.argsort(-counts, kind="stable")][:limit].tolist():
                    found += self.postings[self.known_tokens[token_id]][:limit].tolist()
                    if len(found) >= limit:
                        found = found[:limit]
                        break
        if len(self._misspelt) >= _MISSPELT_KEPT:
            self._misspelt.clear()
        kept = self._misspelt[key] = array("i", found)
        return kept

    def customer(self, position: int, customer_types: frozenset[str]) -> bool:
        kind = self.accounts[position].type
        return kind is not None and kind.strip().lower() in customer_types

    def parent_of(self, position: int) -> int | None:
        acc = self.accounts[position]
        if not acc.parent_crm_id:
            return None
        return self.by_crm_id.get((acc.crm, acc.parent_crm_id))

    def ultimate_parent(self, position: int) -> int:
        """Top of the account hierarchy, guarding against cycles in CRM data."""
        seen = {position}
        current = position
        while (parent := self.parent_of(current)) is not None and parent not in seen:
            seen.add(parent)
            current = parent
        return current
