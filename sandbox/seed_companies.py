"""Real-world companies of the synthetic org, independent of any CRM.

A company is what a person works for; accounts, HubSpot companies and leads are views of it
that each CRM gets wrong in its own way. Names are built per country and script with the
country's legal forms, domains with the country's TLD, and the traps a matcher meets in
production: lookalike companies (same brand, other country or other trade) and subsidiaries
that share their parent's brand under another TLD.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sandbox import seed_names as N

PROFILES = ("quiet", "steady", "surging")
SURGING_SHARE = 0.065
SUBSIDIARY_SHARE = 0.08
LOOKALIKE_SHARE = 0.04
EXTRA_DOMAIN_SHARE = 0.15

_LOCAL_COUNTRY_WORD = {
    "US": "USA", "GB": "UK", "CA": "Canada", "AU": "Australia", "DE": "Deutschland", "AT": "Austria",
    "CH": "Schweiz", "FR": "France", "ES": "España", "MX": "México", "IT": "Italia", "NL": "Nederland",
    "BR": "Brasil", "JP": "Japan", "CN": "China", "KR": "Korea", "RU": "Rus", "AE": "Middle East",
    "SA": "Arabia", "IL": "Israel",
}


@dataclass(frozen=True, slots=True)
class Company:
    """One real business. ``index`` is its position in ``World.companies``."""

    index: int
    key: str  # stable, CRM-neutral id ("CO-000042")
    legal_name: str
    core_name: str  # the legal name without its legal form
    brand: str  # the short name people use
    latin_name: str  # romanized core name, what people type when they cannot type the script
    style: str  # naming style: en, de, fr, ..., ja, zh, ko, ru, ar, he
    country: str  # ISO 3166-1 alpha-2
    state: str
    city: str
    street: str
    postal_code: str
    domain: str
    extra_domains: tuple[str, ...]
    industry: str
    employees: int
    annual_revenue: float
    phone: str
    parent: int | None  # index of the parent company
    engagement: str  # "quiet" | "steady" | "surging"
    fit: float  # latent ICP fit in (0, 1)


COUNTRY_BY_CODE = {c.code: c for c in N.COUNTRIES}


@lru_cache(maxsize=1 << 18)
def slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: the domain label a company would register."""
    return re.sub(r"[^a-z0-9]", "", N.fold(text).lower())


@lru_cache(maxsize=1024)
def _compile_pattern(pattern: str) -> tuple[str, str]:
    fmt = pattern.replace("{", "{{").replace("}", "}}")
    for ch in "#@?":
        fmt = fmt.replace(ch, "{}")
    return fmt, "".join(ch for ch in pattern if ch in "#@?")


def clear_name_caches() -> None:
    """Empty the folding caches: they pay off while names repeat, not once a world is built."""
    slug.cache_clear()
    N.fold.cache_clear()


def fill_digits(pattern: str, number: int) -> str:
    """Fill '#' with digits, '@' with digits 2-9 and '?' with capital letters, taken from ``number``."""
    fmt, slots = _compile_pattern(pattern)
    digits = f"{number % 10**40:040d}"[::-1]  # least significant digits first
    out = []
    for i, kind in enumerate(slots):
        d = digits[i]
        out.append(d if kind == "#" else "23456789"[int(d) % 8] if kind == "@" else chr(65 + int(digits[i:i + 2]) % 26))
    return fmt.format(*out)


def fill_pattern(rng: random.Random, pattern: str) -> str:
    """A random phone number or postal code in ``pattern``'s format (see ``fill_digits``)."""
    return fill_digits(pattern, rng.getrandbits(100))


@lru_cache(maxsize=256)
def _cumulative(pairs: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    values, cum, total = [], [], 0.0
    for value, weight in pairs:
        total += weight
        values.append(value)
        cum.append(total)
    return values, cum


def weighted(rng: random.Random, pairs) -> str:
    values, cum = _cumulative(tuple(pairs))
    return rng.choices(values, cum_weights=cum)[0]


def _descriptor(rng: random.Random, style: str, keys: tuple[str, ...]) -> tuple[str, str] | None:
    options = [k for k in keys if style in N.DESCRIPTORS[k]]
    if not options:
        options = [k for k in ("group", "technologies", "trading", "services") if style in N.DESCRIPTORS[k]]
    if not options:
        return None
    value = N.DESCRIPTORS[rng.choice(options)][style]
    if isinstance(value, tuple):
        return value
    return value, N.fold(value)


def _latin_root(rng: random.Random, style: str) -> str:
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(N.COINED_HEADS) + rng.choice(N.COINED_TAILS)
    if kind < 0.7:
        return rng.choice(N.PLACE_WORDS) + " " + rng.choice(N.PLACE_NOUNS)
    surname = rng.choice(N.LAST_NAMES[style])
    joiner = {"en": " & Sons", "de": " & Söhne", "fr": " & Fils", "es": " y Asociados", "it": " & Figli",
              "nl": " & Zonen", "pt": " & Filhos"}[style]
    if rng.random() < 0.15:
        return surname + joiner
    if rng.random() < 0.15:
        return surname + " & " + rng.choice(N.LAST_NAMES[style])
    return surname


@dataclass(slots=True)
class _Name:
    legal: str
    core: str
    brand: str
    latin: str  # romanized core, used for the domain
    root_latin: str


def _compound_root(rng: random.Random, style: str) -> tuple[str, str]:
    """Two native roots joined ("東洋富士", "Toyo Fuji"): how a big org's name space stays unique."""
    first, second = rng.sample(N.NATIVE_ROOTS[style], 2)
    sep = "" if style in ("ja", "zh") else " "
    return first[0] + sep + second[0], f"{first[1]} {second[1]}"


def _make_name(rng: random.Random, style: str, country: N.Country, city: str, desc_keys, root=None,
               compound: bool = False) -> _Name:
    """Build one company name; ``root`` (native, latin) forces the brand root (lookalikes);
    ``compound`` joins two native roots once single roots are used up."""
    if style in N.LATIN_STYLES:
        root_native = root[0] if root else _latin_root(rng, style)
        desc = _descriptor(rng, style, desc_keys) if rng.random() < 0.7 else None
        core = root_native if desc is None else f"{root_native} {desc[0]}"
        suffix = weighted(rng, country.legal) if style != "fr" or country.code != "CA" else "Inc."
        legal = core + suffix if suffix.startswith(",") else f"{core} {suffix}"
        brand = root_native if desc is not None and rng.random() < 0.5 else core
        return _Name(legal, core, brand, N.fold(core), N.fold(root_native))
    root_pair = root if root else (_compound_root(rng, style) if compound else rng.choice(N.NATIVE_ROOTS[style]))
    desc = _descriptor(rng, style, desc_keys)
    sep = "" if style in ("ja", "zh") else " "
    if desc is None:
        core, core_latin = root_pair[0], root_pair[1]
    else:
        core, core_latin = root_pair[0] + sep + desc[0], f"{root_pair[1]} {desc[1]}"
    city_prefix = city.removesuffix("市") if style == "zh" else ""
    legal = weighted(rng, N.NATIVE_LEGAL[style]).format(c=core, city=city_prefix)
    return _Name(legal, core, core, core_latin, root_pair[1])


def generate_companies(rng: random.Random, nrng: np.random.Generator, n: int) -> list[Company]:
    """``n`` companies; draws only from the two generators given, so output depends on them alone."""
    countries = N.COUNTRIES
    cweights = np.array([c.weight for c in countries], dtype=float)
    country_idx = nrng.choice(len(countries), size=n, p=cweights / cweights.sum())
    iweights = np.array([i[2] for i in N.INDUSTRIES], dtype=float)
    industry_idx = nrng.choice(len(N.INDUSTRIES), size=n, p=iweights / iweights.sum())
    employees = np.clip(np.exp(nrng.normal(4.3, 1.7, size=n)), 2, 400_000).astype(np.int64)
    revenue_per_head = np.exp(nrng.normal(np.log(180_000), 0.5, size=n))
    revenue = np.round(employees * revenue_per_head, -3)
    # Latent fit: industry, a size sweet spot (200-5,000 people), country, plus what no field shows.
    ind_fit = np.array([i[3] for i in N.INDUSTRIES])[industry_idx]
    size_fit = np.maximum(0.6 - ((np.log10(employees) - 3.0) / 1.3) ** 2, -2.0)
    country_fit = np.array([0.4 if c.code in ("US", "GB", "DE", "CA", "AU", "NL", "CH") else
                            (-0.4 if c.code in ("RU", "CN", "SA") else 0.0) for c in countries])[country_idx]
    fit_logit = ind_fit + size_fit + country_fit + nrng.normal(0, 0.5, size=n)
    fit = 1.0 / (1.0 + np.exp(-fit_logit))
    u = nrng.random(n)
    steady_p = 0.30 + 0.25 * fit
    engagement = np.where(u < SURGING_SHARE, 2, np.where(u < SURGING_SHARE + steady_p, 1, 0))

    companies: list[Company] = []
    used_names: set[tuple[str, str]] = set()
    used_domains: set[str] = set()
    for i in range(n):
        country = countries[int(country_idx[i])]
        industry = N.INDUSTRIES[int(industry_idx[i])]
        style = weighted(rng, country.styles)
        city, state, postal_pattern = rng.choice(country.cities)
        parent: int | None = None
        name: _Name | None = None
        if i > 20 and rng.random() < SUBSIDIARY_SHARE:
            parent = rng.randrange(i)
            p = companies[parent]
            if p.style in N.LATIN_STYLES and style in N.LATIN_STYLES and rng.random() < 0.5:
                # Branded subsidiary: "Apex Systems Deutschland GmbH" under "Apex Systems Inc."
                core = f"{p.brand} {_LOCAL_COUNTRY_WORD[country.code]}" if p.country != country.code else \
                    f"{p.brand} {rng.choice(('Services', 'Solutions', 'Digital', 'Labs'))}"
                suffix = weighted(rng, country.legal)
                legal = core + suffix if suffix.startswith(",") else f"{core} {suffix}"
                name = _Name(legal, core, core, N.fold(core), slug(p.brand))
        if name is None and i > 20 and rng.random() < LOOKALIKE_SHARE:
            other = companies[rng.randrange(i)]
            root = (other.brand.split(" ")[0], N.fold(other.latin_name.split(" ")[0]))
            if style in N.LATIN_STYLES and other.style in N.LATIN_STYLES:
                name = _make_name(rng, style, country, city, industry[1], root=root)
        for attempt in range(30):
            if name is None:
                name = _make_name(rng, style, country, city, industry[1], compound=attempt >= 2)
            key = (slug(name.latin) + slug(name.legal), country.code)
            if key not in used_names:
                break
            name = None
        if name is None:  # the name space of this style is exhausted: fall back to an English name
            style = "en"
            while name is None or (slug(name.latin) + slug(name.legal), country.code) in used_names:
                name = _make_name(rng, style, country, city, industry[1])
        used_names.add((slug(name.latin) + slug(name.legal), country.code))
        domain = _domain(rng, name, country, used_domains)
        extra: list[str] = []
        if rng.random() < EXTRA_DOMAIN_SHARE:
            label = domain.split(".")[0]
            for candidate in (f"{label}.com", f"{label}.net", f"{label}.io", f"{label}-group.com"):
                if candidate not in used_domains:
                    extra.append(candidate)
                    used_domains.add(candidate)
                    break
        sfmt, streets = N.STREETS[style]
        street = sfmt.format(s=rng.choice(streets), n=rng.randrange(1, 400), m=rng.randrange(1, 20),
                             k=rng.randrange(1, 30))
        companies.append(Company(
            index=i, key=f"CO-{i:07d}", legal_name=name.legal, core_name=name.core, brand=name.brand,
            latin_name=name.latin,
            style=style, country=country.code, state=state, city=city, street=street,
            postal_code=fill_pattern(rng, postal_pattern), domain=domain, extra_domains=tuple(extra),
            industry=industry[0], employees=int(employees[i]), annual_revenue=float(revenue[i]),
            phone=fill_pattern(rng, country.phones[0]), parent=parent,
            engagement=PROFILES[int(engagement[i])], fit=round(float(fit[i]), 6),
        ))
    return companies


def _domain(rng: random.Random, name: _Name, country: N.Country, used: set[str]) -> str:
    """A free domain for the company: its brand under the country's TLD, varied as companies do."""
    words = [slug(w) for w in name.latin.split() if slug(w)]
    full = "".join(words)
    candidates = [full if rng.random() < 0.7 else "-".join(words), words[0] if words else full,
                  full + country.code.lower(), "-".join(words) + "-" + country.code.lower(), full + "group",
                  full + "hq", "get" + full]
    tld = country.tld if rng.random() < 0.8 or country.code == "US" else "com"
    for label in candidates:
        if len(label) < 3:
            continue
        domain = f"{label}.{tld}"
        if domain not in used:
            used.add(domain)
            return domain
    n = 2
    while f"{full}{n}.{tld}" in used:
        n += 1
    used.add(f"{full}{n}.{tld}")
    return f"{full}{n}.{tld}"
