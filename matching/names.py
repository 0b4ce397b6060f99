"""Company names reduced to a comparable form.

Folding is deliberately conservative: Latin, Greek and Cyrillic letters are transliterated to
ASCII with anyascii (so ``Société`` meets ``Societe`` and ``Газпром`` meets ``Gazprom``), but CJK,
Arabic, Hebrew and other scripts are kept as written: turning kanji into pinyin would make
unrelated Japanese and Chinese names collide, and a name typed in one script is compared with
names in the same script. Legal forms come from cleanco's per-country term data, stripped at
the token level (cleanco's own basename is ~40 us a name, too slow for a million leads).
Common words ("group", "holdings") are kept: the index weights them down by frequency.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping

from anyascii import anyascii
from cleanco.clean import prepare_default_terms

from matching.slips import slip_table

# Transliterate only below Armenian (Latin, IPA, Greek, Cyrillic) and Latin Extended Additional.
_FOLD_RANGES = ((0x0080, 0x0530), (0x1E00, 0x1F00), (0x2C60, 0x2C80), (0xA720, 0xA800))
# Latin letters: Basic Latin to Latin Extended-B with IPA, Latin Extended Additional, -C and -D.
_LATIN_RANGES = ((0x0000, 0x02B0), (0x1E00, 0x1F00), (0x2C60, 0x2C80), (0xA720, 0xA800))
_APOSTROPHES = re.compile(r"['’`´]")
_INITIAL_DOTS = re.compile(r"(?<=\b\w)\.(?=\w\b)")
_WEB_SUFFIX = re.compile(r"\.(com|net|org|io|co|ai|de|fr|co\.uk|uk)\b")
_AND = re.compile(r"\s*[&+]\s*")
_NOT_ALNUM = re.compile(r"[\W_]+")  # exactly the characters str.isalnum() rejects

# Variants that mean the same word; each maps to one canonical spelling (canonical maps to itself).
ABBREVIATIONS: dict[str, str] = {
    "intl": "international", "int": "international", "internat": "international",
    "tech": "technology", "technologies": "technology", "techs": "technology", "technologie": "technology",
    "internacional": "international", "assoc": "associates", "assocs": "associates",
    "sys": "systems", "system": "systems",
    "svc": "services", "svcs": "services", "service": "services", "srvcs": "services",
    "mfg": "manufacturing", "mfrs": "manufacturing",
    "bros": "brothers", "natl": "national", "univ": "university",
    "ctr": "center", "centre": "center", "labs": "laboratories", "lab": "laboratories",
    "solns": "solutions", "sol": "solutions", "sols": "solutions", "solution": "solutions",
    "nets": "networks", "ntwks": "networks", "network": "networks", "dl": "dienstleistungen",
    "mgmt": "management", "grp": "group",
    "hldgs": "holdings", "hldg": "holdings", "holding": "holdings", "assn": "association",
    "dept": "department", "hosp": "hospital", "pharma": "pharmaceuticals", "pharmaceutical": "pharmaceuticals",
    "ins": "insurance", "fin": "financial", "finl": "financial", "mkt": "market", "mktg": "marketing",
    "eng": "engineering", "engg": "engineering", "ent": "enterprises", "enterprise": "enterprises",
    "comm": "communications", "comms": "communications", "communication": "communications",
    "and": "and", "n": "and",
}
# Legal forms written without spaces in CJK and Korean names, or as prefixes (Russian, Indonesian).
LEGAL_AFFIXES: tuple[str, ...] = (
    "股份有限公司", "有限责任公司", "有限責任公司", "有限公司", "株式会社", "有限会社", "合同会社", "合資会社",
    "주식회사", "(주)", "㈱", "(株)", "المحدودة", "ذ.م.م", 'בע"מ', "בעמ",
)
# Legal forms cleanco's term lists lack (Mexico, UAE free zones, Russia in Latin letters, German sole traders).
EXTRA_LEGAL_FORMS: tuple[str, ...] = (
    "S. de R.L. de C.V.", "S.A. de C.V.", "S. de R.L.", "S.A.P.I. de C.V.", "FZE", "FZ-LLC", "FZ LLC", "FZCO",
    "DMCC", "JSC", "PJSC", "OJSC", "CJSC", "e.K.",
)
LEGAL_PREFIXES = frozenset({"ooo", "oao", "zao", "pao", "ao", "pt", "cv", "tov", "pp", "شركة", "주", "株",
                            *(a for a in LEGAL_AFFIXES if a.isalnum())})
_NEVER_STRIP = frozenset({"and", "the"})
# Entries of each per-name cache here: enough for the names that repeat close together, not every name seen.
_NAME_CACHE = 1 << 16
# Legal forms common enough that a mistyped spelling of one is more likely than a rare form or a word:
# only these are read through typing slips ('Incc.', 'GmH'; 'Feedback Loop' is not a mistyped 'koop').
SLIP_LEGAL_FORMS = frozenset({
    "inc", "llc", "ltd", "plc", "llp", "corp", "corporation", "incorporated", "limited", "company", "gmbh", "srl",
    "spa", "sarl", "sas", "ltda", "bhd", "sdnbhd", "ptyltd", "coltd", "jsc", "pjsc", "ojsc", "cjsc", "ooo", "bvba",
    "sprl", "kgaa", "oyj", "sro", "kft", "sagl", "eurl", "sasu", "limitada", "gmbhcokg",
})
# Spellings of one legal form word, so that 'Corp.' and 'Corporation' compare equal.
LEGAL_CANONICAL = {"inc": "incorporated", "corp": "corporation", "ltd": "limited", "co": "company",
                   "ltda": "limitada", "cia": "companhia", "pty": "proprietary", "bhd": "berhad"}


def _fold_char(ch: str) -> str:
    code = ord(ch)
    for low, high in _FOLD_RANGES:
        if low <= code < high:
            return anyascii(ch)
    return ch


def fold(text: str) -> str:
    """NFKC, case-folded, with Latin/Greek/Cyrillic transliterated to ASCII and other scripts kept."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch) and out and out[-1].isascii():
            continue  # an accent on a folded letter
        out.append(ch if ch.isascii() else _fold_char(ch))
    return unicodedata.normalize("NFKC", "".join(out)).casefold()


@functools.lru_cache(maxsize=_NAME_CACHE)
def written_in_latin(text: str | None) -> bool:
    """Whether every letter of a name is Latin: 'ООО «Урал Системы»' is not, though fold() makes it Latin.

    A legal form written in another script is a translation, not a second company: a Russian ООО is
    an LLC in English and a Japanese 株式会社 a 'Co., Ltd.' or a 'Corporation', so legal forms of two
    names in different scripts are not compared.
    """
    if not text or not isinstance(text, str):
        return True
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return True
    return all(not ch.isalpha() or any(low <= ord(ch) < high for low, high in _LATIN_RANGES) for ch in text)


class NameNormalizer:
    """Turns a typed company name into space-separated canonical tokens. Pure and cached."""

    def __init__(self, extra_legal_terms: Iterable[str] = (), abbreviations: Mapping[str, str] | None = None) -> None:
        self.abbreviations = dict(ABBREVIATIONS)
        for short, long in (abbreviations or {}).items():
            self.abbreviations[self._tokens_plain(short)[0] if self._tokens_plain(short) else short] = long.lower()
        legal: set[tuple[str, ...]] = set()
        for _, parts in prepare_default_terms():
            tokens = tuple(self._tokens_plain(" ".join(parts)))
            if tokens and not set(tokens) <= _NEVER_STRIP:
                legal.add(tokens)
        # "(주)" and "㈱" reach the suffix check as the tokens "주" and "株".
        legal.update(tuple(self._tokens_plain(affix)) for affix in LEGAL_AFFIXES)
        for term in (*EXTRA_LEGAL_FORMS, *extra_legal_terms):
            tokens = tuple(self._tokens_plain(term))
            if tokens:
                legal.add(tokens)
        self.legal_suffixes = legal
        self.max_legal_len = max((len(t) for t in legal), default=1)
        self._legal_last = frozenset(t[-1] for t in legal)  # most names end in no legal word: one look-up
        # legal forms written as one string ('srl', 'ptyltd'), and their keyboard slips ('rsl', 'ptyld')
        joined = {"".join(t): t for t in legal if all(x.isascii() for x in t)}
        self._joined_legal = {k: v for k, v in joined.items() if len(k) >= 3}
        targets = [k for k in joined if k in SLIP_LEGAL_FORMS]
        self._legal_slips = {slip: joined[word] for slip, word in slip_table(targets).items() if slip not in joined}
        # Bounded: a million leads type ~500,000 different names, and an unbounded cache held all of them in each
        # matching process (~250 MB apiece). The matcher keeps its own cache of what it derives from a typed name,
        # so these mostly serve the two look-ups of one name in a row (normalize, then legal_form).
        self.split = functools.lru_cache(maxsize=_NAME_CACHE)(self._split)
        self.legal_slip = functools.lru_cache(maxsize=_NAME_CACHE)(self._legal_slip)

    @staticmethod
    def _tokens_plain(text: str) -> list[str]:
        text = fold(text)
        text = _APOSTROPHES.sub("", text)
        text = _INITIAL_DOTS.sub("", text)
        text = _AND.sub(" and ", text)
        return _NOT_ALNUM.sub(" ", text).split()

    def _strip_affixes(self, tokens: list[str], removed: list[str]) -> list[str]:
        """Strip legal forms at the end (any script) and known prefixes, never down to nothing."""
        changed = True
        while changed and len(tokens) > 1:
            changed = False
            if tokens[-1] in self._legal_last:
                for size in range(min(self.max_legal_len, len(tokens) - 1), 0, -1):
                    if tuple(tokens[-size:]) in self.legal_suffixes:
                        removed.extend(tokens[-size:])
                        del tokens[-size:]
                        changed = True
                        break
            if len(tokens) > 1 and tokens[0] in LEGAL_PREFIXES:
                removed.append(tokens.pop(0))
                changed = True
        if all(token.isascii() for token in tokens):
            return tokens
        for i, token in enumerate(tokens):
            if token.isascii():
                continue
            stripped = token
            for affix in LEGAL_AFFIXES:
                if stripped.startswith(affix) and len(stripped) > len(affix):
                    stripped = stripped[len(affix):]
                    removed.append(affix)
                if stripped.endswith(affix) and len(stripped) > len(affix):
                    stripped = stripped[: -len(affix)]
                    removed.append(affix)
            tokens[i] = stripped
        return tokens

    def normalize(self, name: str | None) -> str:
        """'ACME Holdings, Inc.' -> 'acme holdings': the name without its legal form, in canonical tokens."""
        return self.split(name)[0]

    def legal_form(self, name: str | None) -> str:
        """The legal form stripped from a name, canonical and order-free: 'Acme Co., Ltd.' -> 'company limited'."""
        return self.split(name)[1]

    def _legal_slip(self, normalized: str) -> tuple[str, str]:
        """A normalized name read as ending in a mistyped or mis-spaced legal form: ('mara analytik', 'gmbh')
        for 'mara analytik gmh', ('giordano', 'srl') for 'giordano sr l'; ('', '') when it does not.

        Only a reading, not the normalized name itself: 'Golden Crop' must still meet an account of that
        name, so the scorer tries this when the name as typed finds no equal.
        """
        tokens = normalized.split()
        for size in (1, 2, 3):
            if len(tokens) <= size:
                break
            tail = tokens[-size:]
            if size > 1 and any(len(t) > 3 for t in tail):
                break  # only short pieces are a legal form with stray spaces or dots ('s r l', 'pty ld')
            joined = "".join(tail)
            form = self._legal_slips.get(joined) or (self._joined_legal.get(joined) if size > 1 else None)
            if form:
                legal = sorted({LEGAL_CANONICAL.get(t, t) for t in form} - _NEVER_STRIP)
                return " ".join(tokens[:-size]), " ".join(legal)
        return "", ""

    def _split(self, name: str | None) -> tuple[str, str]:
        if not name or not isinstance(name, str):
            return "", ""
        text = _WEB_SUFFIX.sub(" ", fold(name[:300]))
        tokens = [self.abbreviations.get(t, t) for t in self._tokens_plain(text)]
        tokens = [t for t in tokens if len(t) <= 60]
        removed: list[str] = []
        while True:
            before = list(tokens)
            tokens = self._strip_affixes(tokens, removed)
            tokens = [self.abbreviations.get(t, t) for t in tokens]
            if tokens == before:
                break
        if tokens == ["and"]:
            return "", ""
        legal = sorted({LEGAL_CANONICAL.get(t, t) for t in removed} - _NEVER_STRIP)
        return " ".join(tokens), " ".join(legal)


@functools.lru_cache(maxsize=_NAME_CACHE)
def acronym(normalized: str) -> str:
    """Initials of a multi-word normalized name, skipping 'and'/'the' ('international business machines' -> 'ibm')."""
    tokens = [t for t in normalized.split() if t not in _NEVER_STRIP]
    return "".join(t[0] for t in tokens) if len(tokens) >= 2 else ""


@functools.lru_cache(maxsize=_NAME_CACHE)
def ascii_key(normalized: str) -> str:
    """Letters and digits of a normalized name in ASCII, without spaces: 'ruihua xinxi' -> 'ruihuaxinxi'.

    Names in other scripts are transliterated here (and only here) with anyascii, so a name typed
    in Latin letters can still be compared with one written in Chinese or Korean, and with the
    company's domain label ('nagoya tsushin' vs nagoya-tsushin.co.jp).
    """
    text = normalized if normalized.isascii() else anyascii(normalized).lower()
    return _NOT_ALNUM.sub("", text)
