"""Associations between HubSpot records, from either of the two shapes HubSpot sends them in.

List pages (``GET /crm/v3/objects/{type}?associations=companies``) carry them inline:
``{"companies": {"results": [{"id": "7", "type": "contact_to_company"}, ...]}}``, where the
primary association's type is ``contact_to_company`` and the plain one
``contact_to_company_unlabeled``. The v4 batch read answers
``{"from": {"id": "1"}, "to": [{"toObjectId": 7, "associationTypes": [{"typeId": 1, ...}]}]}``,
where the primary association is the HubSpot-defined type id 1 (contact to company) or 5 (deal to
company). Both become the same :class:`Link` lists here, so the mapping does not care which
endpoint a record came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# (from, to) -> HubSpot-defined association type id of the "primary" label.
PRIMARY_TYPE_IDS: dict[tuple[str, str], int] = {("contacts", "companies"): 1, ("deals", "companies"): 5}
SINGULAR = {
    "companies": "company",
    "contacts": "contact",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
}


@dataclass(frozen=True, slots=True)
class Link:
    to_id: str
    primary: bool = False


Links = dict[str, list[Link]]  # to object type -> links


def _sort_key(link: Link) -> tuple[bool, int, str]:
    return (not link.primary, int(link.to_id) if link.to_id.isdigit() else 0, link.to_id)


def _merged(links: Iterable[Link]) -> list[Link]:
    """One link per target (a pair can have several labels), primary first, then by id."""
    by_id: dict[str, Link] = {}
    for link in links:
        known = by_id.get(link.to_id)
        if known is None or (link.primary and not known.primary):
            by_id[link.to_id] = link
    return sorted(by_id.values(), key=_sort_key)


def from_inline(from_type: str, associations: Mapping[str, Any] | None) -> Links:
    """Links of one record from a v3 list page's ``associations`` member."""
    out: Links = {}
    if not associations:
        return out
    for to_type, block in associations.items():
        primary_name = (
            f"{SINGULAR.get(from_type, from_type)}_to_{SINGULAR.get(to_type, to_type)}"
            if (from_type, to_type) in PRIMARY_TYPE_IDS
            else None
        )
        results = (block or {}).get("results") or []
        out[to_type] = _merged(
            Link(str(item["id"]), primary=primary_name is not None and item.get("type") == primary_name)
            for item in results
        )
    return out


def from_v4_results(from_type: str, to_type: str, results: Iterable[Mapping[str, Any]]) -> dict[str, list[Link]]:
    """from id -> links, from the ``results`` of a v4 batch read."""
    primary_id = PRIMARY_TYPE_IDS.get((from_type, to_type))
    out: dict[str, list[Link]] = {}
    for result in results:
        from_id = str(result["from"]["id"])
        links = [
            Link(
                str(item["toObjectId"]),
                primary=primary_id is not None
                and any(t.get("typeId") == primary_id for t in item.get("associationTypes") or []),
            )
            for item in result.get("to") or []
        ]
        out[from_id] = _merged([*out.get(from_id, []), *links])
    return out


def first_id(links: Links, to_type: str) -> str | None:
    """The primary association to ``to_type`` if there is one, else the lowest id, else None."""
    found = links.get(to_type)
    return found[0].to_id if found else None


def ids_by_type(links: Links) -> dict[str, list[str]]:
    """The links as plain id lists, for the record's ``extra`` (primary first)."""
    return {to_type: [link.to_id for link in found] for to_type, found in sorted(links.items()) if found}
