"""Buffered writing of mapped pages, committed together with the cursor that covers them.

Committing every 100-record page costs a transaction (and on SQLite an fsync of the WAL) per
page; buffering a few thousand rows keeps the store's share of a full sync small. The rule
from :mod:`connectors.cursor` still holds: the cursor saved in a flush describes exactly the
pages whose rows that flush writes, so a crash leaves the records ahead of the cursor, never
behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from connectors.cursor import Cursor, save_cursor
from connectors.hubspot import store_ops
from connectors.hubspot import values as v
from connectors.hubspot.activities import HubSpotActivities
from connectors.hubspot.associations import Links, from_inline
from connectors.hubspot.objects import ObjectSpec, map_record
from connectors.result import ObjectCounts


class PageSink:
    """Maps raw records of one object and writes them in batches with the cursor."""

    def __init__(
        self,
        engine: Engine,
        spec: ObjectSpec,
        rules: HubSpotActivities,
        counts: ObjectCounts,
        cursor: Cursor,
        now: datetime,
        flush_rows: int = 2000,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.spec = spec
        self.rules = rules
        self.now = now
        self.counts = counts
        self.cursor = cursor
        self.flush_rows = flush_rows
        self.warn = warn
        self._rows: dict[str, dict[str, Any]] = {}
        self._not_touches: set[str] = set()
        self._merges: dict[str, str] = {}  # loser -> winner, flagged again by every flush of this pull
        self._repointed: set[str] = set()  # losers whose references this pull has moved to their winner
        self._pending_merges = False

    def add(self, records: Sequence[Mapping[str, Any]], links: Mapping[str, Links] | None = None) -> None:
        """Map one page. ``links`` by record id; None means the records carry them inline."""
        for record in records:
            if not record.get("id"):
                self.counts.skipped += 1
                if self.warn is not None:
                    self.warn(f"hubspot {self.spec.name}: skipped a record without an id: {str(record)[:200]}")
                continue
            crm_id = str(record["id"])
            found = links.get(crm_id, {}) if links is not None else from_inline(self.spec.name,
                                                                                  record.get("associations"))
            row = map_record(self.spec, record, found, self.rules, self.now)
            self.counts.read += 1
            if row is None:
                self._not_touches.add(crm_id)
                self._rows.pop(crm_id, None)
                continue
            self._not_touches.discard(crm_id)
            self._rows[crm_id] = row
            if crm_id in self._merges:
                self._pending_merges = True
            if self.spec.merges:
                for loser in v.id_list((record.get("properties") or {}).get("hs_merged_object_ids")):
                    if loser != crm_id:
                        self._merges[loser] = crm_id
                        self._pending_merges = True

    @property
    def full(self) -> bool:
        return len(self._rows) + len(self._not_touches) >= self.flush_rows

    def flush(self) -> None:
        """Write what is buffered and save the cursor, in one transaction."""
        with self.engine.begin() as conn:
            if self._rows:
                self.counts.upserted += store_ops.write_rows(conn, self.spec.table, list(self._rows.values()))
            if self._not_touches:
                self.counts.skipped += len(self._not_touches)
                store_ops.flag_deleted(conn, self.spec.table, self.spec.name, sorted(self._not_touches))
            if self._pending_merges:
                # A loser re-read as a live row in this pull (its winner seen earlier) is flagged again.
                self.counts.deleted += store_ops.apply_merges(conn, self.spec.table, self.spec.name, self._merges,
                                                              repointed=self._repointed)
            save_cursor(conn, self.cursor)
        if self._pending_merges:
            self._repointed.update(self._merges)  # committed
        self._rows.clear()
        self._not_touches.clear()
        self._pending_merges = False

    def maybe_flush(self) -> None:
        if self.full:
            self.flush()
