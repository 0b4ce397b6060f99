"""Seed the HubSpot side of a large org in a worker process while this one seeds Salesforce.

Generating and loading records is Python work, so two threads would take turns on one core;
a second process uses the second one. The worker regenerates the same org from (seed, size,
as_of) (the generator is deterministic), loads its HubSpot view with the same loader code into
a SQLite file of its own, and this process then copies those tables in with ``INSERT ...
SELECT`` (SQLite's own speed) and re-reads the property definitions the load registered.
The result is the same org as a sequential load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.hubspot.schema import GROUP_TABLE, META_TABLE
from sandbox.storage import Storage, quote_ident

if TYPE_CHECKING:
    from sandbox.hubspot.surface import HubSpotSurface
    from sandbox.seed_plan import OrgSize

WORKER_FILE = "hubspot-seed.sqlite"
SCHEMA_TABLES = (META_TABLE, GROUP_TABLE)


def _size_argument(size: str | OrgSize) -> str:
    return size if isinstance(size, str) else json.dumps(asdict(size))


def _seed_worker(seed: int, size_argument: str, as_of: str, path: str) -> None:
    """Worker process: load the HubSpot view into ``path``, print the counts as JSON."""
    from sandbox.faults import FaultInjector
    from sandbox.hubspot.surface import HubSpotSurface
    from sandbox.org_loader import load_hubspot
    from sandbox.seed import generate
    from sandbox.seed_plan import OrgSize

    size = OrgSize(**json.loads(size_argument)) if size_argument.startswith("{") else size_argument
    storage = Storage(path)
    try:
        surface = HubSpotSurface(storage, FaultInjector())
        # The rows are copied out and indexed there: secondary indexes here would be built for nothing.
        for (name,) in storage.fetchall("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                        "AND sql NOT LIKE 'CREATE UNIQUE%'"):
            storage.execute(f"DROP INDEX {quote_ident(name)}")
        counts = load_hubspot(surface, generate(seed, size, datetime.fromisoformat(as_of)))
    finally:
        storage.close()
    print(json.dumps(counts), flush=True)


class BackgroundHubSpotSeed:
    """A running worker; ``merge_into`` waits for it and copies its tables into a surface's storage."""

    def __init__(self, seed: int, size: str | OrgSize, as_of: datetime, work_dir: Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="abm-hubspot-seed-", dir=work_dir))
        self.path = self._dir / WORKER_FILE
        # A plain child interpreter rather than multiprocessing: that would re-run the caller's
        # __main__ module, which scripts calling run_sandbox() at top level do not guard.
        # Its error output goes to a file: a pipe nobody reads until Salesforce is loaded could fill and stall it.
        self._log = (self._dir / "worker.log").open("w+", encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.parallel_seed", str(seed), _size_argument(size), as_of.isoformat(),
             str(self.path)],
            stdout=subprocess.PIPE, stderr=self._log, text=True)

    def merge_into(self, hubspot: HubSpotSurface) -> dict[str, int]:
        """Counts keyed ``hubspot.<what>``, once the worker's tables are in ``hubspot``'s storage."""
        try:
            out, _ = self._process.communicate()
            if self._process.returncode != 0:
                self._log.seek(0)
                raise RuntimeError(f"seeding the HubSpot org failed in its worker process "
                                   f"(exit code {self._process.returncode}):\n{self._log.read()[-4000:]}")
            _copy_tables(hubspot.portal.storage, self.path)
            hubspot.reload_schema()
            return {str(k): int(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the worker if it still runs and delete its file."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.communicate()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _copy_tables(storage: Storage, path: Path) -> None:
    """Copy every HubSpot table of ``path`` into ``storage``: definitions first, so that the tables
    gain the columns of properties the load registered, then the rows, indexes built after."""
    storage.execute("ATTACH DATABASE ? AS seeded", (str(path),))
    try:
        tables = [row[0] for row in storage.fetchall(
            "SELECT name FROM seeded.sqlite_master WHERE type = 'table' AND name LIKE 'hs^_%' ESCAPE '^'")]
        for table in [t for t in SCHEMA_TABLES if t in tables] + [t for t in tables if t not in SCHEMA_TABLES]:
            info = storage.fetchall(f"PRAGMA seeded.table_info({quote_ident(table)})")
            columns = [row[1] for row in info]
            if table not in SCHEMA_TABLES:
                for name, sql_type in ((row[1], row[2]) for row in info):
                    storage.add_column(table, name, sql_type)
            cols = ", ".join(quote_ident(c) for c in columns)
            verb = "INSERT OR REPLACE" if table in SCHEMA_TABLES else "INSERT"
            with storage.deferred_indexes(table, unique_keeps_first=True):
                storage.execute(f"{verb} INTO main.{quote_ident(table)} ({cols}) "
                                f"SELECT {cols} FROM seeded.{quote_ident(table)}")
    finally:
        storage.execute("DETACH DATABASE seeded")


if __name__ == "__main__":
    _seed_worker(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
