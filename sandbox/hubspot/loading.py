"""Generator records to table rows for the portal loader, with all per-property decisions made once.

The L org loads millions of HubSpot records: each property gets its converter, and each
enumeration its set of known options, when the builder starts, so a row costs one pass over
its properties. A record with a property or an option value the registry lacks is handed
back (``row`` returns None) so the portal can register it and start a new builder; values are
stored exactly as ``python_to_storage`` stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from sandbox.hubspot.schema import ARCHIVED, ARCHIVED_AT, HsObjectType, HsProperty, now_ms
from sandbox.hubspot.values import parse_timestamp

Converter = Callable[[Any], Any]
Row = dict[str, Any]


def _number(value: Any) -> Any:
    if value is None or value == "":
        return None
    return float(value) if not isinstance(value, str) else float(Decimal(value))


def _timestamp(value: Any) -> Any:
    if value is None or value == "":
        return None
    return parse_timestamp(value)


def _text(value: Any) -> Any:
    if type(value) is str:
        return value or None
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def converter(prop: HsProperty) -> Converter:
    """The function that stores a generator value of ``prop`` (as ``values.python_to_storage``)."""
    if prop.type == "number":
        return _number
    if prop.type in ("datetime", "date"):
        return _timestamp
    return _text


def _known_option(allowed: frozenset[str], checkbox: bool, value: Any) -> bool:
    if value is None or value == "":
        return True
    text = str(value)
    if checkbox:
        return all(v in allowed for v in text.split(";"))
    return text in allowed


class RowBuilder:
    """Rows in ``columns`` order for records ``{"id", "properties", "createdAt", "updatedAt", "archived"}``;
    audit properties come from the record's own id and timestamps, whatever its properties say."""

    def __init__(self, obj: HsObjectType, columns: list[str], skipped: frozenset[str],
                 new_id: Callable[[], int], derive: Callable[[Row], None]) -> None:
        self.columns = columns
        self._skipped = skipped
        self._new_id = new_id
        self._derive = derive
        self._created_property = obj.created_property
        self._modified_properties = obj.modified_properties
        self._converters: dict[str, Converter] = {}
        self._options: dict[str, Callable[[Any], bool]] = {}
        for name, prop in obj.properties.items():
            if prop.archived:
                continue
            self._converters[name] = converter(prop)
            if prop.validates_options:
                self._options[name] = partial(_known_option, prop.option_values, prop.field_type == "checkbox")

    def known(self, props: Mapping[str, Any]) -> bool:
        """Whether every property of ``props`` and every option value it uses is registered."""
        if not self._converters.keys() >= props.keys():
            return False
        options = self._options
        return all(options[name](value) for name, value in props.items() if name in options)

    def properties(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record's properties without the audit ones (those come from the record itself)."""
        skipped = self._skipped
        return {k: v for k, v in (record.get("properties") or {}).items() if k not in skipped}

    def row(self, record: Mapping[str, Any], props: Mapping[str, Any]) -> list[Any]:
        converters = self._converters
        values: Row = {name: converters[name](value) for name, value in props.items()}
        record_id = int(record.get("id") or (record.get("properties") or {}).get("hs_object_id") or self._new_id())
        created = parse_timestamp(record["createdAt"]) if record.get("createdAt") else values.get(
            self._created_property) or now_ms()
        updated = parse_timestamp(record["updatedAt"]) if record.get("updatedAt") else values.get(
            self._modified_properties[0]) or created
        values["hs_object_id"] = record_id
        values[self._created_property] = created
        for modified in self._modified_properties:
            values[modified] = updated
        archived = bool(record.get("archived"))
        values[ARCHIVED] = int(archived)
        values[ARCHIVED_AT] = (parse_timestamp(record["archivedAt"]) if record.get("archivedAt") else updated) \
            if archived else None
        self._derive(values)
        return [values.get(c) for c in self.columns]
