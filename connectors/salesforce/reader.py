"""Reading one object's window into the store: REST pages in (SystemModstamp, Id) order, or a Bulk job.

Each REST page is stored in one transaction together with the cursor, so whatever stops the run
(budget, crash, Ctrl-C) the next run resumes exactly after what was committed. A Bulk results
page (up to ``pull.bulk_page_records``, 250,000 by default) is stored in transactions of
``STORE_BATCH`` records and its next locator saved after its last one: held in one transaction,
such a page kept SQLite's write lock for longer than the HubSpot pull beside it waits for it. A
run stopped inside a page reads that page again; the records already stored are unchanged, so
upserting them again writes nothing. How a window is read:

- a full window (first pull, ``--full``) goes straight to a Bulk query job;
- an incremental window starts with one REST query: its first page also carries
  ``totalSize``, the count a ``COUNT()`` query would cost a call to learn; above
  ``sync.bulk_threshold_rows`` the rest of the window goes to Bulk;
- when Bulk fails or is not permitted, REST reads the window (from the committed position).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from sqlalchemy import Connection, Engine

from config.connections import SyncOptions
from config.salesforce_pull import SalesforcePullOptions
from connectors.budget import BudgetExhausted
from connectors.cursor import Cursor, Window, save_cursor
from connectors.result import ObjectCounts, Progress, ProgressCallback, SyncResult
from connectors.salesforce.bulk import (
    BulkPage,
    BulkUnavailable,
    create_query_job,
    download_results_page,
    wait_for_job,
)
from connectors.salesforce.client import SalesforceClient, error_code
from connectors.salesforce.deletes import SeenIds, flag_deleted
from connectors.salesforce.mapping import RecordMapper
from connectors.salesforce.objects import ObjectSpec
from connectors.salesforce.soql import window_query
from connectors.salesforce.values import parse_datetime
from store.runs import touch_run
from store.upsert import upsert

log = logging.getLogger(__name__)
BULK_KEY = "bulk"
FULL_NEXT_KEY = "full_next"  # set when deletes may have been missed: the next run re-reads everything
STORE_BATCH = 10_000
HEARTBEAT_S = 30.0


@dataclass
class PullContext:
    """What every object's pull in one run shares."""

    engine: Engine
    client: SalesforceClient
    result: SyncResult
    now: datetime  # the run's start: no window reaches past it
    full: bool
    sync: SyncOptions
    options: SalesforcePullOptions
    run_id: int | None = None
    progress: ProgressCallback | None = None
    bulk_ok: bool = True  # turned off for the run once Bulk is refused to this user
    sleep: Callable[[float], Any] = time.sleep
    _last_heartbeat: float = field(default_factory=time.monotonic)

    @property
    def lookback(self) -> timedelta:
        return timedelta(minutes=self.sync.lookback_minutes)

    def emit(self, event: Progress) -> None:
        if self.progress is not None:
            self.progress(event)

    def heartbeat(self) -> None:
        if self.run_id is not None and time.monotonic() - self._last_heartbeat > HEARTBEAT_S:
            touch_run(self.engine, self.run_id)
            self._last_heartbeat = time.monotonic()

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.result.warnings.append(message)


class ObjectPull:
    """One object's pull in one run: resume what a previous run left, then read up to the run's start."""

    def __init__(self, ctx: PullContext, conn: Connection, spec: ObjectSpec, cursor: Cursor, mapper: RecordMapper,
                 fields: list[str], counts: ObjectCounts) -> None:
        self.ctx, self.conn, self.spec, self.cursor, self.mapper = ctx, conn, spec, cursor, mapper
        self.fields = fields
        self.counts = counts
        self.seen: SeenIds | None = None
        self.methods: list[str] = []

    # -- the object's run ----------------------------------------------------------------------
    def run(self) -> Window:
        """Read everything up to the run's start; returns the window read (for the hard-delete check)."""
        full = self.ctx.full
        if BULK_KEY in self.cursor.state:
            finished_full = self.cursor.in_progress_full
            if self._resume_bulk() and finished_full:
                full = False  # the full read this run was asked for is the one just finished
        if self.cursor.state.pop(FULL_NEXT_KEY, False):
            full = True
        resumed = self.cursor.in_progress
        window = self.cursor.window(self.ctx.now, self.ctx.lookback, full)
        self.cursor.begin(window)
        if window.full and not resumed:
            with self.conn.begin():
                if self._store_has_rows():
                    # A full read from the start can sweep away rows the org no longer has.
                    self.seen = SeenIds(self.conn)
        try:
            if window.full and not resumed and self.ctx.bulk_ok:
                try:
                    self._bulk(window, position=None, estimate=None)
                except BulkUnavailable as exc:
                    self._fallback(exc)
                    self._rest(window, bulk_allowed=False)
            else:
                self._rest(window, bulk_allowed=self.ctx.bulk_ok)
            if self.seen is not None:
                with self.conn.begin():
                    self.counts.deleted += self.seen.sweep(self.spec.table, self.spec.name, self.ctx.now)
        finally:
            if self.seen is not None:
                with self.conn.begin():
                    self.seen.close()
        self.counts.method = "+".join(dict.fromkeys(self.methods)) or "rest"
        return window

    def _store_has_rows(self) -> bool:
        table = self.spec.table
        return self.conn.execute(
            table.select().with_only_columns(table.c.id).where(table.c.crm == "salesforce",
                                                                table.c.object == self.spec.name).limit(1)
        ).first() is not None

    def _fallback(self, exc: BaseException) -> None:
        self.ctx.warn(f"Salesforce {self.spec.name}: Bulk API query not used ({exc}); reading through REST")
        self.cursor.state.pop(BULK_KEY, None)

    # -- REST ----------------------------------------------------------------------------------
    def _rest(self, window: Window, bulk_allowed: bool) -> None:
        self.methods.append("rest")
        name, page_size = self.spec.name, self.ctx.sync.page_size
        position = self._position()
        page = self.ctx.client.query(window_query(name, self.fields, window, position=position), page_size,
                                     f"query {name}")
        estimate = int(page.get("totalSize", 0))
        self.counts.estimate = estimate
        self.ctx.emit(Progress(name, "estimate", self.counts.read, estimate))
        first = True
        while True:
            records = page.get("records", [])
            if records:
                self._store_ordered(records, window)
            if page.get("done", True):
                break
            if first and bulk_allowed and estimate > self.ctx.sync.bulk_threshold_rows:
                try:
                    self._bulk(window, position=self._position(), estimate=estimate - len(records))
                    return
                except BulkUnavailable as exc:
                    self._fallback(exc)
            first = False
            page = self._more(window, page["nextRecordsUrl"])
        self._complete(window)

    def _position(self) -> tuple[datetime, str] | None:
        """The committed position inside the current window, if reading already moved it."""
        progress = self.cursor.state.get("window", {})
        if progress.get("moved") and self.cursor.ts is not None and self.cursor.id:
            return self.cursor.ts, self.cursor.id
        return None

    def _more(self, window: Window, next_url: str) -> dict[str, Any]:
        name = self.spec.name
        try:
            return self.ctx.client.query_more(next_url, self.ctx.sync.page_size, f"query {name} (next page)")
        except SalesforceMalformedRequest as exc:
            if error_code(exc) != "INVALID_QUERY_LOCATOR":
                raise
        # The server forgot the cursor (expired, evicted): ask again from the committed position.
        log.info("Salesforce %s: query locator expired; continuing from the committed position", name)
        return self.ctx.client.query(window_query(name, self.fields, window, position=self._position()),
                                     self.ctx.sync.page_size, f"query {name}")

    def _store_ordered(self, records: list[dict[str, Any]], window: Window) -> None:
        # A record changed after the query started is served with its new stamp (at or after the
        # run's start, out of order): it is stored, and the next run reads it again. The position
        # is the last record still stamped inside the window, which is in (stamp, id) order.
        position: tuple[datetime, str] | None = None
        for record in reversed(records):
            stamp = parse_datetime(record["SystemModstamp"])
            if stamp is not None and stamp < window.upper:
                position = (stamp, record["Id"])
                break
        with self.conn.begin():
            self._store([self.mapper.typed(r) for r in records])
            if position is not None:
                self.cursor.advance(*position, window)
            save_cursor(self.conn, self.cursor)
        self.ctx.emit(Progress(self.spec.name, "records", self.counts.read, self.counts.estimate))
        self.ctx.heartbeat()

    def _complete(self, window: Window) -> None:
        with self.conn.begin():
            self.cursor.complete(window)
            self.cursor.state.pop(BULK_KEY, None)
            save_cursor(self.conn, self.cursor)

    # -- storing -------------------------------------------------------------------------------
    def _store(self, batch: list[dict[str, Any]]) -> None:
        """Map and upsert typed records inside the caller's transaction."""
        ctx, spec = self.ctx, self.spec
        page = self.mapper.map_page(self.conn, batch)
        self.counts.read += len(batch)
        if page.rows:
            self.counts.upserted += upsert(self.conn, spec.table, page.rows, now=ctx.now)
        self.counts.deleted += page.deleted
        if page.skipped_ids:
            self.counts.skipped += len(page.skipped_ids)
            self.counts.deleted += flag_deleted(self.conn, spec.table, spec.name, page.skipped_ids, ctx.now)
        if self.seen is not None:
            self.seen.add(r["Id"] for r in batch)

    # -- Bulk API 2.0 --------------------------------------------------------------------------
    def _bulk(self, window: Window, position: tuple[datetime, str] | None, estimate: int | None) -> None:
        """Read the window (after ``position``) with a Bulk query job, then complete the window."""
        name, client = self.spec.name, self.ctx.client
        soql = window_query(name, self.fields, window, position=position, ordered=False)
        try:
            job_id = create_query_job(client, soql, f"bulk query {name}")
        except BudgetExhausted:
            raise
        except (SalesforceRefusedRequest, SalesforceResourceNotFound) as exc:
            self.ctx.bulk_ok = False  # not permitted for this user or org: do not ask for every object
            raise BulkUnavailable(f"Bulk API 2.0 refused: {exc.status} {error_code(exc)}") from exc
        except SalesforceError as exc:
            raise BulkUnavailable(f"the query job could not be created: {exc.status} {error_code(exc)}") from exc
        with self.conn.begin():
            self.cursor.state[BULK_KEY] = {"job": job_id, "locator": None}
            save_cursor(self.conn, self.cursor)
        self._read_bulk_job(window)

    def _resume_bulk(self) -> bool:
        """Finish the Bulk job a paused run left and close its window; False if it cannot be resumed."""
        state = self.cursor.state.get("window", {})
        upper = parse_datetime(state.get("upper"))
        if upper is None:
            self.cursor.state.pop(BULK_KEY, None)
            return False
        window = Window(None, None, upper, bool(state.get("full")))
        try:
            self._read_bulk_job(window)
        except BulkUnavailable as exc:
            log.info("Salesforce %s: the paused Bulk job cannot be resumed (%s); reading the window again",
                     self.spec.name, exc)
            self.cursor.state.pop(BULK_KEY, None)
            return False
        return True

    def _read_bulk_job(self, window: Window) -> None:
        self.methods.append("bulk")
        name, ctx, client = self.spec.name, self.ctx, self.ctx.client
        job = self.cursor.state[BULK_KEY]

        def download(locator: str | None) -> BulkPage:
            return client.call(f"bulk results {name}", lambda sf: download_results_page(
                sf, job["job"], locator, ctx.options.bulk_page_records))

        try:
            total = wait_for_job(client, job["job"], f"bulk job status {name}", ctx.options.bulk_poll_seconds,
                                 ctx.options.bulk_timeout_seconds, ctx.sleep)
            if self.counts.estimate is None:
                self.counts.estimate = total
            ctx.emit(Progress(name, "estimate", self.counts.read, self.counts.estimate))
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="abm-bulk") as prefetch:
                pending = prefetch.submit(download, job.get("locator"))
                while pending is not None:
                    page = pending.result()
                    # The next page is requested before this one is stored (a pause or an error in
                    # between only loses a download: the saved locator still points at that page).
                    pending = prefetch.submit(download, page.next_locator) if page.next_locator else None
                    try:
                        self._store_bulk_page(page)
                    except BaseException:
                        if pending is not None and not pending.cancel():
                            pending.add_done_callback(_close_downloaded)
                        raise
                    finally:
                        page.close()
        except BudgetExhausted:
            raise
        except SalesforceError as exc:
            raise BulkUnavailable(f"reading the job's results failed: {exc.status} {error_code(exc)}") from exc
        except requests.RequestException as exc:
            raise BulkUnavailable(f"reading the job's results failed: {type(exc).__name__}") from exc
        self._complete(window)

    def _store_bulk_page(self, page: BulkPage) -> None:
        """Store a page in transactions of ``STORE_BATCH`` records, then move the saved locator past it."""
        job = self.cursor.state[BULK_KEY]
        rows = page.rows()
        header = next(rows, None)
        if header is not None:
            typed = self.mapper.csv_reader(header)
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(typed(row))
                if len(batch) >= STORE_BATCH:
                    with self.conn.begin():
                        self._store(batch)
                    batch = []
                    self.ctx.emit(Progress(self.spec.name, "records", self.counts.read, self.counts.estimate))
                    self.ctx.heartbeat()
        with self.conn.begin():
            if header is not None:
                self._store(batch)
            job["locator"] = page.next_locator
            save_cursor(self.conn, self.cursor)
        self.ctx.emit(Progress(self.spec.name, "records", self.counts.read, self.counts.estimate))
        self.ctx.heartbeat()


def _close_downloaded(future: Future[BulkPage]) -> None:
    """A page downloaded for nothing (the run stopped meanwhile): drop its temporary file."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()
