"""The emulated Salesforce org: records, writes with Salesforce's validation, deletes.

REST, sObject Collections, Bulk API 2.0 ingest and the org loader all write through here,
so every path validates fields the same way, maintains LastModifiedDate / SystemModstamp /
LastModifiedById, derives read-only fields (Name, IsClosed, IsWon) and honours the
"reject writes to these records" fault.
"""

from __future__ import annotations

import itertools
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.faults import FaultInjector
from sandbox.salesforce.errors import SalesforceError
from sandbox.salesforce.inference import infer_field
from sandbox.salesforce.loading import DERIVED_NAME, RowBuilder
from sandbox.salesforce.schema import (
    DELETED_LOG_TABLE,
    HIDDEN_DELETED_AT,
    SalesforceSchema,
    SfField,
    SfObject,
)
from sandbox.salesforce.values import (
    FieldValueError,
    now_stamp,
    storage_to_json,
    wire_to_storage,
)
from sandbox.storage import Storage, quote_ident
from store.ids import to_18

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
INTEGRATION_USERNAME = "integration@abm-sync.sandbox"

# Defaults Salesforce fills in for required picklists when a record is created without them.
_CREATE_DEFAULTS = {
    "Lead": {"Status": "Open - Not Contacted"},
    "Task": {"Status": "Not Started", "Priority": "Normal"},
    "CampaignMember": {"Status": "Sent"},
}


class RecordError(SalesforceError):
    """A per-record failure: answers 400 on single-record calls, an error entry in batches."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(400, code, message, fields if fields is not None else [])

    def as_result(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


class SalesforceOrg:
    def __init__(self, storage: Storage, faults: FaultInjector) -> None:
        self.storage = storage
        self.schema = SalesforceSchema(storage)
        self.faults = faults
        self._id_counter = itertools.count(int.from_bytes(secrets.token_bytes(3), "big"))
        self.integration_user_id = self._ensure_integration_user()

    # -- objects ---------------------------------------------------------------------------
    def object(self, name: str) -> SfObject:
        obj = self.schema.get(name)
        if obj is None:
            raise SalesforceError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")
        return obj

    def new_id(self, obj: SfObject) -> str:
        while True:
            candidate = to_18(obj.key_prefix + "5b" + _base62(next(self._id_counter), 10))
            if self.storage.fetchone(f'SELECT 1 FROM {quote_ident(obj.table)} WHERE "Id" = ?', (candidate,)) is None:
                return candidate

    def _ensure_integration_user(self) -> str:
        user = self.object("User")
        row = self.storage.fetchone(
            f'SELECT "Id" FROM {quote_ident(user.table)} WHERE "Username" = ?', (INTEGRATION_USERNAME,)
        )
        if row:
            return str(row[0])
        user_id = self.new_id(user)
        stamp = now_stamp()
        values = {
            "Id": user_id, "Username": INTEGRATION_USERNAME, "FirstName": "Integration", "LastName": "User",
            "Name": "Integration User", "Email": INTEGRATION_USERNAME, "IsActive": 1, "IsDeleted": 0,
            "CreatedDate": stamp, "CreatedById": user_id, "LastModifiedDate": stamp,
            "LastModifiedById": user_id, "SystemModstamp": stamp,
        }
        self.storage.insert_many(user.table, list(values), [list(values.values())])
        return user_id

    # -- reads -----------------------------------------------------------------------------
    def row(self, obj: SfObject, record_id: str, include_deleted: bool = False) -> dict[str, Any] | None:
        try:
            record_id = to_18(record_id)
        except ValueError:
            return None
        names, sql = obj.derived(("row", include_deleted), lambda: _row_sql(obj, include_deleted))
        found = self.storage.fetchone(sql, (record_id,))
        return dict(zip(names, found, strict=True)) if found else None

    def to_json(
        self, obj: SfObject, stored: Mapping[str, Any], version: str, fields: Iterable[SfField] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{stored['Id']}"}
        }
        for f in fields if fields is not None else obj.fields.values():
            out[f.name] = storage_to_json(f, stored.get(f.name))
        return out

    # -- writes ----------------------------------------------------------------------------
    def _validated(self, obj: SfObject, values: Mapping[str, Any], creating: bool, csv: bool) -> dict[str, Any]:
        return _checked(obj, _field_plan(obj, values, creating), values, csv)

    def _derive(self, obj: SfObject, row: dict[str, Any]) -> None:
        if obj.name in DERIVED_NAME and ("FirstName" in row or "LastName" in row):
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        if obj.name == "Opportunity" and "StageName" in row:
            stage = (row.get("StageName") or "").lower()
            row["IsClosed"] = 1 if stage.startswith("closed") else 0
            row["IsWon"] = 1 if stage == "closed won" else 0

    def _check_rejection(self, record_id: str) -> None:
        rejection = self.faults.write_rejection(record_id)
        if rejection is not None:
            raise RecordError(rejection.error_code, rejection.message, list(rejection.fields))

    def create(self, obj: SfObject, values: Mapping[str, Any], user_id: str, csv: bool = False) -> str:
        row = self._validated(obj, values, creating=True, csv=csv)
        for name, default in _CREATE_DEFAULTS.get(obj.name, {}).items():
            row.setdefault(name, default)
        missing = [
            f.name for f in obj.fields.values()
            if f.createable and not f.nillable and f.type != "boolean" and f.name != "OwnerId"
            and row.get(f.name) is None
        ]
        if missing:
            raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        record_id = self.new_id(obj)
        stamp = now_stamp()
        row.update(
            Id=record_id, IsDeleted=0, CreatedDate=stamp, CreatedById=user_id, LastModifiedDate=stamp,
            LastModifiedById=user_id, SystemModstamp=stamp,
        )
        if obj.field("OwnerId") is not None:
            row.setdefault("OwnerId", user_id)
        for f in obj.fields.values():
            if f.type == "boolean" and f.name not in row:
                row[f.name] = 0
        self._derive(obj, row)
        self.storage.insert_many(obj.table, list(row), [list(row.values())])
        return record_id

    def update(
        self, obj: SfObject, record_id: str, values: Mapping[str, Any], user_id: str, csv: bool = False
    ) -> None:
        current = self.row(obj, record_id)
        if current is None:
            raise RecordError("ENTITY_IS_DELETED" if self.row(obj, record_id, True) else "INVALID_CROSS_REFERENCE_KEY",
                              "entity is deleted" if self.row(obj, record_id, True) else
                              f"invalid cross reference id: {record_id}")
        changes = self._validated(obj, values, creating=False, csv=csv)
        self._check_rejection(current["Id"])
        self._write_update(obj, current, changes, user_id)

    def _write_update(self, obj: SfObject, current: Mapping[str, Any], changes: dict[str, Any], user_id: str) -> None:
        """Store validated ``changes`` (and the fields they derive, and the audit fields) on the live
        record ``current`` (its ``Id``, and ``FirstName``/``LastName`` where ``Name`` derives from them)."""
        if obj.name in DERIVED_NAME and ("FirstName" in changes or "LastName" in changes):
            merged = {**current, **changes}
            changes["Name"] = " ".join(p for p in (merged.get("FirstName"), merged.get("LastName")) if p)
        else:
            self._derive(obj, changes)
        stamp = now_stamp()
        changes.update(LastModifiedDate=stamp, LastModifiedById=user_id, SystemModstamp=stamp)
        sql = obj.derived(("update", *changes), lambda: _update_sql(obj, changes))
        self.storage.execute(sql, [*changes.values(), current["Id"]])

    def delete(self, obj: SfObject, record_id: str, user_id: str) -> None:
        current = self.row(obj, record_id)
        if current is None:
            if self.row(obj, record_id, include_deleted=True):
                raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
            raise not_found_record()
        self._check_rejection(current["Id"])
        self._write_delete(obj, current["Id"], user_id)

    def _write_delete(self, obj: SfObject, stored_id: str, user_id: str) -> None:
        stamp = now_stamp()
        self.storage.execute(
            f'UPDATE {quote_ident(obj.table)} SET "IsDeleted" = 1, "{HIDDEN_DELETED_AT}" = ?, '
            '"LastModifiedDate" = ?, "LastModifiedById" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
            (stamp, stamp, user_id, stamp, stored_id),
        )

    # -- recycle bin and merges (SOAP and UI operations: reached through the Python API) --------
    def undelete(self, obj: SfObject, record_id: str, user_id: str) -> None:
        """Restore a record from the recycle bin, as SOAP ``undelete()`` does."""
        current = self.row(obj, record_id, include_deleted=True)
        if current is None or not current["IsDeleted"]:
            raise SalesforceError(400, "UNDELETE_FAILED", f"Entity is not in the recycle bin: {record_id}")
        stamp = now_stamp()
        self.storage.execute(
            f'UPDATE {quote_ident(obj.table)} SET "IsDeleted" = 0, "{HIDDEN_DELETED_AT}" = NULL, '
            '"LastModifiedDate" = ?, "LastModifiedById" = ?, "SystemModstamp" = ? WHERE "Id" = ?',
            (stamp, user_id, stamp, current["Id"]),
        )

    def hard_delete(self, obj: SfObject, record_id: str) -> None:
        """Delete for good (Bulk hard delete, or emptying the recycle bin): no query returns the record
        any more, only the ``deleted/`` window still lists its id."""
        current = self.row(obj, record_id, include_deleted=True)
        if current is None:
            raise not_found_record()
        found = self.storage.fetchone(
            f'SELECT "{HIDDEN_DELETED_AT}" FROM {quote_ident(obj.table)} WHERE "Id" = ?', (current["Id"],)
        )
        deleted_at = (found[0] if found else None) or now_stamp()
        with self.storage.transaction():
            self.storage.execute(f'DELETE FROM {quote_ident(obj.table)} WHERE "Id" = ?', (current["Id"],))
            self.storage.execute(
                f'INSERT INTO {DELETED_LOG_TABLE} (object, "Id", deleted_at) VALUES (?, ?, ?)',
                (obj.name, current["Id"], deleted_at),
            )

    def merge(self, obj: SfObject, master_id: str, loser_ids: Iterable[str], user_id: str) -> None:
        """SOAP ``merge()``: the losers are deleted with ``MasterRecordId`` set to the master, and every
        record that pointed at a loser (contacts, opportunities, tasks...) points at the master."""
        if obj.field("MasterRecordId") is None:
            raise SalesforceError(400, "INVALID_TYPE", f"{obj.name} records cannot be merged")
        master = self.row(obj, master_id)
        if master is None:
            raise SalesforceError(400, "ENTITY_IS_DELETED", f"master record {master_id} is deleted or does not exist")
        losers = []
        for loser_id in loser_ids:
            loser = self.row(obj, loser_id)
            if loser is None or loser["Id"] == master["Id"]:
                raise SalesforceError(400, "INVALID_ID_FIELD", f"cannot merge {loser_id} into {master_id}")
            losers.append(loser["Id"])
        if not 1 <= len(losers) <= 2:
            raise SalesforceError(400, "INVALID_OPERATION", "merge takes one master and one or two other records")
        stamp = now_stamp()
        marks = ", ".join("?" for _ in losers)
        with self.storage.transaction():
            for other in self.schema.objects.values():
                for f in other.fields.values():
                    if f.type != "reference" or obj.name not in f.reference_to or f.name == "MasterRecordId":
                        continue
                    self.storage.execute(
                        f'UPDATE {quote_ident(other.table)} SET {quote_ident(f.name)} = ?, "LastModifiedDate" = ?, '
                        f'"LastModifiedById" = ?, "SystemModstamp" = ? WHERE {quote_ident(f.name)} IN ({marks}) '
                        'AND "IsDeleted" = 0',
                        (master["Id"], stamp, user_id, stamp, *losers),
                    )
            self.storage.execute(
                f'UPDATE {quote_ident(obj.table)} SET "IsDeleted" = 1, "{HIDDEN_DELETED_AT}" = ?, '
                '"MasterRecordId" = ?, "LastModifiedDate" = ?, "LastModifiedById" = ?, "SystemModstamp" = ? '
                f'WHERE "Id" IN ({marks})',
                (stamp, master["Id"], stamp, user_id, stamp, *losers),
            )

    def find_by(self, obj: SfObject, field_name: str, value: str) -> list[str]:
        """Ids of live records whose ``field_name`` equals ``value`` (upsert by external id)."""
        f = obj.field(field_name)
        if f is None:
            return []
        stored = wire_to_storage(f, value, csv=True)
        rows = self.storage.fetchall(
            f'SELECT "Id" FROM {quote_ident(obj.table)} WHERE {quote_ident(f.name)} = ? AND "IsDeleted" = 0 LIMIT 2',
            (stored,),
        )
        return [r[0] for r in rows]

    # -- windows ---------------------------------------------------------------------------
    def updated_ids(self, obj: SfObject, start: str, end: str) -> list[str]:
        rows = self.storage.fetchall(
            f'SELECT "Id" FROM {quote_ident(obj.table)} WHERE "IsDeleted" = 0 AND "SystemModstamp" >= ? '
            'AND "SystemModstamp" < ? ORDER BY "SystemModstamp", "Id"',
            (start, end),
        )
        return [r[0] for r in rows]

    def deleted_records(self, obj: SfObject, start: str, end: str) -> list[tuple[str, str]]:
        """Records deleted in ``[start, end)``: in the recycle bin, or hard-deleted."""
        return [
            (r[0], r[1])
            for r in self.storage.fetchall(
                f'SELECT "Id", "{HIDDEN_DELETED_AT}" AS at FROM {quote_ident(obj.table)} WHERE "IsDeleted" = 1 '
                f'AND "{HIDDEN_DELETED_AT}" >= ? AND "{HIDDEN_DELETED_AT}" < ? '
                f'UNION ALL SELECT "Id", deleted_at AS at FROM {DELETED_LOG_TABLE} WHERE object = ? '
                'AND deleted_at >= ? AND deleted_at < ? ORDER BY at',
                (start, end, obj.name, start, end),
            )
        ]

    # -- loading ---------------------------------------------------------------------------
    def load(self, object_name: str, records: Iterable[Mapping[str, Any]], batch: int = 20_000) -> int:
        """Insert generated records as they are (ids, audit fields and all); returns the count.

        Fields the registry lacks are registered from the first record that carries them, so
        the generator stays the source of truth for what the org contains. Audit fields and
        derived fields the generator leaves out get the values Salesforce would have. Into an
        empty table, secondary indexes are built once after the load (``Storage.deferred_indexes``).
        """
        obj = self.object(object_name)
        count, pending = 0, []
        with self.storage.deferred_indexes(obj.table):
            builder = self._row_builder(obj)
            for record in records:
                if not builder.knows_all(record) and any(obj.field(k) is None for k in record):
                    self._flush(obj, builder.fields, pending)
                    pending = []
                    self._register_unknown(obj, record)
                    builder = self._row_builder(obj)
                pending.append(builder.row(record))
                count += 1
                if len(pending) >= batch:
                    self._flush(obj, builder.fields, pending)
                    pending = []
            self._flush(obj, builder.fields, pending)
        return count

    def _row_builder(self, obj: SfObject) -> RowBuilder:
        return RowBuilder(obj, lambda: self.new_id(obj), self.integration_user_id, now_stamp())

    def _flush(self, obj: SfObject, fields: list[SfField], rows: list[list[Any]]) -> None:
        if rows:
            with self.storage.transaction():
                self.storage.insert_many(obj.table, [f.name for f in fields], rows)

    def _register_unknown(self, obj: SfObject, record: Mapping[str, Any]) -> None:
        for key, value in record.items():
            if obj.field(key) is None:
                self.schema.add_field(obj.name, infer_field(key, value))


class BulkWriter:
    """The updates and deletes of one Bulk API 2.0 ingest job, a chunk of records at a time.

    Each record gets the checks, errors and stored values :meth:`SalesforceOrg.update` and
    :meth:`SalesforceOrg.delete` give it, in the same order, but the chunk's records are read
    in one query (their ``Id``, ``IsDeleted`` and what derived fields need, not every field),
    kept current as the job writes them, and each column set's checks and ``UPDATE`` are
    prepared once. Use it under ``storage.batched()``: what :meth:`load` read must not be
    changed by anyone else while the chunk is written.
    """

    CHUNK = 500  # ids per SELECT ... IN (...)

    def __init__(self, org: SalesforceOrg, obj: SfObject, user_id: str) -> None:
        self.org, self.obj, self.user_id = org, obj, user_id
        self._columns = ["Id", "IsDeleted"] + (["FirstName", "LastName"] if obj.name in DERIVED_NAME else [])
        cols = ", ".join(quote_ident(c) for c in self._columns)
        self._select = f"SELECT {cols} FROM {quote_ident(obj.table)} WHERE \"Id\" IN "
        self._known: dict[str, dict[str, Any] | None] = {}  # 18-char id -> the row (None: no such record)
        self._keys: dict[str, str | None] = {}  # ids as the job gives them -> 18-char id (None: not an id)
        self._plans: dict[tuple[str, ...], list[tuple[str, SfField | None, bool]]] = {}

    def load(self, record_ids: Iterable[str]) -> None:
        """Read these records (ids as given in the job, valid or not) for the writes that follow."""
        self._known = {}
        self._keys = {raw: _valid_id18(raw) for raw in record_ids}
        wanted = list(dict.fromkeys(k for k in self._keys.values() if k))
        for start in range(0, len(wanted), self.CHUNK):
            part = wanted[start : start + self.CHUNK]
            marks = ", ".join("?" for _ in part)
            for found in self.org.storage.fetchall(f"{self._select}({marks})", part):
                self._known[found[0]] = dict(zip(self._columns, found, strict=True))
            for key in part:
                self._known.setdefault(key, None)

    def forget(self, record_id: str) -> None:
        """A record was created with this id: read it again if the job names it."""
        self._known.pop(record_id, None)

    def _current(self, record_id: str) -> dict[str, Any] | None:
        """The record, live or deleted, as ``org.row(obj, record_id, include_deleted=True)`` finds it."""
        key = self._keys[record_id] if record_id in self._keys else _valid_id18(record_id)
        if key is None:
            return None
        if key not in self._known:
            found = self.org.storage.fetchone(f"{self._select}(?)", (key,))
            self._known[key] = dict(zip(self._columns, found, strict=True)) if found else None
        return self._known[key]

    def update(self, record_id: str, values: Mapping[str, Any]) -> str:
        """Update from Bulk CSV cells; returns the record's 18-character id."""
        current = self._current(record_id) if record_id else None
        if current is None or current["IsDeleted"] != 0:
            if record_id and current is not None:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
        keys = tuple(values)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = _field_plan(self.obj, keys, creating=False)
        changes = _checked(self.obj, plan, values, csv=True)
        self.org._check_rejection(current["Id"])
        self.org._write_update(self.obj, current, changes, self.user_id)
        current.update(changes)
        return str(current["Id"])

    def delete(self, record_id: str) -> str:
        """Soft-delete (to the recycle bin); returns the record's 18-character id."""
        current = self._current(record_id) if record_id else None
        if current is None or current["IsDeleted"] != 0:
            raise RecordError("ENTITY_IS_DELETED" if record_id and current is not None
                              else "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {record_id}")
        self.org._check_rejection(current["Id"])
        self.org._write_delete(self.obj, current["Id"], self.user_id)
        current["IsDeleted"] = 1
        return str(current["Id"])


def _valid_id18(record_id: str) -> str | None:
    try:
        return to_18(record_id)
    except ValueError:
        return None


def _row_sql(obj: SfObject, include_deleted: bool) -> tuple[list[str], str]:
    names = obj.field_names()
    cols = ", ".join(quote_ident(n) for n in names)
    deleted = "" if include_deleted else ' AND "IsDeleted" = 0'
    return names, f'SELECT {cols} FROM {quote_ident(obj.table)} WHERE "Id" = ?{deleted}'


def _update_sql(obj: SfObject, changes: Iterable[str]) -> str:
    sets = ", ".join(f"{quote_ident(k)} = ?" for k in changes)
    return f'UPDATE {quote_ident(obj.table)} SET {sets} WHERE "Id" = ?'


def _field_plan(obj: SfObject, keys: Iterable[str], creating: bool) -> list[tuple[str, SfField | None, bool]]:
    """For each key: its field (None: no such field) and whether it may be written."""
    plan = []
    for key in keys:
        f = obj.field(key)
        plan.append((key, f, f is not None and (f.createable if creating else f.updateable)))
    return plan


def _checked(
    obj: SfObject, plan: list[tuple[str, SfField | None, bool]], values: Mapping[str, Any], csv: bool
) -> dict[str, Any]:
    """``values`` (keyed as ``plan``) validated and converted to stored values, keyed by field name."""
    out: dict[str, Any] = {}
    for key, f, allowed in plan:
        value = values[key]
        if f is None:
            raise RecordError("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key])
        if not allowed:
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {f.name}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.",
                [f.name],
            )
        if csv and value == "":
            continue  # Bulk API: an empty cell leaves the field unchanged; #N/A clears it
        if csv and value == "#N/A":
            value = None
        try:
            stored = wire_to_storage(f, value, csv=csv)
        except FieldValueError as exc:
            raise RecordError(exc.code, exc.message, [exc.field_name]) from None
        if stored is None and not f.nillable and f.type != "boolean":
            raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{f.name}]", [f.name])
        out[f.name] = 0 if stored is None and f.type == "boolean" else stored
    return out


def not_found_record() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
