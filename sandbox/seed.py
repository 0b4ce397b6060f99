"""The synthetic org generator: one CRM-neutral world, seen through Salesforce and HubSpot.

``generate(seed, size, as_of)`` is cheap: it only records its arguments. Each part of the
world is built the first time something reads it, so loading accounts and leads never builds
activities, and records stream out one at a time (the L org has millions of activities). The
same (seed, size, as_of) always gives byte-identical records, ids and ground truth.

    generated = generate(seed=1, size="M", as_of=datetime(2026, 1, 1, tzinfo=UTC))
    for record in generated.salesforce.records("Lead"): ...
    for record in generated.hubspot.records("contacts"): ...
    generated.truth.lead_account["00Q0S0000000042IAQ"]  # the account that lead should match
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sandbox.seed_hubspot import OBJECT_TYPES as HUBSPOT_OBJECT_TYPES
from sandbox.seed_hubspot import HubSpotView
from sandbox.seed_plan import SIZES, OrgSize, resolve_size
from sandbox.seed_salesforce import OBJECTS as SALESFORCE_OBJECTS
from sandbox.seed_salesforce import SalesforceView
from sandbox.seed_truth import GroundTruth, build_truth
from sandbox.seed_world import HUBSPOT_ONLY_PARTS, SALESFORCE_ONLY_PARTS, World

__all__ = ["SIZES", "GeneratedOrg", "GroundTruth", "MatchingSet", "OrgSize", "generate", "matching_set",
           "HUBSPOT_OBJECT_TYPES", "SALESFORCE_OBJECTS"]


class GeneratedOrg:
    """A generated org: ``salesforce`` and ``hubspot`` views and the ground ``truth``."""

    def __init__(self, seed: int, size: OrgSize, as_of: datetime) -> None:
        self.seed = seed
        self.size = size
        self.as_of = as_of
        self.world = World(seed, size, as_of)
        self.salesforce = SalesforceView(self.world)
        self.hubspot = HubSpotView(self.world, self.salesforce)

    @cached_property
    def truth(self) -> GroundTruth:
        return build_truth(self.world, self.salesforce, self.hubspot)

    def release_salesforce(self) -> None:
        """Free what only the Salesforce activities need (after loading them); reading them again rebuilds it."""
        self.world.release(SALESFORCE_ONLY_PARTS)
        self.salesforce.release()

    def release_hubspot(self) -> None:
        """Free what only the HubSpot engagements and events need (after loading them)."""
        self.world.release(HUBSPOT_ONLY_PARTS)


def _check(seed: int, as_of: datetime) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(as_of, datetime) or as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must be a timezone-aware datetime (e.g. datetime.now(UTC)), got {as_of!r}")


def generate(seed: int, size: str | OrgSize = "S", as_of: datetime | None = None) -> GeneratedOrg:
    """The org for (``seed``, ``size``, ``as_of``); ``size`` is "S", "M", "L" or an ``OrgSize``."""
    if as_of is None:
        raise ValueError("as_of is required: the org's history ends there, and output depends on it")
    _check(seed, as_of)
    return GeneratedOrg(seed, resolve_size(size), as_of)


@dataclass
class MatchingSet:
    """Accounts and leads as plain Salesforce-shaped dicts, with each lead's true account."""

    accounts: Iterator[dict[str, Any]]
    leads: Iterator[dict[str, Any]]
    org: GeneratedOrg

    @property
    def lead_account(self) -> dict[str, str | None]:
        return self.org.truth.lead_account


def matching_set(seed: int, accounts: int, leads: int, as_of: datetime) -> MatchingSet:
    """Only accounts and leads (no contacts, opportunities or activities): the matching benchmark's
    "1,000,000 leads against 200,000 accounts". Truth for leads: ``org.truth.lead_account``."""
    size = OrgSize(accounts=accounts, leads=leads, contacts=0, activities=0, users=1, campaigns=1)
    org = generate(seed, size, as_of)
    return MatchingSet(accounts=org.salesforce.records("Account"), leads=org.salesforce.records("Lead"), org=org)
