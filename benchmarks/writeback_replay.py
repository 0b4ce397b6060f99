"""Replay one recorded run's writeback on a kept org, to measure the writeback stage alone.

    .venv/bin/python -m benchmarks.writeback_replay --dir /tmp/l-org-copy --run 10 [--only salesforce]

``--dir`` is an org directory kept by ``benchmarks.pipeline --dir`` (``abm.db``, ``sandbox.db``,
``sandbox/``); work on a copy, since the replay writes to both databases. The run's writeback
wrote some fields of some records and recorded them in ``writeback_state`` (one row per record,
``run_id`` = the run that last wrote it); the replay marks every field of those records stale
(``~stale~``), so that the diff selects the same records again (with all their fields, a little
more than the run itself sent), then runs both CRMs' writeback concurrently, as the pipeline does, with
the same ``changed since`` as the run's stages (read from the run record) and the run's id. The
store's scores are the run's, so the same values are written and the records end as they were,
but for numbers that had moved less than their field's tolerance since last written (left as they
were by the run, written exactly by the replay): the values that differ after the replay are
counted, and any that is not such a number is printed as a fault.

Printed: wall time and CPU seconds per CRM thread, the process's CPU, the sandbox process's CPU
(its own processing of Bulk jobs and batch calls), API calls and, with ``--timers``, the wall and
CPU time of each step (reading targets, baseline, diff, recording, Bulk job steps).

Full pipeline benchmarks are ``benchmarks.pipeline``; this one costs a minute on the L org.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

STALE = "~stale~"
_END = object()  # an iterator's end, told apart from any item
CRMS = ("salesforce", "hubspot")


def serve(conn: Connection, directory: Path) -> None:
    """The sandbox process: serve the kept org until told to stop."""
    from sandbox.runner import run_sandbox
    from worker.cli_sandbox import sandbox_config

    with run_sandbox(state_path=directory / "sandbox.db", directory=directory / "sandbox") as handle:
        conn.send({"settings": sandbox_config(handle, directory / "sandbox" / "secrets",
                                              f"sqlite:///{directory / 'abm.db'}"),
                   "pid": os.getpid()})
        conn.recv()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state_values(db: Path, run_id: int, crms: Sequence[str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The field values of the records the run wrote last, of ``crms``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    marks = ", ".join("?" for _ in crms)
    rows = conn.execute(f"SELECT crm, object, crm_id, field_values FROM writeback_state WHERE run_id = ? "
                        f"AND crm IN ({marks})", (run_id, *crms))
    values = {(crm, obj, crm_id): json.loads(text) for crm, obj, crm_id, text in rows}
    conn.close()
    return values


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def compare_values(before: dict[tuple[str, str, str], dict[str, Any]],
                   after: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    """How the records' values after the replay compare with those before it."""
    total = sum(len(v) for v in before.values())
    moved, faults = 0, []
    for key, old in before.items():
        new = after.get(key, {})
        for field in old.keys() | new.keys():
            if old.get(field) != new.get(field):
                if _is_number(old.get(field)) and _is_number(new.get(field)):
                    moved += 1
                else:
                    faults.append(f"{'/'.join(key)} {field}: {old.get(field)!r} -> {new.get(field)!r}")
    lines = [f"{total - moved - len(faults):,} of {total:,} field values as before; {moved:,} numbers written "
             f"exactly where the run had left them within their tolerance; {len(faults):,} other differences"]
    return "\n".join(lines + [f"  FAULT {f}" for f in faults[:20]])


def changed_since(db: Path, run_id: int) -> dict[str, datetime]:
    """Each CRM's ``changed since`` in the run's writeback stages (an incremental run's scope)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (stages,) = conn.execute("SELECT stages FROM runs WHERE id = ?", (run_id,)).fetchone()
    conn.close()
    since = {}
    for crm in CRMS:
        scope = json.loads(stages).get(f"writeback:{crm}", {}).get("detail", {}).get("scope", "")
        if scope.startswith("changed since "):
            since[crm] = datetime.fromisoformat(scope.removeprefix("changed since "))
    return since


def mark_stale(db: Path, run_id: int, crms: Sequence[str]) -> int:
    conn = sqlite3.connect(db)
    marks = ", ".join("?" for _ in crms)
    count = conn.execute("UPDATE writeback_state SET field_values = (SELECT json_group_object(key, ?) FROM "
                         f"json_each(field_values)) WHERE run_id = ? AND crm IN ({marks})",
                         (STALE, run_id, *crms)).rowcount
    conn.commit()
    conn.close()
    return count


class StepTimers:
    """Wall and CPU seconds of named functions, per CRM (told apart by the thread's name)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        """Add the block's wall and CPU seconds to ``label``, under the CRM whose thread runs it."""
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            thread = threading.current_thread().name
            crm = next((c for c in CRMS if c in thread), thread)
            with self._lock:
                self.seconds[f"{crm} {label} wall"] += time.perf_counter() - wall
                self.seconds[f"{crm} {label} cpu"] += time.thread_time() - cpu

    def wrap(self, owner: Any, name: str, label: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(label):
                return inner(*args, **kwargs)

        setattr(owner, name, timed)

    def wrap_iterator(self, owner: Any, name: str, label: str) -> None:
        """Like :meth:`wrap`, for a function returning an iterator: each step is timed, not the call."""
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            items = iter(inner(*args, **kwargs))
            while True:
                with self.timing(label):
                    item = next(items, _END)
                if item is _END:
                    return
                yield item

        setattr(owner, name, timed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a copy of an org directory kept by the pipeline")
    parser.add_argument("--run", type=int, required=True, help="the run whose writeback is replayed")
    parser.add_argument("--only", choices=CRMS, help="one CRM alone (default: both, concurrently)")
    parser.add_argument("--timers", action="store_true", help="time each step of the writeback")
    args = parser.parse_args(argv)
    db = args.dir / "abm.db"
    since = changed_since(db, args.run)
    crms = [args.only] if args.only else list(CRMS)
    before = state_values(db, args.run, crms)
    print(f"marked the fields of {mark_stale(db, args.run, crms):,} records of run {args.run} stale")

    ours, theirs = mp.get_context("spawn").Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(theirs, args.dir), daemon=True)
    server.start()
    info = ours.recv()

    from config import AbmConfig
    from store.db import make_engine
    from writeback import run as writeback_run
    from writeback import salesforce_bulk, state
    from writeback.connect import writers

    timers = StepTimers()
    if args.timers:
        timers.wrap_iterator(writeback_run, "iter_targets", "read targets and their baseline")
        timers.wrap(state.WritebackLedger, "baseline", "read baseline (of outcomes not planned here)")
        timers.wrap(writeback_run, "plan_changes", "diff")
        timers.wrap(state.WritebackLedger, "record", "record outcomes")
        timers.wrap(salesforce_bulk.BulkUpdate, "_close", "Bulk close (the server processes the job)")
        timers.wrap(salesforce_bulk.BulkUpdate, "_wait", "Bulk status polls (and their waits)")
    config = AbmConfig.model_validate(info["settings"])
    engine = make_engine(config.database.url)
    results: dict[str, tuple[float, float, Any]] = {}

    def work(crm: str) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        report = writeback_run.run_writeback(engine, config.writeback, writers(config, [crm]), run_id=args.run,
                                             changed_since=since.get(crm))
        results[crm] = (time.perf_counter() - wall, time.thread_time() - cpu, report)

    server_before = process_cpu_s(info["pid"])
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(crm,), name=crm) for crm in crms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = process_cpu_s(info["pid"]) - server_before
    ours.send("stop")
    server.join(30)

    cpu = usage.ru_utime - usage_before.ru_utime + usage.ru_stime - usage_before.ru_stime
    print(f"wall {wall:.1f} s; this process {cpu:.1f} CPU s; sandbox process {server_cpu:.1f} CPU s; "
          f"peak RSS {usage.ru_maxrss / 1024:,.0f} MB")
    for crm, (crm_wall, crm_cpu, report) in results.items():
        print(f"  {crm}: {crm_wall:.1f} s wall, {crm_cpu:.1f} CPU s on its thread, API calls "
              f"{report.api_calls.get(crm, 0)}")
        for obj in report.objects:
            print(f"    {obj.object}: {obj.records:,} targets, {obj.written:,} written, {obj.failed:,} failed "
                  f"({obj.mode}){f', stopped: {obj.stopped}' if obj.stopped else ''}; "
                  + ", ".join(f"{step} {s:.1f}" for step, s in obj.timings.items()) + " s into the writeback")
    for key in sorted(timers.seconds):
        print(f"  {key}: {timers.seconds[key]:.2f} s")
    print(compare_values(before, state_values(db, args.run, crms)))


if __name__ == "__main__":
    main()
