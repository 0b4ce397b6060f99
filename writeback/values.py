"""What each catalogue field should hold for one record: plain rows in, canonical text out.

Values are compared and remembered (``writeback_state.value``) in one canonical text form per
field type, the form they are written in: numbers rounded to the field's scale, text cut to its
length, timestamps as UTC ISO 8601 with milliseconds. So "did it change?" compares exactly
what the CRM holds, not floats that differ in the 12th digit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from writeback.catalogue import CatalogueField

# Match decisions that name an account a rep can rely on; "review" and "none" do not.
CONFIDENT_DECISIONS = frozenset({"auto", "pinned", "crm"})


# Named tuples, not frozen dataclasses: an incremental L run builds about half a million of these
# from its target rows, and a frozen dataclass's __init__ (one object.__setattr__ per field)
# cost three times what building the tuple does.
class ScoreValues(NamedTuple):
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


class MatchValues(NamedTuple):
    """A person's match; ``account_crm_id`` is the matched account's id in the person's own CRM."""

    decision: str
    account_crm_id: str | None = None
    confidence: float | None = None  # 0-1
    reason: str | None = None


class TargetRecord(NamedTuple):
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
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        if utc.year >= 1000:  # isoformat pads years to four digits, strftime does not: same text from here
            return utc.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" written as "Z", 4x faster
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    text = str(value).strip()
    if not text:
        return None
    return text[: field.spec.length] if kind == "text" else text


def desired_values(record: TargetRecord, fields: Sequence[CatalogueField]) -> dict[str, str | None]:
    """Every catalogue field of the record's object, by API name, in canonical text."""
    return {f.api_name: canonical(f, source_value(f.source, record)) for f in fields}


ValueReader = Callable[[TargetRecord], "str | None"]


def _source_reader(source: str) -> Callable[[TargetRecord], Any]:
    """:func:`source_value` for one source, decided once instead of once per record."""
    if source == "reasons":
        return attrgetter("score.reasons_text")
    if source == "matched_account":
        return lambda r: (r.match.account_crm_id if r.match is not None and r.match.decision in CONFIDENT_DECISIONS
                          else None)
    if source == "match_confidence":
        return lambda r: None if r.match is None or r.match.confidence is None else r.match.confidence * 100.0
    if source == "match_reason":
        return lambda r: None if r.match is None else r.match.reason
    return attrgetter(f"score.{source}")


# Texts remembered per field so that equal values share one string (see field_reader); past this many, it starts over.
_SHARED_TEXTS = 1 << 16
# Text sources whose values repeat across records (the scoring time, an account's id on its people): each value is
# formatted once and its text shared. Equal values format alike (times in any zone are written in UTC).
_REPEATING_SOURCES = frozenset({"scored_at", "matched_account", "trend", "alignment"})
_UNSEEN: Any = object()


def field_reader(field: CatalogueField) -> ValueReader:
    """``canonical(field, source_value(field.source, record))`` as one function of the record.

    An incremental L run formats about a million values (records times fields): deciding the
    source and the type once per field, not once per value, halves what that costs. Numbers,
    most of the values, are formatted here; other types go through :func:`canonical`.

    Equal numbers (a score of 61.5 on thousands of records), times and account ids come back as one
    string object: a full L writeback holds about two million changes at once, and their number texts
    alone, each a string of its own, weighed about 700 MB.
    """
    read = _source_reader(field.source)
    seen: dict[str, str] = {}

    def shared(text: str) -> str:
        found = seen.get(text)
        if found is None:
            if len(seen) >= _SHARED_TEXTS:
                seen.clear()
            found = seen[text] = text
        return found

    if field.type != "number":
        if field.source not in _REPEATING_SOURCES:
            return lambda record: canonical(field, read(record))

        texts: dict[Any, str | None] = {}  # value -> its text: one run's records share a few values

        def repeating(record: TargetRecord) -> str | None:
            value = read(record)
            text = texts.get(value, _UNSEEN)
            if text is _UNSEEN:
                text = canonical(field, value)
                if len(texts) >= _SHARED_TEXTS:
                    texts.clear()
                text = texts[value] = None if text is None else shared(text)
            return text

        return repeating
    scale = field.spec.scale
    spec, factor = f".{scale}f", 10**scale

    def text_of(value: Any) -> str | None:
        # number_text, with the format spec and the scale's power of ten made once
        if value is None:
            return None
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return None
        scaled = abs(number) * factor
        if abs(scaled - math.floor(scaled) - 0.5) < 1e-6:
            return shared(number_text(number, scale))  # a tie: decided on the decimal text
        text = format(number, spec)
        found = seen.get(text)
        if found is not None:
            return found
        return shared(number_text(number, scale) if text[0] == "-" else text)  # "-0.0" is written "0.0"

    # The store keeps scores rounded to what people see (worker.score_store.visible): a few thousand values,
    # each formatted once.
    formatted: dict[Any, str | None] = {}

    def number(record: TargetRecord) -> str | None:
        value = read(record)
        text = formatted.get(value, _UNSEEN)
        if text is _UNSEEN:
            if len(formatted) >= _SHARED_TEXTS:
                formatted.clear()
            text = formatted[value] = text_of(value)
        return text

    return number


def values_reader(fields: Sequence[CatalogueField]) -> Callable[[TargetRecord], dict[str, str | None]]:
    """:func:`desired_values` for one object's ``fields``, built once per object."""
    readers = [(f.api_name, field_reader(f)) for f in fields]
    return lambda record: {name: read(record) for name, read in readers}
