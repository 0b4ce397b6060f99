"""A short fingerprint of what the matcher reads of a person.

CRMs change people all day in ways that cannot move their match: a new job title, a lead
status, an owner. The store's ``changed_at`` moves for those too (scoring reads titles), so an
incremental run that rematched every changed person would rebuild the account index and
rematch thousands of people for title edits alone. Keeping this fingerprint beside each match
lets it rematch only the people whose matching inputs differ from the ones it last matched.

``MATCH_FIELDS`` must name every :class:`~store.records.PersonRecord` field the matcher reads;
a test changes each of the other fields and checks that no match moves.
"""

from __future__ import annotations

import hashlib

from store.records import PersonRecord

# What matching.engine reads of a person: the CRM and kind (which index, CRM ownership), names
# (vanity domains), what they typed about their company, where they are, and the CRM's own link.
MATCH_FIELDS: tuple[str, ...] = (
    "crm", "kind", "first_name", "last_name", "email", "company", "website", "phone", "country", "state", "city",
    "industry", "employees", "account_crm_id", "is_converted", "converted_account_crm_id",
)


def match_inputs_key(person: PersonRecord) -> str:
    """16 hex digits that change whenever a field the matcher reads changes (a blake2b digest)."""
    values = "\x1f".join("" if (v := getattr(person, f)) is None else str(v) for f in MATCH_FIELDS)
    return hashlib.blake2b(values.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
