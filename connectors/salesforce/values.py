"""Salesforce field values, from REST JSON or Bulk CSV, to Python values by the field's describe type.

REST answers typed JSON (numbers, booleans, ISO datetimes); Bulk API 2.0 answers CSV where
everything is text and an empty cell is null. One converter per describe type accepts both,
so the mapping never cares which API read a record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

Converter = Callable[[Any], Any]


def _text(value: Any) -> Any:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return None
    return str(value).strip().lower() == "true"


def _integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value) if isinstance(value, int) else int(float(value))


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def parse_datetime(value: Any) -> datetime | None:
    """``2024-05-01T12:00:00.000+0000`` (REST) or ``...Z`` (Bulk) to an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"Salesforce datetime without a time zone: {value!r}")
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(value[:10])


_BY_TYPE: dict[str, Converter] = {
    "boolean": _boolean,
    "int": _integer,
    "double": _number,
    "currency": _number,
    "percent": _number,
    "datetime": parse_datetime,
    "date": parse_date,
}


def converter(sf_type: str) -> Converter:
    """The converter for a describe ``type`` (text for everything not numeric, boolean or temporal)."""
    return _BY_TYPE.get(sf_type, _text)


def midnight_utc(day: date | None) -> datetime | None:
    """A date field as a timestamp (Salesforce dates carry no time: start of the day, UTC)."""
    return datetime.combine(day, time(), tzinfo=UTC) if day is not None else None


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal, to the millisecond (Salesforce's precision)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def truncate_to_ms(value: datetime) -> datetime:
    """Bounds are compared with millisecond stamps: keep them exactly representable in SOQL."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def json_value(value: Any) -> Any:
    """A converted value as JSON can hold it (for ``extra``)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
