"""Keyset paging over HubSpot's CRM search, so neither the 10,000-result cap nor ties lose or loop.

Two traps break naive incremental pulls through ``POST /crm/v3/objects/{type}/search``:
paging with ``after`` past 10,000 results answers 400, and thousands of records can share one
modification timestamp (a bulk import, a workflow), so "everything after the last timestamp
seen" either skips the rest of a tie or reads the same page forever. Search also allows only
one sort, so (timestamp, id) cannot be sorted on together.

So every page is a fresh query, never an ``after`` offset:

- *time mode*: ``modified >= ts AND modified < upper`` sorted by ``modified``. Sorted ascending,
  a full page proves that every record modified before the page's last timestamp has been
  returned, so the next page starts at that last timestamp (re-reading the few records that
  share it: harmless, rows are upserted by id). No query reaches 10,000 results deep, and a
  record modified while we page moves past ``upper`` instead of shifting offsets under us.
- *tie mode*: when a whole page shares one timestamp, the next pages are
  ``modified == ts AND hs_object_id > last_id`` sorted by ``hs_object_id``, until the tie is
  exhausted; then time mode resumes at ``ts + 1 ms``.

``upper`` is the run's start, so a run always ends. The position after each page is what the
connector commits as its cursor, so a paused run resumes exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.values import millis

MAX_SEARCH_LIMIT = 200


@dataclass(frozen=True)
class SearchPosition:
    """Every record modified before ``ts_ms`` has been read (and, in tie mode, those at ``ts_ms``
    with an id up to ``tie_after_id``)."""

    ts_ms: int
    tie_after_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ts_ms": self.ts_ms, "tie_after_id": self.tie_after_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchPosition:
        tie = data.get("tie_after_id")
        return cls(int(data["ts_ms"]), int(tie) if tie is not None else None)


def search_body(
    position: SearchPosition,
    upper_ms: int,
    modified_property: str,
    properties: Sequence[str],
    limit: int = MAX_SEARCH_LIMIT,
) -> dict[str, Any]:
    """The JSON body of the search request for the page starting at ``position``."""
    if position.tie_after_id is None:
        filters = [
            {"propertyName": modified_property, "operator": "GTE", "value": str(position.ts_ms)},
            {"propertyName": modified_property, "operator": "LT", "value": str(upper_ms)},
        ]
        sort = modified_property
    else:
        filters = [
            {"propertyName": modified_property, "operator": "EQ", "value": str(position.ts_ms)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": str(position.tie_after_id)},
        ]
        sort = "hs_object_id"
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": min(limit, MAX_SEARCH_LIMIT),
    }


class SearchOrderError(RuntimeError):
    """The server broke the order the plan relies on; continuing could skip records."""


def next_position(
    position: SearchPosition,
    results: Sequence[Mapping[str, Any]],
    limit: int,
    modified_property: str,
) -> SearchPosition | None:
    """Where the next page starts, or None when the window is exhausted."""
    if position.tie_after_id is not None:
        if len(results) < limit:
            return SearchPosition(position.ts_ms + 1)  # the tie is exhausted
        last_id = max(int(r["id"]) for r in results)
        if last_id <= position.tie_after_id:
            raise SearchOrderError(f"tie page at {position.ts_ms} did not move past id {position.tie_after_id}")
        return SearchPosition(position.ts_ms, last_id)
    if len(results) < limit:
        return None
    stamps = [_stamp(r, modified_property) for r in results]
    first, last = min(stamps), max(stamps)
    if first < position.ts_ms:
        raise SearchOrderError(f"search returned a record modified before the window start {position.ts_ms}")
    if first == last:
        # A whole page of one timestamp: its records are not necessarily the lowest ids of the
        # tie (order within a tie is unspecified), so walk the tie from the start by id.
        return SearchPosition(last, 0)
    return SearchPosition(last)


def _stamp(record: Mapping[str, Any], modified_property: str) -> int:
    value = millis((record.get("properties") or {}).get(modified_property))
    if value is None:
        raise SearchOrderError(f"search result {record.get('id')} has no {modified_property}")
    return value
