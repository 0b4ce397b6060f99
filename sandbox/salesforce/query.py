"""Run SOQL over the org and page through results with query locators.

A query snapshots the matching rowids in result order (a compact int array) when it starts;
each page then fetches its rows by rowid. Deep pages cost the same as the first, ORDER BY
on any field pages consistently, and like Salesforce's cursors a locator sees the result
set as it was when the query ran. Old locators are evicted (Salesforce caps open cursors too).
"""

from __future__ import annotations

import secrets
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce.errors import SalesforceError
from sandbox.salesforce.org import SalesforceOrg
from sandbox.salesforce.schema import SfField, SfObject
from sandbox.salesforce.soql import SoqlError, parse
from sandbox.salesforce.soql_sql import compile_query
from sandbox.salesforce.values import storage_to_json

DEFAULT_BATCH = 2000
MIN_BATCH, MAX_BATCH = 200, 2000


@dataclass
class ResultSet:
    obj: SfObject
    fields: list[SfField]
    rowids: array  # type: ignore[type-arg]
    count_only: bool
    total: int


def run(org: SalesforceOrg, soql: str, include_deleted: bool) -> ResultSet:
    query = parse(soql)
    obj = org.schema.get(query.object)
    if obj is None:
        raise SoqlError(f"sObject type '{query.object}' is not supported.", code="INVALID_TYPE")
    compiled = compile_query(query, obj, include_deleted, datetime.now(UTC))
    if compiled.count_only:
        row = org.storage.fetchone(compiled.rowid_sql, compiled.params)
        total = int(row[0]) if row else 0
        return ResultSet(obj, [], array("q"), True, total)
    rowids = array("q", (r[0] for r in org.storage.fetchall(compiled.rowid_sql, compiled.params)))
    return ResultSet(obj, compiled.fields, rowids, False, len(rowids))


def page_rows(org: SalesforceOrg, result: ResultSet, start: int, size: int) -> list[tuple[Any, ...]]:
    """Stored rows ``[start, start+size)`` of ``result``, selected fields only."""
    return org.storage.fetch_by_rowids(
        result.obj.table, [f.name for f in result.fields], result.rowids[start : start + size]
    )


def parse_batch_size(header: str | None) -> int:
    """``Sforce-Query-Options: batchSize=N``; Salesforce treats it as a hint within 200..2000."""
    if not header:
        return DEFAULT_BATCH
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                size = int(value.strip())
            except ValueError:
                raise SalesforceError(400, "INVALID_QUERY_OPTIONS", f"invalid batchSize: {value!r}") from None
            return min(max(size, MIN_BATCH), MAX_BATCH)
    return DEFAULT_BATCH


class QueryCursors:
    """Open REST query locators, least recently used evicted first."""

    def __init__(self, org: SalesforceOrg, max_open: int = 200) -> None:
        self.org = org
        self.max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[str, tuple[ResultSet, bool, int]] = OrderedDict()

    def start(self, soql: str, include_deleted: bool, batch: int, version: str) -> dict[str, Any]:
        result = run(self.org, soql, include_deleted)
        if result.count_only:
            return {"totalSize": result.total, "done": True, "records": []}
        locator = "01g5b" + secrets.token_hex(7)[:13]
        return self._page(locator, result, include_deleted, 0, batch, version)

    def more(self, locator: str, offset: int, batch_header: str | None, version: str) -> dict[str, Any]:
        with self._lock:
            entry = self._open.get(locator)
            if entry is not None:
                self._open.move_to_end(locator)
        if entry is None:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        result, include_deleted, batch = entry
        if offset < 0 or offset > result.total:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        if batch_header:
            batch = parse_batch_size(batch_header)
        return self._page(locator, result, include_deleted, offset, batch, version)

    def _page(
        self, locator: str, result: ResultSet, include_deleted: bool, offset: int, batch: int, version: str
    ) -> dict[str, Any]:
        rows = page_rows(self.org, result, offset, batch)
        fields = result.fields
        records = []
        url_base = f"/services/data/v{version}/sobjects/{result.obj.name}/"
        id_pos = next((i for i, f in enumerate(fields) if f.name == "Id"), None)
        for row in rows:
            record: dict[str, Any] = {"attributes": {"type": result.obj.name}}
            if id_pos is not None:
                record["attributes"]["url"] = url_base + row[id_pos]
            for f, value in zip(fields, row, strict=True):
                record[f.name] = storage_to_json(f, value)
            records.append(record)
        end = offset + len(rows)
        body: dict[str, Any] = {"totalSize": result.total, "done": end >= result.total, "records": records}
        with self._lock:
            if end < result.total:
                self._open[locator] = (result, include_deleted, batch)
                self._open.move_to_end(locator)
                while len(self._open) > self.max_open:
                    self._open.popitem(last=False)
                endpoint = "queryAll" if include_deleted else "query"
                body["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{locator}-{end}"
            else:
                self._open.pop(locator, None)
        # Salesforce puts nextRecordsUrl before records; keep its key order for readers that care
        if "nextRecordsUrl" in body:
            body = {"totalSize": body["totalSize"], "done": False, "nextRecordsUrl": body["nextRecordsUrl"],
                    "records": records}
        return body

    def clear(self) -> None:
        with self._lock:
            self._open.clear()
