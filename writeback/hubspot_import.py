"""Large HubSpot writebacks as CRM imports: one CSV file per object instead of a batch call per 100 records.

Why: the L org's incremental run changed 46,637 HubSpot records, 475 batch calls that took the
portal's whole allowance (190 calls per 10 s) for 25 s or more, while the portal's other integrations
waited for the window. An import takes the records of one object in one call; HubSpot works through
it in the background and the writer polls its state (every 0.5 s at first, then every 2 s, every 10 s
after a minute) and reads its errors, a handful of calls in all. It is HubSpot's counterpart of the
Bulk API jobs the Salesforce writer sends.

What an import cannot do is clear a value (HubSpot's importer leaves a property as it is when its
cell is blank), so the values a change empties go by batch, as do objects with fewer changes
than ``writeback.hubspot_import_threshold`` (10,000 by default: HubSpot allows 500 imports a day on
paid tiers, 50 on its free tools, and a scheduled run every 15 minutes makes 96). The private app
needs the ``crm.import`` scope; a portal that refuses the import (403) gets batches, with a warning.

An import is matched to the records it updates by record id only (a column mapped to
``hs_object_id``, ``importOperations`` ``UPDATE``): it never creates a record. Each row it could not
write is listed by the import's errors with the row's data, whose first cell is the record id; every
other row was written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from writeback.catalogue import CatalogueField
from writeback.diff import RecordChange
from writeback.state import OnBatch, RecordOutcome

# HubSpot's object type ids, which an import's column mappings name objects by.
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
RECORD_ID = "Record ID"
FINISHED = frozenset({"DONE", "FAILED", "CANCELED"})
# An import larger than this is cut into several: HubSpot reads at most 1,048,576 rows and 512 MB of a file, and
# a row of scores and reasons can pass 1 KB.
MAX_ROWS = 250_000
ERRORS_PAGE = 100


class SplitRecords:
    """Records whose change is sent in two parts, its values by import and its clears by batch, and recorded
    once both outcomes are known: one outcome per record, as the report counts records and the ledger keeps
    one baseline per record (a record whose one part failed is sent whole again by a later run)."""

    def __init__(self, originals: dict[str, RecordChange]) -> None:
        self.originals = originals
        self._cleared: dict[str, RecordOutcome] = {}

    def whole(self, changes: Sequence[RecordChange]) -> list[RecordChange]:
        """The records of ``changes`` sent whole instead (by batch): no longer split."""
        out = []
        for change in changes:
            original = self.originals.pop(change.crm_id, None)
            self._cleared.pop(change.crm_id, None)
            out.append(original or change)
        return out

    def held(self, on_batch: OnBatch) -> OnBatch:
        """``on_batch`` for the clear batches: a split record's outcome is held until its import's is known."""
        def record(batch: Sequence[RecordChange], outcomes: list[RecordOutcome]) -> None:
            passed = [(c, o) for c, o in zip(batch, outcomes, strict=True) if c.crm_id not in self.originals]
            self._cleared.update((o.crm_id, o) for c, o in zip(batch, outcomes, strict=True)
                                 if c.crm_id in self.originals)
            if passed:
                on_batch([c for c, _ in passed], [o for _, o in passed])
        return record

    def joined(self, part: Sequence[RecordChange], outcomes: list[RecordOutcome]
               ) -> tuple[list[RecordChange], list[RecordOutcome]]:
        """An import's changes and outcomes, each split record's as a whole: written if both parts were."""
        changes, joined = [], []
        for change, outcome in zip(part, outcomes, strict=True):
            original = self.originals.pop(change.crm_id, None)
            if original is None:
                changes.append(change)
                joined.append(outcome)
                continue
            cleared = self._cleared.pop(change.crm_id, None) or RecordOutcome(
                change.crm_id, False, "NO_RESULT", "the batch clearing its empty fields gave no outcome")
            changes.append(original)
            joined.append(outcome if not outcome.ok or cleared.ok else cleared)
        return changes, joined


def split_clears(changes: Sequence[RecordChange]) -> tuple[list[RecordChange], list[RecordChange], SplitRecords]:
    """The values an import can carry, and the clears it cannot (a blank cell leaves a property as it is),
    each as changes of their own, and the records so split: a record's first write sends every field, empty
    ones too, and must not go by batch for one empty field."""
    settable: list[RecordChange] = []
    clearing: list[RecordChange] = []
    originals: dict[str, RecordChange] = {}
    for change in changes:
        if all(text for text in change.texts):
            settable.append(change)
            continue
        pairs = list(change.items())
        kept = [(name, text) for name, text in pairs if text]
        cleared = [(name, text) for name, text in pairs if not text]
        if kept:
            settable.append(RecordChange.of(change.crm_id, tuple(n for n, _ in kept), tuple(t for _, t in kept)))
            originals[change.crm_id] = change
        clearing.append(RecordChange.of(change.crm_id, tuple(n for n, _ in cleared), tuple(t for _, t in cleared)))
    return settable, clearing, SplitRecords(originals)


def _cell(field: CatalogueField | None, text: str | None) -> str:
    """A value as the import file holds it: datetimes in epoch milliseconds, which the importer reads
    whatever the import's ``dateFormat``; everything else as the batch API gets it."""
    if text is None:
        return ""
    if field is not None and field.type == "datetime":
        return str(round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000))
    return text


def import_file(changes: Sequence[RecordChange], fields: Sequence[CatalogueField]) -> tuple[list[str], bytes]:
    """The CSV of ``changes`` (the record id first, then every property any of them sets; a property a
    change leaves alone is a blank cell) and its property columns."""
    by_name = {f.api_name: f for f in fields}
    columns = list(dict.fromkeys(name for names in {id(c.names): c.names for c in changes}.values()
                                 for name in names))
    position = {name: n for n, name in enumerate(columns)}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([RECORD_ID, *columns])
    for change in changes:
        row = [""] * len(columns)
        for name, text in change.items():
            row[position[name]] = _cell(by_name.get(name), text)
        writer.writerow([change.crm_id, *row])
    return columns, out.getvalue().encode("utf-8")


def import_request(name: str, obj: str, file_name: str, columns: Sequence[str]) -> dict[str, Any]:
    """The ``importRequest`` JSON: update ``obj`` records named by their record id, never create one."""
    type_id = OBJECT_TYPE_IDS[obj]
    mappings = [{"columnObjectTypeId": type_id, "columnName": RECORD_ID, "propertyName": "hs_object_id",
                 "columnType": "HUBSPOT_OBJECT_ID"}]
    mappings += [{"columnObjectTypeId": type_id, "columnName": c, "propertyName": c} for c in columns]
    return {"name": name, "importOperations": {type_id: "UPDATE"},
            "files": [{"fileName": file_name, "fileFormat": "CSV",
                       "fileImportPage": {"hasHeader": True, "columnMappings": mappings}}]}


def request_text(request: dict[str, Any]) -> str:
    return json.dumps(request, separators=(",", ":"))


@dataclass(frozen=True)
class RowFailure:
    """A row an import did not write: its record id, HubSpot's error type and message."""

    crm_id: str
    code: str
    message: str


def row_failure(error: dict[str, Any]) -> RowFailure | None:
    """The failure of one ``PublicImportError``; None when it names no row (no row data)."""
    source = error.get("sourceData") or {}
    row = (source.get("rowData") or []) if isinstance(source, dict) else []
    if not row:
        return None
    message = error.get("errorMessage") or error.get("invalidValue") or ""
    return RowFailure(str(row[0]), str(error.get("errorType") or "IMPORT_ERROR"), str(message)[:1000])


def import_outcomes(changes: Sequence[RecordChange], failures: Sequence[RowFailure]) -> list[RecordOutcome]:
    """Per-record outcomes of a finished (``DONE``) import: its failed rows, and every other row written."""
    failed = {f.crm_id: f for f in failures}
    return [RecordOutcome(c.crm_id, False, f.code, f.message) if (f := failed.get(c.crm_id)) is not None
            else RecordOutcome(c.crm_id, True) for c in changes]


def unwritten(changes: Sequence[RecordChange], code: str, message: str) -> list[RecordOutcome]:
    """Every record of an import that wrote nothing we can count on: retried like any failed write."""
    return [RecordOutcome(c.crm_id, False, code, message) for c in changes]
