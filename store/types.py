"""Column types that keep the store honest about time and free-form data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class JsonText(str):
    """A value of a JSON column already encoded as JSON text (UTF-8, no NaN): the batched upserts write
    it as it is rather than encoding it again.

    For producers that must encode anyway to prove a value is valid JSON (no NaN), which costs
    the same as the encoding the upsert would do.
    """


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone reached the store.

    Naive datetimes are ambiguous (local time of which machine?), so the store refuses
    them; call :func:`ensure_utc` with an explicit zone at the edge that produced them.
    """


def ensure_utc(value: datetime, assume: Any = None) -> datetime:
    """Convert ``value`` to UTC; a naive value needs ``assume`` (a tzinfo) to be converted."""
    if value.tzinfo is None:
        if assume is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()} has no timezone; "
                "pass assume=<tzinfo> to say which zone it is in"
            )
        value = value.replace(tzinfo=assume)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type: values are stored as naive UTC and handed back aware.
    PostgreSQL gets ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return stored_utc(value)


def stored_utc(value: datetime | str | None) -> datetime | None:
    """A :class:`UTCDateTime` value as stored (naive UTC on SQLite, which the driver hands over as text when
    read from its own rows, see :mod:`store.cursor_rows`) made what the column reads: aware, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON on SQLite, JSONB on PostgreSQL (indexable, compact)."""
