"""Seconds and peak memory to generate the synthetic org and load it into a sandbox Storage.

Each size runs in its own process, so each peak RSS is that size's alone. Salesforce and
HubSpot are loaded as ``run_sandbox(seed=..., size=...)`` loads them (``sandbox.org_loader``):
S and M in memory, L in a scratch SQLite file (its pages are in the OS file cache, not in the
process's RSS; the size of that file is printed too); for M and L a worker process seeds
HubSpot while Salesforce loads (its peak memory is printed separately).
CPU seconds are printed next to wall seconds, since on a shared machine wall time says
little on its own.

    python -m benchmarks.seed [--sizes S M L] [--seed 1]

Target (issue 3): seeding L <= 5 minutes, peak memory < 6 GB.
"""

from __future__ import annotations

import argparse
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

from sandbox.app import Sandbox
from sandbox.org_loader import is_large, load_generated_org

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_one(size: str, seed: int) -> dict[str, Any]:
    """Generate and load one size in this process, as ``run_sandbox`` does; returns the figures."""
    start, cpu_start = time.perf_counter(), cpu_s(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix="abm-seed-bench-") as tmp:
        sandbox = Sandbox(Path(tmp), scratch=is_large(size))
        try:
            counts = load_generated_org(sandbox.salesforce.org, seed, size, AS_OF, hubspot=sandbox.hubspot,
                                        work_dir=Path(tmp))
            total_s = time.perf_counter() - start
            storage = sandbox.storage
            pages = storage.fetchone("PRAGMA page_count")[0] * storage.fetchone("PRAGMA page_size")[0]  # type: ignore[index]
        finally:
            sandbox.close()
    salesforce = {k: v for k, v in counts.items() if not k.startswith("hubspot.")}
    salesforce_rows = sum(salesforce.values())
    return {
        "size": size, "salesforce_rows": salesforce_rows, "hubspot_rows": sum(counts.values()) - salesforce_rows,
        "total_s": round(total_s, 1), "cpu_s": round(cpu_s(resource.RUSAGE_SELF) - cpu_start, 1),
        "worker_cpu_s": round(cpu_s(resource.RUSAGE_CHILDREN), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "db_mb": round(pages / 2**20), "db_where": "scratch file" if is_large(size) else "memory", "counts": counts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L"], choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", choices=["S", "M", "L"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return
    print(f"{'size':<5}{'SF rows':>11}{'HS rows':>11}{'wall s':>8}{'cpu s':>8}{'worker cpu s':>14}"
          f"{'peak RSS MB':>13}{'worker MB':>11}{'org MB':>9}  org in")
    for size in args.sizes:
        child = subprocess.run([sys.executable, "-m", "benchmarks.seed", "--one", size, "--seed", str(args.seed)],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(f"{size}: failed\n{child.stderr}", file=sys.stderr)
            sys.exit(child.returncode)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{size:<5}{r['salesforce_rows']:>11,}{r['hubspot_rows']:>11,}{r['total_s']:>8}{r['cpu_s']:>8}"
              f"{r['worker_cpu_s']:>14}{r['peak_rss_mb']:>13,}{r['worker_peak_rss_mb']:>11,}{r['db_mb']:>9,}"
              f"  {r['db_where']}", flush=True)
    print(f"SF = Salesforce objects, HS = HubSpot objects, associations and events; wall s = seconds until both are "
          f"loaded; cpu s = the loading process's CPU seconds (generation runs on a thread beside the loader); "
          f"worker = the process that seeds HubSpot meanwhile for M and L (its CPU and peak memory are its own). "
          f"Machine load now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Target for L: total <= 300 s, "
          f"peak RSS < 6,144 MB.")


if __name__ == "__main__":
    main()
