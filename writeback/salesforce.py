"""Writing changed fields to Salesforce: sObject Collections for small sets, Bulk API 2.0 for big ones.

A collection call updates up to 200 records with ``allOrNone=false``, so one bad record fails
alone with its own message. Above ``bulk_threshold`` records (2,000 by default, where Salesforce
advises Bulk API 2.0 over synchronous calls) a single Bulk API 2.0 update job costs a handful of
calls instead of one per 200 records (an L org's 1% increment: 8,000 changed Leads in 41 calls);
more changes than one job's upload may carry (100 MB of CSV) go in as many jobs as they need, one
after another. Both only *update* by record id: writeback never creates or deletes a CRM record.

A collection request refused as a whole (Salesforce answers 400 for the whole request when one
record carries a value it cannot even parse) is split in halves until the bad records stand
alone, so the rest are still written.
"""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connectors.budget import ApiBudget
from connectors.retry import RetrySettings, parse_retry_after
from writeback.catalogue import Catalogue, CatalogueField
from writeback.diff import RecordChange, field_names
from writeback.retry import Kind, RetryPolicy, WritebackStopped, is_certificate_problem
from writeback.salesforce_bulk import BulkUpdate
from writeback.state import OnBatch, RecordOutcome

COLLECTION_SIZE = 200
BULK_NULL = "#N/A"  # Bulk API 2.0: an empty cell leaves a field alone, #N/A clears it
# A job's upload may hold 150 MB once Salesforce has base64-encoded it, which grows it by about half:
# Salesforce's advice is at most 100 MB of CSV per job (Bulk API 2.0 guide, "Upload Job Data").
BULK_MAX_UPLOAD_BYTES = 100_000_000
CRM = "salesforce"
# Per-record error codes that mean the field, not the record, is the problem.
FIELD_PROBLEMS = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def classify(exc: BaseException) -> Kind:
    if isinstance(exc, SalesforceGeneralError):
        if exc.status == 429:
            return "rate_limit"
        return "transient" if exc.status >= 500 else "fatal"
    if isinstance(exc, requests.exceptions.SSLError) and is_certificate_problem(exc):
        return "fatal"  # retrying does not fix a certificate; a connection dropped mid-handshake is transient
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return "transient"
    return "fatal"


def error_text(exc: SalesforceError) -> tuple[str, str]:
    """(errorCode, message) of a Salesforce error answer (simple-salesforce keeps the parsed JSON, or the text)."""
    body: Any = exc.content
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return str(exc.status), text[:500]
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        return str(first.get("errorCode") or exc.status), str(first.get("message") or "")
    return str(exc.status), str(body)[:500]


def _json_value(field: CatalogueField, value: str | None) -> Any:
    if value is None:
        return None
    if field.type == "number":
        number = float(value)
        return int(number) if field.spec.scale == 0 else number
    return value


class SessionObserver:
    """Sees every HTTP answer on the client's session, REST and Bulk 2.0 alike (simple-salesforce's
    errors keep no headers): counts them, keeps the last ``Retry-After`` and reports the org's
    usage (``Sforce-Limit-Info``) to the budget guard."""

    def __init__(self, budget: ApiBudget | None = None) -> None:
        self.budget = budget
        self.responses = 0
        self.retry_after: float | None = None
        self._lock = threading.Lock()
        self._watchers = 0

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        with self._lock:  # answers may come on several threads (objects written side by side)
            self.responses += 1
        if response.status_code in (429, 503):
            self.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage and self.budget is not None:
            self.budget.observe(int(usage.group(1)), int(usage.group(2)))

    def take_retry_after(self, exc: BaseException) -> float | None:
        value, self.retry_after = self.retry_after, None
        return value if isinstance(exc, SalesforceGeneralError) else None

    @contextmanager
    def watching(self, session: requests.Session) -> Iterator[SessionObserver]:
        """Count the session's answers while the block runs; blocks on several threads count each answer once."""
        hooks = session.hooks.setdefault("response", [])
        with self._lock:
            self._watchers += 1
            if self._watchers == 1:
                hooks.append(self)
        try:
            yield self
        finally:
            with self._lock:
                self._watchers -= 1
                if self._watchers == 0:
                    hooks.remove(self)


class SalesforceWriter:
    """Updates catalogue fields of Salesforce records through a ready ``Salesforce`` client."""

    crm = CRM

    def __init__(
        self,
        sf: Salesforce,
        catalogue: Catalogue,
        *,
        bulk_threshold: int = 2_000,
        bulk_poll_seconds: float = 0.5,
        bulk_max_upload_bytes: int = BULK_MAX_UPLOAD_BYTES,
        retry: RetrySettings = RetrySettings(),
        max_rate_limit_wait_s: float = 900.0,
        budget: ApiBudget | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.sf = sf
        self.catalogue = catalogue
        self.bulk_threshold = bulk_threshold
        self.bulk_poll_seconds = bulk_poll_seconds
        self.bulk_max_upload_bytes = bulk_max_upload_bytes
        self.observer = SessionObserver(budget)
        self.policy = RetryPolicy(CRM, classify, self.observer.take_retry_after, settings=retry,
                                  max_rate_limit_wait_s=max_rate_limit_wait_s, budget=budget, sleep=sleep)

    # A Lead update locks no other record, where a Contact's locks its Account: Lead changes are written
    # beside the Account and Contact jobs, which go one after the other (see writeback.run._write_whole).
    independent_objects = frozenset({"Lead"})

    @property
    def api_calls(self) -> int:
        """Calls made by this writer's writes (every answer the session got while one was running)."""
        return self.observer.responses

    def mode(self, count: int) -> str:
        """How ``count`` changed records of one object are written."""
        if count == 0:
            return "none"
        return "bulk" if count > self.bulk_threshold else "collections"

    def write(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None:
        """Write ``changes`` to ``obj`` records; ``on_batch`` gets each batch's outcomes as they come."""
        fields = {f.api_name: f for f in self.catalogue.fields(self.crm, obj)}
        self.catalogue.guard(self.crm, obj, field_names(changes))
        missing_id = [c for c in changes if not c.crm_id]
        if missing_id:
            raise ValueError(f"{len(missing_id)} {obj} change(s) without a record id: writeback only updates")
        if not changes:
            return
        with self.observer.watching(self.sf.session):
            try:
                if self.mode(len(changes)) == "bulk":
                    self._bulk(obj, changes, on_batch)
                else:
                    for start in range(0, len(changes), COLLECTION_SIZE):
                        batch = changes[start : start + COLLECTION_SIZE]
                        on_batch(batch, self._collection(obj, batch, fields))
            except requests.exceptions.SSLError as exc:
                raise WritebackStopped(self.crm, f"TLS verification failed ({exc}); check salesforce.ca_file "
                                       "and the instance URL") from exc
            except SalesforceExpiredSession as exc:
                raise WritebackStopped(self.crm, f"the session expired ({error_text(exc)[1]})") from exc
            except SalesforceMalformedRequest as exc:
                # a Bulk job step refused (a Collections call refused as a whole is split instead): the
                # object's write stops here, the next objects are still written
                code, message = error_text(exc)
                raise WritebackStopped(self.crm, f"{obj}: request refused: {code}: {message}",
                                       whole_crm=False) from exc
            except SalesforceRefusedRequest as exc:
                code, message = error_text(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise WritebackStopped(self.crm, "the daily API budget is spent; the rest is written "
                                           "after it resets") from exc
                raise WritebackStopped(self.crm, f"request refused: {code}: {message}") from exc

    # -- sObject Collections ---------------------------------------------------------------
    def _collection(self, obj: str, batch: Sequence[RecordChange],
                    fields: dict[str, CatalogueField]) -> list[RecordOutcome]:
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": obj}, "id": c.crm_id,
                 **{name: _json_value(fields[name], value) for name, value in c.items()}}
                for c in batch
            ],
        }
        try:
            results = self.policy.call(
                lambda: self.sf.restful("composite/sobjects", method="PATCH", json=body),
                f"updating {len(batch)} {obj} records",
            )
        except SalesforceMalformedRequest as exc:
            if len(batch) == 1:
                code, message = error_text(exc)
                return [RecordOutcome(batch[0].crm_id, False, code, message)]
            half = len(batch) // 2
            return self._collection(obj, batch[:half], fields) + self._collection(obj, batch[half:], fields)
        if not isinstance(results, list) or len(results) != len(batch):
            raise WritebackStopped(self.crm, f"unexpected sObject Collections answer for {obj}: {results!r:.300}")
        outcomes = [_collection_outcome(change, result) for change, result in zip(batch, results, strict=True)]
        codes = {o.code for o in outcomes}
        if len(outcomes) > 1 and not any(o.ok for o in outcomes) and len(codes) == 1 and codes <= FIELD_PROBLEMS:
            # Every record refused for the same field problem: the field is missing or not writable for the
            # integration user. Recording thousands of record errors would hide the one fix needed.
            raise WritebackStopped(self.crm, f"every {obj} record was refused: {outcomes[0].message} "
                                   f"(run `abm init`, and grant the integration user edit access to the fields)",
                                   whole_crm=False)
        return outcomes

    # -- Bulk API 2.0 ----------------------------------------------------------------------
    def _bulk(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None:
        bulk = BulkUpdate(self.sf, self.policy, self.bulk_poll_seconds, sleep=self.policy.sleep)
        for part, upload in bulk_uploads(changes, self.bulk_max_upload_bytes):
            result = bulk.run(obj, upload)
            # a completed job processed every row: what did not fail was written
            on_batch(part, [RecordOutcome(c.crm_id, False, *result.failed[c.crm_id]) if c.crm_id in result.failed
                            else RecordOutcome(c.crm_id, True) for c in part])


class _EncodedRows:
    """Where a ``csv.writer`` writes: each row kept encoded, their size counted as they come."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []
        self.size = 0

    def write(self, text: str) -> None:
        row = text.encode()
        self.rows.append(row)
        self.size += len(row)


def bulk_uploads(changes: Sequence[RecordChange], max_bytes: int) -> Iterator[tuple[Sequence[RecordChange], bytes]]:
    """The changes cut into Bulk API update uploads of at most ``max_bytes`` of CSV each, with the records
    each one carries; one upload is built at a time, so memory holds one job's CSV, not the object's.

    Every upload has the same header (the fields any change sets); an empty cell leaves a field
    alone, ``#N/A`` clears it.
    """
    columns = sorted(field_names(changes))
    rows = _EncodedRows()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["Id", *columns])
    header = rows.rows[0]
    if len(header) >= max_bytes:
        raise ValueError(f"a Bulk API upload of {max_bytes:,} bytes cannot even hold the header")
    first = 0  # the first change of the upload being built
    # where each column's value sits in a change's values, per tuple of names (shared by the changes that set them)
    places: dict[int, list[int]] = {}
    for i, c in enumerate(changes):
        place = places.get(id(c.names))
        if place is None:
            place = places[id(c.names)] = [c.names.index(name) if name in c.names else -1 for name in columns]
        texts = c.texts
        writer.writerow([c.crm_id, *("" if at < 0 else BULK_NULL if texts[at] is None else texts[at] for at in place)])
        if rows.size > max_bytes:
            row = rows.rows.pop()
            if len(header) + len(row) > max_bytes:
                raise ValueError(f"the {c.crm_id} record's values take {len(row):,} bytes of CSV, more than "
                                 f"a Bulk API upload holds ({max_bytes:,})")
            yield changes[first:i], b"".join(rows.rows)
            rows.rows, rows.size, first = [header, row], len(header) + len(row), i
    if first < len(changes):
        yield changes[first:], b"".join(rows.rows)


def _collection_outcome(change: RecordChange, result: dict[str, Any]) -> RecordOutcome:
    if result.get("success"):
        return RecordOutcome(change.crm_id, True)
    errors = result.get("errors") or [{}]
    first = errors[0]
    message = "; ".join(
        f"{e.get('message', '')}" + (f" (fields: {', '.join(e['fields'])})" if e.get("fields") else "")
        for e in errors
    )
    return RecordOutcome(change.crm_id, False, str(first.get("statusCode") or "UNKNOWN"), message)
