"""Sandbox benchmark: seeding an org, then reading it through REST query paging and a Bulk API 2.0 query.

    .venv/bin/python -m benchmarks.sandbox                 # the L org: seed, 200,000 rows via REST, 1,000,000 via Bulk
    .venv/bin/python -m benchmarks.sandbox --size M        # quick run (the bulk query reads what M has)

The sandbox runs in a child process (as ``abm sandbox serve`` does): its peak memory when the
org is loaded is the seeding's alone (the worker process that seeds HubSpot meanwhile is printed
apart), and the clients here (simple-salesforce over real HTTPS,
verifying the sandbox CA) compete with it for the CPU as a connector on the same machine would.
REST reads the connector's shape of query (``ORDER BY SystemModstamp, Id``, pages of 2,000
with ``nextRecordsUrl``); Bulk runs one query job and downloads every CSV page.

Targets (issue 3): REST >= 5,000 records/s; the Bulk 2.0 query of 1,000,000 rows <= 60 s;
seeding L <= 5 minutes with peak memory under 6 GB.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce

from sandbox.clients import DEFAULT_VERSION, sandbox_requests_session
from sandbox.runner import run_sandbox
from sandbox.storage import Storage

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
REST_FIELDS = ("Id", "FirstName", "LastName", "Email", "Company", "Website", "Title", "Phone", "Country", "Status",
               "LeadSource", "OwnerId", "CreatedDate", "SystemModstamp")
BULK_FIELDS = ("Id", "WhoId", "WhatId", "Subject", "Type", "TaskSubtype", "ActivityDate", "Status", "OwnerId",
               "CreatedDate", "SystemModstamp")
SEED_TIMEOUT_S = 1800.0
TARGET_REST_PER_S, TARGET_BULK_S, TARGET_SEED_S, TARGET_PEAK_MB = 5_000, 60.0, 300.0, 6_144


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux reports KiB


def org_mb(storage: Storage) -> int:
    pages = storage.fetchone("PRAGMA page_count")[0] * storage.fetchone("PRAGMA page_size")[0]  # type: ignore[index]
    return round(pages / 2**20)


def serve(size: str, seed: int, directory: Path) -> None:
    """Child process: seed and serve; one JSON line when ready, another (final peak) when stdin closes."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with run_sandbox(seed=seed, size=size, directory=directory, as_of=AS_OF) as handle:
        ready = {
            "base_url": handle.base_url, "ca_path": str(handle.ca_path), "session": handle.salesforce_session(),
            "seed_s": round(time.perf_counter() - started, 1),
            "seed_cpu_s": round(time.process_time() - cpu_started, 1),
            "seed_peak_rss_mb": peak_rss_mb(), "seeded": handle.seeded,
            "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "org_mb": org_mb(handle.sandbox.storage),
            "org_in": "a scratch file" if handle.sandbox.storage.scratch else "memory",
        }
        print(json.dumps(ready), flush=True)
        sys.stdin.read()
        print(json.dumps({"peak_rss_mb": peak_rss_mb(), "cpu_s": round(time.process_time() - cpu_started, 1)}),
              flush=True)


def start_child(size: str, seed: int, directory: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    command = [sys.executable, "-m", "benchmarks.sandbox", "--serve", str(directory), "--size", size,
               "--seed", str(seed)]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline() if child.stdout else ""
    if not line:
        child.wait(timeout=SEED_TIMEOUT_S)
        raise RuntimeError(f"the sandbox child exited ({child.returncode}) before it was ready; see its log above")
    return child, json.loads(line)


def client(info: dict[str, Any]) -> Salesforce:
    return Salesforce(instance_url=info["base_url"], session_id=info["session"], version=DEFAULT_VERSION,
                      session=sandbox_requests_session(info["ca_path"]))


def stamp_limit() -> str:
    """The upper bound of the connector's window (now), in SOQL's datetime literal form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rest_paging(sf: Salesforce, rows: int) -> tuple[int, float, int]:
    """Read ``rows`` leads through query + nextRecordsUrl; returns (records, seconds, pages)."""
    soql = (f"SELECT {', '.join(REST_FIELDS)} FROM Lead WHERE SystemModstamp < {stamp_limit()} "
            f"ORDER BY SystemModstamp ASC, Id ASC LIMIT {rows}")
    started = time.perf_counter()
    count, pages = 0, 0
    result = sf.query(soql)
    while True:
        pages += 1
        count += len(result["records"])
        if result["done"]:
            break
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
    return count, time.perf_counter() - started, pages


def bulk_query(sf: Salesforce, object_name: str, rows: int, page_records: int) -> tuple[int, float, int]:
    """One Bulk 2.0 query job over ``rows`` records, every CSV page downloaded and parsed; (rows, seconds, pages)."""
    soql = f"SELECT {', '.join(BULK_FIELDS)} FROM {object_name} WHERE SystemModstamp < {stamp_limit()} LIMIT {rows}"
    started = time.perf_counter()
    count, pages = 0, 0
    for page in getattr(sf.bulk2, object_name).query(soql, max_records=page_records, wait=0.2):  # type: ignore[arg-type]
        pages += 1
        count += sum(1 for _ in csv.reader(io.StringIO(str(page)))) - 1  # minus the header row
    return count, time.perf_counter() - started, pages


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="L", choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rest-rows", type=int, default=200_000, help="leads read through REST paging")
    parser.add_argument("--bulk-rows", type=int, default=1_000_000, help="tasks read by the Bulk 2.0 query")
    parser.add_argument("--bulk-page", type=int, default=50_000, help="maxRecords per Bulk result page")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.size, args.seed, args.serve)
        return
    print(f"machine load before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="abm-bench-sandbox-") as tmp:
        child, info = start_child(args.size, args.seed, Path(tmp))
        try:
            rows = sum(n for name, n in info["seeded"].items() if "." not in name)
            hubspot_rows = sum(n for name, n in info["seeded"].items() if name.startswith("hubspot."))
            print(f"seeded {args.size} ({rows:,} Salesforce rows, {hubspot_rows:,} HubSpot rows and events) and "
                  f"serving in {info['seed_s']:.0f} s wall, {info['seed_cpu_s']:.0f} s CPU; peak memory "
                  f"{info['seed_peak_rss_mb']:,} MB (its HubSpot seeding worker: {info['worker_peak_rss_mb']:,} MB); "
                  f"the org's tables and indexes take {info['org_mb']:,} MB in {info['org_in']}", flush=True)
            sf = client(info)
            count, seconds, pages = rest_paging(sf, args.rest_rows)
            rest_rate = count / seconds if seconds else 0.0
            print(f"REST query paging: {count:,} leads in {pages} pages, {seconds:.1f} s = {rest_rate:,.0f} "
                  f"records/s", flush=True)
            bulk_rows = min(args.bulk_rows, info["seeded"].get("Task", 0))
            count, bulk_s, pages = bulk_query(sf, "Task", bulk_rows, args.bulk_page)
            print(f"Bulk 2.0 query: {count:,} tasks in {pages} result pages, {bulk_s:.1f} s "
                  f"({count / bulk_s if bulk_s else 0:,.0f} records/s)", flush=True)
        finally:
            child.stdin.close()  # type: ignore[union-attr]
            last = child.stdout.readline() if child.stdout else ""
            child.wait(timeout=120)
        final = json.loads(last) if last else {}
    print(f"sandbox process peak memory while serving: {final.get('peak_rss_mb', 0):,} MB; "
          f"this (client) process: {peak_rss_mb():,} MB; machine load after: {os.getloadavg()[0]:.1f}")
    print(f"\nREST {rest_rate:,.0f} records/s (target >= {TARGET_REST_PER_S:,}): "
          f"{verdict(rest_rate >= TARGET_REST_PER_S)}")
    if count >= 1_000_000:
        print(f"Bulk 1,000,000 rows in {bulk_s:.1f} s (target <= {TARGET_BULK_S:.0f} s): "
              f"{verdict(bulk_s <= TARGET_BULK_S)}")
    else:
        print(f"Bulk: only {count:,} rows in a size {args.size} org; the 1,000,000-row target needs --size L")
    if args.size == "L":
        print(f"Seeding L in {info['seed_s']:.0f} s (target <= {TARGET_SEED_S:.0f} s): "
              f"{verdict(info['seed_s'] <= TARGET_SEED_S)}; peak {info['seed_peak_rss_mb']:,} MB "
              f"(target < {TARGET_PEAK_MB:,} MB): {verdict(info['seed_peak_rss_mb'] < TARGET_PEAK_MB)}; "
              f"worker peak {info['worker_peak_rss_mb']:,} MB")


if __name__ == "__main__":
    main()
