"""Pulling one CRM object (companies, contacts, deals, an engagement type) into the store.

- **Full** pulls page the list endpoint, 100 records a call with their associations inline:
  the fewest calls possible (records / 100), and no 10,000-result cap. The list's ``after``
  token is saved with every flush, so a paused full pull resumes where it stopped; the
  cursor then completes at the *first* run's start, since records changed after it may sit
  behind the token.
- **Incremental** pulls page the search endpoint by (modification stamp, id), see
  :mod:`connectors.hubspot.search_plan`, then read the associations of the changed records
  with v4 batch reads (search returns none). When the first page's ``total`` says that most of
  the object changed (the run after a full run re-reads every record its write-back stamped),
  listing every record is the faster read: 100 records a call at the portal's general rate
  against 200 a call at search's 5 a second plus the association reads (see
  :func:`list_is_faster`). The pull then reads the object as a full pull does, up to the same
  window's end.
- **Deletes**: the ``archived=true`` listing flags archived records; records that left it since
  the last run were restored (or purged) and are re-read by id.
- **Associations that change without a modification stamp** (HubSpot does not bump
  ``hs_lastmodifieddate`` for them): records read by search get their associations re-read,
  and every incremental run also re-reads some list pages with their associations, continuing
  where the previous run's sweep stopped. How many is paced by time, not by run: a share of
  the object's pages equal to the share of ``association_sweep_hours`` elapsed since the last
  sweep, so every record's associations are re-checked at least once a day (by default)
  whether the worker runs every five minutes or every six hours.
- **Merges**: the winner's ``hs_merged_object_ids`` flags the losers deleted with
  ``merged_into``, and rows that pointed at a loser are repointed (see :mod:`store_ops`).
"""

from __future__ import annotations

import contextvars
import functools
import math
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from connectors.budget import BudgetExhausted
from connectors.cursor import Cursor, Window, load_cursor, set_state_datetime, state_datetime
from connectors.hubspot import store_ops
from connectors.hubspot.activities import HubSpotActivities
from connectors.hubspot.associations import Links, from_v4_results
from connectors.hubspot.client import HubSpotApi, HubSpotApiError, next_token
from connectors.hubspot.objects import CRM, ObjectSpec
from connectors.hubspot.search_plan import SearchPosition, next_position, search_body
from connectors.hubspot.sink import PageSink
from connectors.hubspot.values import to_millis
from connectors.result import ObjectCounts, Progress, ProgressCallback
from store.types import utcnow

LIST_MAX = 100  # HubSpot's largest list page
FULL_UPPER = "full_upper"
LIST_AFTER = "list_after"
SEARCH = "search"
SWEEP_AFTER = "sweep_after"
SWEPT_AT = "swept_at"
ARCHIVED_IDS = "archived_ids"
PROPERTIES = "properties"


@dataclass(frozen=True)
class HubSpotSyncTuning:
    """Knobs with defaults that suit HubSpot's limits; tests and benchmarks shrink or grow them."""

    search_page_size: int = 200  # search's maximum
    association_batch_size: int = 1000  # inputs per v4 batch read (HubSpot's maximum)
    association_sweep_hours: float | None = 24.0  # re-check every record's associations this often (None: never)
    association_sweep_min_pages: int = 1  # list pages per object and incremental run, at least
    properties_ttl: timedelta = timedelta(hours=24)  # how long a portal's property list is trusted
    email_events_page_size: int = 1000  # the email events API's maximum
    web_events_page_size: int = 100  # the largest page any description of /events/v3/events states
    flush_rows: int = 2000
    concurrent_objects: int = 3  # record objects pulled side by side, the event feeds beside them (sync.lanes)
    list_when_faster: bool = True  # list an object most of which changed rather than search it (list_is_faster)


def sweep_pages(records: int, page_size: int, elapsed: timedelta, period: timedelta, minimum: int) -> int:
    """List pages to re-read in this run so that a whole sweep of ``records`` takes about ``period``."""
    total = math.ceil(records / page_size)
    share = min(max(elapsed / period, 0.0), 1.0)
    return min(max(math.ceil(total * share), minimum), max(total, minimum))


def list_is_faster(changed: int, records: int, *, search_page: int, list_page: int, association_batch: int,
                   association_types: int, requests_per_s: float, searches_per_s: float) -> bool:
    """Whether listing all ``records`` takes less of the portal's time than searching on for the ``changed``
    ones, whose count the first search page told (that page is spent either way).

    Search is paced by its own window and by the general one it also counts in, with the v4 association
    reads of the records found; list pages carry their associations. At HubSpot's 190 calls per 10 s
    and 5 searches a second, listing wins once more than about half of an object changed; at 100 calls
    per 10 s, never.
    """
    searches = max(math.ceil(changed / search_page) - 1, 0)
    reads = math.ceil(changed / association_batch) * association_types
    search_s = max(searches / searches_per_s, (searches + reads) / requests_per_s)
    list_s = math.ceil(max(records, changed) / list_page) / requests_per_s
    return list_s < search_s


class RecordPull:
    """One object's pull in one run; ``run()`` does the whole thing, committing as it goes."""

    def __init__(
        self,
        engine: Engine,
        api: HubSpotApi,
        spec: ObjectSpec,
        rules: HubSpotActivities,
        counts: ObjectCounts,
        *,
        run_start: datetime,
        lookback: timedelta,
        page_size: int,
        tuning: HubSpotSyncTuning,
        warn: Callable[[str], None],
        progress: ProgressCallback | None = None,
    ) -> None:
        self.engine = engine
        self.api = api
        self.spec = spec
        self.rules = rules
        self.counts = counts
        self.run_start = run_start
        self.lookback = lookback
        self.page_size = max(1, min(page_size, LIST_MAX))
        self.tuning = tuning
        self.warn = warn
        self.progress = progress
        self._records: int | None = None

    def _stored_records(self) -> int:
        """The object's records in the store (see :func:`store_ops.stored_count`), counted once a run: the
        choice between search and list and the sweep's pace both read it."""
        if self._records is None:
            with self.engine.connect() as conn:
                self._records = store_ops.stored_count(conn, self.spec.table, self.spec.name)
        return self._records

    def _report(self, event: str, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(Progress(self.spec.name, event, self.counts.read, total))  # type: ignore[arg-type]

    def run(self, full: bool) -> None:
        with self.engine.connect() as conn:
            cursor = load_cursor(conn, CRM, self.spec.name)
        self._report("start")
        properties = self._properties(cursor)
        window = cursor.window(self.run_start, self.lookback, full)
        sink = PageSink(self.engine, self.spec, self.rules, self.counts, cursor, self.run_start,
                        self.tuning.flush_rows, self.warn)
        try:
            if window.full:
                self.counts.method = "list"
                self._full(cursor, window, properties, sink)
            else:
                self.counts.method = "search"
                if self._incremental(cursor, window, properties, sink):
                    self._sweep(cursor, properties, sink)
                else:
                    self.counts.method = "list"  # most of the object changed: listed (every association read)
                    self._full(cursor, Window(None, None, window.upper, True), properties, sink)
            self._archived(cursor, properties, sink)
        except (HubSpotApiError, BudgetExhausted, ConnectionError):
            sink.flush()  # what was read is valid and matches the cursor state: keep it
            raise
        self.counts.done = True
        self._report("done")

    # -- properties --------------------------------------------------------------------------
    def _properties(self, cursor: Cursor) -> list[str]:
        """The properties to request: ours minus the ones this portal lacks (reported, not fatal)."""
        rule_fields = self.rules.fields_used(self.spec.name) if self.spec.table == "activities" else set()
        wanted = list(dict.fromkeys([*self.spec.all_properties, *sorted(rule_fields)]))
        cache = cursor.state.get(PROPERTIES) or {}
        checked = state_datetime(cursor, "properties_checked_at")
        if cache.get("requested") == wanted and checked and utcnow() - checked < self.tuning.properties_ttl:
            missing = list(cache.get("missing") or [])
        else:
            present = self.api.property_names(self.spec.name)
            missing = [p for p in wanted if p not in present and p != "hs_object_id"]
            cursor.state[PROPERTIES] = {"requested": wanted, "missing": missing}
            set_state_datetime(cursor, "properties_checked_at", utcnow())
        if self.spec.modified_property in missing:
            raise HubSpotApiError(
                400, f"the portal has no {self.spec.modified_property} property on {self.spec.name}, which "
                "incremental pulls order by", what=f"GET /crm/v3/properties/{self.spec.name}")
        if missing:
            self.warn(f"hubspot {self.spec.name}: the portal has no propert{'y' if len(missing) == 1 else 'ies'} "
                      f"{', '.join(missing)}; skipped (the columns they fill stay empty)")
        return [p for p in wanted if p not in missing]

    # -- full --------------------------------------------------------------------------------
    def _full(self, cursor: Cursor, window: Window, properties: Sequence[str], sink: PageSink) -> None:
        if not cursor.in_progress_full or cursor.state.get(FULL_UPPER) is None:
            cursor.begin(window)
            set_state_datetime(cursor, FULL_UPPER, window.upper)
            cursor.state.pop(LIST_AFTER, None)
        after = cursor.state.get(LIST_AFTER)
        while True:
            page = self.api.list_page(self.spec.name, after=after, properties=properties,
                                      associations=self.spec.associations, limit=self.page_size)
            after = next_token(page, after, f"GET /crm/v3/objects/{self.spec.name}")
            sink.add(page.get("results") or [])
            cursor.state[LIST_AFTER] = after
            self._report("records")
            if after is None:
                break
            sink.maybe_flush()
        upper = state_datetime(cursor, FULL_UPPER) or window.upper
        cursor.complete(Window(None, None, upper, True))
        for key in (FULL_UPPER, LIST_AFTER, SEARCH, SWEEP_AFTER):
            cursor.state.pop(key, None)
        set_state_datetime(cursor, SWEPT_AT, upper)  # every association was just read
        sink.flush()

    # -- incremental -------------------------------------------------------------------------
    def _incremental(self, cursor: Cursor, window: Window, properties: Sequence[str], sink: PageSink) -> bool:
        """Read the window by search; False, having stored nothing, when its first page says that listing
        the whole object is faster (see :func:`list_is_faster`)."""
        saved = cursor.state.get(SEARCH)
        resumed = cursor.in_progress and bool(saved)
        if resumed:
            position: SearchPosition | None = SearchPosition.from_json(saved)
        else:
            cursor.begin(window)
            assert window.lower is not None
            position = SearchPosition(to_millis(window.lower))
        upper_ms = to_millis(window.upper)
        limit = self.tuning.search_page_size
        first = True
        # Search pages are held until a full association batch is due: one v4 read of 1,000 ids
        # instead of five of 200. The cursor moves only once the held pages reach the sink.
        # Search is paced by its per-second limit, so the association read, mapping and store
        # writes of each batch happen in a second thread while the next searches go out; batches
        # reach the sink and the cursor in search order.
        def land(held: list[Mapping[str, Any]], position: SearchPosition | None) -> None:
            sink.add(held, self._links(list(dict.fromkeys(str(r["id"]) for r in held if r.get("id")))))
            cursor.state[SEARCH] = position.to_json() if position is not None else None
            self._report("records", self.counts.estimate)
            sink.maybe_flush()

        held: list[Mapping[str, Any]] = []
        with InOrderWorker(f"hubspot-{self.spec.name}") as behind:
            while position is not None:
                body = search_body(position, upper_ms, self.spec.modified_property, properties, limit)
                page = self.api.search(self.spec.name, body)
                results = page.get("results") or []
                if first and page.get("total") is not None:
                    self.counts.estimate = int(page["total"])
                    if not resumed and self.tuning.list_when_faster and self._list_is_faster(self.counts.estimate):
                        return False
                    self._report("estimate", self.counts.estimate)
                    first = False
                held.extend(results)
                position = next_position(position, results, limit, self.spec.modified_property)
                if position is None or len(held) + limit > self.tuning.association_batch_size:
                    behind.submit(land, held, position)
                    held = []
        cursor.complete(window)
        cursor.state.pop(SEARCH, None)
        sink.flush()
        return True

    def _list_is_faster(self, changed: int) -> bool:
        limiter = self.api.limiter
        faster = functools.partial(
            list_is_faster, search_page=self.tuning.search_page_size, list_page=self.page_size,
            association_batch=self.tuning.association_batch_size, association_types=len(self.spec.associations),
            requests_per_s=limiter.general.max_requests / limiter.general.window_s,
            searches_per_s=limiter.search.max_requests / limiter.search.window_s)
        # the store's count only when it can matter: a list as short as the changes alone must win first
        return faster(changed, changed) and faster(changed, self._stored_records())

    def _links(self, ids: Sequence[str]) -> dict[str, Links]:
        """Associations of records read by search, through v4 batch reads."""
        out: dict[str, Links] = {i: {} for i in ids}
        size = self.tuning.association_batch_size
        for to_type in self.spec.associations:
            for start in range(0, len(ids), size):
                results = self.api.associations(self.spec.name, to_type, ids[start:start + size])
                for from_id, links in from_v4_results(self.spec.name, to_type, results).items():
                    out.setdefault(from_id, {})[to_type] = links
        return out

    # -- association sweep -------------------------------------------------------------------
    def _sweep(self, cursor: Cursor, properties: Sequence[str], sink: PageSink) -> None:
        hours = self.tuning.association_sweep_hours
        if not self.spec.associations or hours is None:
            return
        last = state_datetime(cursor, SWEPT_AT) or self.run_start
        pages = sweep_pages(self._stored_records(), self.page_size, self.run_start - last, timedelta(hours=hours),
                            self.tuning.association_sweep_min_pages)
        after = cursor.state.get(SWEEP_AFTER)
        for _ in range(pages):
            page = self.api.list_page(self.spec.name, after=after, properties=properties,
                                      associations=self.spec.associations, limit=self.page_size)
            after = next_token(page, after, f"GET /crm/v3/objects/{self.spec.name}")
            sink.add(page.get("results") or [])
            cursor.state[SWEEP_AFTER] = after
            if after is None:
                break
            sink.maybe_flush()
        set_state_datetime(cursor, SWEPT_AT, self.run_start)
        sink.flush()

    # -- deletes and restores ----------------------------------------------------------------
    def _archived(self, cursor: Cursor, properties: Sequence[str], sink: PageSink) -> None:
        archived: list[str] = []
        after: str | None = None
        while True:
            page = self.api.list_page(self.spec.name, after=after, properties=["hs_object_id"], archived=True,
                                      limit=self.page_size)
            ids = [str(r["id"]) for r in page.get("results") or []]
            archived.extend(ids)
            if ids:
                with self.engine.begin() as conn:
                    self.counts.deleted += store_ops.flag_deleted(conn, self.spec.table, self.spec.name, ids)
            after = next_token(page, after, f"GET /crm/v3/objects/{self.spec.name}?archived=true")
            if after is None:
                break
        current = set(archived)
        left = sorted(set(cursor.state.get(ARCHIVED_IDS) or []) - current, key=_numeric)
        for start in range(0, len(left), self.page_size):
            chunk = left[start:start + self.page_size]
            restored = self.api.batch_read(self.spec.name, chunk, properties).get("results") or []
            if restored:
                sink.add(restored, self._links([str(r["id"]) for r in restored]))
        cursor.state[ARCHIVED_IDS] = sorted(current, key=_numeric)
        sink.flush()


class InOrderWorker:
    """Runs submitted steps one after another in a thread of its own, in the order submitted.

    ``submit`` blocks while ``depth`` steps wait (what is held in memory stays bounded) and raises
    the error of a step that failed (later steps are dropped: they would land pages out of order).
    Leaving the ``with`` block waits for the submitted steps, then raises a step's error, unless
    the block itself is raising: that error wins, after the steps before it have landed.
    """

    def __init__(self, name: str, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._loop,), name=name,
                                        daemon=True)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    item[0](*item[1])
                except BaseException as exc:  # raised in the submitting thread
                    self._error = exc

    def submit(self, step: Callable[..., None], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((step, args))

    def __enter__(self) -> InOrderWorker:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self._queue.put(None)
        self._thread.join()
        if exc is None and self._error is not None:
            raise self._error


def _numeric(value: str) -> tuple[int, str]:
    return (int(value) if value.isdigit() else 0, value)

