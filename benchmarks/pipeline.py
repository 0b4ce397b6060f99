"""The whole worker against a seeded sandbox: a full run, then an incremental run after 1% changed.

    .venv/bin/python -m benchmarks.pipeline             # L org: 100k accounts, 1M people, 5M touches
    .venv/bin/python -m benchmarks.pipeline --size S    # S and M for quick runs
    .venv/bin/python -m benchmarks.pipeline --dir /tmp/l-org            # keep the org and the store...
    .venv/bin/python -m benchmarks.pipeline --dir /tmp/l-org --reuse    # ...to measure an increment again

The sandbox (Salesforce and HubSpot, seeded with the generator's org of ``--size``) runs in a
process of its own, so the peak memory printed is the worker's (with the processes its match stage
forks for large chunks, their PSS summed, the sandbox left out): this process runs the real
pipeline (``worker.executor`` with ``worker.stages.build_plan``) on a config pointing at the
sandbox, written by the same helper as ``abm sandbox serve`` and ``abm demo``, after creating
the store and the custom fields as ``abm init`` does. Every figure per stage (seconds, counts,
API calls per CRM) is read back from the run record the worker keeps (``store.runs``), so they
are the product's own.

A full run writes scores into most records of both CRMs, which bumps their modification
stamps, so the first incremental run after it re-reads what it wrote (every later run re-reads
only its own, smaller, writes). That run is printed on its own, with nothing changed in the CRMs
(``--no-settle`` skips it), and starts a lookback after the full run ended (a pull's window
opens a lookback before the previous pull's start: 10 minutes by default, ``--lookback-minutes``
to shorten the wait), so that the measured increment does not re-read the full run's writes.
Then the sandbox changes 1% of the records of both CRMs through its Python API, as a busy day
would: in Salesforce, a field edited on 1% of accounts, leads, contacts, opportunities, tasks
and events (the edits of ``benchmarks.sync_salesforce``) and as many new calls as 1% of the
tasks, logged on contacts today; in HubSpot, the edits and new email and web events of
``benchmarks.sync_hubspot``.

Targets (issue 9, L org): incremental run end to end <= 60 s; peak memory of the worker < 4 GB.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import tempfile
import threading
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks.matching import MemorySampler
from benchmarks.sync_hubspot import _change as change_hubspot
from benchmarks.sync_salesforce import CHANGES as SALESFORCE_EDITS
from config import AbmConfig
from matching.compiled import running_compiled
from sandbox.org_loader import SIZES
from store import migrate
from store.db import make_engine
from store.runs import get_run, list_runs
from worker.executor import Executor
from worker.lock import LeaseLock
from worker.pipeline import Pipeline
from worker.stages import build_plan
from worker.triggers import RunOptions, request_run
from writeback.connect import provision

TARGET_INCREMENTAL_S = 60.0
TARGET_PEAK_MB = 4096.0


# -- the sandbox, in its own process ------------------------------------------------------------
def change_salesforce(handle: Any, share: float, seed: int, round_: int = 0) -> dict[str, int]:
    """Edit ``share`` of each object's live records and log as many new calls as ``share`` of the tasks.

    Each ``round_`` of changes to one org picks other records (see :func:`change_round`).
    """
    from sandbox.storage import quote_ident

    org = handle.sandbox.salesforce.org
    user = org.integration_user_id
    rng = random.Random(f"{seed}:{round_}")
    changed: dict[str, int] = {}
    with org.storage.transaction():
        for object_name, (field, value) in SALESFORCE_EDITS.items():
            obj = org.object(object_name)
            ids = [r[0] for r in org.storage.fetchall(
                f'SELECT "Id" FROM {quote_ident(obj.table)} WHERE "IsDeleted" = 0 ORDER BY "Id"')]
            picked = rng.sample(ids, max(1, round(len(ids) * share))) if ids else []
            for record_id in picked:
                org.update(obj, record_id, {field: value}, user)
            changed[f"{object_name} edited"] = len(picked)
        task, contact = org.object("Task"), org.object("Contact")
        new_calls = changed["Task edited"]
        people = org.storage.fetchall(
            f'SELECT "Id", "AccountId" FROM {quote_ident(contact.table)} WHERE "IsDeleted" = 0 ORDER BY "Id"')
        today = datetime.now(UTC).date().isoformat()
        for n, (who, what) in enumerate(rng.choices(people, k=new_calls) if people else []):
            org.create(task, {"WhoId": who, "WhatId": what, "Subject": "Discovery call", "Status": "Completed",
                              "Priority": "Normal", "TaskSubtype": "Call", "Type": "Call",
                              "CallDurationInSeconds": 300 + n % 900, "ActivityDate": today}, user)
        changed["Task (new calls)"] = new_calls if people else 0
    return changed


def serve_sandbox(conn: Connection, seed: int, size: str, directory: Path, database_url: str) -> None:
    """The sandbox process: seed, send the worker's config, then change records when asked."""
    from sandbox.runner import run_sandbox
    from worker.cli_sandbox import sandbox_config

    started = time.perf_counter()
    with run_sandbox(seed=seed, size=size, state_path=directory / "sandbox.db",
                     directory=directory / "sandbox") as handle:
        conn.send({"settings": sandbox_config(handle, directory / "sandbox" / "secrets", database_url),
                   "seeded": handle.seeded, "seed_s": time.perf_counter() - started})
        while True:
            command, argument = conn.recv()
            if command == "change":
                t = time.perf_counter()
                share, round_ = argument
                changed = change_salesforce(handle, share, seed, round_)
                changed.update({f"hubspot {k}": v for k, v in change_hubspot(handle, share, round_).items()})
                conn.send((changed, time.perf_counter() - t))
            elif command == "requests":
                conn.send(request_times(handle.request_log, argument))
            elif command == "stop":
                conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                return


def request_times(log: Any, after_seq: int) -> tuple[int, dict[str, tuple[int, float, float, float, float]]]:
    """The last request's sequence number, and per endpoint the sandbox's own time serving the requests
    logged after ``after_seq``: (calls, total ms, slowest ms, first and last request's epoch seconds). It
    tells the emulator's share of a stage's wall time from the worker's (the client-side waits for the rate
    limits are in neither), and when in the run each endpoint was busy."""
    entries = [e for e in log.entries() if e.seq > after_seq]
    times: dict[str, tuple[int, float, float, float, float]] = {}
    for entry in entries:
        key = f"{entry.method} {entry.endpoint}"
        calls, total, slowest, first, last = times.get(key, (0, 0.0, 0.0, entry.at, entry.at))
        times[key] = (calls + 1, total + entry.duration_ms, max(slowest, entry.duration_ms), min(first, entry.at),
                      max(last, entry.at))
    last_seq = max((e.seq for e in log.entries()), default=after_seq)
    return last_seq, times


def print_request_times(times: dict[str, tuple[int, float, float, float, float]], started_at: float) -> None:
    """The sandbox's time per endpoint, and when its first and last request came (seconds into the run)."""
    print(f"  sandbox time serving the run's {sum(t[0] for t in times.values()):,} requests "
          "(its own, not the worker's), and when in the run each endpoint was called:")
    print(f"    {'endpoint':58s} {'calls':>6s} {'total s':>8s} {'mean ms':>8s} {'max ms':>8s} {'first s':>8s} "
          f"{'last s':>8s}")
    for endpoint, (calls, total, slowest, first, last) in sorted(times.items(), key=lambda kv: -kv[1][1]):
        print(f"    {endpoint[:58]:58s} {calls:6,d} {total / 1000:8.1f} {total / calls:8.1f} {slowest:8.1f} "
              f"{first - started_at:8.1f} {last - started_at:8.1f}")


# -- the worker, here -------------------------------------------------------------------------------
def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def change_round(directory: Path) -> int:
    """The number of this change to the org kept in ``directory`` (0 for a new org), counted in a file there.

    A reused org must not be given the same edits again: records already holding the edited values
    would not change, and the increment measured would skip the work a real day of changes brings
    (people whose records changed are rematched, for one).
    """
    counter = directory / "changes.count"
    done = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(done + 1))
    return done


def lookback_s(config: AbmConfig) -> float:
    """The longest lookback of the enabled CRMs' pulls: how far before its cursor a pull re-reads."""
    return max(getattr(config, crm).sync.lookback_minutes * 60.0 for crm in config.chosen_crms())


def had_full_run(engine: Any) -> bool:
    return any(r["kind"] == "full" and r["state"] == "succeeded" for r in list_runs(engine, limit=1000))


def seconds_since_last_run(engine: Any) -> float:
    last = list_runs(engine, limit=1)
    if not last or not last[0]["finished_at"]:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(last[0]["finished_at"])).total_seconds()


def run_once(engine: Any, config: AbmConfig, options: RunOptions) -> dict[str, Any]:
    """One run through the executor, as ``abm run`` does it; returns its run record."""
    run_id = request_run(engine, options, "cli", queue=True)  # as `abm run`: behind a run a dead worker left
    executor = Executor(engine, Pipeline(engine, config, build_plan), LeaseLock(engine), threading.Event())
    executor.run_queued(run_id)
    run = get_run(engine, run_id)
    assert run is not None
    return run


def _mb(stage: dict[str, Any], key: str, width: int) -> str:
    """A stage's recorded memory: ``peak_rss_mb`` is the process's peak at the stage's end (it only
    rises, so the stage where it rises set it); ``stage_rss_mb`` the highest RSS sampled during it."""
    value = stage.get("detail", {}).get(key)
    return f"{value:>{width},}" if value is not None else f"{'':>{width}}"


def report(title: str, run: dict[str, Any], wall_s: float) -> None:
    calls = ", ".join(f"{crm} {n:,}" for crm, n in sorted(run["api_calls"].items())) or "none"
    print(f"\n{title}: run {run['id']} {run['state']} in {run['seconds']:,.1f} s (recorded; {wall_s:,.1f} s wall "
          f"around it), API calls: {calls}; load average {load_average()}")
    if run["error"]:
        print(f"  ERROR: {run['error']}")
    keys = ("read", "upserted", "deleted", "matched", "scored", "written", "skipped", "failed")
    print(f"  {'stage':<22}{'state':<11}{'seconds':>9}" + "".join(f"{k:>10}" for k in keys)
          + f"{'API calls':>11}{'peak MB':>9}{'stage MB':>10}")
    for name, stage in run["stages"].items():
        counts = stage.get("counts", {})
        stage_calls = sum(stage.get("api_calls", {}).values())
        print(f"  {name:<22}{stage['state']:<11}{stage['seconds']:>9,.1f}"
              + "".join(f"{counts[k]:>10,}" if k in counts else f"{'':>10}" for k in keys)
              + f"{stage_calls:>11,}" + _mb(stage, "peak_rss_mb", 9) + _mb(stage, "stage_rss_mb", 10))
        detail = stage.get("detail", {})
        if name == "match" and "scope" in detail:
            print(f"    matched {detail.get('people', 0):,} people ({detail['scope']})")
        elif "dirty" in detail:
            dirty = detail["dirty"]
            print(f"    rescored {dirty['accounts']:,} accounts and {dirty['people']:,} people ({detail['scope']})")
        elif "scope" in detail:
            print(f"    {detail['scope']}")
        if detail.get("phase_seconds"):
            print("    " + ", ".join(f"{phase} {s:,.1f} s" for phase, s in detail["phase_seconds"].items()))
        objects = {key: value for key, value in detail.items() if isinstance(value, dict) and "timings" in value}
        if objects:  # a write-back: when each object was planned, first sent and done, into the stage
            print("    " + "; ".join(f"{key.partition('.')[2]} {o['mode']} " + ", ".join(
                f"{step} {s:,.1f}" for step, s in o["timings"].items()) for key, o in objects.items()) + " (s)")
        if stage.get("error"):
            print(f"    error: {stage['error'].splitlines()[0]}")


def measure_incremental(title: str, engine: Any, config: AbmConfig) -> dict[str, Any]:
    t = time.perf_counter()
    run = run_once(engine, config, RunOptions())
    report(title, run, time.perf_counter() - t)
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="L", choices=SIZES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--change", type=float, default=0.01, help="share of records changed before the increment")
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite in the directory)")
    parser.add_argument("--dir", type=Path, help="keep the sandbox's org and the store here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the org seeded in --dir, and its store if that had its full run (to measure "
                             "a fix without seeding again); each change to a reused org edits other records")
    parser.add_argument("--no-settle", dest="settle", action="store_false",
                        help="skip the incremental run between the full run and the change")
    parser.add_argument("--lookback-minutes", type=int,
                        help="the pulls' lookback (default: the config's, 10 minutes); the settle run waits "
                             "this long after the full run")
    args = parser.parse_args(argv)
    if args.reuse and not args.dir:
        parser.error("--reuse needs --dir")
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores); matching core "
          f"{'compiled (mypyc)' if running_compiled() else 'run from source'}")
    with tempfile.TemporaryDirectory(prefix="abm-bench-pipeline-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        database_url = args.database or f"sqlite:///{directory / 'abm.db'}"
        ours, theirs = mp.get_context("spawn").Pipe()
        server = mp.get_context("spawn").Process(
            target=serve_sandbox, args=(theirs, args.seed, args.size, directory, database_url), daemon=True)
        server.start()
        # The worker and the processes it forks (the match stage's), not the sandbox: the physical memory they
        # occupy together, shared pages counted once (PSS summed), besides the worker's own peak RSS.
        sampler = MemorySampler(exclude=frozenset({server.pid})).__enter__()
        try:
            info = ours.recv()
            print(f"sandbox {args.size} org (seed {args.seed}) seeded in {info['seed_s']:,.0f} s: "
                  + (", ".join(f"{n:,} {o}" for o, n in info["seeded"].items()) or f"reused from {directory}"))
            settings = info["settings"]
            config = AbmConfig.model_validate(settings)
            if args.lookback_minutes is not None:
                for crm in config.chosen_crms():
                    sync = getattr(config, crm).sync.model_dump()
                    settings[crm]["sync"] = {**sync, "lookback_minutes": args.lookback_minutes}
                config = AbmConfig.model_validate(settings)
            engine = make_engine(database_url)
            migrate.upgrade(engine)
            if not (args.reuse and had_full_run(engine)):
                t = time.perf_counter()
                fields = provision(config, config.chosen_crms(), dry_run=False)
                print(f"abm init: {sum(1 for f in fields.fields if f.status == 'created')} fields created in "
                      f"{time.perf_counter() - t:,.1f} s")
                t = time.perf_counter()
                full = run_once(engine, config, RunOptions(full=True))
                report(f"full run ({args.size})", full, time.perf_counter() - t)
            if args.settle:
                # The next window opens a lookback before this run's pull: start it a lookback after the
                # last run's writes, so the measured increment re-reads only what changed after them.
                wait = max(0.0, lookback_s(config) + 5 - seconds_since_last_run(engine))
                print(f"\nwaiting {wait:,.0f} s (the pulls' lookback since the last run) before the next run")
                time.sleep(wait)
                measure_incremental("incremental run with nothing changed in the CRMs (re-reads what the "
                                    "previous run wrote back)", engine, config)

            round_ = change_round(directory)
            ours.send(("change", (args.change, round_)))
            changed, change_s = ours.recv()
            print(f"\nchanged {args.change:.0%} in the sandbox (change {round_} to this org) in {change_s:,.0f} s: "
                  + ", ".join(f"{n:,} {what}" for what, n in changed.items()))
            ours.send(("requests", 0))
            mark, _ = ours.recv()
            started_at = time.time()  # the sandbox stamps its requests with the same clock
            incremental = measure_incremental(f"incremental run after {args.change:.0%} changed", engine, config)
            ours.send(("requests", mark))
            last, times = ours.recv()
            if times:
                print_request_times(times, started_at)
            else:
                print(f"  the sandbox logged no request after #{mark:,} (its last: #{last:,})")
            engine.dispose()
            worker_mb = peak_mb()  # the stages run in this process; the match stage forks some for large chunks
        finally:
            sampler.__exit__()
            ours.send(("stop", None))
            sandbox_mb = ours.recv() if ours.poll(60) else float("nan")
            server.join(timeout=60)
    tree_mb = max(worker_mb, sampler.peak_total_pss)
    print(f"\npeak memory: worker process {worker_mb:,.0f} MB (RSS); with the processes it forks "
          f"{sampler.peak_total_pss:,.0f} MB (summed PSS, sampled every {sampler.interval:g} s); "
          f"sandbox process {sandbox_mb:,.0f} MB (RSS, not the worker's)")
    holds = incremental["state"] == "succeeded" and (incremental["seconds"] or 0) <= TARGET_INCREMENTAL_S
    print(f"targets ({args.size}): incremental <= {TARGET_INCREMENTAL_S:.0f} s: "
          f"{'yes' if holds else 'NO'} ({incremental['seconds']:,.1f} s); worker peak < {TARGET_PEAK_MB:,.0f} MB: "
          f"{'yes' if tree_mb < TARGET_PEAK_MB else 'NO'} ({tree_mb:,.0f} MB)")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
