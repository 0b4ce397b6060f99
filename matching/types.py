"""Plain data going in and out of the matcher, shaped like the ``matches`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Decision = Literal["auto", "review", "none", "pinned", "crm"]


class ContactEmail(NamedTuple):
    """What the matcher reads of an existing contact: the account the CRM ties it to and its email, with the
    names that tell a vanity domain (jane@doej.net) from the employer's. Plain tuples of these five values
    do too: a large org's million contacts are read straight from the database that way."""

    crm: str
    account_crm_id: str | None
    email: str | None
    first_name: str | None
    last_name: str | None


class ContactDomainCount(NamedTuple):
    """Existing contacts already read (see :class:`~matching.domains.ContactDomainReader`): how many of an
    account's contacts give ``domain`` ('' for none that tells where they work). What a caller that keeps the
    reading of every contact between runs hands the matcher instead of the contacts themselves."""

    crm: str
    account_crm_id: str
    domain: str
    contacts: int


@dataclass(frozen=True, slots=True)
class PreviousMatch:
    """What the store holds for a person from the last run, for the stability rule."""

    account_id: int | None
    confidence: float | None = None
    decision: str | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    """An admin's manual override: always wins, never changed by the matcher (account_id None = 'no account')."""

    account_id: int | None
    pinned_by: str | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    """One person's outcome: the row written to ``matches`` (decision review/none keep account_id for display).

    ``account_id`` is the proposed account for auto, review, pinned and crm decisions and None for
    none. ``reason`` is the one-line summary people read; ``reasons`` the breakdown stored as JSON:
    ``signals`` ({comparison: [level, log-odds weight]}), ``candidates`` (how many were scored) and,
    when they apply, ``runner_up``, ``tie``, ``stability``, ``doubt``, ``proposed`` (why a review proposes
    another account than the best score or the tie-breakers' pick), ``rolled_up_from``, ``best_account_id``
    (for none) or ``pinned_by``.
    """

    person_id: int
    account_id: int | None
    decision: Decision
    confidence: float
    method: str
    reason: str
    reasons: dict[str, Any] = field(default_factory=dict)
    matched_account_id: int | None = None  # before a parent roll-up; equals account_id otherwise
    pinned_by: str | None = None


@dataclass(frozen=True, slots=True)
class AccountLinkResult:
    """A HubSpot company identified with a Salesforce account (a row of ``account_links``)."""

    account_id: int
    canonical_account_id: int
    method: str
    confidence: float
