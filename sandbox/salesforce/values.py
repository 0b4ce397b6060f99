"""Field values between the wire (JSON, Bulk CSV, SOQL), Python and SQLite.

Datetimes are stored as fixed-width UTC text (``2026-01-01T00:00:00.000+0000``, the form the
REST API returns), so SQL string comparison orders them correctly and output needs no work.
Booleans are stored as 0/1 and numbers natively.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, SfField
from store.ids import InvalidSalesforceId, to_18

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FieldValueError(ValueError):
    """A value a field cannot take; ``code`` is Salesforce's statusCode for it."""

    def __init__(self, code: str, message: str, field_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field_name = field_name


def format_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Salesforce datetimes are timezone-aware")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def now_stamp() -> str:
    return format_datetime(datetime.now(UTC))


def parse_datetime(text: str) -> datetime:
    """Parse the ISO 8601 forms Salesforce accepts (``Z``, ``+00:00``, ``+0000``, fractions)."""
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    match = re.match(r"^(.*[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-])(\d{2}):?(\d{2})$", value)
    if match:
        value = f"{match.group(1)}{match.group(2)}{match.group(3)}:{match.group(4)}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {text!r} has no time zone")
    return parsed


def python_to_storage(f: SfField, value: Any) -> Any:
    """Generator values (tz-aware datetimes, dates, Decimals, bools) to stored values."""
    if value is None:
        return None
    if f.type == "datetime":
        if isinstance(value, datetime):
            return format_datetime(value)
        return format_datetime(parse_datetime(str(value)))
    if f.type == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        return value.isoformat() if isinstance(value, date) else str(value)
    if f.type == "boolean":
        return 1 if value else 0
    if f.type == "int":
        return int(value)
    if f.type in NUMBER_TYPES:
        return float(value) if isinstance(value, Decimal | int | float) else float(str(value))
    return str(value)


def wire_to_storage(f: SfField, value: Any, csv: bool = False) -> Any:
    """A value from a JSON body (or a Bulk CSV cell when ``csv``) to its stored form."""
    if value is None:
        return None
    try:
        return _convert(f, value, csv)
    except (ValueError, TypeError, InvalidSalesforceId) as exc:
        if isinstance(exc, FieldValueError):
            raise
        code = "MALFORMED_ID" if f.type in ("id", "reference") else "INVALID_TYPE_ON_FIELD_IN_RECORD"
        shown = value if len(str(value)) < 80 else str(value)[:77] + "..."
        raise FieldValueError(code, f"{f.label}: value not of required type: {shown}", f.name) from None


def _convert(f: SfField, value: Any, csv: bool) -> Any:
    t = f.type
    if t == "boolean":
        if isinstance(value, bool):
            return int(value)
        if csv and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return 1 if value.lower() in ("true", "1") else 0
        raise ValueError(value)
    if t in NUMBER_TYPES:
        if isinstance(value, bool):
            raise ValueError(value)
        if isinstance(value, str):
            if not csv:
                raise ValueError(value)
            value = float(value)
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise ValueError(value)
        if t == "int":
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return number
    if not isinstance(value, str):
        raise ValueError(value)
    if t == "date":
        if not _DATE_RE.match(value):
            # the API also takes a datetime for a date field and keeps its date part
            return parse_datetime(value).date().isoformat()
        return date.fromisoformat(value).isoformat()
    if t == "datetime":
        return format_datetime(parse_datetime(value))
    if t in ("id", "reference"):
        return to_18(value) if value else None
    if t in TEXT_TYPES:
        if f.length and len(value) > f.length:
            raise FieldValueError(
                "STRING_TOO_LONG", f"{f.label}: data value too large: {value[:40]} (max length={f.length})", f.name
            )
        if t == "email" and value and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise FieldValueError("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", f.name)
        return value
    raise ValueError(value)


def storage_to_json(f: SfField, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "int":
        return int(value)
    if f.type in NUMBER_TYPES:
        return float(value)
    return value


def storage_to_csv(f: SfField, value: Any) -> str:
    if value is None:
        return ""
    if f.type == "boolean":
        return "true" if value else "false"
    if f.type == "datetime":
        return str(value).replace("+0000", "Z")
    if f.type == "int":
        return str(int(value))
    if f.type in NUMBER_TYPES:
        number = float(value)
        return str(int(number)) if number.is_integer() and f.scale == 0 else repr(number)
    return str(value)
