"""Country, state and city values reduced to comparable codes.

CRMs hold countries as ISO codes, English names, local names or whatever a form accepted;
pycountry turns them into ISO 3166 alpha-2 (with its own translations of country names in the
main business languages, read once from its bundled gettext catalogues), and states into their
subdivision code, so that "California" and "CA", or "Deutschland" and "DE", agree. Unknown
values fall back to their folded text, which the scorer treats as unknown rather than different.
"""

from __future__ import annotations

import functools
import gettext
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

import phonenumbers
import pycountry

from matching.names import fold

_ALIASES = {
    "usa": "US", "u s a": "US", "u s": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u k": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "great britain": "GB",
    "northern ireland": "GB", "holland": "NL", "south korea": "KR", "korea": "KR", "russia": "RU", "rossiya": "RU",
    "uae": "AE", "turkey": "TR", "czech republic": "CZ", "vietnam": "VN", "taiwan": "TW", "iran": "IR",
    "nippon": "JP", "nihon": "JP", "zhongguo": "CN", "prc": "CN", "ksa": "SA", "emirates": "AE",
    "الإمارات": "AE", "السعودية": "SA", "한국": "KR", "日本": "JP", "中国": "CN",
}
# Languages whose country names pycountry's catalogues supply (the languages CRM users type in).
_LANGUAGES = ("de", "fr", "es", "it", "nl", "pt", "pt_BR", "sv", "da", "pl", "tr", "ru", "uk", "ja", "zh_CN",
              "zh_TW", "ko", "ar", "he")


_NOT_ALNUM = re.compile(r"[\W_]+")


def _key(value: str) -> str:
    return " ".join(_NOT_ALNUM.sub(" ", fold(value)).split())


def _spellings(name: str) -> list[str]:
    """'Korea, Republic of' is also written 'Republic of Korea'; 'The Netherlands' also 'Netherlands'."""
    out = [name]
    if ", " in name:
        head, tail = name.split(", ", 1)
        out += [f"{tail} {head}", f"{tail.removesuffix(' of')} {head}"]
    return out


@functools.cache
def _country_names() -> dict[str, str]:
    """Folded country name in English and the catalogued languages -> alpha-2."""
    names: dict[str, str] = {}
    catalogues = [gettext.NullTranslations()]
    for language in _LANGUAGES:
        try:
            catalogues.append(gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language]))
        except OSError:
            continue
    # English first, then language by language, so that a translation never shadows an English name.
    for catalogue in catalogues:
        for country in pycountry.countries:
            english: set[str] = {value for attr in ("name", "official_name", "common_name")
                                 if (value := getattr(country, attr, None))}
            for name in english:
                for spelling in _spellings(catalogue.gettext(name)):
                    names.setdefault(_key(spelling), country.alpha_2)
    names.update(_ALIASES)
    return names


@functools.lru_cache(maxsize=1 << 16)
def country_code(value: str | None) -> str:
    """ISO alpha-2 for a country as typed ('' when blank); unknown spellings return their folded text."""
    if not value or not isinstance(value, str):
        return ""
    key = _key(value[:100])
    if not key:
        return ""
    known = _country_names()
    if key in known:
        return known[key]
    if key.startswith("the ") and key[4:] in known:
        return known[key[4:]]
    try:
        return pycountry.countries.lookup(key).alpha_2
    except LookupError:
        return key


@functools.lru_cache(maxsize=1 << 16)
def state_code(value: str | None, country: str = "") -> str:
    """Subdivision code without the country prefix ('California' -> 'ca'), else the folded text."""
    if not value or not isinstance(value, str):
        return ""
    key = _key(value[:100])
    if not key:
        return ""
    if len(key) <= 3:
        return key
    try:
        found = pycountry.subdivisions.lookup(key)
    except LookupError:
        return key
    if country and len(country) == 2 and found.country_code != country:
        return key
    return found.code.split("-", 1)[1].lower()


@functools.lru_cache(maxsize=1 << 18)
def city_key(value: str | None) -> str:
    """Folded city name ('São Paulo' -> 'sao paulo'); '' when blank."""
    if not value or not isinstance(value, str):
        return ""
    return _key(value[:100])


def countries_of_cities(pairs: Iterable[tuple[str, str]], min_records: int = 3,
                        min_share: float = 0.9) -> dict[str, str]:
    """{city key: country code} for the cities the records place in one country, learnt from (city, country).

    A record with a city and no country ('Seattle', blank) is still somewhere: where the other records
    of that city are. Only cities seen ``min_records`` times with ``min_share`` of them in one country
    are kept, so a name two countries share (Paris, Texas) says nothing.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for city, country in pairs:
        if city and len(country) == 2:
            counts[city][country] += 1
    out: dict[str, str] = {}
    for city, by_country in counts.items():
        country, n = by_country.most_common(1)[0]
        total = sum(by_country.values())
        if total >= min_records and n >= min_share * total:
            out[city] = country
    return out


# Country-code suffixes that companies and mail providers everywhere use as generic ones.
_GENERIC_SUFFIXES = frozenset({"io", "co", "ai", "me", "tv", "cc", "ly", "gg", "to", "fm", "sh", "ws", "eu"})


@functools.lru_cache(maxsize=1 << 14)
def mail_country(domain: str | None) -> str:
    """The country of an email domain's national suffix ('hotmail.co.uk' -> 'GB', 'alice.it' -> 'IT'), '' for a
    generic one (.com, .io)."""
    if not domain or not isinstance(domain, str):
        return ""
    suffix = domain.rstrip(".").rsplit(".", 1)[-1].lower()
    if len(suffix) != 2 or not suffix.isalpha() or suffix in _GENERIC_SUFFIXES:
        return ""
    if suffix == "uk":
        return "GB"
    found = pycountry.countries.get(alpha_2=suffix.upper())
    return found.alpha_2 if found else ""


@functools.lru_cache(maxsize=1 << 16)
def phone_country(value: str | None) -> str:
    """The ISO country of a number typed with its country code ('+39 02 1234 5678' -> 'IT'), '' otherwise.

    A number without '+' says nothing (a national format fits many countries), and neither does one
    whose code several countries share unless its area code tells them apart (+1: US, CA, the Caribbean).
    """
    if not value or not isinstance(value, str) or not value.lstrip().startswith("+") or len(value) > 64:
        return ""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return ""
    return phonenumbers.region_code_for_number(parsed) or ""
