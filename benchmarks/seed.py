"""Seconds and peak memory to generate the synthetic org and load it into a sandbox Storage.

Each size runs in its own process, so each peak RSS is that size's alone. Salesforce and
HubSpot are loaded as ``run_sandbox(seed=..., size=...)`` loads them (``sandbox.org_loader``):
S and M in memory, L in a scratch SQLite file (its pages are in the OS file cache, not in the
process's RSS; the size of that file is printed too).
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
from sandbox.org_loader import is_large, load_hubspot, load_salesforce
from sandbox.seed import generate

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def run_one(size: str, seed: int) -> dict[str, Any]:
    """Generate and load one size in this process, as the sandbox does; returns the figures."""
    start, cpu_start = time.perf_counter(), time.process_time()
    generated = generate(seed=seed, size=size, as_of=AS_OF)
    with tempfile.TemporaryDirectory(prefix="abm-seed-bench-") as tmp:
        sandbox = Sandbox(Path(tmp), scratch=is_large(size))
        try:
            counts = load_salesforce(sandbox.salesforce.org, generated)
            salesforce_s, salesforce_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            hubspot_counts = load_hubspot(sandbox.hubspot, generated)
            total_s, total_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            pages = sandbox.storage.fetchone("PRAGMA page_count")[0] * sandbox.storage.fetchone("PRAGMA page_size")[0]
        finally:
            sandbox.close()
    return {
        "size": size, "salesforce_rows": sum(counts.values()), "hubspot_rows": sum(hubspot_counts.values()),
        "salesforce_s": round(salesforce_s, 1), "salesforce_cpu_s": round(salesforce_cpu, 1),
        "hubspot_s": round(total_s - salesforce_s, 1), "hubspot_cpu_s": round(total_cpu - salesforce_cpu, 1),
        "total_s": round(total_s, 1), "total_cpu_s": round(total_cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "db_mb": round(pages / 2**20), "db_where": "scratch file" if is_large(size) else "memory",
        "counts": {**counts, **hubspot_counts},
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
    print(f"{'size':<5}{'SF rows':>11}{'SF s':>8}{'SF cpu':>8}{'HS rows':>11}{'HS s':>8}{'HS cpu':>8}"
          f"{'total s':>9}{'cpu s':>8}{'peak RSS MB':>13}{'org MB':>9}  org in")
    for size in args.sizes:
        child = subprocess.run([sys.executable, "-m", "benchmarks.seed", "--one", size, "--seed", str(args.seed)],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(f"{size}: failed\n{child.stderr}", file=sys.stderr)
            sys.exit(child.returncode)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{size:<5}{r['salesforce_rows']:>11,}{r['salesforce_s']:>8}{r['salesforce_cpu_s']:>8}"
              f"{r['hubspot_rows']:>11,}{r['hubspot_s']:>8}{r['hubspot_cpu_s']:>8}{r['total_s']:>9}"
              f"{r['total_cpu_s']:>8}{r['peak_rss_mb']:>13,}{r['db_mb']:>9,}  {r['db_where']}", flush=True)
    print(f"SF = Salesforce objects, HS = HubSpot objects, associations and events; s = wall seconds, cpu = the "
          f"process's CPU seconds (generation runs on a thread beside the loader). Machine load now: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. Target for L: total <= 300 s, peak RSS < 6,144 MB.")


if __name__ == "__main__":
    main()
