"""Incremental cursors: where the last committed pull of one object stopped.

Every CRM orders changes by (modification stamp, record id): Salesforce by (SystemModstamp,
Id), HubSpot by (hs_lastmodifieddate, hs_object_id). Paging by the stamp alone loses or
loops on records that share one stamp, so the position is the pair. Three rules keep a pull
from ever missing a change:

- a window never reaches past the run's start (``upper`` is exclusive): a record changed
  while the run reads has a stamp at or after it and is read by the next run;
- each run re-reads a lookback before the saved position, for stamps that were assigned
  before the position but committed after it was read (long transactions, clock skew);
- the cursor is saved in the same transaction as the records it covers
  (:func:`save_cursor` takes the caller's connection), so a crash or a pause can leave the
  records ahead of the cursor, never the cursor ahead of the records.

Between runs, ``ts`` is a high-water mark: everything stamped before it has been stored.
While a window is being read, ``ts``/``id`` is the last record committed (ordered reading)
and ``state["window"]`` remembers the window, so a paused run resumes it. Unordered readers
(Salesforce Bulk API results) keep their own resume point in ``state`` and call
:meth:`Cursor.complete` when the whole window is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from store.schema import SyncCursor
from store.types import ensure_utc, utcnow
from store.upsert import upsert

WINDOW_KEY = "window"


class CursorError(ValueError):
    """A cursor move that would break the rules above (a bug in the connector, not bad data)."""


@dataclass(frozen=True)
class Window:
    """Records to read: stamp in ``[lower, upper)``, or after ``(lower, after_id)`` when ``after_id`` is set.

    ``lower`` None reads from the beginning (a full pull). ``after_id`` is set only when the
    window resumes exactly at a committed position (no lookback), to step past records that
    share the position's stamp without re-reading them.
    """

    lower: datetime | None
    after_id: str | None
    upper: datetime
    full: bool

    def contains(self, ts: datetime) -> bool:
        return (self.lower is None or ts >= self.lower) and ts < self.upper


def _iso(value: datetime | None) -> str | None:
    return ensure_utc(value).isoformat() if value is not None else None


def _from_iso(value: str | None) -> datetime | None:
    return ensure_utc(datetime.fromisoformat(value)) if value else None


@dataclass
class Cursor:
    """The saved position of one (crm, object), plus connector-specific ``state`` (JSON)."""

    crm: str
    object: str
    ts: datetime | None = None
    id: str | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def in_progress(self) -> bool:
        """A window was started and not finished (the previous run paused or failed in it)."""
        return WINDOW_KEY in self.state

    @property
    def in_progress_full(self) -> bool:
        return bool(self.state.get(WINDOW_KEY, {}).get("full"))

    def window(self, run_start: datetime, lookback: timedelta, full: bool = False) -> Window:
        """The next window to read in a run that started at ``run_start``.

        An unfinished window is continued (a full one stays full, so a pause never turns a
        full pull into a partial one); a cursor that never completed a window reads everything.
        """
        upper = ensure_utc(run_start)
        if full and not self.in_progress_full:
            return Window(None, None, upper, True)
        started_full = self.in_progress_full or (self.ts is None and not self.in_progress)
        if self.ts is None:
            return Window(None, None, upper, started_full)
        if self.ts >= upper:
            # Saved by a run whose clock was ahead of ours: read nothing rather than go backwards.
            return Window(upper, None, upper, started_full)
        if lookback > timedelta(0):
            return Window(self.ts - lookback, None, upper, started_full)
        return Window(self.ts, self.id, upper, started_full)

    def begin(self, window: Window) -> None:
        """Remember the window being read, so a paused run resumes it."""
        self.state[WINDOW_KEY] = {"upper": _iso(window.upper), "full": window.full}

    def advance(self, ts: datetime, record_id: str, window: Window) -> None:
        """Move to the last record of a committed page of an *ordered* read.

        Within a window the position only moves forward; the first move may go below the
        previous high-water mark, since the window starts a lookback before it.
        """
        ts = ensure_utc(ts)
        if ts >= window.upper:
            raise CursorError(
                f"{self.crm} {self.object}: record stamped {ts.isoformat()} is at or past the window's end "
                f"{window.upper.isoformat()}; the query must bound the stamp below the run's start"
            )
        progress = self.state.get(WINDOW_KEY)
        if progress is None:
            raise CursorError(f"{self.crm} {self.object}: advance() before begin()")
        if progress.get("moved") and self.ts is not None and (ts, record_id) < (self.ts, self.id or ""):
            raise CursorError(
                f"{self.crm} {self.object}: cursor would move backwards from ({self.ts.isoformat()}, {self.id}) "
                f"to ({ts.isoformat()}, {record_id}); pages must be ordered by (stamp, id)"
            )
        self.ts, self.id = ts, record_id
        progress["moved"] = True

    def complete(self, window: Window) -> None:
        """The whole window is stored: everything stamped before ``window.upper`` is in."""
        self.ts, self.id = window.upper, None
        self.state.pop(WINDOW_KEY, None)


def load_cursor(conn: Connection, crm: str, object_name: str) -> Cursor:
    row = conn.execute(
        select(SyncCursor.cursor_ts, SyncCursor.cursor_id, SyncCursor.state).where(
            SyncCursor.crm == crm, SyncCursor.object == object_name
        )
    ).first()
    if row is None:
        return Cursor(crm, object_name)
    return Cursor(crm, object_name, row.cursor_ts, row.cursor_id, dict(row.state or {}))


def save_cursor(conn: Connection, cursor: Cursor) -> None:
    """Write the cursor inside the caller's transaction (the one that stored its records)."""
    upsert(
        conn,
        SyncCursor.__table__,
        [
            {
                "crm": cursor.crm,
                "object": cursor.object,
                "cursor_ts": cursor.ts,
                "cursor_id": cursor.id,
                "state": cursor.state,
                "updated_at": utcnow(),
            }
        ],
        key=("crm", "object"),
    )


def state_datetime(cursor: Cursor, key: str) -> datetime | None:
    """A timestamp kept in ``cursor.state`` (JSON holds it as ISO text)."""
    return _from_iso(cursor.state.get(key))


def set_state_datetime(cursor: Cursor, key: str, value: datetime | None) -> None:
    cursor.state[key] = _iso(value)
