"""Bulk API 2.0 query jobs, with results streamed page by page.

A full pull of a big org through REST costs one call per 2,000 records; a Bulk query job
costs a few calls plus one per result page (hundreds of thousands of records each). Job
creation and status go through simple-salesforce's ``restful``; result pages are read here
with ``stream=True`` because simple-salesforce's Bulk 2.0 helpers load each page whole into
memory (and into one string, four bytes a character as soon as one name is in CJK), and their
query generator cannot resume at a saved locator after a pause.

Bulk results are not ordered (``ORDER BY`` would disable PK chunking and risk timeouts on big
objects), so the cursor cannot move record by record: the job id and the next page's locator
are saved with each committed page instead, and the window completes when the last page is in.
"""

from __future__ import annotations

import codecs
import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.util import exception_handler

from connectors.salesforce.client import SalesforceClient

COMPLETE, FAILED, ABORTED = "JobComplete", "Failed", "Aborted"
CHUNK_BYTES = 1 << 20
MAX_POLL_GROWTH = 10.0


class BulkUnavailable(RuntimeError):
    """Bulk API 2.0 cannot run this query (not permitted, failed, timed out): read it through REST."""


@dataclass
class BulkPage:
    records: Iterator[dict[str, str]]  # CSV rows as text, streamed
    next_locator: str | None  # None after the last page


def create_query_job(client: SalesforceClient, soql: str, what: str) -> str:
    body = {"operation": "queryAll", "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA",
            "lineEnding": "LF"}
    job = client.call(what, lambda sf: sf.restful("jobs/query", method="POST", json=body))
    return str(job["id"])


def wait_for_job(client: SalesforceClient, job_id: str, what: str, poll_seconds: float, timeout_seconds: float,
                 sleep: Callable[[float], Any] = time.sleep) -> int:
    """Poll until the job is complete; returns its record count. Failed or slow jobs raise BulkUnavailable."""
    deadline = time.monotonic() + timeout_seconds
    wait = poll_seconds
    while True:
        info = client.call(what, lambda sf: sf.restful(f"jobs/query/{job_id}"))
        state = info.get("state")
        if state == COMPLETE:
            return int(info.get("numberRecordsProcessed") or 0)
        if state in (FAILED, ABORTED):
            raise BulkUnavailable(f"Bulk query job {job_id} ended {state}: {info.get('errorMessage') or 'no reason'}")
        if time.monotonic() + wait > deadline:
            raise BulkUnavailable(f"Bulk query job {job_id} still {state} after {timeout_seconds:.0f} s")
        sleep(wait)
        wait = min(wait * 1.5, poll_seconds * MAX_POLL_GROWTH)


def read_results_page(
    sf: Salesforce, job_id: str, locator: str | None, max_records: int, handle: Callable[[BulkPage], None]
) -> None:
    """GET one result page and hand its rows to ``handle`` while they stream in (one API call)."""
    params: dict[str, Any] = {"maxRecords": max_records}
    if locator:
        params["locator"] = locator
    headers = {**sf.headers, "Accept": "text/csv"}
    with sf.session.get(f"{sf.base_url}jobs/query/{job_id}/results", params=params, headers=headers,
                        stream=True) as response:
        if response.status_code >= 300:
            exception_handler(response, name="bulk query results")
        next_locator = response.headers.get("Sforce-Locator") or None
        if next_locator == "null":
            next_locator = None
        handle(BulkPage(csv.DictReader(_lines(response.iter_content(CHUNK_BYTES))), next_locator))


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Decoded lines (ends kept, so quoted fields spanning lines reach csv intact), NUL bytes dropped."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    for chunk in chunks:
        text = decoder.decode(chunk)
        if "\x00" in text:
            text = text.replace("\x00", "")
        pending += text
        lines = pending.split("\n")
        pending = lines.pop()
        for line in lines:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending
