"""Salesforce REST API resources: versions, limits, describe, sObject rows, updated/deleted
windows, query/queryAll and sObject Collections. Shapes follow Salesforce's REST API guide."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.salesforce.context import (
    API_VERSIONS,
    VERSION_LABELS,
    Call,
    SalesforceContext,
    api_endpoint,
    json_body,
)
from sandbox.salesforce.describe import describe_global, describe_object, object_summary
from sandbox.salesforce.errors import JSON_TYPE, SalesforceError
from sandbox.salesforce.org import RecordError, not_found_record
from sandbox.salesforce.query import parse_batch_size
from sandbox.salesforce.values import format_datetime, parse_datetime

MAX_COLLECTION = 200


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON_TYPE)


def _window(request: Request) -> tuple[str, str]:
    """``start``/``end`` of updated/ and deleted/ (ISO 8601 with a zone), as stored stamps."""
    values = []
    for name in ("start", "end"):
        raw = request.query_params.get(name)
        if not raw:
            raise SalesforceError(400, "MISSING_ARGUMENT", f"{name} was not specified")
        try:
            values.append(parse_datetime(raw))
        except ValueError:
            raise SalesforceError(400, "INVALID_DATE_FORMAT", f"{name}: invalid date format: {raw}") from None
    start, end = values
    if end <= start:
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "end date must be after start date")
    if datetime.now(UTC) - start > timedelta(days=30):
        raise SalesforceError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
    return format_datetime(start), format_datetime(end)


def _record_body(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
    return {k: v for k, v in body.items() if k != "attributes"}


def routes(ctx: SalesforceContext) -> list[Route]:
    org = ctx.org

    async def versions(request: Request) -> Response:
        body = [{"label": VERSION_LABELS[v], "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS]
        return JSONResponse(body, headers={"Sforce-Limit-Info": ctx.limit_info()})

    async def resources(request: Request, call: Call) -> Response:
        base = f"/services/data/v{call.version}"
        names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs"]
        return _json({name: f"{base}/{name}" for name in names})

    async def limits(request: Request, call: Call) -> Response:
        body = ctx.limits.snapshot()
        body.setdefault("DailyBulkV2QueryFileStorageMB", {"Max": 976562, "Remaining": 976562})
        return _json(body)

    async def sobjects(request: Request, call: Call) -> Response:
        return _json(describe_global(org.schema, call.version))

    async def sobject_info(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        return _json({"objectDescribe": object_summary(obj, call.version), "recentItems": []})

    async def describe(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        return _json(describe_object(obj, call.version))

    async def create(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        values = _record_body(await json_body(request))
        request.state.fields_written = sorted(values)
        record_id = org.create(obj, values, call.user_id)
        return _json({"id": record_id, "success": True, "errors": []}, status=201)

    async def record(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        record_id = request.path_params["id"]
        if request.method == "GET":
            row = org.row(obj, record_id)
            if row is None:
                raise not_found_record()
            wanted = request.query_params.get("fields")
            fields = None
            if wanted:
                fields = []
                for name in wanted.split(","):
                    f = obj.field(name.strip())
                    if f is None:
                        raise SalesforceError(400, "INVALID_FIELD", f"No such column '{name.strip()}' on sobject "
                                              f"of type {obj.name}")
                    fields.append(f)
            return _json(org.to_json(obj, row, call.version, fields))
        if request.method == "PATCH":
            values = _record_body(await json_body(request))
            request.state.fields_written = sorted(values)
            if org.row(obj, record_id) is None:
                raise not_found_record()
            org.update(obj, record_id, values, call.user_id)
            return Response(status_code=204)
        org.delete(obj, record_id, call.user_id)
        return Response(status_code=204)

    async def updated(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        start, end = _window(request)
        return _json({"ids": org.updated_ids(obj, start, end), "latestDateCovered": end})

    async def deleted(request: Request, call: Call) -> Response:
        obj = org.object(request.path_params["object"])
        start, end = _window(request)
        found = org.deleted_records(obj, start, end)
        body: dict[str, Any] = {"deletedRecords": [{"id": i, "deletedDate": d} for i, d in found]}
        body["earliestDateAvailable"] = format_datetime(datetime.now(UTC) - timedelta(days=15))
        body["latestDateCovered"] = end
        return _json(body)

    def query_handler(include_deleted: bool):  # type: ignore[no-untyped-def]
        async def handler(request: Request, call: Call) -> Response:
            soql = request.query_params.get("q")
            if soql is None:
                raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified (?q=...)")
            batch = parse_batch_size(request.headers.get("sforce-query-options"))
            return _json(ctx.cursors.start(soql, include_deleted, batch, call.version))

        handler.__name__ = "queryAll" if include_deleted else "query"
        return handler

    async def query_more(request: Request, call: Call) -> Response:
        locator, _, offset = request.path_params["locator"].rpartition("-")
        if not locator or not offset.isdigit():
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        page = ctx.cursors.more(locator, int(offset), request.headers.get("sforce-query-options"), call.version)
        return _json(page)

    async def collections(request: Request, call: Call) -> Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected {\"allOrNone\": bool, \"records\": [...]}")
        records, all_or_none = body["records"], bool(body.get("allOrNone", False))
        if len(records) > MAX_COLLECTION:
            raise SalesforceError(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                                  f"{MAX_COLLECTION} records into this call")
        written: set[str] = set()
        plans: list[tuple[Any, str | None, dict[str, Any], RecordError | None]] = []
        for item in records:
            if not isinstance(item, dict):
                raise SalesforceError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
            values = {k: v for k, v in item.items() if k not in ("attributes", "id", "Id")}
            written.update(values)
            record_id = item.get("id") or item.get("Id")
            type_name = (item.get("attributes") or {}).get("type")
            error = None
            if not type_name:
                error = RecordError("INVALID_TYPE", "Must send a concrete entity type.")
            elif not record_id:
                error = RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            plans.append((type_name, record_id, values, error))
        request.state.fields_written = sorted(written)
        results = _apply_collection(ctx, plans, all_or_none, call.user_id)
        return _json(results)

    v = "/services/data/v{version}"
    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route("/services/data", versions, methods=["GET"]),
        Route(v, ep(resources), methods=["GET"]),
        Route(v + "/limits", ep(limits), methods=["GET"]),
        Route(v + "/sobjects", ep(sobjects), methods=["GET"]),
        Route(v + "/sobjects/{object}", ep(sobject_info), methods=["GET"]),
        Route(v + "/sobjects/{object}", ep(create), methods=["POST"]),
        Route(v + "/sobjects/{object}/describe", ep(describe), methods=["GET"]),
        Route(v + "/sobjects/{object}/updated", ep(updated), methods=["GET"]),
        Route(v + "/sobjects/{object}/deleted", ep(deleted), methods=["GET"]),
        Route(v + "/sobjects/{object}/{id}", ep(record), methods=["GET", "PATCH", "DELETE"]),
        Route(v + "/query", ep(query_handler(False)), methods=["GET"]),
        Route(v + "/queryAll", ep(query_handler(True)), methods=["GET"]),
        Route(v + "/query/{locator}", ep(query_more), methods=["GET"]),
        Route(v + "/queryAll/{locator}", ep(query_more), methods=["GET"]),
        Route(v + "/composite/sobjects", ep(collections), methods=["PATCH"]),
    ]


def _apply_collection(
    ctx: SalesforceContext,
    plans: list[tuple[Any, str | None, dict[str, Any], RecordError | None]],
    all_or_none: bool,
    user_id: str,
) -> list[dict[str, Any]]:
    """Update each record; with allOrNone, any failure rolls every record back."""
    org = ctx.org
    results: list[dict[str, Any]] = []
    failed = False
    storage = org.storage
    with storage.transaction():
        for type_name, record_id, values, error in plans:
            if error is None:
                try:
                    obj = org.object(type_name)
                    if org.row(obj, record_id) is None:  # type: ignore[arg-type]
                        raise RecordError("ENTITY_IS_DELETED" if org.row(obj, record_id, True) else  # type: ignore[arg-type]
                                          "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
                    org.update(obj, record_id, values, user_id)  # type: ignore[arg-type]
                except RecordError as exc:
                    error = exc
                except SalesforceError as exc:
                    error = RecordError(exc.code, exc.message)
            if error is None:
                results.append({"id": record_id, "success": True, "errors": []})
            else:
                failed = True
                results.append({"success": False, "errors": [error.as_result()], **({"id": record_id} if
                                                                                    record_id else {})})
        if all_or_none and failed:
            storage.execute("ROLLBACK")
            storage.execute("BEGIN")  # the context manager commits this empty transaction
            rolled = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                      "message": "Record rolled back because not all records were valid and the request was "
                                 "using AllOrNone header", "fields": []}
            results = [r if not r["success"] else {"id": r["id"], "success": False, "errors": [rolled]}
                       for r in results]
    return results
