"""Associations v4: read a record's associations, batch read / create / associate-default / archive,
and the association types (labels) between two object types. Shapes follow HubSpot's v4 API
(``MultiAssociatedObjectWithLabel``, ``LabelsBetweenObjectPair``, ``PublicDefaultAssociation``)."""

from __future__ import annotations

import base64
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.associations import (
    ASSOCIATION_TYPES,
    HUBSPOT_DEFINED,
    Association,
    AssociationType,
    default_type,
    types_between,
)
from sandbox.hubspot.context import HubSpotContext, api_endpoint, json_object, json_response, query_int, record_id
from sandbox.hubspot.errors import not_found, validation
from sandbox.hubspot.portal import InputError
from sandbox.hubspot.schema import HsObjectType, now_ms
from sandbox.hubspot.values import iso_ms

READ_PAGE = 500
BATCH_MAX = 1000


def _token(to_id: int) -> str:
    return base64.urlsafe_b64encode(f"v4-{to_id}".encode()).decode()


def _from_token(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw.encode()).decode()
        return int(text.removeprefix("v4-"))
    except (ValueError, UnicodeDecodeError):
        raise validation(f"after must be the paging token from paging.next.after, got {raw!r}") from None


def type_json(type_id: int) -> dict[str, Any]:
    kind = ASSOCIATION_TYPES[type_id]
    return {"category": HUBSPOT_DEFINED, "typeId": type_id, "label": kind.label}


def association_json(link: Association) -> dict[str, Any]:
    return {"toObjectId": link.to_id, "associationTypes": [type_json(t) for t in link.type_ids]}


def _specs(obj: HsObjectType, target: HsObjectType, raw: Any) -> list[AssociationType]:
    """``[{"associationCategory", "associationTypeId"}]`` checked against the pair's types."""
    if not isinstance(raw, list) or not raw:
        raise validation("types must be a non-empty list of {associationCategory, associationTypeId}")
    kinds = []
    for spec in raw:
        try:
            kind = ASSOCIATION_TYPES.get(int((spec or {}).get("associationTypeId", -1)))
        except (TypeError, ValueError):
            kind = None
        if kind is None or kind.from_type != obj.name or kind.to_type != target.name \
                or (spec or {}).get("associationCategory") != HUBSPOT_DEFINED:
            raise validation(f"{(spec or {}).get('associationCategory')} {(spec or {}).get('associationTypeId')} is "
                             f"not a valid association type from {obj.name} to {target.name}")
        kinds.append(kind)
    return kinds


def _default(obj: HsObjectType, target: HsObjectType) -> AssociationType:
    kind = default_type(obj.name, target.name)
    if kind is None:
        raise validation(f"No default association type exists from {obj.name} to {target.name}")
    return kind


def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise validation("Invalid input JSON: inputs must be a list of objects")
    if len(inputs) > BATCH_MAX:
        raise validation(f"Batch input limit exceeded: at most {BATCH_MAX} inputs per request, got {len(inputs)}")
    return inputs


def _batch(results: list[Any], errors: list[InputError], started: int, ok_status: int) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = [e.to_json() for e in errors]
    body.update(startedAt=iso_ms(started), completedAt=iso_ms(now_ms()))
    return json_response(body, 207 if errors else ok_status)


def routes(ctx: HubSpotContext) -> list[Route]:
    portal = ctx.portal
    store = portal.associations

    def pair(request: Request, from_key: str, to_key: str) -> tuple[HsObjectType, HsObjectType]:
        return portal.object_type(request.path_params[from_key]), portal.object_type(request.path_params[to_key])

    def live(obj: HsObjectType, raw: Any, what: str) -> int:
        found = record_id(raw, what)
        if portal.row(obj, found) is None:
            raise InputError("OBJECT_NOT_FOUND", f"No {obj.singular} with ID {found} exists",
                             {"ids": [str(found)]})
        return found

    def labels_between(obj: HsObjectType, from_id: int, target: HsObjectType, to_id: int) -> dict[str, Any]:
        links = store.targets(obj.name, from_id, target.name, after=to_id, limit=1)
        type_ids = links[0].type_ids if links and links[0].to_id == to_id else ()
        return {"fromObjectTypeId": obj.type_id, "fromObjectId": from_id, "toObjectTypeId": target.type_id,
                "toObjectId": to_id, "labels": [lbl for t in type_ids if (lbl := ASSOCIATION_TYPES[t].label)]}

    def default_json(from_id: int, to_id: int, kind: AssociationType) -> dict[str, Any]:
        return {"from": {"id": str(from_id)}, "to": {"id": str(to_id)},
                "associationSpec": {"associationCategory": HUBSPOT_DEFINED, "associationTypeId": kind.type_id}}

    async def read(request: Request) -> Response:
        obj, target = pair(request, "objectType", "toObjectType")
        from_id = record_id(request.path_params["objectId"], "objectId")
        limit = min(query_int(request, "limit", READ_PAGE, minimum=1), READ_PAGE)
        links = store.targets(obj.name, from_id, target.name, after=_from_token(request.query_params.get("after")),
                              limit=limit)
        body: dict[str, Any] = {"results": [association_json(link) for link in links[:limit]]}
        if len(links) > limit:
            token = _token(links[limit].to_id)
            body["paging"] = {"next": {"after": token, "link": f"{request.url.path}?after={token}"}}
        return json_response(body)

    async def create_labeled(request: Request) -> Response:
        obj, target = pair(request, "objectType", "toObjectType")
        raw = await request.body()
        try:
            specs = json.loads(raw) if raw else None
        except ValueError:
            raise validation("Invalid input JSON: expected a list of association specs") from None
        kinds = _specs(obj, target, specs)
        try:
            from_id = live(obj, request.path_params["objectId"], "objectId")
            to_id = live(target, request.path_params["toObjectId"], "toObjectId")
        except InputError as exc:
            raise exc.as_error(404) from None
        store.add_many((obj.name, from_id, target.name, to_id, k) for k in kinds)
        return json_response(labels_between(obj, from_id, target, to_id), 201)

    async def remove_all(request: Request) -> Response:
        obj, target = pair(request, "objectType", "toObjectType")
        store.remove(obj.name, record_id(request.path_params["objectId"], "objectId"), target.name,
                     record_id(request.path_params["toObjectId"], "toObjectId"))
        return Response(status_code=204)

    async def create_default(request: Request) -> Response:
        started = now_ms()
        obj, target = pair(request, "fromObjectType", "toObjectType")
        kind = _default(obj, target)
        try:
            from_id = live(obj, request.path_params["fromObjectId"], "fromObjectId")
            to_id = live(target, request.path_params["toObjectId"], "toObjectId")
        except InputError as exc:
            raise exc.as_error(404) from None
        store.add(obj.name, from_id, target.name, to_id, kind)
        inverse = ASSOCIATION_TYPES[kind.inverse_id]
        return _batch([default_json(from_id, to_id, kind), default_json(to_id, from_id, inverse)], [], started, 200)

    async def batch_read(request: Request) -> Response:
        started = now_ms()
        obj, target = pair(request, "fromObjectType", "toObjectType")
        results, errors = [], []
        for item in _inputs(await json_object(request)):
            from_id = record_id(item.get("id"), "id")
            links = store.targets(obj.name, from_id, target.name, after=_from_token(item.get("after")),
                                  limit=READ_PAGE)
            if not links:
                errors.append(InputError("OBJECT_NOT_FOUND", f"No {target.singular} is associated with "
                                         f"{obj.singular} {from_id}.", {"fromObjectId": [str(from_id)]}))
                continue
            result: dict[str, Any] = {"from": {"id": str(from_id)},
                                      "to": [association_json(link) for link in links[:READ_PAGE]]}
            if len(links) > READ_PAGE:
                result["paging"] = {"next": {"after": _token(links[READ_PAGE].to_id)}}
            results.append(result)
        return _batch(results, errors, started, 200)

    async def batch_create(request: Request) -> Response:
        started = now_ms()
        obj, target = pair(request, "fromObjectType", "toObjectType")
        results, errors = [], []
        for item in _inputs(await json_object(request)):
            kinds = _specs(obj, target, item.get("types"))
            try:
                from_id = live(obj, (item.get("from") or {}).get("id"), "from.id")
                to_id = live(target, (item.get("to") or {}).get("id"), "to.id")
            except InputError as exc:
                errors.append(exc)
                continue
            store.add_many((obj.name, from_id, target.name, to_id, k) for k in kinds)
            results.append(labels_between(obj, from_id, target, to_id))
        return _batch(results, errors, started, 201)

    async def batch_default(request: Request) -> Response:
        started = now_ms()
        obj, target = pair(request, "fromObjectType", "toObjectType")
        kind = _default(obj, target)
        results, errors = [], []
        for item in _inputs(await json_object(request)):
            try:
                from_id = live(obj, (item.get("from") or {}).get("id"), "from.id")
                to_id = live(target, (item.get("to") or {}).get("id"), "to.id")
            except InputError as exc:
                errors.append(exc)
                continue
            store.add(obj.name, from_id, target.name, to_id, kind)
            results.append(default_json(from_id, to_id, kind))
        return _batch(results, errors, started, 200)

    async def batch_archive(request: Request) -> Response:
        obj, target = pair(request, "fromObjectType", "toObjectType")
        for item in _inputs(await json_object(request)):
            from_id = record_id((item.get("from") or {}).get("id"), "from.id")
            for to in item.get("to") or []:
                store.remove(obj.name, from_id, target.name, record_id((to or {}).get("id"), "to.id"))
        return Response(status_code=204)

    async def batch_archive_labels(request: Request) -> Response:
        obj, target = pair(request, "fromObjectType", "toObjectType")
        for item in _inputs(await json_object(request)):
            kinds = _specs(obj, target, item.get("types"))
            store.remove(obj.name, record_id((item.get("from") or {}).get("id"), "from.id"), target.name,
                         record_id((item.get("to") or {}).get("id"), "to.id"), [k.type_id for k in kinds])
        return Response(status_code=204)

    async def labels(request: Request) -> Response:
        obj, target = pair(request, "fromObjectType", "toObjectType")
        kinds = types_between(obj.name, target.name)
        if not kinds:
            raise not_found(f"No association types exist from {obj.name} to {target.name}")
        return json_response({"results": [type_json(k.type_id) for k in kinds]})

    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    record = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"
    batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
    return [
        Route(record, ep(read), methods=["GET"]),
        Route(record + "/{toObjectId}", ep(create_labeled), methods=["PUT"]),
        Route(record + "/{toObjectId}", ep(remove_all), methods=["DELETE"]),
        Route("/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
              ep(create_default), methods=["PUT"]),
        Route(batch + "/batch/read", ep(batch_read), methods=["POST"]),
        Route(batch + "/batch/create", ep(batch_create), methods=["POST"]),
        Route(batch + "/batch/associate/default", ep(batch_default), methods=["POST"]),
        Route(batch + "/batch/archive", ep(batch_archive), methods=["POST"]),
        Route(batch + "/batch/labels/archive", ep(batch_archive_labels), methods=["POST"]),
        Route(batch + "/labels", ep(labels), methods=["GET"]),
    ]

