"""Keyset pages over an events table: filters, a time window, (timestamp, id) order, a resume position.

A page token carries the (timestamp, id) of the page's last event. The next page is asked for as
the row-value comparison ``(stamp, id) > (?, ?)`` (``<`` newest first), which SQLite answers by
seeking in an index that leads with the equality filters and ends with ``stamp, id``: the page
costs the same at any depth. Spelled ``stamp > ? OR (stamp = ? AND id > ?)``, or served by an
index that does not lead with the filters, each page rescans and sorts every event before it.

The window's bound on the side the pages start from and the resume position are merged into the
one that is tighter: given both, SQLite seeks from the scalar bound and filters its way to the
position, which is again a scan that grows with depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.storage import Storage, quote_ident


@dataclass
class KeysetPage:
    table: str
    stamp_column: str
    descending: bool
    where: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    lowest: int | None = None  # inclusive window bounds on the timestamp (integer milliseconds)
    highest: int | None = None
    position: tuple[int, str] | None = None  # the last event of the previous page

    def filter(self, clause: str, *values: Any) -> None:
        """Add an SQL condition on the table's own columns (placeholders for ``values``)."""
        self.where.append(clause)
        self.params.extend(values)

    def since(self, stamp: int) -> None:
        """Keep events at ``stamp`` or later."""
        self.lowest = stamp if self.lowest is None else max(self.lowest, stamp)

    def until(self, stamp: int) -> None:
        """Keep events at ``stamp`` or earlier."""
        self.highest = stamp if self.highest is None else min(self.highest, stamp)

    def resume_after(self, stamp: int, event_id: str) -> None:
        """Start strictly past the event at (``stamp``, ``event_id``) in the page order."""
        self.position = (stamp, event_id)

    def _bounds(self) -> tuple[list[str], list[Any]]:
        stamp = quote_ident(self.stamp_column)
        start, end = (self.highest, self.lowest) if self.descending else (self.lowest, self.highest)
        start_op, end_op = ("<=", ">=") if self.descending else (">=", "<=")
        clauses: list[str] = []
        params: list[Any] = []
        # The position is past the window's start (the usual case: it came from this window's pages):
        # it alone bounds that side. Otherwise every event in the window is past it.
        if self.position is not None and (start is None or (self.position[0] <= start if self.descending
                                                            else self.position[0] >= start)):
            clauses.append(f"({stamp}, id) {'<' if self.descending else '>'} (?, ?)")
            params.extend(self.position)
        elif start is not None:
            clauses.append(f"{stamp} {start_op} ?")
            params.append(start)
        if end is not None:
            clauses.append(f"{stamp} {end_op} ?")
            params.append(end)
        return clauses, params

    def sql(self, limit: int) -> tuple[str, list[Any]]:
        """The statement for one page of ``limit`` events, plus one to tell whether more follow."""
        order = "DESC" if self.descending else "ASC"
        stamp = quote_ident(self.stamp_column)
        bounds, bound_params = self._bounds()
        where = " AND ".join(self.where + bounds) or "1 = 1"
        return (f"SELECT {stamp}, id, body FROM {quote_ident(self.table)} WHERE {where} "
                f"ORDER BY {stamp} {order}, id {order} LIMIT ?", [*self.params, *bound_params, limit + 1])

    def fetch(self, storage: Storage, limit: int) -> tuple[list[tuple[Any, ...]], bool]:
        """Up to ``limit`` rows of (stamp, id, body JSON), and whether more follow them."""
        sql, params = self.sql(limit)
        rows = storage.fetchall(sql, params)
        return rows[:limit], len(rows) > limit
