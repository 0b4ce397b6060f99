"""Property values between the wire (JSON strings), Python and SQLite.

HubSpot sends every property value as a string: numbers as ``"1200.5"``, datetimes as ISO 8601
with milliseconds and ``Z``, dates as ``YYYY-MM-DD``, booleans as ``"true"``/``"false"``. It
accepts datetimes and dates as ISO text or epoch milliseconds. Datetimes and dates are stored as
epoch milliseconds and numbers as REAL, so search compares them numerically in SQL.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.hubspot.schema import HsProperty


class PropertyValueError(ValueError):
    """One invalid property value, reported the way HubSpot lists them in VALIDATION_ERROR bodies."""

    def __init__(self, name: str, error: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.error = error
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"isValid": False, "message": self.message, "error": self.error, "name": self.name,
                "localizedErrorMessage": self.message}


def iso_ms(ms: int) -> str:
    """``2024-05-01T10:20:30.123Z``, HubSpot's datetime form."""
    # isoformat, not strftime: 4.6 µs against 7.7, for every timestamp of every record served
    return f"{datetime.fromtimestamp(ms // 1000, UTC).replace(tzinfo=None).isoformat()}.{ms % 1000:03d}Z"


def to_ms(value: datetime | date) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: HubSpot timestamps are timezone-aware")
        return int(value.timestamp() * 1000)
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)


def parse_timestamp(raw: Any) -> int:
    """Epoch milliseconds from ms (int or digits) or ISO 8601 text (``Z`` or an offset)."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a timestamp")
    if isinstance(raw, int | float):
        return int(raw)
    if isinstance(raw, datetime | date):
        return to_ms(raw)
    text = str(raw).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if len(text) == 10:
        return to_ms(date.fromisoformat(text))
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return to_ms(parsed)


def _number(prop: HsProperty, value: Any) -> float:
    if isinstance(value, bool):
        raise PropertyValueError(prop.name, "INVALID_LONG", f"{str(value).lower()} was not a valid number.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise PropertyValueError(prop.name, "INVALID_LONG", f"{value} was not a valid number.") from None
    if not number.is_finite():
        raise PropertyValueError(prop.name, "INVALID_LONG", f"{value} was not a valid number.")
    return float(number)


def wire_to_storage(prop: HsProperty, value: Any) -> Any:
    """Validate one written value; ``""`` and null clear the property (HubSpot's rule)."""
    if value is None or value == "":
        return None
    if prop.type == "number":
        return _number(prop, value)
    if prop.type in ("datetime", "date"):
        try:
            ms = parse_timestamp(value)
        except (ValueError, OverflowError):
            raise PropertyValueError(prop.name, "INVALID_DATE", f"{value} was not a valid date.") from None
        if prop.type == "date" and ms % 86_400_000:
            moment = datetime.fromtimestamp(ms / 1000, UTC)
            raise PropertyValueError(prop.name, "INVALID_DATE", f"{value} is at {moment:%H:%M:%S}.{ms % 1000:03d} "
                                     "UTC, not midnight!")
        return ms
    if prop.type == "bool" or (prop.type == "enumeration" and prop.field_type == "booleancheckbox"):
        text = str(value).lower()
        if text not in ("true", "false"):
            raise PropertyValueError(prop.name, "INVALID_BOOLEAN", f"{value} was not a valid boolean.")
        return text
    text = value if isinstance(value, str) else _plain(value)
    if prop.validates_options:
        allowed = prop.option_values
        chosen = text.split(";") if prop.field_type == "checkbox" else [text]
        bad = [v for v in chosen if v not in allowed]
        if bad:
            raise PropertyValueError(prop.name, "INVALID_OPTION", f"{bad[0]} was not one of the allowed options: "
                                     f"[{', '.join(sorted(allowed))}]")
    return text


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def python_to_storage(prop: HsProperty, value: Any) -> Any:
    """Generator values (strings as HubSpot sends them, or Python numbers/datetimes) to stored values."""
    if value is None or value == "":
        return None
    if prop.type == "number":
        return float(value) if not isinstance(value, str) else float(Decimal(value))
    if prop.type in ("datetime", "date"):
        return parse_timestamp(value)
    return _plain(value) if not isinstance(value, str) else value


def storage_to_wire(prop: HsProperty, stored: Any) -> str | None:
    if stored is None:
        return None
    if prop.type == "number":
        number = float(stored)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return repr(number)
    if prop.type == "datetime":
        return iso_ms(int(stored))
    if prop.type == "date":
        return datetime.fromtimestamp(int(stored) / 1000, UTC).strftime("%Y-%m-%d")
    return str(stored)


def filter_value(prop: HsProperty, raw: Any) -> Any:
    """A search filter value in storage form (comparisons run in SQL on stored values)."""
    if prop.type == "number":
        try:
            return float(Decimal(str(raw).strip()))
        except InvalidOperation:
            raise ValueError(f"{raw!r} is not a number (property {prop.name})") from None
    if prop.type in ("datetime", "date"):
        try:
            return parse_timestamp(raw)
        except (ValueError, OverflowError):
            raise ValueError(f"{raw!r} is not a date: use epoch milliseconds or ISO 8601 (property "
                             f"{prop.name})") from None
    if prop.type == "bool":
        return str(raw).lower()
    return str(raw)
