"""HubSpot property values (always strings, or null) to Python values.

HubSpot returns every property as a string: datetimes as ISO 8601 (``2024-05-01T10:00:00.000Z``)
on CRM v3, but as epoch milliseconds on older properties and on date pickers; numbers may carry
decimals ("250000.0"); dropdowns of employee counts are ranges ("25-50", "1000+"). A value that
does not parse is returned as None rather than failing the page: the raw string stays in
``extra`` when the mapping keeps it, so nothing is lost.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_INT_PREFIX = re.compile(r"\s*(\d[\d,]*)")


def text(value: str | None) -> str | None:
    """Stripped text, None for empty strings (HubSpot sends "" for cleared properties)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def timestamp(value: str | int | None) -> datetime | None:
    """An aware UTC datetime from ISO 8601 or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def to_millis(value: datetime) -> int:
    """Epoch milliseconds, the unit of HubSpot's datetime filters."""
    return int(value.timestamp() * 1000)


def millis(value: str | None) -> int | None:
    """Epoch milliseconds of a HubSpot datetime value (the unit search filters compare in)."""
    parsed = timestamp(value)
    return None if parsed is None else to_millis(parsed)


def day(value: str | None) -> date | None:
    """The calendar date of a date or datetime property (``closedate`` is a datetime at midnight UTC)."""
    parsed = timestamp(value)
    if parsed is not None:
        return parsed.date()
    if value:
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def number(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value.replace(",", ""))
    except ValueError:
        return None


def whole_number(value: str | None) -> int | None:
    """An integer, or the lower bound of a range such as "25-50" or "1000+"."""
    parsed = number(value)
    if parsed is not None:
        return int(parsed)
    if value:
        match = _INT_PREFIX.match(value)
        if match:
            return int(match.group(1).replace(",", ""))
    return None


def flag(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() == "true"


def id_list(value: str | None) -> list[str]:
    """Ids from a multi-value property such as ``hs_merged_object_ids`` ("12;34")."""
    if not value:
        return []
    return [part.strip() for part in value.replace(",", ";").split(";") if part.strip()]


def domain_of(domain: str | None, website: str | None) -> str | None:
    """The company's domain: HubSpot's ``domain`` property, else the host of its website."""
    raw = text(domain) or text(website)
    if raw is None:
        return None
    raw = raw.lower()
    raw = re.sub(r"^[a-z][a-z0-9+.-]*://", "", raw)
    raw = raw.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    raw = raw.removeprefix("www.")
    return raw or None
