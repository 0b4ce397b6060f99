"""Generator records to table rows for the org loader, with all per-field decisions made once.

The L org has millions of activities, so the loader cannot afford ``python_to_storage``'s type
dispatch for every value or a full id validation for ids that are already in 18-character
form: each field gets its converter when the loader starts, and each row runs only those.
Output is exactly what ``python_to_storage`` and ``to_18`` give (they remain the fallback for
any value outside the fast paths).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.schema import NUMBER_TYPES, SfField, SfObject
from sandbox.salesforce.values import python_to_storage
from store.ids import to_18

Converter = Callable[[Any], Any]
DERIVED_NAME = ("Lead", "Contact", "User")
# Upper-case letters mark a 1 bit in the id checksum, everything else a 0.
_CASE_BITS = str.maketrans({c: "1" if "A" <= c <= "Z" else "0"
                            for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"})
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checked_id(value: Any) -> str:
    """``to_18(value)``, without recomputing it when ``value`` already carries its right suffix."""
    if type(value) is str and len(value) == 18 and value.isalnum() and value.isascii():
        bits = value[:15].translate(_CASE_BITS)
        if value[15:] == (_CHECKSUM_ALPHABET[int(bits[4::-1], 2)] + _CHECKSUM_ALPHABET[int(bits[9:4:-1], 2)]
                          + _CHECKSUM_ALPHABET[int(bits[14:9:-1], 2)]):
            return value
    return to_18(value)


def _datetime(f: SfField) -> Converter:
    def convert(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is UTC and value.year >= 1000:
            return value.isoformat(timespec="milliseconds")[:23] + "+0000"
        return python_to_storage(f, value)
    return convert


def _date(f: SfField) -> Converter:
    def convert(value: Any) -> Any:
        return value.isoformat() if type(value) is date else python_to_storage(f, value)
    return convert


def _flag(value: Any) -> int:
    return 1 if value else 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def converter(f: SfField) -> Converter:
    """The function that stores a generator value of field ``f`` (never called with None)."""
    if f.type == "datetime":
        return _datetime(f)
    if f.type == "date":
        return _date(f)
    if f.type == "boolean":
        return _flag
    if f.type == "int":
        return int
    if f.type in NUMBER_TYPES:
        return _number
    return str


class RowBuilder:
    """Turns generator dicts into rows in ``fields`` order, filling in what Salesforce would:
    audit fields, owner, false booleans, a person's Name, an opportunity's IsClosed/IsWon."""

    def __init__(self, obj: SfObject, new_id: Callable[[], str], default_user: str, stamp: str) -> None:
        self.obj = obj
        self.fields = list(obj.fields.values())
        self.slots: dict[str, tuple[int, Converter]] = {}
        for i, f in enumerate(self.fields):
            self.slots[f.name] = self.slots[f.name.lower()] = (i, converter(f))
        self._new_id = new_id
        self._user = default_user
        self._stamp = stamp
        pos = {f.name: i for i, f in enumerate(self.fields)}
        self._id = pos["Id"]
        self._created, self._modified, self._modstamp = pos["CreatedDate"], pos["LastModifiedDate"], pos[
            "SystemModstamp"]
        self._created_by, self._modified_by = pos["CreatedById"], pos["LastModifiedById"]
        self._owner = pos.get("OwnerId")
        self._booleans = [i for i, f in enumerate(self.fields) if f.type == "boolean"]
        self._name = (pos["Name"], pos["FirstName"], pos["LastName"]) if obj.name in DERIVED_NAME else None
        self._stage = (pos["StageName"], pos["IsClosed"], pos["IsWon"]) if obj.name == "Opportunity" else None

    def knows_all(self, record: Mapping[str, Any]) -> bool:
        """Whether every key of ``record`` is a field name this builder was made with."""
        return self.slots.keys() >= record.keys()

    def row(self, record: Mapping[str, Any]) -> list[Any]:
        row: list[Any] = [None] * len(self.fields)
        slots = self.slots
        for key, value in record.items():
            if value is not None:
                i, convert = slots.get(key) or slots[key.lower()]
                row[i] = convert(value)
        row[self._id] = checked_id(row[self._id]) if row[self._id] else self._new_id()
        created = row[self._created] = row[self._created] or self._stamp
        modified = row[self._modified] = row[self._modified] or created
        row[self._modstamp] = row[self._modstamp] or modified
        created_by = row[self._created_by] = row[self._created_by] or self._user
        row[self._modified_by] = row[self._modified_by] or created_by
        if self._owner is not None and row[self._owner] is None:
            row[self._owner] = self._user
        for i in self._booleans:
            if row[i] is None:
                row[i] = 0
        if self._name is not None:
            name, first, last = self._name
            if row[name] is None:
                row[name] = " ".join(x for x in (row[first], row[last]) if x)
        if self._stage is not None:
            stage_at, closed_at, won_at = self._stage
            if "IsClosed" not in record and row[stage_at]:
                stage = row[stage_at].lower()
                row[closed_at] = 1 if stage.startswith("closed") else 0
                row[won_at] = 1 if stage == "closed won" else 0
        return row
