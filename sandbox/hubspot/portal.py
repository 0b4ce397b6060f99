"""The emulated HubSpot portal: CRM records, writes with HubSpot's validation, archives, merges.

The objects API, batch endpoints, search and the org loader all read and write through here,
so every path validates properties the same way, maintains ``createdate`` /
``hs_lastmodifieddate`` / ``hs_object_id``, derives read-only properties and honours the
"reject writes to these records" fault. Associations live beside the records
(``AssociationStore``) and never bump a record's modification date, as in HubSpot.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sandbox.faults import FaultInjector
from sandbox.hubspot.associations import TABLE as ASSOCIATIONS_TABLE
from sandbox.hubspot.associations import AssociationStore, AssociationType, default_type
from sandbox.hubspot.errors import HubSpotError, not_found, validation
from sandbox.hubspot.loading import RowBuilder
from sandbox.hubspot.schema import (
    ARCHIVED,
    ARCHIVED_AT,
    CLOSED_STAGES,
    MERGED_INTO,
    HsObjectType,
    HsProperty,
    HubSpotSchema,
    now_ms,
)
from sandbox.hubspot.values import (
    PropertyValueError,
    iso_ms,
    storage_to_wire,
    wire_to_storage,
)
from sandbox.storage import NOT_KNOWN, Storage, quote_ident, read_back

FIRST_ID = 1_000_001
# Maintained from a loaded record's id / createdAt / updatedAt, whatever its properties say.
AUDIT_PROPERTIES = frozenset({"hs_object_id", "createdate", "hs_createdate", "lastmodifieddate",
                              "hs_lastmodifieddate"})
PORTAL_ID = 62515
Row = dict[str, Any]


def property_errors(errors: Sequence[PropertyValueError]) -> str:
    return "Property values were not valid: " + json.dumps([e.to_json() for e in errors], separators=(",", ":"))


class InputError(Exception):
    """One batch input that failed; the batch answers 207 with it in ``errors``."""

    def __init__(self, category: str, message: str, context: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.context = context or {}

    def to_json(self) -> dict[str, Any]:
        return {"status": "error", "category": self.category, "message": self.message, "context": self.context,
                "errors": [], "links": {}}

    def as_error(self, status: int = 400) -> HubSpotError:
        return HubSpotError(status, self.category, self.message, self.context or None)


class HubSpotPortal:
    def __init__(self, storage: Storage, faults: FaultInjector) -> None:
        self.storage = storage
        self.faults = faults
        self.schema = HubSpotSchema(storage)
        self.associations = AssociationStore(storage)
        self._id_lock = threading.Lock()
        self._next_ids: dict[str, int] = {}

    # -- object types ----------------------------------------------------------------------
    def object_type(self, name: str) -> HsObjectType:
        obj = self.schema.get(name)
        if obj is None:
            raise validation(f"Unable to infer object type from: {name}")
        return obj

    def _new_id(self, obj: HsObjectType) -> int:
        with self._id_lock:
            if obj.name not in self._next_ids:
                row = self.storage.fetchone(f'SELECT MAX("hs_object_id") FROM {quote_ident(obj.table)}')
                self._next_ids[obj.name] = max(FIRST_ID, int(row[0] or 0) + 1) if row else FIRST_ID
            new_id = self._next_ids[obj.name]
            self._next_ids[obj.name] = new_id + 1
            return new_id

    def _bump_ids(self, obj: HsObjectType, loaded_max: int) -> None:
        with self._id_lock:
            current = self._next_ids.get(obj.name, FIRST_ID)
            self._next_ids[obj.name] = max(current, loaded_max + 1)

    # -- reads -----------------------------------------------------------------------------
    def _select(self, obj: HsObjectType, where: str, params: Sequence[Any], tail: str = "") -> list[Row]:
        columns = self.storage.table_columns(obj.table)
        rows = self.storage.fetchall(f"SELECT {columns.select_list} FROM {quote_ident(obj.table)} WHERE {where} {tail}",
                                     params)
        return [dict(zip(columns.names, r, strict=True)) for r in rows]

    def row(self, obj: HsObjectType, record_id: int, archived: bool = False) -> Row | None:
        rows = self._select(obj, f'"hs_object_id" = ? AND "{ARCHIVED}" = ?', (record_id, int(archived)))
        return rows[0] if rows else None

    def resolve(self, obj: HsObjectType, record_id: int, archived: bool = False) -> Row | None:
        """The record for ``record_id``; a merged-away id answers with the record it was merged into."""
        found = self.row(obj, record_id, archived)
        if found is not None or archived:
            return found
        return self.merged_into(obj, record_id)

    def merged_into(self, obj: HsObjectType, record_id: int) -> Row | None:
        """The live record that ``record_id`` (no live record itself) was merged into, or None."""
        for _ in range(10):  # merge chains are short
            merged = self._select(obj, '"hs_object_id" = ?', (record_id,))
            if not merged or merged[0][MERGED_INTO] is None:
                return None
            record_id = int(merged[0][MERGED_INTO])
            found = self.row(obj, record_id)
            if found is not None:
                return found
        return None

    def rows_by_ids(self, obj: HsObjectType, ids: Sequence[int], archived: bool = False) -> dict[int, Row]:
        out: dict[int, Row] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start:start + 500])
            marks = ",".join("?" for _ in part)
            for row in self._select(obj, f'"hs_object_id" IN ({marks}) AND "{ARCHIVED}" = ?', [*part, int(archived)]):
                out[int(row["hs_object_id"])] = row
        return out

    def page(self, obj: HsObjectType, after: int, limit: int, archived: bool) -> tuple[list[Row], int | None]:
        """Records by id from ``after`` (inclusive); the next page starts at the id returned."""
        rows = self._select(obj, f'"{ARCHIVED}" = ? AND "hs_object_id" >= ?', (int(archived), after),
                            f'ORDER BY "hs_object_id" LIMIT {int(limit) + 1}')
        if len(rows) > limit:
            return rows[:limit], int(rows[limit]["hs_object_id"])
        return rows, None

    def find_unique(self, obj: HsObjectType, prop: HsProperty, value: str) -> int | None:
        """The live record whose unique property ``prop`` equals ``value`` (case-insensitive for emails)."""
        stored = wire_to_storage(prop, value)
        if stored is None:
            return None
        collate = " COLLATE NOCASE" if prop.sql_type == "TEXT" else ""
        found = self.storage.fetchone(
            f'SELECT "hs_object_id" FROM {quote_ident(obj.table)} WHERE {quote_ident(prop.name)} = ?{collate} '
            f'AND "{ARCHIVED}" = 0 LIMIT 1', (stored,))
        return int(found[0]) if found else None

    def to_json(self, obj: HsObjectType, row: Row, props: Sequence[HsProperty]) -> dict[str, Any]:
        """A record in HubSpot's shape (``SimplePublicObject``)."""
        properties: dict[str, str | None] = {}
        for prop in props:
            properties[prop.name] = storage_to_wire(prop, row.get(prop.name))
        out: dict[str, Any] = {
            "id": str(row["hs_object_id"]),
            "properties": properties,
            "createdAt": iso_ms(int(row[obj.created_property] or 0)),
            "updatedAt": iso_ms(int(row[obj.modified_property] or 0)),
            "archived": bool(row[ARCHIVED]),
        }
        if row[ARCHIVED]:
            out["archivedAt"] = iso_ms(int(row[ARCHIVED_AT] or row[obj.modified_property] or 0))
        return out

    def returned_properties(self, obj: HsObjectType, requested: Sequence[str] | None) -> list[HsProperty]:
        """What a read returns: the requested properties (unknown names are ignored, as HubSpot does)
        or the object's defaults, plus the ones HubSpot always adds."""
        names = list(requested) if requested else list(obj.default_properties)
        names += [n for n in obj.always_returned if n not in names]
        return [p for n in sorted(dict.fromkeys(names)) if (p := obj.get_property(n)) is not None]

    # -- writes ----------------------------------------------------------------------------
    def unknown_properties(self, obj: HsObjectType, values: Mapping[str, Any]) -> list[PropertyValueError]:
        return [PropertyValueError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                for name in values if obj.get_property(name) is None]

    def validate(self, obj: HsObjectType, values: Mapping[str, Any], creating: bool) -> Row:
        """Stored values for a write, or an InputError listing every invalid property."""
        errors: list[PropertyValueError] = []
        out: Row = {}
        for name, value in values.items():
            prop = obj.get_property(name)
            if prop is None:
                errors.append(PropertyValueError(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
                continue
            if prop.read_only or prop.calculated or (not creating and name == obj.created_property):
                errors.append(PropertyValueError(name, "READ_ONLY_VALUE",
                                                 f"{name} is a read only property; its value cannot be set."))
                continue
            try:
                out[name] = wire_to_storage(prop, value)
            except PropertyValueError as exc:
                errors.append(exc)
        if errors:
            raise InputError("VALIDATION_ERROR", property_errors(errors))
        return out

    def _derive(self, obj: HsObjectType, changes: Row) -> None:
        if obj.name == "deals" and "dealstage" in changes:
            stage = changes["dealstage"]
            changes["hs_is_closed"] = "true" if stage in CLOSED_STAGES else "false"
            changes["hs_is_closed_won"] = "true" if CLOSED_STAGES.get(stage) else "false"
        if obj.name == "contacts" and "email" in changes:
            email = changes["email"]
            if email is not None:
                changes["email"] = email = email.strip().lower()
            changes["hs_email_domain"] = email.rpartition("@")[2] if email and "@" in email else None

    def _check_unique(self, obj: HsObjectType, changes: Row, own_id: int | None) -> None:
        for name, value in changes.items():
            prop = obj.get_property(name)
            if prop is None or not prop.has_unique_value or value is None:
                continue
            existing = self.find_unique(obj, prop, value)
            if existing is not None and existing != own_id:
                label = obj.singular.capitalize()
                raise HubSpotError(409, "CONFLICT", f"{label} already exists. Existing ID: {existing}")

    def _check_rejection(self, record_id: int) -> None:
        rejection = self.faults.write_rejection(str(record_id))
        if rejection is not None:
            fields = rejection.fields or ("hs_object_id",)
            errors = [PropertyValueError(f, rejection.error_code, rejection.message) for f in fields]
            raise InputError("VALIDATION_ERROR", property_errors(errors), {"ids": [str(record_id)]})

    def create(self, obj: HsObjectType, values: Mapping[str, Any]) -> Row:
        changes = self.validate(obj, values, creating=True)
        self._derive(obj, changes)
        self._check_unique(obj, changes, None)
        stamp = now_ms()
        record_id = self._new_id(obj)
        changes["hs_object_id"] = record_id
        if changes.get(obj.created_property) is None:
            changes[obj.created_property] = stamp
        for modified in obj.modified_properties:
            changes[modified] = stamp
        if obj.name == "deals" and "dealstage" not in changes:
            changes.update(hs_is_closed="false", hs_is_closed_won="false")
        changes[ARCHIVED] = 0
        self.storage.insert_many(obj.table, list(changes), [list(changes.values())])
        return self.row(obj, record_id) or {}

    def update(self, obj: HsObjectType, record_id: int, values: Mapping[str, Any], current: Row | None = None) -> Row:
        """Write ``values`` to a live record and return it as ``row`` reads it afterwards.

        ``current`` is the record as a batch read it moments ago (``rows_by_ids``); without it,
        it is read here. Batch endpoints pass it so that a record costs no read at all when
        ``_after_write`` can compose the result.
        """
        if current is None:
            current = self.row(obj, record_id)
        if current is None:
            raise InputError("OBJECT_NOT_FOUND", "resource not found", {"ids": [str(record_id)]})
        changes = self.validate(obj, values, creating=False)
        self._check_rejection(record_id)
        self._derive(obj, changes)
        self._check_unique(obj, changes, record_id)
        written = self._write(obj, record_id, changes)
        return self._after_write(obj, record_id, current, changes, written)

    def _after_write(self, obj: HsObjectType, record_id: int, before: Row, changes: Row, written: int) -> Row:
        """The live record after ``changes`` (stamps included) were written over ``before``.

        Reading it back was a third read of the record per update; the row is ``before`` with
        ``changes`` applied whenever SQLite stores each value as given (``read_back``), the one
        UPDATE hit exactly that record, and ``before`` has today's columns. Otherwise it is read.
        """
        columns = self.storage.table_columns(obj.table)
        if written == 1 and before.keys() == columns.name_set:
            after = dict(before)
            for name, value in changes.items():
                stored = read_back(columns.types.get(name), value)
                if stored is NOT_KNOWN:
                    break
                after[name] = stored
            else:
                return after
        return self.row(obj, record_id) or {}

    def _write(self, obj: HsObjectType, record_id: int, changes: Row) -> int:
        """Stamp and write ``changes``; returns the number of rows updated (1 for a record that exists)."""
        stamp = now_ms()
        for modified in obj.modified_properties:
            changes[modified] = stamp
        sets = ", ".join(f"{quote_ident(k)} = ?" for k in changes)
        return self.storage.execute(f'UPDATE {quote_ident(obj.table)} SET {sets} WHERE "hs_object_id" = ?',
                                    [*changes.values(), record_id])

    def archive(self, obj: HsObjectType, record_id: int) -> bool:
        """Move a record to the recycle bin; False when there is no live record (HubSpot still says 204)."""
        if self.row(obj, record_id) is None:
            return False
        self._check_rejection(record_id)
        self._write(obj, record_id, {ARCHIVED: 1, ARCHIVED_AT: now_ms()})
        return True

    def restore(self, obj: HsObjectType, record_id: int) -> None:
        """Restore an archived record from the recycle bin (a HubSpot UI action; here a Python API)."""
        if self.row(obj, record_id, archived=True) is None:
            raise not_found(f"No archived {obj.singular} with id {record_id}")
        self._write(obj, record_id, {ARCHIVED: 0, ARCHIVED_AT: None, MERGED_INTO: None})

    def merge(self, obj: HsObjectType, primary_id: int, loser_id: int) -> Row:
        """Merge ``loser_id`` into ``primary_id``: the loser is archived and points at the primary, its
        associations move over, its values fill the primary's empty properties."""
        if primary_id == loser_id:
            raise validation("Cannot merge an object with itself")
        primary, loser = self.row(obj, primary_id), self.row(obj, loser_id)
        if primary is None or loser is None:
            raise not_found(f"Could not find {obj.singular} {loser_id if primary else primary_id} to merge")
        self._check_rejection(primary_id)
        skip = {"hs_object_id", obj.created_property, *obj.modified_properties, ARCHIVED, ARCHIVED_AT, MERGED_INTO,
                "hs_merged_object_ids"}
        changes = {k: v for k, v in loser.items() if k not in skip and v is not None and primary.get(k) is None}
        if obj.name == "contacts":
            changes.pop("email", None)  # one record per email: the loser's address stays with it
        merged_ids = [i for i in (primary.get("hs_merged_object_ids") or "").split(";") if i]
        merged_ids += [str(loser_id)] + [i for i in (loser.get("hs_merged_object_ids") or "").split(";") if i]
        changes["hs_merged_object_ids"] = ";".join(merged_ids)
        self._write(obj, loser_id, {ARCHIVED: 1, ARCHIVED_AT: now_ms(), MERGED_INTO: primary_id})
        self._write(obj, primary_id, changes)
        self.associations.move(obj.name, loser_id, primary_id)
        return self.row(obj, primary_id) or {}

    # -- loading ---------------------------------------------------------------------------
    def load(self, object_type: str, records: Iterable[Mapping[str, Any]], batch: int = 20_000) -> int:
        """Insert generated records as they are (ids, timestamps and all); returns the count.

        Records are ``{"id", "properties", "createdAt", "updatedAt", "archived"}``. Properties the
        registry lacks are registered from the first record that carries them, and enumeration
        values the options lack become options, so the generator stays the source of truth.
        """
        obj = self.object_type(object_type)
        count, pending, max_id = 0, [], 0
        with self.storage.deferred_indexes(obj.table):
            builder = self._row_builder(obj)
            for record in records:
                props = builder.properties(record)
                if not builder.known(props):
                    self._flush(obj, builder.columns, pending)
                    pending = []
                    self._register(obj, props)
                    builder = self._row_builder(obj)
                row = builder.row(record, props)
                max_id = max(max_id, row[0])
                pending.append(row)
                count += 1
                if len(pending) >= batch:
                    self._flush(obj, builder.columns, pending)
                    pending = []
            self._flush(obj, builder.columns, pending)
        self._bump_ids(obj, max_id)
        return count

    def _row_builder(self, obj: HsObjectType) -> RowBuilder:
        return RowBuilder(obj, self._load_columns(obj), AUDIT_PROPERTIES, lambda: self._new_id(obj),
                          lambda values: self._derive(obj, values))

    def load_associations(self, pairs: Iterable[tuple[str, Any, str, Any]], batch: int = 50_000) -> int:
        """Associate generated ``(from_type, from_id, to_type, to_id)`` pairs with the pair's default
        (unlabeled) type, in both directions; returns the number of pairs."""
        count, pending = 0, []
        kinds: dict[tuple[str, str], tuple[str, str, AssociationType]] = {}
        with self.storage.deferred_indexes(ASSOCIATIONS_TABLE, unique_keeps_first=True):
            for from_type, from_id, to_type, to_id in pairs:
                pair = kinds.get((from_type, to_type))
                if pair is None:
                    pair = kinds[(from_type, to_type)] = self._association_kind(from_type, to_type)
                source, target, kind = pair
                pending.append((source, int(from_id), target, int(to_id), kind))
                count += 1
                if len(pending) >= batch:
                    self.associations.add_many(pending)
                    pending = []
            self.associations.add_many(pending)
        return count

    def _association_kind(self, from_type: str, to_type: str) -> tuple[str, str, AssociationType]:
        source, target = self.object_type(from_type), self.object_type(to_type)
        kind = default_type(source.name, target.name)
        if kind is None:
            raise ValueError(f"no association type from {source.name} to {target.name}")
        return source.name, target.name, kind

    @staticmethod
    def _load_columns(obj: HsObjectType) -> list[str]:
        names = ["hs_object_id", ARCHIVED, ARCHIVED_AT]
        return names + [p for p in obj.properties if p not in names]

    def _flush(self, obj: HsObjectType, columns: list[str], rows: list[list[Any]]) -> None:
        if rows:
            with self.storage.transaction():
                self.storage.insert_many(obj.table, columns, rows)

    def _register(self, obj: HsObjectType, props: Mapping[str, Any]) -> None:
        for name, value in props.items():
            prop = obj.get_property(name)
            if prop is None:
                self.schema.save_property(obj, _inferred(obj, name, value))
            elif prop.validates_options and value not in (None, ""):
                values = set(str(value).split(";") if prop.field_type == "checkbox" else [str(value)])
                if values - prop.option_values:
                    self.schema.add_options(obj, prop, values - prop.option_values)


def _inferred(obj: HsObjectType, name: str, value: Any) -> HsProperty:
    """A property for a name the generator uses but the registry lacks, typed from its value."""
    if isinstance(value, bool):
        type_, field = "bool", "booleancheckbox"
    elif isinstance(value, int | float | Decimal):
        type_, field = "number", "number"
    elif isinstance(value, datetime):
        type_, field = "datetime", "date"
    elif isinstance(value, date):
        type_, field = "date", "date"
    else:
        type_, field = "string", "text"
    group = next(iter(obj.groups))
    stamp = now_ms()
    return HsProperty(name=name, type=type_, field_type=field, group_name=group, label=name.replace("_", " "),
                      hubspot_defined=False, created_at=stamp, updated_at=stamp)
