"""Plain, immutable records of the canonical model, for the functional core.

``matching/`` and ``scoring/`` take and return these (or columns of them), never ORM
objects or sessions, so they run the same in the worker, a test or a notebook. Field names
are the column names of :mod:`store.schema`; :func:`record_from_row` builds one from a
result row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: int
    crm: str
    crm_id: str
    name: str | None = None
    website: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    state: str | None = None
    city: str | None = None
    phone: str | None = None
    parent_crm_id: str | None = None
    type: str | None = None
    owner_crm_id: str | None = None
    linked_salesforce_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: int
    crm: str
    crm_id: str
    kind: str  # "lead" or "contact"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    title: str | None = None
    company: str | None = None
    website: str | None = None
    phone: str | None = None
    country: str | None = None
    state: str | None = None
    city: str | None = None
    industry: str | None = None
    employees: int | None = None
    account_crm_id: str | None = None
    status: str | None = None
    is_converted: bool = False
    converted_at: datetime | None = None
    converted_account_crm_id: str | None = None
    source: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpportunityRecord:
    id: int
    crm: str
    crm_id: str
    account_crm_id: str | None = None
    stage: str | None = None
    is_closed: bool = False
    is_won: bool = False
    amount: float | None = None
    close_date: date | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    id: int
    crm: str
    crm_id: str
    activity_type: str
    occurred_at: datetime | None
    team: str | None = None
    crm_type: str | None = None
    subject: str | None = None
    duration_seconds: int | None = None
    person_crm_id: str | None = None
    account_crm_id: str | None = None
    campaign_crm_id: str | None = None
    campaign_type: str | None = None


R = TypeVar("R")


def record_from_row(cls: type[R], row: Any) -> R:
    """Build a record from a SQLAlchemy row or mapping, ignoring columns the record lacks."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: mapping[name] for name in names if name in mapping})
