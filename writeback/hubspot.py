"""Writing changed properties to HubSpot: batch update, 100 records per call, under the rate limiter, or
one CRM import per object when many records changed (see :mod:`writeback.hubspot_import`).

Every call first takes a slot of the connector's client-side rate limiter (the portal's rolling
10-second window), so a writeback shares the window with the pull instead of meeting 429s. A
batch answers 200, or 207 with per-record errors; each input carries its record id as
``objectWriteTraceId`` so an error can be tied to its record. A batch refused as a whole (400:
HubSpot validates every input before writing any) is split to isolate the bad records. Only
existing records are updated, by their HubSpot id.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import Any

import urllib3
from hubspot import HubSpot
from hubspot.crm.imports.exceptions import ApiException as ImportApiException
from hubspot.crm.objects.exceptions import ApiException

from connectors.budget import ApiBudget
from connectors.hubspot.auth import HubSpotAuthError, TokenSource
from connectors.hubspot.ratelimit import HubSpotRateLimiter
from connectors.retry import RetrySettings, parse_retry_after
from writeback.catalogue import Catalogue
from writeback.diff import RecordChange, field_names
from writeback.hubspot_import import (
    ERRORS_PAGE,
    FINISHED,
    MAX_ROWS,
    OBJECT_TYPE_IDS,
    RowFailure,
    SplitRecords,
    import_file,
    import_outcomes,
    import_request,
    request_text,
    row_failure,
    split_clears,
    unwritten,
)
from writeback.polling import poll_waits
from writeback.retry import Kind, RetryPolicy, WritebackStopped, is_certificate_problem
from writeback.state import OnBatch, RecordOutcome

CRM = "hubspot"
BATCH_SIZE = 100
TIMEOUT_S = (10.0, 60.0)
# An import's file goes up in one request: allow for a large one on a slow link.
UPLOAD_TIMEOUT_S = (10.0, 600.0)
# Waits between an import's status checks (see writeback.polling): at most 2 s apart for a minute, then up to 10 s.
IMPORT_POLL_FIRST_S, IMPORT_POLL_LONGEST_S = 0.5, 10.0

logger = logging.getLogger(__name__)


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a hubspot-api-client error (each API module has its own ApiException class)."""
    status = getattr(exc, "status", None)
    return status if type(exc).__module__.startswith("hubspot.") and isinstance(status, int) else None


def _body(exc: BaseException) -> dict[str, Any]:
    try:
        body = json.loads(getattr(exc, "body", None) or b"{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def is_daily_limit(exc: BaseException) -> bool:
    return api_status(exc) == 429 and str(_body(exc).get("policyName", "")).upper() == "DAILY"


def daily_limit_spent() -> WritebackStopped:
    return WritebackStopped(CRM, "the portal's daily API limit is spent; the rest is written after it resets")


class _TokenRenewed(Exception):
    """HubSpot refused an OAuth access token that has now been renewed: send again at once."""


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, _TokenRenewed):
        return "transient"
    status = api_status(exc)
    if status is not None:
        if status == 429:
            return "fatal" if is_daily_limit(exc) else "rate_limit"
        if status == 0:  # the client's wrapper of a TLS failure
            return "fatal" if is_certificate_problem(exc) else "transient"
        return "transient" if status >= 500 else "fatal"
    if isinstance(exc, urllib3.exceptions.SSLError) and is_certificate_problem(exc):
        return "fatal"
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return "transient"
    return "fatal"


def retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, _TokenRenewed):
        return 0.0
    headers = getattr(exc, "headers", None) or {}
    seconds = parse_retry_after(headers.get("Retry-After"))
    if seconds is None and api_status(exc) == 429:
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        seconds = int(interval) / 1000 if interval and interval.isdigit() else None
    return seconds


def error_text(exc: ApiException) -> tuple[str, str]:
    body = _body(exc)
    return str(body.get("category") or exc.status), str(body.get("message") or exc.reason or "")[:1000]


class HubSpotWriter:
    """Updates catalogue properties of HubSpot records through a ``hubspot.HubSpot`` client."""

    crm = CRM

    def __init__(
        self,
        client: HubSpot,
        catalogue: Catalogue,
        *,
        limiter: HubSpotRateLimiter | None = None,
        retry: RetrySettings = RetrySettings(),
        max_rate_limit_wait_s: float = 900.0,
        budget: ApiBudget | None = None,
        tokens: TokenSource | None = None,
        concurrency: int = 4,
        import_threshold: int = 0,
        import_timeout_s: float = 3600.0,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        """``import_threshold``: an object with more changes than this is sent as a CRM import (0: never)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if import_threshold < 0:
            raise ValueError(f"import_threshold must be >= 0, got {import_threshold}")
        self.client = client
        # One batch API (one urllib3 pool) for the writer's life: each ``client.crm.objects.batch_api``
        # builds a new Configuration, ApiClient and connection pool, so every call paid a TLS handshake
        # (458 connections for 458 calls in an L incremental run) and the SDK's set-up on both sides.
        self._batch_api = client.crm.objects.batch_api
        self.catalogue = catalogue
        self.tokens = tokens
        self.limiter = limiter or HubSpotRateLimiter(100, 4.0)
        self.concurrency = concurrency
        self.policy = RetryPolicy(CRM, classify, retry_after, settings=retry,
                                  max_rate_limit_wait_s=max_rate_limit_wait_s, budget=budget, sleep=sleep)
        self._budget = budget
        self._lock = threading.Lock()
        self.api_calls = 0
        self.import_threshold = import_threshold
        self.import_timeout_s = import_timeout_s
        self._imports = client.crm.imports.core_api
        self._import_errors = client.crm.imports.public_imports_api
        self._imports_refused: str | None = None
        self._sleep = sleep

    # HubSpot locks no record of one object while another's are written: companies and contacts go side by side.
    independent_objects = frozenset(OBJECT_TYPE_IDS)

    @property
    def streams(self) -> bool:
        """Whether each part of an object is handed over as soon as it is planned (see
        writeback.run._write_streamed): when every change goes in batches of 100, however many there are.
        A writer that may import sees each object whole, as the object's size decides."""
        return not self.import_threshold or self._imports_refused is not None

    def mode(self, count: int) -> str:
        if not count:
            return "none"
        imports = self.import_threshold and self._imports_refused is None
        return "import" if imports and count > self.import_threshold else "batch"

    def write(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None:
        """Write ``changes`` to ``obj`` records; ``on_batch`` gets each batch's outcomes as they come."""
        self.catalogue.guard(self.crm, obj, field_names(changes))
        missing_id = [c for c in changes if not c.crm_id]
        if missing_id:
            raise ValueError(f"{len(missing_id)} {obj} change(s) without a record id: writeback only updates")
        if self.mode(len(changes)) == "import" and obj in OBJECT_TYPE_IDS:
            # the values a change clears go by batch (an import's blank cell leaves the property as it is), as
            # does what HubSpot would not import, while HubSpot works through the imports
            settable, clearing, split = split_clears(changes)
            started, refused = self._start_imports(obj, settable)
            refused_ids = {c.crm_id for c in refused}
            refused = split.whole(refused)
            clearing = [c for c in clearing if c.crm_id not in refused_ids]
            self._write_batches(obj, refused + clearing, split.held(on_batch))
            changes = self._finish_imports(obj, started, on_batch, split)
        self._write_batches(obj, changes, on_batch)

    def _write_batches(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None:
        batches = [changes[start : start + BATCH_SIZE] for start in range(0, len(changes), BATCH_SIZE)]
        if self.concurrency == 1 or len(batches) <= 1:
            for batch in batches:
                on_batch(batch, self._batch(obj, batch))
            return
        self._write_concurrently(obj, batches, on_batch)

    def _write_concurrently(self, obj: str, batches: list[Sequence[RecordChange]], on_batch: OnBatch) -> None:
        """Keep ``concurrency`` batches in flight: the portal's window, not one request's latency, sets the pace.

        Outcomes are recorded here, on the calling thread, as each batch completes; the next batch is
        sent before a completed one is recorded, so the window stays busy while the store commits
        (a commit can wait seconds for the write lock while the Salesforce writer records a Bulk
        job). When one batch stops the run, no new batch starts; those in flight finish and are
        recorded first.
        """
        queue = iter(batches)
        stopped: BaseException | None = None
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="abm-hubspot-write") as pool:
            in_flight: dict[Future[list[RecordOutcome]], Sequence[RecordChange]] = {}

            def start_next() -> None:
                batch = next(queue, None)
                if batch is not None:
                    in_flight[pool.submit(self._batch, obj, batch)] = batch

            for _ in range(self.concurrency):
                start_next()
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    batch = in_flight.pop(future)
                    try:
                        outcomes = future.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, once the others are recorded
                        stopped = stopped or exc
                        continue
                    if stopped is None:
                        start_next()
                    on_batch(batch, outcomes)
        if stopped is not None:
            raise stopped

    def _send(self, obj: str, batch: Sequence[RecordChange]) -> tuple[int, dict[str, Any]]:
        # A plain JSON body: the client's model objects cost ten times more CPU to build and serialize.
        body = {"inputs": [{"id": c.crm_id, "objectWriteTraceId": c.crm_id,
                            "properties": {k: "" if v is None else v for k, v in c.items()}} for c in batch]}
        return self._request(lambda extra: self._batch_api.update(
            obj, body, _preload_content=False, _request_timeout=TIMEOUT_S, **extra))

    def _request(self, call: Callable[[dict[str, Any]], Any]) -> tuple[int, dict[str, Any]]:
        """One API call (``call`` gets the client's extra arguments: the OAuth token's header) under the rate
        limiter, counted, its answer's daily allowance observed: (status, JSON body)."""
        token = self.tokens.token() if self.tokens is not None else None
        extra: dict[str, Any] = {"_headers": {"Authorization": f"Bearer {token}"}} if token is not None else {}
        with self.limiter.slot():
            with self._lock:
                self.api_calls += 1
            try:
                response = call(extra)
            except Exception as exc:
                if api_status(exc) == 401 and self.tokens is not None and token is not None:
                    self.tokens.rejected(token)  # renews an OAuth token, or raises HubSpotAuthError
                    raise _TokenRenewed() from exc
                raise
        try:
            daily, remaining = (response.headers.get("X-HubSpot-RateLimit-Daily"),
                                response.headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
            if self._budget is not None and daily and remaining and daily.isdigit() and remaining.isdigit():
                with self._lock:
                    self._budget.observe(int(daily) - int(remaining), int(daily))
            return response.status, json.loads(response.data or b"{}")
        finally:
            response.release_conn()

    def _batch(self, obj: str, batch: Sequence[RecordChange]) -> list[RecordOutcome]:
        try:
            _, body = self.policy.call(lambda: self._send(obj, batch), f"updating {len(batch)} {obj}")
        except ApiException as exc:
            if is_daily_limit(exc):
                raise daily_limit_spent() from exc
            code, message = error_text(exc)
            if "PROPERTY_DOESNT_EXIST" in message or "does not exist" in message:
                raise WritebackStopped(self.crm, f"{obj}: {message} (run `abm init` to create the properties)",
                                       whole_crm=False) from exc
            if exc.status in (400, 422) and len(batch) > 1:
                half = len(batch) // 2
                return self._batch(obj, batch[:half]) + self._batch(obj, batch[half:])
            if exc.status in (400, 404, 409, 422):
                return [RecordOutcome(c.crm_id, False, code, message) for c in batch]
            raise WritebackStopped(self.crm, f"HubSpot answered {exc.status} ({code}: {message})") from exc
        except HubSpotAuthError as exc:
            raise WritebackStopped(self.crm, str(exc)) from exc
        return batch_outcomes(batch, body)

    # -- imports -------------------------------------------------------------------------------
    def _start_imports(self, obj: str, changes: Sequence[RecordChange]
                       ) -> tuple[list[tuple[Sequence[RecordChange], str]], list[RecordChange]]:
        """Send ``changes`` as imports (files of at most MAX_ROWS rows): each part with its import's id, and
        the changes HubSpot refused to import (to send by batch)."""
        fields = self.catalogue.fields(self.crm, obj)
        started: list[tuple[Sequence[RecordChange], str]] = []
        for start in range(0, len(changes), MAX_ROWS):
            part = changes[start : start + MAX_ROWS]
            import_id = self._start_import(obj, part, fields)
            if import_id is None:
                return started, list(changes[start:])
            started.append((part, import_id))
        return started, []

    def _finish_imports(self, obj: str, started: Sequence[tuple[Sequence[RecordChange], str]],
                        on_batch: OnBatch, split: SplitRecords) -> list[RecordChange]:
        """Wait for each import and record its outcomes with ``on_batch`` (a split record's joined with its
        clears'); the changes to send by batch instead, whole: those of an import that failed as a whole,
        which wrote nothing."""
        fallback: list[RecordChange] = []
        for part, import_id in started:
            state = self._await_import(import_id)
            if state == "DONE":
                on_batch(*split.joined(part, import_outcomes(part, self._import_failures(import_id))))
            elif state == "FAILED":
                logger.warning("HubSpot import %s of %d %s failed as a whole; sending them by batch",
                               import_id, len(part), obj)
                fallback += split.whole(part)
            else:
                on_batch(*split.joined(part, unwritten(
                    part, f"IMPORT_{state}", f"HubSpot import {import_id} was {state.lower()} before it finished; "
                    "the records are sent again by the next run")))
        return fallback

    def _start_import(self, obj: str, changes: Sequence[RecordChange], fields: Sequence[Any]) -> str | None:
        """The id of the import HubSpot accepted, or None when it refused it (the caller sends batches)."""
        columns, data = import_file(changes, fields)
        name = f"abm-sync {obj} scores {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC"
        text = request_text(import_request(name, obj, f"{obj}.csv", columns))
        with tempfile.TemporaryDirectory(prefix="abm-hubspot-import-") as folder:
            path = Path(folder) / f"{obj}.csv"  # the client uploads files by path, under their own name
            path.write_bytes(data)
            try:
                _, body = self.policy.call(lambda: self._request(lambda extra: self._imports.create_with_http_info(
                    files=str(path), import_request=text, _preload_content=False,
                    _request_timeout=UPLOAD_TIMEOUT_S, **extra)), f"importing {len(changes)} {obj}")
            except ImportApiException as exc:
                return self._import_refused(obj, exc)
            except HubSpotAuthError as exc:
                raise WritebackStopped(self.crm, str(exc)) from exc
        import_id = body.get("id")
        if not import_id:
            raise WritebackStopped(self.crm, f"HubSpot accepted an import of {obj} without naming it: {body!r:.300}")
        logger.info("HubSpot import %s: %d %s, %d properties", import_id, len(changes), obj, len(columns))
        return str(import_id)

    def _import_refused(self, obj: str, exc: ImportApiException) -> None:
        if is_daily_limit(exc):
            raise daily_limit_spent() from exc
        code, message = error_text(exc)
        if exc.status in (401, 403):
            # most likely the private app lacks the crm.import scope: batches need only the objects' write scopes
            self._imports_refused = f"{code}: {message}"
            logger.warning("HubSpot refused an import of %s (%s %s: %s); writing by batch from now on. Grant the "
                           "app the crm.import scope, or set writeback.hubspot_import_threshold to 0",
                           obj, exc.status, code, message)
        else:
            logger.warning("HubSpot refused an import of %s (%s %s: %s); sending it by batch", obj, exc.status, code,
                           message)
        return None

    def _await_import(self, import_id: str) -> str:
        """The import's final state (DONE, FAILED or CANCELED); one still running after ``import_timeout_s``
        is canceled (its records are sent again by the next run)."""
        started = time.monotonic()
        waits = poll_waits(IMPORT_POLL_FIRST_S, IMPORT_POLL_LONGEST_S)
        while True:
            self._sleep(next(waits))
            _, body = self._import_call(partial(self._imports.get_by_id_with_http_info, import_id,
                                                _preload_content=False, _request_timeout=TIMEOUT_S),
                                        f"import {import_id}")
            state = str(body.get("state") or "")
            if state in FINISHED:
                return state
            elapsed = time.monotonic() - started
            if elapsed > self.import_timeout_s:
                logger.warning("HubSpot import %s still %s after %.0f s: canceling it", import_id, state, elapsed)
                self._import_call(partial(self._imports.cancel_with_http_info, import_id, _preload_content=False,
                                          _request_timeout=TIMEOUT_S), f"canceling import {import_id}")
                return "CANCELED"

    def _import_failures(self, import_id: str) -> list[RowFailure]:
        """The rows a finished import did not write, page by page."""
        failures: list[RowFailure] = []
        paging: dict[str, str] = {}
        while True:
            _, body = self._import_call(partial(
                self._import_errors.get_errors_with_http_info, import_id, limit=ERRORS_PAGE,
                include_error_message=True, include_row_data=True, _preload_content=False,
                _request_timeout=TIMEOUT_S, **paging), f"errors of import {import_id}")
            failures += [f for e in body.get("results") or [] if (f := row_failure(e)) is not None]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return failures
            paging = {"after": str(after)}

    def _import_call(self, call: Callable[..., Any], what: str) -> tuple[int, dict[str, Any]]:
        """A status or errors request of an import (``call`` takes the client's extra arguments as keywords),
        retried by the policy; an error it does not retry stops the CRM's writeback (what the import wrote is
        then unknown: its records are sent again by the next run)."""
        try:
            return self.policy.call(lambda: self._request(lambda extra: call(**extra)), what)
        except ImportApiException as exc:
            if is_daily_limit(exc):
                raise daily_limit_spent() from exc
            code, message = error_text(exc)
            raise WritebackStopped(self.crm, f"{what}: HubSpot answered {exc.status} ({code}: {message})") from exc
        except HubSpotAuthError as exc:
            raise WritebackStopped(self.crm, str(exc)) from exc


def batch_outcomes(batch: Sequence[RecordChange], body: dict[str, Any]) -> list[RecordOutcome]:
    """Per-record outcomes of a 200/207 batch answer: errors name their records by ``ids`` or by the
    ``objectWriteTraceId`` we sent; a record neither in the results nor in an error is not assumed written."""
    succeeded = {str(r.get("id")) for r in body.get("results") or []}
    failed: dict[str, RecordOutcome] = {}
    for error in body.get("errors") or []:
        context = error.get("context") or {}
        ids = [str(i) for i in (context.get("ids") or []) + (context.get("objectWriteTraceId") or [])]
        for record_id in ids:
            failed[record_id] = RecordOutcome(record_id, False, str(error.get("category") or "ERROR"),
                                              str(error.get("message") or "")[:1000])
    outcomes = []
    for change in batch:
        if change.crm_id in failed:
            outcomes.append(failed[change.crm_id])
        elif change.crm_id in succeeded:
            outcomes.append(RecordOutcome(change.crm_id, True))
        else:
            outcomes.append(RecordOutcome(change.crm_id, False, "NO_RESULT",
                                          "HubSpot answered the batch without a result for this record"))
    return outcomes
