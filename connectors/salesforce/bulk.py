"""Bulk API 2.0 query jobs, with results streamed page by page.

A full pull of a big org through REST costs one call per 2,000 records; a Bulk query job
costs a few calls plus one per result page (hundreds of thousands of records each). Job
creation and status go through simple-salesforce's ``restful``; result pages are downloaded
here with ``stream=True`` into a temporary file, because simple-salesforce's Bulk 2.0 helpers
load each page whole into memory (and into one string, four bytes a character as soon as one
name is in CJK), and their query generator cannot resume at a saved locator after a pause.

Bulk results are not ordered (``ORDER BY`` would disable PK chunking and risk timeouts on big
objects), so the cursor cannot move record by record: the job id and the next page's locator
are saved with each committed page instead, and the window completes when the last page is in.
"""

from __future__ import annotations

import codecs
import csv
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

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
    """One downloaded result page: CSV in a temporary file, and where the next page starts."""

    file: BinaryIO
    next_locator: str | None  # None after the last page

    def rows(self) -> Iterator[list[str]]:
        """The CSV rows, header first, streamed from the file."""
        self.file.seek(0)
        return csv.reader(_lines(iter(lambda: self.file.read(CHUNK_BYTES), b"")))

    def close(self) -> None:
        self.file.close()


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


def download_results_page(sf: Salesforce, job_id: str, locator: str | None, max_records: int) -> BulkPage:
    """GET one result page (one API call) into a temporary file, so the next page can be requested
    while this one is stored: the server prepares a page while we write the previous one."""
    params: dict[str, Any] = {"maxRecords": max_records}
    if locator:
        params["locator"] = locator
    headers = {**sf.headers, "Accept": "text/csv"}
    spool = tempfile.TemporaryFile(prefix="abm-bulk-")  # noqa: SIM115  (handed to the caller, who closes it)
    try:
        with sf.session.get(f"{sf.base_url}jobs/query/{job_id}/results", params=params, headers=headers,
                            stream=True) as response:
            if response.status_code >= 300:
                exception_handler(response, name="bulk query results")
            next_locator = response.headers.get("Sforce-Locator") or None
            for chunk in response.iter_content(CHUNK_BYTES):
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return BulkPage(spool, None if next_locator == "null" else next_locator)


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
