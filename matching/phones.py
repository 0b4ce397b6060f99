"""Phone numbers in E.164, compared cheaply first.

phonenumbers.parse costs tens of microseconds, too much to run on every one of a million leads,
so pairs are first compared on their last digits (which E.164 never changes) and only numbers
that could agree are parsed.
"""

from __future__ import annotations

import functools

import phonenumbers


@functools.lru_cache(maxsize=1 << 18)
def digits(value: str | None) -> str:
    """The digits of a phone number as typed, for the cheap comparison."""
    if not value or not isinstance(value, str):
        return ""
    return "".join(ch for ch in value[:64] if ch.isdigit())


@functools.lru_cache(maxsize=1 << 18)
def e164(value: str | None, region: str | None = None) -> str:
    """``(415) 555-0100`` with region US -> ``+14155550100``; '' when it cannot be a valid number."""
    if not value or not isinstance(value, str) or len(value) > 64:
        return ""
    try:
        parsed = phonenumbers.parse(value, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(parsed):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def compare(a: str, a_region: str, b: str, b_region: str, switchboard_digits: int) -> str:
    """'same', 'switchboard' (equal but for the last digits) or '' for two numbers as typed."""
    da, db = digits(a), digits(b)
    if len(da) < 7 or len(db) < 7 or da[-7:-switchboard_digits] != db[-7:-switchboard_digits]:
        return ""
    ea, eb = e164(a, a_region or None), e164(b, b_region or None)
    if not ea or not eb:
        return ""
    if ea == eb:
        return "same"
    if ea[:-switchboard_digits] == eb[:-switchboard_digits]:
        return "switchboard"
    return ""

