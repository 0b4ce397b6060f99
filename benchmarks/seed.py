"""Seconds and peak memory to generate the synthetic org and load it into a sandbox Storage.

Each size runs in its own process, so each peak RSS is that size's alone. Salesforce and
HubSpot are loaded as ``run_sandbox(seed=..., size=...)`` loads them; the time spent inside
the generator (pulling records) is reported apart from the time the loaders take, and CPU
seconds next to wall seconds, since on a shared machine wall time says little on its own.

    python -m benchmarks.seed [--sizes S M L] [--seed 1]

Target (issue 3): seeding L <= 5 minutes, peak memory < 6 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sandbox.app import Sandbox
from sandbox.org_loader import LOAD_ORDER
from sandbox.seed import generate

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
T = TypeVar("T")


class Stopwatch:
    """Accumulates the time spent producing items of the iterables it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, items: Iterable[T]) -> Iterator[T]:
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                return
            self.seconds += time.perf_counter() - start
            yield item


class _TimedHubSpotView:
    """The generator's HubSpot view with every record stream timed (the loader takes any such view)."""

    def __init__(self, view: Any, watch: Stopwatch) -> None:
        self._view, self._watch = view, watch

    def records(self, object_type: str) -> Iterator[dict[str, Any]]:
        return self._watch.wrap(self._view.records(object_type))

    def associations(self) -> Iterator[tuple[str, str, str, str]]:
        return self._watch.wrap(self._view.associations())

    def email_events(self) -> Iterator[dict[str, Any]]:
        return self._watch.wrap(self._view.email_events())

    def web_events(self) -> Iterator[dict[str, Any]]:
        return self._watch.wrap(self._view.web_events())


def run_one(size: str, seed: int) -> dict[str, Any]:
    """Generate and load one size in this process; returns the figures."""
    start, cpu_start = time.perf_counter(), time.process_time()
    generated = generate(seed=seed, size=size, as_of=AS_OF)
    watch = Stopwatch()
    with tempfile.TemporaryDirectory(prefix="abm-seed-bench-") as tmp:
        sandbox = Sandbox(Path(tmp))
        try:
            counts: dict[str, int] = {}
            for object_name in LOAD_ORDER:
                counts[object_name] = sandbox.salesforce.org.load(
                    object_name, watch.wrap(generated.salesforce.records(object_name)))
            salesforce_s, salesforce_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            salesforce_generating = watch.seconds
            hubspot_counts = sandbox.hubspot.load_generated(_TimedHubSpotView(generated.hubspot, watch))
            total_s, total_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        finally:
            sandbox.close()
    return {
        "size": size, "salesforce_rows": sum(counts.values()), "hubspot_rows": sum(hubspot_counts.values()),
        "salesforce_s": round(salesforce_s, 1), "salesforce_generating_s": round(salesforce_generating, 1),
        "salesforce_cpu_s": round(salesforce_cpu, 1), "total_cpu_s": round(total_cpu, 1),
        "hubspot_s": round(total_s - salesforce_s, 1),
        "hubspot_generating_s": round(watch.seconds - salesforce_generating, 1), "total_s": round(total_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
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
    print(f"{'size':<5}{'SF rows':>11}{'SF s':>8}{'(gen)':>8}{'SF cpu':>8}{'HS rows':>11}{'HS s':>8}{'(gen)':>8}"
          f"{'total s':>9}{'cpu s':>8}{'peak RSS MB':>13}")
    for size in args.sizes:
        child = subprocess.run([sys.executable, "-m", "benchmarks.seed", "--one", size, "--seed", str(args.seed)],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            print(f"{size}: failed\n{child.stderr}", file=sys.stderr)
            sys.exit(child.returncode)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{size:<5}{r['salesforce_rows']:>11,}{r['salesforce_s']:>8}{r['salesforce_generating_s']:>8}"
              f"{r['salesforce_cpu_s']:>8}{r['hubspot_rows']:>11,}{r['hubspot_s']:>8}{r['hubspot_generating_s']:>8}"
              f"{r['total_s']:>9}{r['total_cpu_s']:>8}{r['peak_rss_mb']:>13,}", flush=True)
    print("SF = Salesforce objects, HS = HubSpot objects, associations and events; (gen) = wall time inside the "
          "generator; cpu = this process's CPU seconds. Target for L: total <= 300 s, peak RSS < 6,144 MB.")


if __name__ == "__main__":
    main()
