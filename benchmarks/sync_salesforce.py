"""Salesforce pull benchmark: full sync, then incremental after 1% of records changed, of a generated org.

    .venv/bin/python -m benchmarks.sync_salesforce --size L   # S and M for quick runs

The sandbox runs in its own process (``abm sandbox serve``), so the peak memory printed is the
connector's alone (``ru_maxrss`` of this process). Targets for L: full sync <= 10 minutes with
<= 100 API calls (Bulk API 2.0), incremental after 1% change <= 30 s, peak memory under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from config import load_config
from config.model import AbmConfig
from connectors.budget import ApiBudget
from connectors.result import SyncResult
from connectors.salesforce import pull_salesforce
from connectors.salesforce.client import SalesforceClient
from store import migrate
from store.db import make_engine

# What "1% changed" touches, per object: a field the connector maps, and a value to write.
CHANGES: dict[str, tuple[str, str]] = {
    "Account": ("Industry", "Biotechnology"),
    "Lead": ("Title", "Head of Procurement"),
    "Contact": ("Title", "Head of Procurement"),
    "Opportunity": ("StageName", "Negotiation/Review"),
    "Task": ("Subject", "Follow-up call"),
    "Event": ("Subject", "Quarterly check-in"),
}
SEED_TIMEOUT_S = 1800.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def start_sandbox(directory: Path, seed: int, size: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    command = [sys.executable, "-m", "worker.cli", "sandbox", "serve", "--port", "0", "--seed", str(seed),
               "--size", size, "--dir", str(directory), "--write-config", str(directory / "abm.yaml"),
               "--database-url", f"sqlite:///{directory / 'abm.db'}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    info_path = directory / "sandbox.json"
    deadline = time.monotonic() + SEED_TIMEOUT_S
    while not (info_path.exists() and (directory / "abm.yaml").exists()):
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            process.terminate()
            raise RuntimeError("the sandbox did not start in time")
        time.sleep(0.5)
    return process, json.loads(info_path.read_text())


def change_one_percent(config: AbmConfig, seed: int) -> dict[str, int]:
    """Update 1% of the records of each object with Bulk API 2.0 ingest jobs (as a busy day would)."""
    sf = SalesforceClient(config.salesforce, ApiBudget("salesforce", 1.0)).sf
    rng = random.Random(seed)
    changed: dict[str, int] = {}
    for object_name, (field, value) in CHANGES.items():
        ids = [r["Id"] for r in sf.query_all_iter(f"SELECT Id FROM {object_name}")]
        chosen = rng.sample(ids, max(1, len(ids) // 100)) if ids else []
        if chosen:
            results = getattr(sf.bulk2, object_name).update(records=[{"Id": i, field: value} for i in chosen],
                                                            wait=0.2)
            changed[object_name] = sum(int(r["numberRecordsProcessed"]) - int(r["numberRecordsFailed"])
                                       for r in results)
    return changed


def report(title: str, result: SyncResult, seconds: float) -> None:
    totals = result.totals()
    print(f"\n{title}: {seconds:.1f} s wall, {result.api_calls} API calls, read {totals['read']:,}, "
          f"upserted {totals['upserted']:,}, deleted {totals['deleted']:,}, skipped {totals['skipped']:,}, "
          f"peak memory so far {peak_rss_mb():.0f} MB")
    for name, counts in result.objects.items():
        print(f"  {name:<15} {counts.read:>10,} read {counts.upserted:>10,} upserted  via {counts.method}")
    if result.paused:
        print(f"  PAUSED: {result.pause_reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="S", choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="abm-bench-sf-") as tmp:
        directory = Path(tmp)
        started = time.monotonic()
        process, info = start_sandbox(directory, args.seed, args.size)
        try:
            print(f"sandbox {args.size} org seeded in {time.monotonic() - started:.0f} s: "
                  + ", ".join(f"{n:,} {o}" for o, n in info["seeded"].items() if "." not in o))
            config = load_config(directory / "abm.yaml")
            engine = make_engine(args.database or f"sqlite:///{directory / 'abm.db'}")
            migrate.upgrade(engine)
            t = time.monotonic()
            full = pull_salesforce(engine, config, full=True, trigger="benchmark")
            report(f"full sync ({args.size})", full, time.monotonic() - t)
            t = time.monotonic()
            changed = change_one_percent(config, args.seed)
            print(f"\nchanged 1% in {time.monotonic() - t:.0f} s: "
                  + ", ".join(f"{n:,} {o}" for o, n in changed.items()))
            t = time.monotonic()
            incremental = pull_salesforce(engine, config, trigger="benchmark")
            report("incremental sync after 1% changed", incremental, time.monotonic() - t)
            print(f"\npeak memory (connector process): {peak_rss_mb():.0f} MB")
        finally:
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
