"""Properties v3: list, read, create, update and batch read properties; list, read and create groups.

A property created here gets a column at once, so it is readable, writable and searchable
through the objects API; definitions are kept in the metadata table (``--state`` survives).
Shapes follow HubSpot's ``Property`` and ``PropertyGroup`` models.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.context import HubSpotContext, api_endpoint, json_object, json_response, query_bool
from sandbox.hubspot.errors import HubSpotError, not_found, validation
from sandbox.hubspot.schema import FIELD_TYPES, PROPERTY_NAME, HsObjectType, HsProperty, Option, PropertyGroup, now_ms
from sandbox.hubspot.values import iso_ms

PORTAL_CREATED_AT = 1_564_000_000_000  # standard properties predate every portal (2019-07-24)
BASE = "/crm/v3/properties/{objectType}"


def property_json(prop: HsProperty) -> dict[str, Any]:
    read_only = prop.read_only or prop.calculated
    return {
        "updatedAt": iso_ms(prop.updated_at or PORTAL_CREATED_AT),
        "createdAt": iso_ms(prop.created_at or PORTAL_CREATED_AT),
        "name": prop.name,
        "label": prop.label,
        "type": prop.type,
        "fieldType": prop.field_type,
        "description": prop.description,
        "groupName": prop.group_name,
        "options": [o.to_json() for o in prop.options],
        "displayOrder": prop.display_order,
        "calculated": prop.calculated,
        "externalOptions": prop.external_options,
        "hasUniqueValue": prop.has_unique_value,
        "hidden": False,
        "hubspotDefined": prop.hubspot_defined,
        "modificationMetadata": {"archivable": not prop.hubspot_defined, "readOnlyDefinition": prop.hubspot_defined,
                                 "readOnlyValue": read_only},
        "formField": prop.form_field,
        "archived": prop.archived,
    }


def _options(raw: Any) -> tuple[Option, ...]:
    if raw in (None, []):
        return ()
    if not isinstance(raw, list):
        raise validation("options must be a list of {label, value}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("label") or item.get("value") in (None, ""):
            raise validation("each option needs a label and a value")
        out.append(Option(label=str(item["label"]), value=str(item["value"]),
                          display_order=int(item.get("displayOrder", i)), hidden=bool(item.get("hidden", False)),
                          description=str(item.get("description") or "")))
    return tuple(out)


def _check_types(type_: Any, field_type: Any) -> None:
    if type_ not in FIELD_TYPES:
        raise validation(f"Invalid property type {type_!r}; expected one of {', '.join(FIELD_TYPES)}")
    if field_type not in FIELD_TYPES[type_]:
        raise validation(f"fieldType {field_type!r} is not valid for type {type_!r}; use one of "
                         f"{', '.join(FIELD_TYPES[type_])}")


def new_property(obj: HsObjectType, body: dict[str, Any]) -> HsProperty:
    """A custom property from a ``PropertyCreate`` body, validated as HubSpot does."""
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        raise validation(f"Missing required fields: {', '.join(missing)}")
    name = str(body["name"])
    if not PROPERTY_NAME.match(name):
        raise validation(f"Property name {name!r} is invalid: use lower-case letters, digits and underscores, "
                         "starting with a letter")
    if name in obj.properties:
        raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists.")
    _check_types(body["type"], body["fieldType"])
    if body["groupName"] not in obj.groups:
        raise validation(f"Property group '{body['groupName']}' does not exist for {obj.name}")
    options = _options(body.get("options"))
    if body["type"] == "enumeration" and body["fieldType"] != "booleancheckbox" and not options \
            and not body.get("externalOptions"):
        raise validation("Enumeration properties need options")
    stamp = now_ms()
    return HsProperty(
        name=name, type=body["type"], field_type=body["fieldType"], group_name=body["groupName"],
        label=str(body["label"]), description=str(body.get("description") or ""), options=options,
        has_unique_value=bool(body.get("hasUniqueValue", False)), hubspot_defined=False,
        external_options=bool(body.get("externalOptions", False)), form_field=bool(body.get("formField", False)),
        display_order=int(body.get("displayOrder", -1)), created_at=stamp, updated_at=stamp,
    )


def routes(ctx: HubSpotContext) -> list[Route]:
    portal = ctx.portal
    schema = portal.schema

    def prop_or_404(obj: HsObjectType, name: str, archived: bool = False) -> HsProperty:
        prop = obj.properties.get(name)
        if prop is None or prop.archived != archived:
            raise not_found(f"Unable to find property {name} for object type {obj.name}")
        return prop

    async def list_properties(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        archived = query_bool(request, "archived")
        return json_response({"results": [property_json(p) for p in obj.properties.values()
                                          if p.archived == archived]})

    async def read_property(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        prop = prop_or_404(obj, request.path_params["propertyName"], query_bool(request, "archived"))
        return json_response(property_json(prop))

    async def create_property(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        prop = new_property(obj, await json_object(request))
        schema.save_property(obj, prop)
        return json_response(property_json(prop), 201)

    async def update_property(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        prop = prop_or_404(obj, request.path_params["propertyName"])
        body = await json_object(request)
        if prop.hubspot_defined and set(body) - {"options", "label", "description", "displayOrder", "hidden"}:
            raise validation(f"{prop.name} is a HubSpot-defined property; only its label, description and options "
                             "can change")
        type_, field_type = body.get("type", prop.type), body.get("fieldType", prop.field_type)
        _check_types(type_, field_type)
        if type_ != prop.type:
            raise validation("Changing a property's type is not supported by the sandbox")
        group = body.get("groupName", prop.group_name)
        if group not in obj.groups:
            raise validation(f"Property group '{group}' does not exist for {obj.name}")
        options = _options(body["options"]) if "options" in body else prop.options
        changed = replace(prop, label=str(body.get("label", prop.label)), field_type=field_type, group_name=group,
                          description=str(body.get("description", prop.description)), options=options,
                          display_order=int(body.get("displayOrder", prop.display_order)),
                          form_field=bool(body.get("formField", prop.form_field)), updated_at=now_ms())
        schema.save_property(obj, changed)
        return json_response(property_json(changed))

    async def archive_property(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        prop = prop_or_404(obj, request.path_params["propertyName"])
        if prop.hubspot_defined:
            raise validation(f"{prop.name} is a HubSpot-defined property and cannot be archived")
        schema.save_property(obj, replace(prop, archived=True, updated_at=now_ms()))
        return Response(status_code=204)

    async def batch_read(request: Request) -> Response:
        started = now_ms()
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        archived = bool(body.get("archived", False))
        found, missing = [], []
        for item in body.get("inputs") or []:
            name = str((item or {}).get("name", ""))
            prop = obj.properties.get(name)
            if prop is None or prop.archived != archived:
                missing.append(name)
            else:
                found.append(property_json(prop))
        out: dict[str, Any] = {"status": "COMPLETE", "results": found}
        if missing:
            out["numErrors"] = 1
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message":
                              f"Unable to find properties {', '.join(missing)}", "context": {"names": missing},
                              "errors": [], "links": {}}]
        out.update(startedAt=iso_ms(started), completedAt=iso_ms(now_ms()))
        return json_response(out, 207 if missing else 200)

    async def list_groups(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        return json_response({"results": [g.to_json() for g in obj.groups.values() if not g.archived]})

    async def read_group(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        group = obj.groups.get(request.path_params["groupName"])
        if group is None or group.archived:
            raise not_found(f"Unable to find property group {request.path_params['groupName']}")
        return json_response(group.to_json())

    async def create_group(request: Request) -> Response:
        obj = portal.object_type(request.path_params["objectType"])
        body = await json_object(request)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise validation("A property group needs a name and a label")
        if not PROPERTY_NAME.match(str(name)):
            raise validation(f"Property group name {name!r} is invalid: use lower-case letters, digits and "
                             "underscores, starting with a letter")
        if name in obj.groups:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists.")
        group = PropertyGroup(str(name), str(label), int(body.get("displayOrder", -1)))
        schema.save_group(obj, group)
        return json_response(group.to_json(), 201)

    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route(BASE, ep(list_properties), methods=["GET"]),
        Route(BASE, ep(create_property), methods=["POST"]),
        Route(BASE + "/batch/read", ep(batch_read), methods=["POST"]),
        Route(BASE + "/groups", ep(list_groups), methods=["GET"]),
        Route(BASE + "/groups", ep(create_group), methods=["POST"]),
        Route(BASE + "/groups/{groupName}", ep(read_group), methods=["GET"]),
        Route(BASE + "/{propertyName}", ep(read_property), methods=["GET"]),
        Route(BASE + "/{propertyName}", ep(update_property), methods=["PATCH"]),
        Route(BASE + "/{propertyName}", ep(archive_property), methods=["DELETE"]),
    ]
