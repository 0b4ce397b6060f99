"""Country, state and city values reduced to comparable codes.

CRMs hold countries as ISO codes, English names or whatever a form accepted; pycountry turns
the common spellings into ISO 3166 alpha-2, and states into their subdivision code, so that
"California" and "CA" agree. Unknown values fall back to their folded text.
"""

from __future__ import annotations

import functools

import pycountry

from matching.names import fold

_ALIASES = {
    "usa": "US", "u s a": "US", "u s": "US", "united states of america": "US", "america": "US",
    "uk": "GB", "u k": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "great britain": "GB",
    "deutschland": "DE", "germany": "DE", "espana": "ES", "italia": "IT", "nederland": "NL", "holland": "NL",
    "schweiz": "CH", "suisse": "CH", "osterreich": "AT", "brasil": "BR", "mexico": "MX", "south korea": "KR",
    "korea": "KR", "russia": "RU", "uae": "AE", "turkey": "TR", "czech republic": "CZ", "vietnam": "VN",
    "taiwan": "TW", "iran": "IR", "nippon": "JP", "zhongguo": "CN", "日本": "JP", "中国": "CN",
}


def _key(value: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in fold(value)).split())


@functools.lru_cache(maxsize=1 << 16)
def country_code(value: str | None) -> str:
    """ISO alpha-2 for a country as typed ('' when blank); unknown spellings return their folded text."""
    if not value or not isinstance(value, str):
        return ""
    key = _key(value[:100])
    if not key:
        return ""
    if key in _ALIASES:
        return _ALIASES[key]
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
