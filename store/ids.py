"""Salesforce record ids.

Salesforce hands out ids in two forms: 15 characters (case-sensitive, as shown in the UI
and in some exports) and 18 characters (case-insensitive, as the API returns them). Mixing
the two would make one record look like two, so the store only ever holds the 18-character
form.
"""

from __future__ import annotations

import re

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")


class InvalidSalesforceId(ValueError):
    """Raised for a string that cannot be a Salesforce record id."""


def _checksum(id15: str) -> str:
    suffix = []
    for chunk_start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(id15[chunk_start : chunk_start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix.append(_ALPHABET[bits])
    return "".join(suffix)


def to_18(sf_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character Salesforce id.

    An 18-character id whose suffix does not match its first 15 characters is refused:
    it was mangled (often by a spreadsheet that changed letter case).
    """
    if not isinstance(sf_id, str) or not _ID_RE.match(sf_id):
        raise InvalidSalesforceId(f"not a Salesforce id: {sf_id!r} (expected 15 or 18 letters and digits)")
    id15 = sf_id[:15]
    expected = _checksum(id15)
    if len(sf_id) == 18 and sf_id[15:].upper() != expected:
        raise InvalidSalesforceId(
            f"Salesforce id {sf_id!r} has a wrong checksum (expected suffix {expected}); "
            "was its letter case changed?"
        )
    return id15 + expected


def normalize_crm_id(crm: str, crm_id: str | int | None) -> str | None:
    """Normalize an id as the store keys it: 18 characters for Salesforce, text for HubSpot."""
    if crm_id is None or crm_id == "":
        return None
    if crm == "salesforce":
        return to_18(str(crm_id))
    return str(crm_id)
