"""Describe results (global and per object) rendered from the field registry."""

from __future__ import annotations

from typing import Any

from sandbox.salesforce.schema import NUMBER_TYPES, SalesforceSchema, SfField, SfObject

_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
}


def _urls(obj: SfObject, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(obj: SfObject, version: str) -> dict[str, Any]:
    system = obj.name == "User"
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "createable": not system,
        "updateable": True,
        "deletable": not system,
        "queryable": True,
        "retrieveable": True,
        "replicateable": True,
        "searchable": True,
        "layoutable": True,
        "urls": _urls(obj, version),
    }


def describe_global(schema: SalesforceSchema, version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(o, version) for o in schema.objects.values()],
    }


def describe_field(f: SfField) -> dict[str, Any]:
    numeric = f.type in NUMBER_TYPES
    relationship = f.name[:-2] if f.type == "reference" and f.name.endswith("Id") else None
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": 0 if numeric or f.type in ("boolean", "date", "datetime") else f.length,
        "byteLength": 0 if numeric else f.length * 3,
        "precision": f.precision if f.type != "int" else 0,
        "scale": f.scale,
        "digits": f.precision if f.type == "int" else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "custom": f.custom,
        "calculated": False,
        "defaultedOnCreate": f.name in ("Id", "OwnerId", "CreatedDate", "CreatedById", "LastModifiedDate",
                                        "LastModifiedById", "SystemModstamp", "IsDeleted"),
        "externalId": False,
        "filterable": f.type != "textarea" or f.length <= 255,
        "sortable": f.type != "textarea" or f.length <= 255,
        "groupable": f.type not in NUMBER_TYPES and f.type != "textarea",
        "idLookup": f.name == "Id",
        "unique": False,
        "referenceTo": list(f.reference_to),
        "relationshipName": relationship,
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v} for v in f.picklist],
    }


def describe_object(obj: SfObject, version: str) -> dict[str, Any]:
    body = object_summary(obj, version)
    body["fields"] = [describe_field(f) for f in obj.fields.values()]
    body["childRelationships"] = []
    body["recordTypeInfos"] = []
    return body
