"""CRM v3 objects: list pages, get, create, update, archive, batch read/create/update/upsert/archive
and merge, for every object type the portal serves. Shapes follow HubSpot's CRM v3 API
(``SimplePublicObject``, ``BatchResponseSimplePublicObject[WithErrors]``...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.associations import ASSOCIATION_TYPES, HUBSPOT_DEFINED, AssociationType
from sandbox.hubspot.batch_records import BatchRecords
from sandbox.hubspot.context import (
    HubSpotContext,
    api_endpoint,
    json_object,
    json_response,
    query_bool,
    query_int,
    query_list,
    record_id,
)
from sandbox.hubspot.errors import HubSpotError, not_found, validation
from sandbox.hubspot.portal import InputError, Row, property_errors
from sandbox.hubspot.schema import HsObjectType, HsProperty, now_ms
from sandbox.hubspot.values import iso_ms

LIST_MAX = 100
BATCH_MAX = 100
BASE = "/crm/v3/objects/{objectType}"


def _no_history(names: Sequence[str]) -> None:
    if names:
        raise validation("propertiesWithHistory is not supported by the sandbox; read current values with "
                         "properties")


def association_specs(ctx: HubSpotContext, obj: HsObjectType, raw: Any) -> list[tuple[int, AssociationType]]:
    """``[{"to": {"id"}, "types": [{"associationCategory", "associationTypeId"}]}]`` of a create input."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise validation("associations must be a list of {to, types}")
    specs = []
    for item in raw:
        to = (item or {}).get("to") or {}
        types = (item or {}).get("types") or []
        if not types:
            raise validation("each association needs at least one type")
        for spec in types:
            kind = ASSOCIATION_TYPES.get(int(spec.get("associationTypeId", -1)))
            if kind is None or kind.from_type != obj.name or spec.get("associationCategory") != HUBSPOT_DEFINED:
                raise validation(f"{spec.get('associationCategory')} {spec.get('associationTypeId')} is not a valid "
                                 f"association type from {obj.name}")
            target = ctx.portal.object_type(kind.to_type)
            to_id = record_id(to.get("id"), "association to.id")
            if ctx.portal.row(target, to_id) is None:
                raise validation(f"No {target.singular} with ID {to_id} exists to associate with")
            specs.append((to_id, kind))
    return specs


def render(ctx: HubSpotContext, obj: HsObjectType, rows: Sequence[Row], props: Sequence[HsProperty],
           association_types: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Records as HubSpot returns them, with ``associations`` when asked for."""
    out = [ctx.portal.to_json(obj, row, props) for row in rows]
    if not association_types or not rows:
        return out
    ids = [int(r["hs_object_id"]) for r in rows]
    by_target: dict[str, dict[int, list[Any]]] = {}
    for name in association_types:
        target = ctx.portal.schema.get(name)
        if target is not None:
            by_target[target.name] = ctx.portal.associations.targets_for(obj.name, ids, target.name)
    for record, record_id_ in zip(out, ids, strict=True):
        found: dict[str, Any] = {}
        for target_name, per_record in by_target.items():
            links = per_record.get(record_id_)
            if links:
                found[target_name] = {"results": [
                    {"id": str(link.to_id), "type": ASSOCIATION_TYPES[type_id].v3_name}
                    for link in links for type_id in link.type_ids
                ]}
        if found:
            record["associations"] = found
    return out


def _resolve_id(ctx: HubSpotContext, obj: HsObjectType, raw: str, id_property: str | None) -> int | None:
    if not id_property or id_property == "hs_object_id":
        text = str(raw).strip()
        return int(text) if text.isdigit() else None
    prop = obj.get_property(id_property)
    if prop is None or not prop.has_unique_value:
        raise validation(f"{id_property} is not a unique identifier property of {obj.name}; idProperty must be "
                         "a property with unique values")
    return ctx.portal.find_unique(obj, prop, raw)


def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation("Invalid input JSON: inputs must be a list")
    if len(inputs) > BATCH_MAX:
        raise validation(f"Batch input limit exceeded: at most {BATCH_MAX} inputs per request, got {len(inputs)}",
                         {"inputs": [str(len(inputs))]})
    if not all(isinstance(i, dict) for i in inputs):
        raise validation("Invalid input JSON: each input must be an object")
    return inputs


def _batch(results: list[dict[str, Any]], errors: list[InputError], started: int, created: bool = False) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = [e.to_json() for e in errors]
    body.update(startedAt=iso_ms(started), completedAt=iso_ms(now_ms()))
    return json_response(body, 207 if errors else (201 if created else 200))


def _check_known(ctx: HubSpotContext, obj: HsObjectType, inputs: Sequence[dict[str, Any]]) -> None:
    """Unknown properties reject the whole request, as HubSpot validates them before any write."""
    unknown = []
    for item in inputs:
        unknown.extend(ctx.portal.unknown_properties(obj, item.get("properties") or {}))
    if unknown:
        unique = list({e.name: e for e in unknown}.values())
        raise validation(property_errors(unique))


def _written(request: Request, inputs: Sequence[dict[str, Any]]) -> None:
    names: set[str] = set()
    for item in inputs:
        names.update((item.get("properties") or {}).keys())
    request.state.fields_written = sorted(names)


def _trace_context(item: dict[str, Any], context: dict[str, list[str]]) -> dict[str, list[str]]:
    trace = item.get("objectWriteTraceId")
    return {**context, "objectWriteTraceId": [str(trace)]} if trace else context


def routes(ctx: HubSpotContext) -> list[Route]:
    portal = ctx.portal

    async def list_page(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        _no_history(query_list(request, "propertiesWithHistory"))
        limit = min(query_int(request, "limit", 10, minimum=1), LIST_MAX)
        after_raw = request.query_params.get("after")
        after = 0
        if after_raw:
            if not after_raw.isdigit():
                raise validation(f"after must be the paging cursor from paging.next.after, got {after_raw!r}")
            after = int(after_raw)
        archived = query_bool(request, "archived")
        rows, next_after = portal.page(obj, after, limit, archived)
        props = portal.returned_properties(obj, query_list(request, "properties"))
        body: dict[str, Any] = {"results": render(ctx, obj, rows, props, query_list(request, "associations"))}
        if next_after is not None:
            path = f"{request.url.path}?after={next_after}"
            body["paging"] = {"next": {"after": str(next_after), "link": f"{request.base_url}{path.lstrip('/')}"}}
        return json_response(body)

    async def get_one(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        _no_history(query_list(request, "propertiesWithHistory"))
        archived = query_bool(request, "archived")
        found_id = _resolve_id(ctx, obj, request.path_params["objectId"], request.query_params.get("idProperty"))
        row = portal.resolve(obj, found_id, archived) if found_id is not None else None
        if row is None:
            raise not_found()
        props = portal.returned_properties(obj, query_list(request, "properties"))
        return json_response(render(ctx, obj, [row], props, query_list(request, "associations"))[0])

    async def create(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        values = body.get("properties") or {}
        _written(request, [body])
        _check_known(ctx, obj, [body])
        specs = association_specs(ctx, obj, body.get("associations"))
        try:
            row = portal.create(obj, values)
        except InputError as exc:
            raise exc.as_error() from None
        portal.associations.add_many((obj.name, int(row["hs_object_id"]), k.to_type, to_id, k) for to_id, k in specs)
        props = portal.returned_properties(obj, list(values))
        return json_response(portal.to_json(obj, row, props), 201)

    async def update(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        values = body.get("properties") or {}
        _written(request, [body])
        found_id = _resolve_id(ctx, obj, request.path_params["objectId"], request.query_params.get("idProperty"))
        if found_id is None or portal.row(obj, found_id) is None:
            raise not_found()
        try:
            row = portal.update(obj, found_id, values)
        except InputError as exc:
            raise exc.as_error() from None
        return json_response(portal.to_json(obj, row, portal.returned_properties(obj, list(values))))

    async def archive(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        raw = request.path_params["objectId"]
        if raw.isdigit():
            try:
                portal.archive(obj, int(raw))
            except InputError as exc:
                raise exc.as_error() from None
        return Response(status_code=204)

    async def batch_read(request: Request) -> Response:
        started = now_ms()
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        _no_history(body.get("propertiesWithHistory") or [])
        inputs = _inputs(body)
        archived = query_bool(request, "archived")
        id_property = body.get("idProperty")
        props = portal.returned_properties(obj, body.get("properties") or [])
        rows: dict[int, Row] = {}
        missing: list[str] = []
        records = BatchRecords(portal, obj, [{"id": i.get("id", ""), "idProperty": id_property} for i in inputs],
                               archived)
        for item in inputs:
            raw = str(item.get("id", ""))
            found_id = _resolve_id(ctx, obj, raw, id_property)
            row = records.get(found_id) if found_id is not None else None
            if row is None and found_id is not None and not archived:
                row = portal.merged_into(obj, found_id)  # what resolve answers for a merged-away id
            if row is None:
                missing.append(raw)
            else:
                rows.setdefault(int(row["hs_object_id"]), row)
        errors = []
        if missing:
            errors.append(InputError("OBJECT_NOT_FOUND", f"Could not get some {obj.singular.upper()} objects, they "
                                     "may be deleted or not exist. Check that ids are valid.", {"ids": missing}))
            if not rows:
                raise HubSpotError(404, errors[0].category, errors[0].message, errors[0].context)
        return _batch(render(ctx, obj, list(rows.values()), props), errors, started)

    async def batch_create(request: Request) -> Response:
        started = now_ms()
        obj = portal.object_type(request.path_params["objectType"])
        inputs = _inputs(await json_object(request))
        _written(request, inputs)
        _check_known(ctx, obj, inputs)
        plans = [(item, association_specs(ctx, obj, item.get("associations"))) for item in inputs]
        results, errors = [], []
        for item, specs in plans:
            values = item.get("properties") or {}
            try:
                row = portal.create(obj, values)
            except InputError as exc:
                errors.append(InputError(exc.category, exc.message, _trace_context(item, exc.context)))
                continue
            new_id = int(row["hs_object_id"])
            portal.associations.add_many((obj.name, new_id, k.to_type, to_id, k) for to_id, k in specs)
            result = portal.to_json(obj, row, portal.returned_properties(obj, list(values)))
            if item.get("objectWriteTraceId"):
                result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(result)
        return _batch(results, errors, started, created=True)

    async def batch_update(request: Request) -> Response:
        started = now_ms()
        obj = portal.object_type(request.path_params["objectType"])
        inputs = _inputs(await json_object(request))
        _written(request, inputs)
        _check_known(ctx, obj, inputs)
        results, errors, missing = [], [], []
        with portal.storage.batched():  # one commit for the batch; earlier writes stay if an input raises
            records = BatchRecords(portal, obj, inputs)
            for item in inputs:
                raw = str(item.get("id", ""))
                found_id = _resolve_id(ctx, obj, raw, item.get("idProperty"))
                current = records.get(found_id) if found_id is not None else None
                if current is None:
                    missing.append(raw)
                    continue
                values = item.get("properties") or {}
                try:
                    row = portal.update(obj, found_id, values, current)
                except InputError as exc:
                    errors.append(InputError(exc.category, exc.message, _trace_context(item, exc.context)))
                    continue
                records.written(found_id, row)
                result = portal.to_json(obj, row, portal.returned_properties(obj, list(values)))
                if item.get("objectWriteTraceId"):
                    result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
                results.append(result)
        if missing:
            errors.append(InputError("OBJECT_NOT_FOUND", f"Could not find some {obj.singular.upper()} objects to "
                                     "update, they may be deleted or not exist. Check that ids are valid.",
                                     {"ids": missing}))
        return _batch(results, errors, started)

    async def batch_upsert(request: Request) -> Response:
        started = now_ms()
        obj = portal.object_type(request.path_params["objectType"])
        inputs = _inputs(await json_object(request))
        _written(request, inputs)
        _check_known(ctx, obj, inputs)
        results, errors = [], []
        for item in inputs:
            id_property = item.get("idProperty")
            raw = str(item.get("id", ""))
            if not id_property or not raw:
                raise validation("each upsert input needs id and idProperty")
            prop = obj.get_property(id_property)
            if prop is None or not prop.has_unique_value:
                raise validation(f"{id_property} is not a unique identifier property of {obj.name}; idProperty "
                                 "must be a property with unique values")
            values = dict(item.get("properties") or {})
            found_id = portal.find_unique(obj, prop, raw)
            try:
                if found_id is None:
                    values[id_property] = raw
                    row, new = portal.create(obj, values), True
                else:
                    row, new = portal.update(obj, found_id, values), False
            except InputError as exc:
                errors.append(InputError(exc.category, exc.message, _trace_context(item, exc.context)))
                continue
            result = portal.to_json(obj, row, portal.returned_properties(obj, list(values)))
            result["new"] = new
            if item.get("objectWriteTraceId"):
                result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
            results.append(result)
        return _batch(results, errors, started)

    async def batch_archive(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        inputs = _inputs(await json_object(request))
        failures = []
        for item in inputs:
            raw = str(item.get("id", ""))
            if raw.isdigit():
                try:
                    portal.archive(obj, int(raw))
                except InputError as exc:
                    failures.append(exc)
        if failures:
            raise failures[0].as_error()
        return Response(status_code=204)

    async def merge(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        primary = record_id(body.get("primaryObjectId"), "primaryObjectId")
        loser = record_id(body.get("objectIdToMerge"), "objectIdToMerge")
        try:
            row = portal.merge(obj, primary, loser)
        except InputError as exc:
            raise exc.as_error() from None
        return json_response(portal.to_json(obj, row, portal.returned_properties(obj, None)))

    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route(BASE, ep(list_page), methods=["GET"]),
        Route(BASE, ep(create), methods=["POST"]),
        Route(BASE + "/batch/read", ep(batch_read), methods=["POST"]),
        Route(BASE + "/batch/create", ep(batch_create), methods=["POST"]),
        Route(BASE + "/batch/update", ep(batch_update), methods=["POST"]),
        Route(BASE + "/batch/upsert", ep(batch_upsert), methods=["POST"]),
        Route(BASE + "/batch/archive", ep(batch_archive), methods=["POST"]),
        Route(BASE + "/merge", ep(merge), methods=["POST"]),
        Route(BASE + "/{objectId}", ep(get_one), methods=["GET"]),
        Route(BASE + "/{objectId}", ep(update), methods=["PATCH"]),
        Route(BASE + "/{objectId}", ep(archive), methods=["DELETE"]),
    ]
