"""Bulk API 2.0: query jobs (CSV results paged by ``Sforce-Locator``) and ingest jobs.

Query jobs snapshot their result (rowids) when created, like the rest of the query engine,
and are complete as soon as anyone looks at them (or, to make clients wait as Salesforce does
while it runs a query, ``query_job_seconds`` after they were created). Ingest jobs take one
CSV upload (PUT, 201) and, once closed with ``UploadComplete``, are processed in the background
as Salesforce processes them (``InProgress``, then ``JobComplete``: clients poll the job), so a
big job does not hold up the requests the sandbox serves meanwhile; they then offer successful,
failed and unprocessed result CSVs with Salesforce's ``sf__Id`` / ``sf__Created`` / ``sf__Error``.
"""

from __future__ import annotations

import base64
import csv
import io
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.salesforce.context import BULK_QUERY_LIMIT, Call, SalesforceContext, api_endpoint, json_body
from sandbox.salesforce.errors import JSON_TYPE, SalesforceError
from sandbox.salesforce.org import BulkWriter, RecordError
from sandbox.salesforce.query import ResultSet, page_rows, run
from sandbox.salesforce.values import now_stamp, storage_to_csv

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete")
DEFAULT_MAX_RECORDS = 50_000
CSV_TYPE = "text/csv"
PROCESS_CHUNK = 2000  # ingest records per transaction


def _json(body: Any, status: int = 200) -> Response:
    import json

    return Response(json.dumps(body), status_code=status, media_type=JSON_TYPE)


def _job_id() -> str:
    return "7505b" + secrets.token_hex(5).upper()[:10]


@dataclass
class Job:
    id: str
    operation: str
    object: str
    created_by: str
    created: str
    version: str
    column_delimiter: str
    line_ending: str
    state: str
    external_id: str | None = None
    result: ResultSet | None = None
    upload: bytes | None = None
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    ready_at: float = 0.0  # a query job's result is served from then on (time.monotonic)
    columns: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)

    @property
    def is_query(self) -> bool:
        return self.operation in ("query", "queryAll")

    def info(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.is_query:
            body.update(jobType="V2Query", numberRecordsProcessed=self.processed, retries=0,
                        totalProcessingTime=0, isPkChunkingSupported=True)
        else:
            body.update(jobType="V2Ingest", numberRecordsProcessed=self.processed,
                        numberRecordsFailed=self.failed, retries=0, totalProcessingTime=0,
                        apiActiveProcessingTime=0, apexProcessingTime=0,
                        contentUrl=f"services/data/v{self.version}/jobs/ingest/{self.id}/batches")
            if self.external_id:
                body["externalIdFieldName"] = self.external_id
        if self.error_message:
            body["errorMessage"] = self.error_message
        return body


# An ingest job takes at most 150 MB once base64-encoded (4 bytes for every 3): the raw upload's limit.
MAX_UPLOAD_BYTES = 150 * 1024 * 1024 * 3 // 4


class BulkJobs:
    def __init__(self, ctx: SalesforceContext) -> None:
        self.ctx = ctx
        self.max_upload_bytes = MAX_UPLOAD_BYTES  # tests lower it to see uploads cut into jobs
        # How long a query job stays InProgress once created. Salesforce takes seconds to minutes to run one; the
        # sandbox has its result at once (0, the default), unless told to make clients wait as they would there.
        self.query_job_seconds = 0.0
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._failing_query_jobs = 0
        self._processing: set[threading.Thread] = set()

    def _get(self, job_id: str, is_query: bool) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.is_query != is_query:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def clear(self) -> None:
        self.wait_processed()
        with self._lock:
            self._jobs.clear()
            self._failing_query_jobs = 0
            self.max_upload_bytes = MAX_UPLOAD_BYTES
            self.query_job_seconds = 0.0

    def fail_query_jobs(self, times: int = 1) -> None:
        """Fault: the next ``times`` query jobs end ``Failed``, as Salesforce's do when a query times out."""
        with self._lock:
            self._failing_query_jobs = times

    # -- query jobs ------------------------------------------------------------------------
    def create_query(self, spec: dict[str, Any], call: Call) -> Job:
        operation = spec.get("operation", "query")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : operation must be query or queryAll, "
                                  f"got {operation!r}")
        if not isinstance(spec.get("query"), str):
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : query is required")
        delimiter, ending = self._format(spec)
        result = run(self.ctx.org, spec["query"], operation == "queryAll")
        if result.count_only:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : COUNT() is not supported by Bulk API 2.0 queries")
        if not self.ctx.limits.try_consume(BULK_QUERY_LIMIT):
            raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED",
                                  "Max bulk v2 query jobs per 24 hrs has been reached")
        job = Job(_job_id(), operation, result.obj.name, call.user_id, now_stamp(), call.version, delimiter,
                  ending, "UploadComplete", result=result, ready_at=time.monotonic() + self.query_job_seconds)
        with self._lock:
            if self._failing_query_jobs:
                self._failing_query_jobs -= 1
                job.result = None  # no results: it fails as soon as anyone looks
            self._jobs[job.id] = job
        return job

    def query_info(self, job_id: str) -> Job:
        job = self._get(job_id, True)
        if job.state in ("UploadComplete", "InProgress") and job.result is not None:
            # results were snapshotted at creation: the job is done once anyone looks, after query_job_seconds
            if time.monotonic() < job.ready_at:
                job.state = "InProgress"
            else:
                job.state, job.processed = "JobComplete", job.result.total
        elif job.state == "UploadComplete":
            job.state, job.error_message = "Failed", "InternalServerError : the query timed out (sandbox fault)"
        return job

    def query_results(self, job_id: str, locator: str | None, max_records: int) -> tuple[bytes, str, int]:
        job = self.query_info(job_id)
        if job.state != "JobComplete" or job.result is None:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"job {job_id} is {job.state}, not JobComplete")
        start = _decode_locator(locator)
        result = job.result
        rows = page_rows(self.ctx.org, result, start, max_records)
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=DELIMITERS[job.column_delimiter],
                            lineterminator=LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        writer.writerow([f.name for f in result.fields])
        converters = [(lambda v, f=f: storage_to_csv(f, v)) for f in result.fields]
        writer.writerows([conv(value) for conv, value in zip(converters, row, strict=True)] for row in rows)
        end = start + len(rows)
        next_locator = _encode_locator(end) if end < result.total else "null"
        return buf.getvalue().encode(), next_locator, len(rows)

    # -- ingest jobs -----------------------------------------------------------------------
    def create_ingest(self, spec: dict[str, Any], call: Call) -> Job:
        operation = spec.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : operation must be one of "
                                  f"{', '.join(INGEST_OPERATIONS)}")
        obj = self.ctx.org.object(str(spec.get("object", "")))
        external = spec.get("externalIdFieldName")
        if operation == "upsert":
            if not external:
                raise SalesforceError(400, "INVALIDJOB", "InvalidJob : External ID was blank for upsert")
            f = obj.field(external)
            if f is None:
                raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Field name not found : {external}")
            external = f.name
        if spec.get("contentType", "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : only CSV content is supported")
        delimiter, ending = self._format(spec)
        job = Job(_job_id(), operation, obj.name, call.user_id, now_stamp(), call.version, delimiter, ending,
                  "Open", external_id=external)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def upload(self, job_id: str, data: bytes) -> None:
        job = self._get(job_id, False)
        if job.state != "Open":
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job_id} is not open for uploads ({job.state})")
        if job.upload is not None:
            raise SalesforceError(400, "INVALIDJOBSTATE", "Only one upload per job is allowed with Bulk API 2.0")
        if len(data) > self.max_upload_bytes:
            raise SalesforceError(400, "ClientInputError",
                                  f"Failed to read request. Exceeded max size limit of {self.max_upload_bytes}")
        job.upload = data

    def set_state(self, job_id: str, is_query: bool, state: str) -> Job:
        job = self._get(job_id, is_query)
        if state == "Aborted":
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job_id} is already {job.state}")
            with self._lock:
                processing = job.state in ("UploadComplete", "InProgress")
                job.state = "Aborted"  # a job queued or being processed lists its unprocessed records itself
            if job.upload is not None and not job.is_query and not processing:
                job.columns, rows = self._rows(job)
                job.unprocessed = rows
            return job
        if state != "UploadComplete" or is_query:
            raise SalesforceError(400, "INVALIDJOBSTATE", f"cannot set state {state!r} on this job")
        if job.state != "Open":
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job_id} is {job.state}, not Open")
        job.state = "UploadComplete"
        thread = threading.Thread(target=self._process_queued, args=(job,), name=f"bulk-ingest-{job.id}", daemon=True)
        with self._lock:  # started before anyone can see it: wait_processed joins every thread it sees
            thread.start()
            self._processing.add(thread)
        return job

    def wait_processed(self, timeout_s: float | None = None) -> None:
        """Wait for the closed jobs being processed (a reset or a shutdown must not cut one in half)."""
        with self._lock:
            running = list(self._processing)
        for thread in running:
            thread.join(timeout_s)

    def _process_queued(self, job: Job) -> None:
        try:
            with self._lock:  # an abort sets its state under the same lock
                started = job.state == "UploadComplete"
                if started:
                    job.state = "InProgress"
            if started:
                self._process(job)
            elif job.upload is not None:  # aborted before its turn: every record is unprocessed
                job.columns, job.unprocessed = self._rows(job)
        except Exception as exc:  # noqa: BLE001 - a job that cannot be processed fails, as Salesforce's do
            job.state, job.error_message = "Failed", f"InternalServerError : {type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._processing.discard(threading.current_thread())

    def _rows(self, job: Job) -> tuple[list[str], list[list[str]]]:
        text = (job.upload or b"").decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.column_delimiter])
        rows = [r for r in reader if r]
        if not rows:
            return [], []
        return rows[0], rows[1:]

    def _process(self, job: Job) -> None:
        org = self.ctx.org
        obj = org.object(job.object)
        if job.upload is None:
            job.state, job.error_message = "Failed", "InvalidBatch : No data was uploaded for this job"
            return
        header, rows = self._rows(job)
        job.columns = header
        for name in header:
            if obj.field(name) is None:
                job.state = "Failed"
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                job.unprocessed = rows
                return
        id_col = next((i for i, n in enumerate(header) if n.lower() == "id"), None)
        if job.operation in ("update", "delete") and id_col is None:
            job.state, job.error_message = "Failed", "InvalidBatch : Field name not found : Id"
            job.unprocessed = rows
            return
        writer = BulkWriter(org, obj, job.created_by)
        id_keys = [n for n in header if n.lower() == "id"]
        for start in range(0, len(rows), PROCESS_CHUNK):
            if job.state == "Aborted":
                job.unprocessed = rows[start:]
                return
            chunk = rows[start : start + PROCESS_CHUNK]
            # one transaction per chunk (a commit per record costs more than the record); the lock it
            # holds keeps other threads' writes out of the chunk, so the records read at its start stay current
            with org.storage.batched():
                if id_col is not None:
                    writer.load(row[id_col] for row in chunk if len(row) == len(header))
                for row in chunk:
                    self._process_row(job, obj, writer, header, id_col, id_keys, row)
        with self._lock:
            if job.state == "InProgress":  # not aborted meanwhile
                job.state = "JobComplete"

    def _process_row(self, job: Job, obj: Any, writer: BulkWriter, header: list[str], id_col: int | None,
                     id_keys: list[str], row: list[str]) -> None:
        if len(row) != len(header):
            job.failures.append(["", "INVALID_FIELD:row has a different number of columns than the header:--",
                                 *row])
            job.failed += 1
            job.processed += 1
            return
        values = dict(zip(header, row, strict=True))
        record_id = row[id_col] if id_col is not None else ""
        try:
            record_id, created = self._apply(job, obj, writer, values, id_keys, record_id)
        except RecordError as exc:
            fields = ",".join(exc.fields or [])
            job.failures.append([record_id, f"{exc.code}:{exc.message}:{fields} --", *row])
            job.failed += 1
        else:
            job.successes.append([record_id, "true" if created else "false", *row])
        job.processed += 1

    def _apply(self, job: Job, obj: Any, writer: BulkWriter, values: dict[str, str], id_keys: list[str],
               record_id: str) -> tuple[str, bool]:
        org, user = self.ctx.org, job.created_by
        fields = values
        if id_keys:
            fields = dict(values)
            for key in id_keys:
                fields.pop(key, None)
        if job.operation == "insert":
            return self._created(writer, org.create(obj, fields, user, csv=True)), True
        if job.operation == "delete":
            return writer.delete(record_id), False
        if job.operation == "upsert" and job.external_id and job.external_id != "Id":
            key = values.get(job.external_id, "")
            matches = org.find_by(obj, job.external_id, key) if key else []
            if len(matches) > 1:
                raise RecordError("DUPLICATE_EXTERNAL_ID", f"{job.external_id}: more than one record found for "
                                  f"external id field: {matches}", [job.external_id])
            if not matches:
                return self._created(writer, org.create(obj, values, user, csv=True)), True
            record_id = matches[0]
        elif job.operation == "upsert" and not record_id:
            return self._created(writer, org.create(obj, fields, user, csv=True)), True
        if job.external_id is not None and job.external_id in fields:
            fields = {k: v for k, v in fields.items() if k != job.external_id}
        return writer.update(record_id, fields), False

    @staticmethod
    def _created(writer: BulkWriter, record_id: str) -> str:
        writer.forget(record_id)  # a record the job names later is read again
        return record_id

    def results_csv(self, job_id: str, kind: str) -> bytes:
        job = self._get(job_id, False)
        if kind != "unprocessedrecords" and job.state not in ("JobComplete", "Failed", "Aborted"):
            raise SalesforceError(400, "INVALIDJOBSTATE", f"job {job_id} is {job.state}; results are not ready")
        if kind == "successfulResults":
            header, rows = ["sf__Id", "sf__Created", *job.columns], job.successes
        elif kind == "failedResults":
            header, rows = ["sf__Id", "sf__Error", *job.columns], job.failures
        else:
            header, rows = job.columns, job.unprocessed
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator=LINE_ENDINGS[job.line_ending],
                            delimiter=DELIMITERS[job.column_delimiter])
        if header:
            writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue().encode()

    def delete(self, job_id: str, is_query: bool) -> None:
        job = self._get(job_id, is_query)
        if job.state in ("Open", "UploadComplete", "InProgress") and not (job.is_query and job.result):
            raise SalesforceError(400, "INVALIDJOBSTATE", f"Job {job_id} must be closed or aborted before deletion")
        with self._lock:
            self._jobs.pop(job_id, None)

    def list(self, is_query: bool) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.is_query == is_query]

    @staticmethod
    def _format(spec: dict[str, Any]) -> tuple[str, str]:
        delimiter = spec.get("columnDelimiter", "COMMA")
        ending = spec.get("lineEnding", "LF")
        if delimiter not in DELIMITERS:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : columnDelimiter must be one of {list(DELIMITERS)}")
        if ending not in LINE_ENDINGS:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : lineEnding must be LF or CRLF")
        return delimiter, ending


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sbx:{offset}".encode()).decode().rstrip("=")


def _decode_locator(locator: str | None) -> int:
    if not locator or locator == "null":
        return 0
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
        prefix, _, offset = text.partition(":")
        if prefix != "sbx" or not offset.isdigit():
            raise ValueError(locator)
        return int(offset)
    except ValueError:
        raise SalesforceError(400, "INVALID_LOCATOR", f"invalid locator: {locator}") from None


def routes(ctx: SalesforceContext, jobs: BulkJobs) -> list[Route]:
    async def query_jobs(request: Request, call: Call) -> Response:
        if request.method == "GET":
            return _json({"done": True, "records": [j.info() for j in jobs.list(True)], "nextRecordsUrl": None})
        spec = await json_body(request)
        if not isinstance(spec, dict):
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : the job must be a JSON object")
        return _json(jobs.create_query(spec, call).info())

    async def query_job(request: Request, call: Call) -> Response:
        job_id = request.path_params["job"]
        if request.method == "GET":
            return _json(jobs.query_info(job_id).info())
        if request.method == "DELETE":
            jobs.delete(job_id, True)
            return Response(status_code=204)
        spec = await json_body(request)
        state = spec.get("state") if isinstance(spec, dict) else None
        return _json(jobs.set_state(job_id, True, str(state)).info())

    async def query_results(request: Request, call: Call) -> Response:
        raw_max = request.query_params.get("maxRecords", str(DEFAULT_MAX_RECORDS))
        if not raw_max.isdigit() or int(raw_max) < 1:
            raise SalesforceError(400, "INVALIDQUERYPARAMETER", f"maxRecords must be a positive integer: {raw_max}")
        body, locator, count = jobs.query_results(request.path_params["job"], request.query_params.get("locator"),
                                                  int(raw_max))
        return Response(body, media_type=CSV_TYPE,
                        headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)})

    async def ingest_jobs(request: Request, call: Call) -> Response:
        if request.method == "GET":
            return _json({"done": True, "records": [j.info() for j in jobs.list(False)], "nextRecordsUrl": None})
        spec = await json_body(request)
        if not isinstance(spec, dict):
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : the job must be a JSON object")
        return _json(jobs.create_ingest(spec, call).info())

    async def ingest_job(request: Request, call: Call) -> Response:
        job_id = request.path_params["job"]
        if request.method == "GET":
            return _json(jobs._get(job_id, False).info())
        if request.method == "DELETE":
            jobs.delete(job_id, False)
            return Response(status_code=204)
        spec = await json_body(request)
        state = spec.get("state") if isinstance(spec, dict) else None
        job = jobs.set_state(job_id, False, str(state))
        info = job.info()
        if state == "UploadComplete":
            info["state"] = "UploadComplete"
        return _json(info)

    async def ingest_upload(request: Request, call: Call) -> Response:
        data = await request.body()
        if not data:
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : no CSV data in the request body")
        first_line = data.split(b"\n", 1)[0].decode("utf-8-sig", "replace").strip()
        request.state.fields_written = [c.strip('"') for c in next(csv.reader([first_line]), [])]
        jobs.upload(request.path_params["job"], data)
        return Response(status_code=201)

    async def ingest_results(request: Request, call: Call) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("successfulResults", "failedResults", "unprocessedrecords"):
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(jobs.results_csv(request.path_params["job"], kind), media_type=CSV_TYPE)

    base = "/services/data/v{version}/jobs"
    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route(base + "/query", ep(query_jobs), methods=["GET", "POST"]),
        Route(base + "/query/{job}", ep(query_job), methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/query/{job}/results", ep(query_results), methods=["GET"]),
        Route(base + "/ingest", ep(ingest_jobs), methods=["GET", "POST"]),
        Route(base + "/ingest/{job}", ep(ingest_job), methods=["GET", "PATCH", "DELETE"]),
        Route(base + "/ingest/{job}/batches", ep(ingest_upload), methods=["PUT"]),
        Route(base + "/ingest/{job}/{kind}", ep(ingest_results), methods=["GET"]),
    ]
