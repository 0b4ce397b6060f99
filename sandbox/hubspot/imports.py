"""CRM imports v3 (``/crm/v3/imports``): a CSV file of record updates, processed in the background.

A portal takes hundreds of thousands of rows in one import request where the batch endpoints take
100 records a call, so the writeback sends large sets of changed scores this way (see
:mod:`writeback.hubspot_import`). What is emulated is what such a writer relies on:

- ``POST /crm/v3/imports`` (multipart: ``importRequest`` JSON and one CSV file per ``files`` entry)
  answers at once with the import ``STARTED``; a thread then processes it (``PROCESSING``, then
  ``DONE``), as HubSpot queues imports and works through them;
- single-object files whose rows name existing records by their record id (a column mapped to
  ``hs_object_id`` with ``columnType`` ``HUBSPOT_OBJECT_ID``) and ``importOperations`` ``UPDATE``;
  an import that would create records is refused here (the sandbox does not emulate it);
- a blank cell leaves the property as it is, as HubSpot's importer does (an import cannot clear
  a value); a row naming no live record, or with a value its property refuses, is an error of its
  own (``GET /crm/v3/imports/{id}/errors``, with the row's data and line number) and the others are
  written;
- ``GET /crm/v3/imports/{id}`` (state and counters), ``GET /crm/v3/imports`` (newest first) and
  ``POST /crm/v3/imports/{id}/cancel`` (rows not yet processed are not written).

Mapping errors (an unknown object type or property, a column count that does not match the file's
header, no record-id column) are refused with 400 before anything is written, as HubSpot validates
the request before it accepts the file.
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.batch_records import BatchRecords, plain_id
from sandbox.hubspot.context import (
    HubSpotContext,
    api_endpoint,
    decoded_object,
    json_response,
    query_bool,
    query_int,
)
from sandbox.hubspot.errors import not_found, validation
from sandbox.hubspot.portal import InputError
from sandbox.hubspot.schema import HsObjectType, now_ms
from sandbox.hubspot.values import iso_ms

BASE = "/crm/v3/imports"
RECORD_ID_COLUMN = "HUBSPOT_OBJECT_ID"
# Rows written per transaction: a commit per row costs more than the row, and the storage lock is given
# back between chunks so the portal's other requests are served while an import runs.
PROCESS_CHUNK = 500
TERMINAL = frozenset({"DONE", "FAILED", "CANCELED"})
MAX_FILE_BYTES = 512 * 2**20  # HubSpot's limit for an import file on paid tiers
_ids = itertools.count(40_000_001)


@dataclass
class RowError:
    """One row the import could not write (``PublicImportError``)."""

    id: str
    error_type: str
    message: str
    object_type: HsObjectType
    line_number: int
    row: list[str]
    created_at: int
    invalid_value: str | None = None

    def to_json(self, with_message: bool, with_row: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "createdAt": self.created_at, "errorType": self.error_type,
            "objectType": self.object_type.singular.upper(), "objectTypeId": self.object_type.type_id,
            "sourceData": {"lineNumber": self.line_number, "containsEncryptedProperties": False,
                           **({"rowData": self.row} if with_row else {})},
        }
        if with_message:
            body["errorMessage"] = self.message
        if self.invalid_value is not None:
            body["invalidValue"] = self.invalid_value
        return body


@dataclass
class Import:
    id: str
    name: str
    request: dict[str, Any]
    obj: HsObjectType
    id_column: int
    properties: list[str | None]  # per column: the property it sets, None for the record-id column
    header: list[str]
    rows: list[list[str]]
    created_at: int
    state: str = "STARTED"
    updated_at: int = 0
    processed: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)
    doomed: bool = False  # a fault: fails as a whole, writing nothing

    def to_json(self) -> dict[str, Any]:
        counters = {"TOTAL_ROWS": len(self.rows), "UPDATED_OBJECTS": self.updated, "ERRORS": len(self.errors)}
        return {
            "id": self.id, "state": self.state, "importName": self.name, "importSource": "API",
            "optOutImport": False,
            "createdAt": iso_ms(self.created_at), "updatedAt": iso_ms(self.updated_at or self.created_at),
            "importRequestJson": self.request, "mappedObjectTypeIds": [self.obj.type_id],
            "metadata": {"objectLists": [], "counters": counters, "fileIds": [f"{self.id}1"]},
        }


def _csv_rows(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise validation(f"The import file is not UTF-8 encoded ({exc.reason} at byte {exc.start})") from None
    return [r for r in csv.reader(io.StringIO(text, newline="")) if r]


class ImportJobs:
    """The portal's imports, each processed on a thread of its own once accepted."""

    def __init__(self, ctx: HubSpotContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._imports: dict[str, Import] = {}
        self._processing: set[threading.Thread] = set()
        self._failing = 0

    def clear(self) -> None:
        self.wait_processed()
        with self._lock:
            self._imports.clear()
            self._failing = 0

    def fail_imports(self, times: int = 1) -> None:
        """Fault: the next ``times`` imports end ``FAILED`` without writing a row, as HubSpot's do when it
        cannot process a file."""
        with self._lock:
            self._failing = times

    def wait_processed(self, timeout_s: float | None = None) -> None:
        """Wait for the imports being processed (a reset or a shutdown must not cut one in half)."""
        with self._lock:
            running = list(self._processing)
        for thread in running:
            thread.join(timeout_s)

    def get(self, import_id: str) -> Import:
        with self._lock:
            found = self._imports.get(import_id)
        if found is None:
            raise not_found(f"Import {import_id} not found")
        return found

    def listed(self) -> list[Import]:
        with self._lock:
            return sorted(self._imports.values(), key=lambda i: (i.created_at, i.id), reverse=True)

    # -- accepting -------------------------------------------------------------------------
    def start(self, request_json: dict[str, Any], files: dict[str, bytes]) -> tuple[Import, dict[str, Any]]:
        """Validate the request against its file and queue it: the import, and its answer as it stood when
        accepted (``STARTED``: a small file may be written before the answer leaves). 400 (nothing written)
        when it cannot be run."""
        specs = request_json.get("files")
        if not isinstance(specs, list) or len(specs) != 1 or not isinstance(specs[0], dict):
            raise validation("importRequest.files must list exactly one file (the sandbox emulates single-file "
                             "imports)")
        spec = specs[0]
        file_name = str(spec.get("fileName") or "")
        if file_name not in files:
            raise validation(f"No uploaded file is named {file_name!r} (files sent: {', '.join(sorted(files))})")
        if str(spec.get("fileFormat", "CSV")).upper() != "CSV":
            raise validation("fileFormat must be CSV (the sandbox does not read spreadsheets)")
        page = spec.get("fileImportPage")
        if not isinstance(page, dict) or not isinstance(page.get("columnMappings"), list):
            raise validation("fileImportPage.columnMappings is required")
        rows = _csv_rows(files[file_name])
        if page.get("hasHeader", True) is False:
            raise validation("hasHeader false is not emulated: the file's first line must name its columns")
        if not rows:
            raise validation(f"{file_name} is empty: it needs a header line")
        header, body = rows[0], rows[1:]
        mappings = page["columnMappings"]
        if len(mappings) != len(header):
            raise validation(f"columnMappings has {len(mappings)} entries for the {len(header)} columns of "
                             f"{file_name}'s header")
        obj, id_column, properties = self._mapping(mappings)
        operations = request_json.get("importOperations") or {}
        if not isinstance(operations, dict) or operations.get(obj.type_id) != "UPDATE":
            raise validation(f'importOperations must be {{"{obj.type_id}": "UPDATE"}}: the sandbox emulates '
                             "imports that update existing records only")
        now = now_ms()
        job = Import(str(next(_ids)), str(request_json.get("name") or file_name), request_json, obj, id_column,
                     properties, header, body, now)
        thread = threading.Thread(target=self._process_queued, args=(job,), name=f"hubspot-import-{job.id}",
                                  daemon=True)
        with self._lock:
            if self._failing:
                self._failing -= 1
                job.doomed = True
            self._imports[job.id] = job
            accepted = job.to_json()  # as accepted, before its thread moves it on
            thread.start()  # started before anyone can see it: wait_processed joins every thread it sees
            self._processing.add(thread)
        return job, accepted

    def _mapping(self, mappings: list[Any]) -> tuple[HsObjectType, int, list[str | None]]:
        types: set[str] = set()
        id_column: int | None = None
        properties: list[str | None] = []
        portal = self.ctx.portal
        for n, mapping in enumerate(mappings):
            if not isinstance(mapping, dict):
                raise validation(f"columnMappings[{n}] must be an object")
            type_id = str(mapping.get("columnObjectTypeId") or "")
            obj = portal.object_type(type_id)
            types.add(obj.name)
            name = str(mapping.get("propertyName") or "")
            if mapping.get("columnType") == RECORD_ID_COLUMN or name == "hs_object_id":
                if id_column is not None:
                    raise validation("more than one column is mapped to the record id")
                id_column = n
                properties.append(None)
                continue
            prop = obj.get_property(name)
            if prop is None:
                raise validation(f'columnMappings[{n}]: property "{name}" does not exist on {obj.name}')
            if prop.read_only or prop.calculated:
                raise validation(f'columnMappings[{n}]: {name} is a read only property; its value cannot be set')
            properties.append(name)
        if len(types) != 1:
            raise validation("the sandbox emulates single-object imports: every column must map to one object "
                             f"type (got {', '.join(sorted(types)) or 'none'})")
        if id_column is None:
            raise validation(f"no column is mapped to hs_object_id with columnType {RECORD_ID_COLUMN}: an update "
                             "import names the records it updates by their record id")
        return portal.object_type(types.pop()), id_column, properties

    # -- processing ------------------------------------------------------------------------
    def cancel(self, import_id: str) -> Import:
        job = self.get(import_id)
        with self._lock:
            if job.state not in TERMINAL:
                job.state, job.updated_at = "CANCELED", now_ms()
        return job

    def _process_queued(self, job: Import) -> None:
        try:
            with self._lock:
                started = job.state == "STARTED"
                if started:
                    job.state, job.updated_at = "PROCESSING", now_ms()
            if started and job.doomed:
                with self._lock:
                    job.state, job.updated_at = "FAILED", now_ms()
            elif started:
                self._process(job)
        except Exception:  # noqa: BLE001 - an import that cannot be processed fails, as HubSpot's do
            with self._lock:
                job.state, job.updated_at = "FAILED", now_ms()
        finally:
            with self._lock:
                self._processing.discard(threading.current_thread())

    def _process(self, job: Import) -> None:
        portal = self.ctx.portal
        width = len(job.header)
        for start in range(0, len(job.rows), PROCESS_CHUNK):
            if job.state == "CANCELED":
                return
            chunk = job.rows[start : start + PROCESS_CHUNK]
            with portal.storage.batched():
                records = BatchRecords(portal, job.obj, [{"id": r[job.id_column]} for r in chunk if len(r) == width])
                for offset, row in enumerate(chunk):
                    self._row(job, records, row, start + offset + 2)  # line 1 is the header
            job.processed += len(chunk)
        with self._lock:
            if job.state == "PROCESSING":
                job.state, job.updated_at = "DONE", now_ms()

    def _row(self, job: Import, records: BatchRecords, row: list[str], line: int) -> None:
        def error(kind: str, message: str, invalid: str | None = None) -> None:
            job.errors.append(RowError(f"{job.id}-{line}", kind, message, job.obj, line, row, now_ms(), invalid))

        if len(row) != len(job.header):
            error("INCORRECT_NUMBER_OF_COLUMNS", f"the row has {len(row)} columns, the header {len(job.header)}")
            return
        raw_id = row[job.id_column]
        record_id = plain_id({"id": raw_id})
        current = records.get(record_id) if record_id is not None else None
        if current is None:
            error("UNKNOWN_OBJECT_ID", f"no {job.obj.singular} has the record id {raw_id!r} (an update import "
                  "does not create records)", raw_id)
            return
        # a blank cell leaves the property as it is: an import does not clear values
        values = {name: cell for name, cell in zip(job.properties, row, strict=True) if name and cell != ""}
        if not values:
            return
        try:
            written = self.ctx.portal.update(job.obj, record_id, values, current)
        except InputError as exc:
            error("INVALID_PROPERTY_VALUE" if exc.category == "VALIDATION_ERROR" else exc.category, exc.message)
            return
        records.written(record_id, written)
        job.updated += 1


async def _form(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise validation("an import is sent as multipart/form-data (importRequest and files)")
    form = await request.form(max_files=10, max_fields=10)  # files are spooled to disk, whatever their size
    try:
        raw = form.get("importRequest")
        if not isinstance(raw, str):
            raise validation("the importRequest form field (the import's JSON) is missing")
        request_json = decoded_object(raw, "importRequest is not valid JSON", "importRequest must be a JSON object")
        files: dict[str, bytes] = {}
        for upload in form.getlist("files"):
            if isinstance(upload, UploadFile):
                data = await upload.read()
                if len(data) > MAX_FILE_BYTES:
                    raise validation(f"{upload.filename} is {len(data) / 2**20:.0f} MB: an import file may hold "
                                     f"{MAX_FILE_BYTES // 2**20} MB at most")
                files[upload.filename or ""] = data
        if not files:
            raise validation("no file was uploaded in the files form field")
        return request_json, files
    finally:
        await form.close()


def routes(ctx: HubSpotContext, jobs: ImportJobs) -> list[Route]:
    async def create(request: Request) -> Response:
        request_json, files = await _form(request)
        job, accepted = jobs.start(request_json, files)
        request.state.fields_written = sorted(p for p in job.properties if p)
        return json_response(accepted)

    async def get_one(request: Request) -> Response:
        return json_response(jobs.get(request.path_params["importId"]).to_json())

    async def list_page(request: Request) -> Response:
        limit = query_int(request, "limit", 100, minimum=1)
        after = request.query_params.get("after")
        listed = jobs.listed()
        if after:
            listed = [i for i in listed if int(i.id) < int(after)] if after.isdigit() else []
        page = listed[:limit]
        body: dict[str, Any] = {"results": [i.to_json() for i in page]}
        if len(listed) > limit:
            body["paging"] = {"next": {"after": page[-1].id}}
        return json_response(body)

    async def cancel(request: Request) -> Response:
        job = jobs.cancel(request.path_params["importId"])
        return json_response({"completedAt": iso_ms(job.updated_at or now_ms()), "status": "COMPLETE"})

    async def errors(request: Request) -> Response:
        job = jobs.get(request.path_params["importId"])
        limit = min(query_int(request, "limit", 100, minimum=1), 1000)
        after = query_int(request, "after", 0)
        with_message = query_bool(request, "includeErrorMessage")
        with_row = query_bool(request, "includeRowData")
        found = job.errors[after : after + limit]
        body: dict[str, Any] = {"results": [e.to_json(with_message, with_row) for e in found]}
        if after + limit < len(job.errors):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(body)

    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route(BASE, ep(create), methods=["POST"]),
        Route(BASE, ep(list_page), methods=["GET"]),
        Route(BASE + "/{importId}", ep(get_one), methods=["GET"]),
        Route(BASE + "/{importId}/cancel", ep(cancel), methods=["POST"]),
        Route(BASE + "/{importId}/errors", ep(errors), methods=["GET"]),
    ]
