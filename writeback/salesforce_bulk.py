"""One Bulk API 2.0 update job, step by step: create, upload the CSV, close, poll, read failures.

simple-salesforce's ``bulk2.<Object>.update`` runs the same steps as one call, which is fine
for a script but not for a writer on a shared daily budget: a transient error while polling
makes it abort the job and start over (uploading everything again), and it reads the job once
more after it completes. Here each step is its own API call, retried on its own, so a clean
job costs its floor: four calls (plus one to read failed records when there are some).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from simple_salesforce.util import call_salesforce

from writeback.polling import poll_waits
from writeback.retry import RetryPolicy, WritebackStopped

FINAL_STATES = ("JobComplete", "Failed", "Aborted")
# A job in one of these states was closed (not aborted): its upload is being or has been processed.
CLOSED_STATES = ("UploadComplete", "InProgress", "JobComplete", "Failed")
CSV_TYPE = "text/csv"


@dataclass
class JobResult:
    job_id: str
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # record id -> (code, message)


def bulk_error(text: str) -> tuple[str, str]:
    """``CODE:message:fields --`` (Bulk API 2.0's ``sf__Error``) as (code, message)."""
    code, sep, rest = text.partition(":")
    if not sep:
        return "UNKNOWN", text
    message, _, fields = rest.rstrip(" -").rpartition(":")
    if not message:
        message, fields = fields, ""
    return code, message + (f" (fields: {fields})" if fields else "")


class BulkUpdate:
    """Runs update jobs for one client, each step through ``policy``."""

    def __init__(self, sf: Salesforce, policy: RetryPolicy, poll_seconds: float, timeout_s: float = 3600.0,
                 sleep: Callable[[float], Any] = time.sleep) -> None:
        self.sf = sf
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.timeout_s = timeout_s
        self.sleep = sleep

    def _csv_call(self, method: str, path: str, data: bytes | None = None) -> Any:
        headers = {**self.sf.headers, "Content-Type": CSV_TYPE if data is not None else "application/json",
                   "Accept": CSV_TYPE if data is None else "application/json"}
        return call_salesforce(url=f"{self.sf.bulk2_url}{path}", method=method, session=self.sf.session,
                               headers=headers, data=data)

    def run(self, obj: str, data: bytes) -> JobResult:
        """Update ``obj`` records from ``data`` (CSV with an ``Id`` column); per-record failures in the result."""
        job = self.policy.call(lambda: self.sf.restful("jobs/ingest", method="POST", json={
            "object": obj, "operation": "update", "contentType": "CSV", "columnDelimiter": "COMMA",
            "lineEnding": "LF"}), f"creating a Bulk API update job for {obj}")
        job_id = str(job["id"])
        try:
            response = self.policy.call(lambda: self._csv_call("PUT", f"ingest/{job_id}/batches", data),
                                        f"uploading the {obj} records of Bulk job {job_id}")
            if response.status_code != 201:
                raise WritebackStopped("salesforce", f"Bulk job {job_id}: upload answered {response.status_code}",
                                       whole_crm=False)
            self._close(job_id)
        except BaseException:
            self._abort(job_id)
            raise
        info = self._wait(obj, job_id)
        if info["state"] != "JobComplete":
            raise WritebackStopped("salesforce", f"the Bulk API job for {obj} ended {info['state']}: "
                                   f"{info.get('errorMessage') or 'no reason given'}; it is retried next run",
                                   whole_crm=False)
        result = JobResult(job_id)
        if int(info.get("numberRecordsFailed") or 0):
            text = self.policy.call(lambda: self._csv_call("GET", f"ingest/{job_id}/failedResults/").text,
                                    f"reading the failed records of Bulk job {job_id}")
            for row in csv.DictReader(io.StringIO(text)):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                result.failed[record_id] = bulk_error(row.get("sf__Error", ""))
        return result

    def _close(self, job_id: str) -> None:
        """Mark the upload complete; a close whose answer was lost counts once the job says it is closed.

        Closing makes Salesforce queue the job; when the answer to that PATCH is lost (a read
        timeout while a big job is taken in, a dropped connection), the retried PATCH finds the job
        no longer Open and answers INVALIDJOBSTATE. The job's own state tells whether the first
        PATCH took: then the job runs and is waited for like any other, and is not uploaded again.
        """
        try:
            self.policy.call(lambda: self.sf.restful(f"jobs/ingest/{job_id}", method="PATCH",
                                                     json={"state": "UploadComplete"}),
                             f"closing Bulk job {job_id}")
        except SalesforceMalformedRequest as exc:
            if "INVALIDJOBSTATE" not in str(exc.content):
                raise
            info = self.policy.call(lambda: self.sf.restful(f"jobs/ingest/{job_id}"), f"checking Bulk job {job_id}")
            if info.get("state") not in CLOSED_STATES:
                raise

    def _wait(self, obj: str, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        waits = poll_waits(self.poll_seconds)
        while True:
            self.sleep(next(waits))
            info = self.policy.call(lambda: self.sf.restful(f"jobs/ingest/{job_id}"), f"checking Bulk job {job_id}")
            if info["state"] in FINAL_STATES:
                return info
            if time.monotonic() > deadline:
                self._abort(job_id)
                raise WritebackStopped("salesforce", f"the Bulk API job for {obj} did not finish within "
                                       f"{self.timeout_s:.0f} s; it was aborted and is retried next run",
                                       whole_crm=False)

    def _abort(self, job_id: str) -> None:
        """Best effort: a job left open holds nothing, but an aborted one is clearer in Setup."""
        try:
            self.sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json={"state": "Aborted"})
        except Exception:  # noqa: BLE001 - the original error matters more than this one
            return
