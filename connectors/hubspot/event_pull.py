"""Pulling marketing engagement: email events and web analytics events, one event type at a time.

Only the event types the activity rules keep are requested (opens and clicks, not the far more
numerous sends and deliveries), each over the window ``[cursor - lookback, run start)``.
Events are immutable and keyed by their id, so re-reading a lookback is harmless.

Resuming a paused window: email events come newest first, so everything newer than the
oldest event committed is done and the next run continues below it; web events come oldest
first, with an ``after`` token that is saved with each page. The window's upper bound is saved
too, and the cursor completes at it, so no event between two runs' starts is skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.cursor import Cursor, Window, load_cursor, save_cursor, set_state_datetime, state_datetime
from connectors.hubspot import store_ops
from connectors.hubspot.activities import EMAIL_EVENTS, WEB_EVENTS, HubSpotActivities
from connectors.hubspot.client import HubSpotApi, check_progress, next_token
from connectors.hubspot.events import map_email_event, map_web_event
from connectors.hubspot.objects import CRM
from connectors.hubspot.values import to_millis
from connectors.result import ObjectCounts, Progress, ProgressCallback

# Web events read before they are written, with the cursor past them, in one transaction. The API's pages hold 100
# events; written page by page, the L org's increment committed 70 times beside the Salesforce pull's large writes
# (each commit waiting for the write lock), and the feed's 7,000 events took 26 s, the whole HubSpot pull; written
# 2,000 at a time, 10 s. A run stopped between two writes reads the pages after the last one again (events are
# keyed by their id).
WEB_EVENTS_PER_WRITE = 2_000

DONE = "done"
ALL_TYPES = "*"
UPPER = "events_upper"
PROGRESS = "event_progress"


def _iso_ms(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _EventPull(ABC):
    """What both event pulls share: the window, its saved progress per event type, page writes."""

    object_name: str

    def __init__(
        self,
        engine: Engine,
        api: HubSpotApi,
        rules: HubSpotActivities,
        counts: ObjectCounts,
        *,
        run_start: datetime,
        lookback: timedelta,
        page_size: int,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.engine = engine
        self.api = api
        self.rules = rules
        self.counts = counts
        self.run_start = run_start
        self.lookback = lookback
        self.page_size = page_size
        self.progress = progress
        self.counts.method = "events"

    def _report(self, event: str) -> None:
        if self.progress is not None:
            self.progress(Progress(self.object_name, event, self.counts.read))  # type: ignore[arg-type]

    @abstractmethod
    def event_types(self) -> list[str | None]:
        """The event types to request, one pass each (those the rules keep); None: every type at once."""

    def run(self, full: bool) -> None:
        with self.engine.connect() as conn:
            cursor = load_cursor(conn, CRM, self.object_name)
        self._report("start")
        window = cursor.window(self.run_start, self.lookback, full)
        saved: dict[str, Any] | None = cursor.state.get(PROGRESS) if cursor.in_progress else None
        upper = state_datetime(cursor, UPPER) if saved is not None else None
        if saved is None or upper is None or (window.full and not cursor.in_progress_full):
            cursor.begin(window)
            saved = {}
            upper = window.upper
            set_state_datetime(cursor, UPPER, upper)
        cursor.state[PROGRESS] = saved
        bounded = Window(window.lower, None, upper, window.full)
        for event_type in self.event_types():
            key = event_type or ALL_TYPES
            if saved.get(key) != DONE:
                self.pull_type(cursor, bounded, event_type, saved)
                saved[key] = DONE
        cursor.complete(bounded)
        cursor.state.pop(PROGRESS, None)
        cursor.state.pop(UPPER, None)
        with self.engine.begin() as conn:
            save_cursor(conn, cursor)
        self.counts.done = True
        self._report("done")

    @abstractmethod
    def pull_type(self, cursor: Cursor, window: Window, event_type: str | None, saved: dict[str, Any]) -> None:
        """Read one event type over ``window``, recording in ``saved[event_type or "*"]`` where a paused
        run resumes."""

    def write(self, cursor: Cursor, events: list[Mapping[str, Any]],
              to_row: Callable[[Mapping[str, Any], Any], dict[str, Any] | None]) -> None:
        """Map and store one page, with the cursor state that says the page is done."""
        with self.engine.begin() as conn:
            rows: dict[str, dict[str, Any]] = {}
            for event in events:
                self.counts.read += 1
                row = to_row(event, conn)
                if row is None:
                    self.counts.skipped += 1
                else:
                    rows[row["crm_id"]] = row
            self.counts.upserted += store_ops.write_rows(conn, "activities", list(rows.values()))
            save_cursor(conn, cursor)
        self._report("records")


class EmailEventPull(_EventPull):
    """``/email/public/v1/events``: newest first, paged by an opaque ``offset``."""

    object_name = EMAIL_EVENTS

    def event_types(self) -> list[str | None]:
        wanted = self.rules.requested_values(EMAIL_EVENTS, "type")
        return [None] if wanted is None else list(wanted)

    def pull_type(self, cursor: Cursor, window: Window, event_type: str | None, saved: dict[str, Any]) -> None:
        key = event_type or ALL_TYPES
        end_ms = int(saved.get(key) or to_millis(window.upper) - 1)  # endTimestamp is inclusive
        offset: str | None = None
        oldest: int | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size, "endTimestamp": end_ms}
            if event_type:
                params["eventType"] = event_type
            if window.lower is not None:
                params["startTimestamp"] = to_millis(window.lower)
            if offset:
                params["offset"] = offset
            page = self.api.email_events(params)
            events = page.get("events") or []
            stamps = [int(e["created"]) for e in events if e.get("created") is not None]
            if stamps and (oldest is None or max(stamps) <= oldest):
                # Newest first, as documented: everything newer than this page's oldest event is done
                # (a resumed run re-reads the events sharing that millisecond).
                oldest = min(stamps)
                saved[key] = oldest
            elif stamps:
                saved.pop(key, None)  # not in the documented order: a resumed run starts over
            self.write(cursor, events, self._row_maker(events))
            if not page.get("hasMore"):
                break
            offset = check_progress(page.get("offset") or None, offset, "GET /email/public/v1/events")
            if not offset:
                break

    def _row_maker(self, events: list[Mapping[str, Any]]) -> Callable[[Mapping[str, Any], Any], dict[str, Any] | None]:
        known: dict[str, str] | None = None

        def to_row(event: Mapping[str, Any], conn: Any) -> dict[str, Any] | None:
            nonlocal known
            if known is None:
                known = store_ops.contacts_by_email(
                    conn, [(e.get("recipient") or "").strip().lower() for e in events])
            return map_email_event(event, self.rules, known.get)

        return to_row


class WebEventPull(_EventPull):
    """``/events/v3/events`` for contacts: oldest first, paged by ``after``."""

    object_name = WEB_EVENTS

    def event_types(self) -> list[str | None]:
        wanted = self.rules.requested_values(WEB_EVENTS, "eventType")
        return [None] if wanted is None else list(wanted)

    def pull_type(self, cursor: Cursor, window: Window, event_type: str | None, saved: dict[str, Any]) -> None:
        key = event_type or ALL_TYPES
        after: str | None = saved.get(key) or None
        pending: list[Mapping[str, Any]] = []  # pages read and not yet written (the cursor saved is past them)
        while True:
            params: dict[str, Any] = {"object_type": "contact", "limit": self.page_size, "sort": ["ASCENDING"],
                                      "occurred_before": _iso_ms(window.upper)}
            if event_type:
                params["event_type"] = event_type
            if window.lower is not None:
                # occurredAfter is exclusive: step back one millisecond to include the window's start
                params["occurred_after"] = _iso_ms(window.lower - timedelta(milliseconds=1))
            if after:
                params["after"] = after
            page = self.api.web_events(params)
            after = next_token(page, after, "GET /events/v3/events")
            saved[key] = after or DONE  # the type's last page: done once it is written
            pending += page.get("results") or []
            if len(pending) >= WEB_EVENTS_PER_WRITE or not after:
                self.write(cursor, pending, lambda event, _conn: map_web_event(event, self.rules))
                pending = []
            if not after:
                break
