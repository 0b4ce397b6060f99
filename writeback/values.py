"""What each catalogue field should hold for one record: plain rows in, canonical text out.

Values are compared and remembered (``writeback_state.value``) in one canonical text form per
field type, the form they are written in: numbers rounded to the field's scale, text cut to its
length, timestamps as UTC ISO 8601 with milliseconds. So "did it change?" compares exactly
what the CRM holds, not floats that differ in the 12th digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from writeback.catalogue import CatalogueField

# Match decisions that name an account a rep can rely on; "review" and "none" do not.
CONFIDENT_DECISIONS = frozenset({"auto", "pinned", "crm"})


@dataclass(frozen=True)
class ScoreValues:
    """The score row of the entity whose scores a record shows."""

    engagement: float | None = None
    sales_activity: float | None = None
    marketing: float | None = None
    fit: float | None = None
    grade: int | None = None
    predictive: float | None = None
    trend: str | None = None
    alignment: str | None = None
    reasons_text: str | None = None
    scored_at: datetime | None = None


@dataclass(frozen=True)
class MatchValues:
    """A person's match; ``account_crm_id`` is the matched account's id in the person's own CRM."""

    decision: str
    account_crm_id: str | None = None
    confidence: float | None = None  # 0-1
    reason: str | None = None


@dataclass(frozen=True)
class TargetRecord:
    """One CRM record to write: its id and where its values come from."""

    crm_id: str
    score: ScoreValues
    match: MatchValues | None = None


def source_value(source: str, record: TargetRecord) -> Any:
    """The raw value of ``source`` for ``record`` (before formatting for a field)."""
    score, match = record.score, record.match
    if source == "reasons":
        return score.reasons_text
    if source in ("matched_account", "match_confidence", "match_reason"):
        if match is None:
            return None
        if source == "matched_account":
            return match.account_crm_id if match.decision in CONFIDENT_DECISIONS else None
        if source == "match_confidence":
            return None if match.confidence is None else match.confidence * 100.0
        return match.reason
    return getattr(score, source)


def number_text(number: float, scale: int) -> str:
    """``number`` rounded half up to ``scale`` decimals, as its decimal text shows it (never "-0.0")."""
    scaled = abs(number) * 10**scale
    if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
        # A tie: formatting would round half to even on the binary value; decide on the decimal text.
        rounded = Decimal(repr(number)).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        text = str(rounded)
    else:
        text = f"{number:.{scale}f}"  # fast, and exact away from ties
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def canonical(field: CatalogueField, value: Any) -> str | None:
    """``value`` in the canonical text of ``field``'s type; None for "no value"."""
    if value is None:
        return None
    kind = field.type
    if kind == "number":
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return None
        return number_text(number, field.spec.scale)
    if kind == "datetime" or (isinstance(value, datetime) and kind == "text"):
        if not isinstance(value, datetime):
            raise TypeError(f"{field.api_name}: expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError(f"{field.api_name}: naive datetime {value.isoformat()} (the store keeps UTC)")
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    text = str(value).strip()
    if not text:
        return None
    return text[: field.spec.length] if kind == "text" else text


def desired_values(record: TargetRecord, fields: Sequence[CatalogueField]) -> dict[str, str | None]:
    """Every catalogue field of the record's object, by API name, in canonical text."""
    return {f.api_name: canonical(f, source_value(f.source, record)) for f in fields}
