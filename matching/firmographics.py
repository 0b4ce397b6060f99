"""Firmographic comparisons: what a person says about their company beside its name.

A lead's Industry and NumberOfEmployees (typed into a form, or filled by enrichment) against the
account's. Two companies of one name in one country are told apart this way when nothing else
does: 'Quantra' from a lead in retail is the retail Quantra, not the software one. Both are
person-level signals, like the phone: they are added to a query's shared candidates per person.
"""

from __future__ import annotations

import functools
import re

from config.matching import FirmographicWeights

Signal = tuple[str, float, str]
_NOT_ALNUM = re.compile(r"[\W_]+")


@functools.lru_cache(maxsize=4096)
def industry_key(value: str | None) -> str:
    """'Food & Beverage' and 'food and beverage' alike; '' for no value."""
    if not value or not isinstance(value, str):
        return ""
    return _NOT_ALNUM.sub(" ", value.casefold().replace("&", " and ")).strip()


def compare_industry(mine: str, theirs: str | None, weights: FirmographicWeights) -> Signal | None:
    """``mine`` is already an ``industry_key``; None when either side is unknown."""
    other = industry_key(theirs)
    if not mine or not other:
        return None
    if mine == other:
        return ("same", weights.industry_same, f"industry {mine}")
    return ("different", weights.industry_different, f"industry {mine} != {other}")


def compare_size(mine: int | None, theirs: int | None, weights: FirmographicWeights) -> Signal | None:
    """Employee counts: close (within ``size_close_ratio``), far apart (beyond ``size_far_ratio``) or unknown."""
    if not mine or not theirs or mine <= 0 or theirs <= 0:
        return None
    ratio = max(mine, theirs) / min(mine, theirs)
    if ratio <= weights.size_close_ratio:
        return ("same", weights.size_same, f"employees {mine} ~ {theirs}")
    if ratio > weights.size_far_ratio:
        return ("different", weights.size_different, f"employees {mine} != {theirs}")
    return None
