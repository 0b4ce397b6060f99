"""``salesforce.pull``: which Salesforce objects and fields are pulled, and how the connector behaves.

Shared pull settings (lookback, API share, Bulk threshold, page size) are in
``salesforce.sync`` (:class:`config.connections.SyncOptions`); these are the
Salesforce-specific ones.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SALESFORCE_OBJECTS = ("User", "Account", "Campaign", "Lead", "Contact", "Opportunity", "Task", "Event",
                      "CampaignMember")
"""Pulled in this order (in two lanes, see ``connectors.salesforce.pull.lanes``): parents first, so activities
can look up their campaign and opportunity."""

SalesforceObject = Literal["User", "Account", "Campaign", "Lead", "Contact", "Opportunity", "Task", "Event",
                           "CampaignMember"]
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SalesforcePullOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objects: list[SalesforceObject] = Field(default_factory=lambda: list(SALESFORCE_OBJECTS))
    extra_fields: dict[SalesforceObject, list[str]] = Field(
        default_factory=dict, description="more fields to read per object, kept in each record's extra"
    )
    activities_beside_records: bool = Field(
        True, description="pull the activities (after the campaigns and opportunities they name) in a thread of "
        "their own, beside the users, accounts, leads and contacts; false: one object at a time")
    bulk: bool = Field(True, description="use Bulk API 2.0 for full pulls and large increments")
    bulk_page_records: int = Field(250_000, ge=1_000, le=5_000_000)
    bulk_poll_seconds: float = Field(2.0, gt=0, le=60)
    bulk_timeout_seconds: float = Field(3600.0, gt=0)
    hard_delete_check_minutes: int = Field(60, ge=0, le=24 * 60)
    describe_refresh_hours: float = Field(24.0, ge=0)
    timeout_seconds: float = Field(120.0, gt=0, le=3600)
    retry_attempts: int = Field(8, ge=1, le=50)
    retry_initial_seconds: float = Field(1.0, ge=0, le=600)
    retry_max_seconds: float = Field(120.0, ge=0, le=3600)

    @field_validator("objects")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        seen = [o for i, o in enumerate(value) if o in value[:i]]
        if seen:
            raise ValueError(f"listed twice: {', '.join(sorted(set(seen)))}")
        return value

    @field_validator("extra_fields")
    @classmethod
    def _field_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for object_name, names in value.items():
            bad = [n for n in names if not _FIELD_NAME.match(n)]
            if bad:
                raise ValueError(f"{object_name}: not Salesforce field API names: {', '.join(map(repr, bad))}")
        return value
