"""How people type what they know about their employer into a form or a CRM.

A lead's Company field is rarely the legal name: people drop or invent legal forms,
abbreviate, mistype, switch ``&`` and ``and``, shout in capitals, type the brand, the
romanized name of a company registered in another script, or nothing at all. Each function
takes its randomness as explicit uniforms in [0, 1) so one person's typing is the same in
every view (a Salesforce lead and the HubSpot contact synced from it carry the same string).
"""

from __future__ import annotations

import re

import numpy as np

from sandbox import seed_names as N
from sandbox.seed_companies import COUNTRY_BY_CODE, Company

# Codes for how a lead's company was typed, with their shares among leads.
COMPANY_TYPING: tuple[tuple[str, float], ...] = (
    ("legal", 0.30), ("core", 0.17), ("brand", 0.10), ("wrong_suffix", 0.05), ("abbreviated", 0.06),
    ("typo", 0.07), ("ampersand", 0.03), ("lower", 0.05), ("upper", 0.02), ("spacing", 0.03),
    ("romanized", 0.05), ("blank", 0.07),
)
TYPING_CODES = tuple(code for code, _ in COMPANY_TYPING)
TYPING_SHARES = np.array([share for _, share in COMPANY_TYPING])
BLANK = TYPING_CODES.index("blank")
# What a CRM holds when the company was left blank (Salesforce requires Lead.Company).
BLANK_COMPANY = ("[not provided]", "[not provided]", "Unknown", "N/A", "-", "none", "Self-employed", "NA")
_KEYBOARD_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo",
    "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et", "s": "ad",
    "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}
_ABBREVIATIONS = [(re.compile(rf"\b{re.escape(long)}\b"), short) for long, short in N.ABBREVIATIONS]


def _pick(options: tuple[str, ...] | list[str], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


def typo(text: str, u1: float, u2: float) -> str:
    """One slip of the finger: a swapped, dropped, doubled or neighbouring letter."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text
    i = letters[min(int(u1 * len(letters)), len(letters) - 1)]
    kind = int(u2 * 4)
    if kind == 0 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    near = _KEYBOARD_NEIGHBOURS.get(text[i].lower())
    if not near:
        return text[:i] + text[i + 1:]
    swap = near[min(int(u2 * 4 % 1 * len(near)), len(near) - 1)]
    return text[:i] + (swap.upper() if text[i].isupper() else swap) + text[i + 1:]


def abbreviate(text: str) -> str | None:
    """'Apex International Systems' -> 'Apex Intl Sys'; None when no word has a usual short form."""
    out = text
    for pattern, short in _ABBREVIATIONS:
        out = pattern.sub(short, out)
    return out if out != text else None


def swap_and(text: str) -> str | None:
    if " & " in text:
        return text.replace(" & ", " and ", 1)
    if " and " in text:
        return text.replace(" and ", " & ", 1)
    if " y " in text:
        return text.replace(" y ", " & ", 1)
    return None


def romanized_legal(company: Company, u: float) -> str:
    """How a person writes a non-Latin company in Latin letters: 'Huaxin Keji Co., Ltd.'."""
    suffixes = N.LATIN_LEGAL_OF_NATIVE.get(company.style)
    if not suffixes:
        return company.latin_name
    return f"{company.latin_name} {_pick(suffixes, u)}"


def typed_company(company: Company, code: int, u1: float, u2: float, u3: float) -> str:
    """The Company value a person typed, for typing ``code`` (an index of COMPANY_TYPING)."""
    kind = TYPING_CODES[code]
    native = company.style not in N.LATIN_STYLES
    if native and kind not in ("blank", "legal", "core"):
        # Outside their script people mostly type the romanized name, sometimes misspelt.
        base = romanized_legal(company, u1) if u3 < 0.7 else company.latin_name
        return typo(base, u1, u2) if kind == "typo" else base
    if kind == "legal":
        return company.legal_name
    if kind == "core":
        return company.core_name
    if kind == "brand":
        return company.brand
    if kind == "wrong_suffix":
        suffix = _pick(N.WRONG_SUFFIXES, u1)
        base = company.core_name if u2 < 0.6 else company.legal_name
        return f"{base} {suffix}" if not base.endswith(suffix) else base
    if kind == "abbreviated":
        return abbreviate(company.legal_name) or abbreviate(company.core_name) or company.brand
    if kind == "typo":
        return typo(company.legal_name if u3 < 0.5 else company.core_name, u1, u2)
    if kind == "ampersand":
        return swap_and(company.legal_name) or company.core_name
    if kind == "lower":
        return (company.legal_name if u1 < 0.5 else company.core_name).lower()
    if kind == "upper":
        return company.legal_name.upper()
    if kind == "spacing":
        base = company.legal_name
        return (" " + base + "  ") if u1 < 0.3 else base.replace(" ", "  ", 1).replace(".", "", 1)
    if kind == "romanized":  # accents dropped, as on a keyboard without them: "Muller GmbH"
        return N.fold(company.legal_name)
    return _pick(BLANK_COMPANY, u1)


def typed_website(domain: str, u: float) -> str:
    """A website as typed into a form or an account: with or without scheme, www, trailing slash."""
    forms = (f"https://www.{domain}", f"www.{domain}", domain, f"http://{domain}", f"https://{domain}/",
             f"https://www.{domain}/", f"http://www.{domain}")
    return _pick(forms, u)


def typed_country(code: str, u: float) -> str | None:
    """The country as people write it: its name mostly, else its code or a local alias."""
    country = COUNTRY_BY_CODE[code]
    if u < 0.6:
        return country.name
    if u < 0.78:
        return country.code
    if u < 0.95:
        return _pick(country.aliases, (u - 0.78) / 0.17)
    return None
