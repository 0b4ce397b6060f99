"""Upsert throughput of the canonical store: 1,000,000 people on SQLite and on PostgreSQL.

Prints rows/s for a first load (inserts), a re-upsert of unchanged rows (the common case of
an incremental re-read) and an upsert where 10% of rows changed, plus the process's peak RSS.
Each backend runs in its own process so its peak memory is its own.

    python -m benchmarks.store_upsert [--rows 1000000] [--postgres URL]

PostgreSQL comes from --postgres, ABM_BENCH_POSTGRES_URL or ABM_TEST_POSTGRES_URL; it must be a
database the benchmark may fill (it creates and drops its own database next to it).
Targets (issue 2): >= 50,000 rows/s on SQLite, >= 30,000 rows/s on PostgreSQL, peak < 1 GB.
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
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from store import migrate
from store.db import make_engine
from store.ids import to_18
from store.schema import Person
from store.upsert import upsert

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COMMIT_EVERY = 50_000


# "00Q" + 12 digits: only the Q is upper case, so every such id has the same checksum suffix.
ID_SUFFIX = to_18("00Q000000000000")[15:]


def people(count: int, *, changed_every: int = 0) -> Iterator[dict]:
    """Deterministic lead rows shaped like a connector's output (valid 18-character ids)."""
    for i in range(count):
        title = "VP Finance" if i % 7 else "Software Engineer"
        if changed_every and i % changed_every == 0:
            title = "Chief Financial Officer"
        yield {
            "crm": "salesforce", "object": "Lead", "crm_id": f"00Q{i:012d}{ID_SUFFIX}", "kind": "lead",
            "first_name": f"First{i}", "last_name": f"Last{i}", "email": f"person{i}@company{i % 50_000}.com",
            "title": title, "company": f"Company {i % 50_000} Inc", "website": None, "phone": "+1 415 555 0100",
            "country": "US", "state": "CA", "city": None, "industry": "Software", "employees": 250,
            "account_crm_id": None, "status": "Open", "is_converted": False, "converted_at": None,
            "source": "Web", "created_at": T0 + timedelta(seconds=i), "modified_at": T0 + timedelta(seconds=i),
            "is_deleted": False, "extra": None,
        }


def timed_upsert(engine, rows: Iterator[dict]) -> tuple[int, float]:
    """Upsert in committed chunks; only the store's work (upsert + commit) is timed, not row generation."""
    written = 0
    seconds = 0.0
    while batch := list(islice(rows, COMMIT_EVERY)):
        start = time.perf_counter()
        with engine.begin() as conn:
            written += upsert(conn, Person.__table__, batch)
        seconds += time.perf_counter() - start
    return written, seconds


def run_backend(url: str, count: int) -> dict:
    engine = make_engine(url)
    migrate.upgrade(engine)
    results = {}
    for label, rows in (
        ("insert", people(count)),
        ("re-upsert unchanged", people(count)),
        ("upsert 10% changed", people(count, changed_every=10)),
    ):
        written, seconds = timed_upsert(engine, rows)
        results[label] = {"rows": count, "written": written, "seconds": round(seconds, 2),
                          "rows_per_s": round(count / seconds)}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person.__table__)).scalar_one() == count
    engine.dispose()
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return results


def child(backend: str, url: str, count: int) -> None:
    print(json.dumps({"backend": backend, **run_backend(url, count)}))


def spawn(backend: str, url: str, count: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.store_upsert", "--child", backend, "--url", url, "--rows", str(count)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(result: dict) -> None:
    print(f"\n{result['backend']}: peak RSS {result['peak_rss_mb']} MB")
    for label, figures in result.items():
        if isinstance(figures, dict):
            print(f"  {label:<22} {figures['rows']:>9,} rows in {figures['seconds']:>7.2f} s = "
                  f"{figures['rows_per_s']:>8,} rows/s  (rows written: {figures['written']:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("ABM_BENCH_POSTGRES_URL")
                        or os.environ.get("ABM_TEST_POSTGRES_URL"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.rows)
        return

    with tempfile.TemporaryDirectory() as tmp:
        report(spawn("sqlite", f"sqlite:///{tmp}/bench.db", args.rows))
    if not args.postgres:
        print("\npostgresql: skipped (pass --postgres URL or set ABM_BENCH_POSTGRES_URL)")
        return
    admin = create_engine(make_url(args.postgres).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    name = f"abm_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        report(spawn("postgresql", url, args.rows))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
