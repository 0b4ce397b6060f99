"""Salesforce records to canonical rows.

Every row of one object has the same columns (the batched upsert needs it): columns the org
lacks are None, and the configured extra fields go to ``extra``. Fields abm-sync writes itself are
never read (see :mod:`connectors.salesforce.fields`), and who-modified-last and the
modification stamps are not content, so a score written back by abm-sync never makes a
record look changed.

Activities get their canonical type from the ``activities:`` rules. Campaign types and the
accounts of opportunities that tasks hang on are looked up in the store, one query per page:
parents are pulled before activities, and memory stays flat however big the org is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from connectors.activity_rules import ActivityClassifier
from connectors.salesforce.objects import (
    ACCOUNT_PREFIX,
    CAMPAIGN_PREFIX,
    NOT_EXTRA,
    OPPORTUNITY_PREFIX,
    ObjectSpec,
)
from connectors.salesforce.values import Converter, converter, json_value, midnight_utc
from matching.domains import registrable_domain
from store.activity_types import team_of
from store.schema import Campaign, Opportunity

CRM = "salesforce"
LOOKUP_CHUNK = 500


@dataclass
class MappedPage:
    rows: list[dict[str, Any]]
    skipped_ids: list[str]  # records that are not activities under the rules (not stored)
    deleted: int  # records read as deleted (soft deletes and merge losers)


class RecordMapper:
    """Maps the records of one object, read with ``fields`` (API name -> describe type)."""

    def __init__(self, spec: ObjectSpec, fields: Mapping[str, str], classifier: ActivityClassifier, now: datetime,
                 extra_fields: Iterable[str] = ()) -> None:
        """``extra_fields``: the configured extra fields the org has; they are kept in ``extra``."""
        self.spec = spec
        self.classifier = classifier
        self.now = now
        self.converters: list[tuple[str, Converter]] = [(name, converter(t)) for name, t in fields.items()]
        wanted = {f.lower() for f in extra_fields}
        self.extra_fields = [f for f in fields if f.lower() in wanted and f not in NOT_EXTRA]

    def typed(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Field values of a REST record as Python values."""
        try:
            return {name: convert(record.get(name)) for name, convert in self.converters}
        except (TypeError, ValueError) as exc:
            raise self._unreadable(record.get("Id"), exc) from exc

    def csv_reader(self, header: list[str]) -> Callable[[list[str]], dict[str, Any]]:
        """Typing for Bulk CSV rows with this header (columns located once, not per row)."""
        position = {name: i for i, name in enumerate(header)}
        missing = [name for name, _ in self.converters if name not in position]
        if missing:
            raise ValueError(f"Salesforce {self.spec.name}: Bulk results lack the columns {', '.join(missing)}")
        aligned = [(name, position[name], convert) for name, convert in self.converters]
        id_at = position["Id"]

        def typed(row: list[str]) -> dict[str, Any]:
            try:
                return {name: convert(row[i]) for name, i, convert in aligned}
            except (TypeError, ValueError, IndexError) as exc:
                raise self._unreadable(row[id_at] if len(row) > id_at else None, exc) from exc

        return typed

    def _unreadable(self, record_id: Any, exc: Exception) -> ValueError:
        return ValueError(f"Salesforce {self.spec.name} {record_id!r}: a field value could not be read ({exc})")

    def map_page(self, conn: Connection, typed: list[dict[str, Any]]) -> MappedPage:
        """Rows for records already typed by :meth:`typed` or :meth:`csv_reader`."""
        lookups = self._lookups(conn, typed) if self.spec.is_activity else {}
        rows: list[dict[str, Any]] = []
        skipped: list[str] = []
        deleted = 0
        for record in typed:
            row = self._row(record, lookups)
            if row is None:
                skipped.append(record["Id"])
                continue
            deleted += bool(row["is_deleted"])
            rows.append(row)
        return MappedPage(rows, skipped, deleted)

    # -- rows ----------------------------------------------------------------------------------
    def _row(self, r: dict[str, Any], lookups: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
        spec = self.spec
        extra = {f: json_value(r[f]) for f in self.extra_fields if r.get(f) is not None}
        row: dict[str, Any] = {
            "crm": CRM,
            "object": spec.name,
            "crm_id": r["Id"],
            "created_at": r.get("CreatedDate"),
            "modified_at": r.get("LastModifiedDate"),
            "is_deleted": bool(r.get("IsDeleted")),
            "merged_into": r.get("MasterRecordId"),
            "extra": extra or None,
        }
        for column, field_name in spec.columns.items():
            row[column] = r.get(field_name)
        row.update(spec.constants)
        derive = _DERIVED.get(spec.name)
        if derive is not None:
            derive(row, r)
        if spec.is_activity:
            return self._activity(row, r, lookups)
        return row

    def _activity(self, row: dict[str, Any], r: dict[str, Any], lookups: Mapping[str, Mapping[str, Any]]
                  ) -> dict[str, Any] | None:
        name = self.spec.name
        what = r.get("WhatId") or ""
        account = r.get("AccountId") or (what if what.startswith(ACCOUNT_PREFIX) else None)
        if account is None and what.startswith(OPPORTUNITY_PREFIX):
            account = lookups["opportunity_account"].get(what)
        campaign = row.get("campaign_crm_id") or (what if what.startswith(CAMPAIGN_PREFIX) else None)
        campaign_type = lookups["campaign_type"].get(campaign) if campaign else None
        duration: int | None = None
        ends: datetime | None = None
        if name == "Task":
            duration = r.get("CallDurationInSeconds")
            activity_type = self.classifier.classify(name, r, duration_seconds=duration)
            occurred = r.get("CompletedDateTime") or midnight_utc(r.get("ActivityDate")) or r.get("CreatedDate")
            crm_type = r.get("TaskSubtype") or r.get("Type")
            person = row["person_crm_id"]
        elif name == "Event":
            start = r.get("StartDateTime") or midnight_utc(r.get("ActivityDate"))
            minutes = r.get("DurationInMinutes")
            end = r.get("EndDateTime") or (start + timedelta(minutes=minutes) if start and minutes else start)
            duration = minutes * 60 if minutes is not None else (
                int((end - start).total_seconds()) if start and end else None)
            activity_type = self.classifier.classify(name, r, duration_seconds=duration, meeting_end=end, now=self.now)
            ends = end
            occurred = start or r.get("CreatedDate")
            crm_type = r.get("Type")
            person = row["person_crm_id"]
        else:  # CampaignMember
            activity_type = self.classifier.classify(name, {**r, "CampaignType": campaign_type})
            occurred = midnight_utc(r.get("FirstRespondedDate")) or r.get("CreatedDate")
            crm_type = row["crm_type"]
            person = r.get("ContactId") or r.get("LeadId")
            row["subject"] = None
        if activity_type is None:
            return None
        row.update(
            activity_type=activity_type,
            team=team_of(activity_type),
            crm_type=crm_type,
            occurred_at=occurred,
            duration_seconds=duration,
            ends_at=ends,
            person_crm_id=person,
            account_crm_id=account,
            campaign_crm_id=campaign,
            campaign_type=campaign_type,
        )
        return row

    # -- store lookups -------------------------------------------------------------------------
    def _lookups(self, conn: Connection, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        campaigns: set[str] = set()
        opportunities: set[str] = set()
        for r in records:
            what = r.get("WhatId") or ""
            if what.startswith(CAMPAIGN_PREFIX):
                campaigns.add(what)
            elif what.startswith(OPPORTUNITY_PREFIX) and not r.get("AccountId"):
                opportunities.add(what)
            if r.get("CampaignId"):
                campaigns.add(r["CampaignId"])
        return {
            "campaign_type": _lookup(conn, "Campaign", Campaign.__table__.c.crm_id, Campaign.__table__.c.type,
                                     campaigns),
            "opportunity_account": _lookup(conn, "Opportunity", Opportunity.__table__.c.crm_id,
                                           Opportunity.__table__.c.account_crm_id, opportunities),
        }


def _lookup(conn: Connection, object_name: str, key: Any, value: Any, ids: set[str]) -> dict[str, Any]:
    """``value`` of the stored ``object_name`` records with these ids, by the (crm, object, crm_id) key: without
    the object, only the key's first column could lead the search, through every Salesforce record of the table."""
    out: dict[str, Any] = {}
    table = key.table
    pending = sorted(ids)
    for start in range(0, len(pending), LOOKUP_CHUNK):
        chunk = pending[start : start + LOOKUP_CHUNK]
        found = conn.execute(select(key, value).where(table.c.crm == CRM, table.c.object == object_name,
                                                      key.in_(chunk)))
        out.update((row[0], row[1]) for row in found)
    return out


# -- derived columns ---------------------------------------------------------------------------
def _account(row: dict[str, Any], r: dict[str, Any]) -> None:
    row["domain"] = registrable_domain(row.get("website")) or None


def _lead(row: dict[str, Any], r: dict[str, Any]) -> None:
    row["is_converted"] = bool(row.get("is_converted"))
    row["converted_at"] = midnight_utc(r.get("ConvertedDate"))


def _opportunity(row: dict[str, Any], r: dict[str, Any]) -> None:
    row["is_closed"] = bool(row.get("is_closed"))
    row["is_won"] = bool(row.get("is_won"))
    row["closed_at"] = midnight_utc(row.get("close_date")) if row["is_closed"] else None


def _user(row: dict[str, Any], r: dict[str, Any]) -> None:
    row["is_active"] = True if row.get("is_active") is None else bool(row["is_active"])


_DERIVED = {"Account": _account, "Lead": _lead, "Opportunity": _opportunity, "User": _user}
