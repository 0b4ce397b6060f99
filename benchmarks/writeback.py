"""Writeback cost and speed: 100,000 Salesforce accounts and 100,000 HubSpot companies, over HTTPS.

A sandbox in a process of its own (so it does not compete with the writer for the interpreter)
holds the records; this process creates the catalogue's fields over HTTPS, puts the scores in a
temporary SQLite store, then writes each CRM in full, once more with nothing changed, and once
after a share of the scores moved. For every pass it prints the API calls against the
floor (the fewest calls the APIs allow: one Bulk API 2.0 job of four calls or one sObject
Collections call per 200 records on Salesforce, one batch call per 100 records on HubSpot, or past
``writeback.hubspot_import_threshold`` one import: its upload, a status check and its errors' read;
a job or an import still being processed at its first status check costs one call per further check),
the wall time, and for HubSpot's batches the request rate against the portal's 10-second limit
(``--hubspot-import-threshold 0`` sends every HubSpot change by batch).

    python -m benchmarks.writeback [--salesforce 100000] [--hubspot 100000] [--hubspot-per-10s 190]

Targets (issue 8): API calls equal to the floor; HubSpot throughput within 10% of what its
10-second limit allows.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubspot import HubSpot
from simple_salesforce import Salesforce
from sqlalchemy import Engine, insert, update

from config.writeback import WritebackConfig
from connectors.hubspot.ratelimit import HubSpotRateLimiter
from connectors.salesforce.ca_trust import trust_ca_for_mdapi
from sandbox.clients import sandbox_requests_session
from sandbox.runner import run_sandbox
from store import migrate
from store.db import make_engine
from store.ids import to_18
from store.schema import Account, Score
from writeback.catalogue import Catalogue
from writeback.hubspot import HubSpotWriter
from writeback.provision import ProvisionReport
from writeback.provision_hubspot import provision_hubspot
from writeback.provision_salesforce import provision_salesforce
from writeback.run import Writer, run_writeback

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
from writeback.salesforce import SalesforceWriter

HUBSPOT_FIRST_ID = 50_000_000
SCORED_AT = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
TRENDS = ("surging", "rising", "steady", "cooling")


def _scores(rng: random.Random, entity_id: int) -> dict[str, Any]:
    return {"entity_kind": "account", "entity_id": entity_id, "engagement": rng.uniform(0, 100),
            "sales_activity": rng.uniform(0, 300), "marketing": rng.uniform(0, 300), "fit": rng.uniform(0, 100),
            "grade": rng.randint(1, 4), "predictive": rng.uniform(0, 100), "trend": rng.choice(TRENDS),
            "alignment": "aligned_high", "reasons_text": f"{rng.randint(2, 9)} people engaged; demo last month",
            "scored_at": SCORED_AT}


def salesforce_ids(count: int) -> list[str]:
    return [to_18(f"0015b{n:010d}") for n in range(count)]


def hubspot_ids(count: int) -> list[str]:
    return [str(HUBSPOT_FIRST_ID + n) for n in range(count)]


def serve(conn: Connection, n_salesforce: int, n_hubspot: int, per_10s: int) -> None:
    """The sandbox process: load the records (as the sandbox's own seeder does), say where it is, serve."""
    with run_sandbox(hubspot_requests_per_ten_seconds=per_10s) as handle:
        handle.sandbox.salesforce.org.load("Account", ({"Id": i, "Name": f"Account {i}"}
                                                       for i in salesforce_ids(n_salesforce)))
        handle.hubspot_portal.load("companies", ({"id": i, "properties": {"name": f"Company {i}"}}
                                                 for i in hubspot_ids(n_hubspot)))
        conn.send({"base_url": handle.base_url, "ca_path": str(handle.ca_path),
                   "salesforce_session": handle.salesforce_session(), "hubspot_token": handle.hubspot_token})
        conn.recv()  # until the benchmark is done


def store_scores(engine: Engine, n_salesforce: int, n_hubspot: int) -> tuple[list[int], list[int]]:
    """The accounts of both CRMs in the store, each with a score row, as a scoring run leaves them."""
    rng = random.Random(8)
    rows = [{"id": n + 1, "crm": "salesforce", "object": "Account", "crm_id": i}
            for n, i in enumerate(salesforce_ids(n_salesforce))]
    rows += [{"id": n_salesforce + n + 1, "crm": "hubspot", "object": "companies", "crm_id": i}
             for n, i in enumerate(hubspot_ids(n_hubspot))]
    with engine.begin() as conn:
        conn.execute(insert(Account), rows)
        conn.execute(insert(Score), [_scores(rng, row["id"]) for row in rows])
    return [r["id"] for r in rows[:n_salesforce]], [r["id"] for r in rows[n_salesforce:]]


def clients(where: dict[str, str]) -> tuple[Salesforce, HubSpot]:
    sf = Salesforce(instance_url=where["base_url"], session_id=where["salesforce_session"],
                    session=sandbox_requests_session(where["ca_path"]))
    trust_ca_for_mdapi(sf.mdapi, where["ca_path"])
    hs = HubSpot(access_token=where["hubspot_token"], host=where["base_url"], ssl_ca_cert=where["ca_path"])
    return sf, hs


def move_scores(engine: Engine, ids: list[int], share: float) -> int:
    chosen = ids[:: max(1, round(1 / share))] if share > 0 else []
    with engine.begin() as conn:
        conn.execute(update(Score).where(Score.entity_id.in_(chosen)).values(engagement=Score.engagement + 5))
    return len(chosen)


def hubspot_floor(changed: int, import_threshold: int) -> int:
    """A batch call per 100 records, or past the threshold one import: upload, one status check, errors."""
    return 3 if import_threshold and changed > import_threshold else math.ceil(changed / 100)


def salesforce_floor(changed: int, threshold: int) -> int:
    if changed == 0:
        return 0
    return 4 if changed > threshold else math.ceil(changed / 200)


def measure(engine: Engine, config: WritebackConfig, writer: Writer) -> tuple[int, int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    report = run_writeback(engine, config, [writer])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.stopped or report.total("failed"):
        raise SystemExit(f"the pass did not write everything: {report.stopped} {report.total('failed')} failed")
    return report.total("written"), report.api_calls[writer.crm], seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--salesforce", type=int, default=100_000, help="Salesforce accounts")
    parser.add_argument("--hubspot", type=int, default=100_000, help="HubSpot companies")
    parser.add_argument("--hubspot-per-10s", type=int, default=100,
                        help="the portal's (and the limiter's) requests per 10 s: 100 (the default tier) to 190")
    parser.add_argument("--change-share", type=float, default=0.01, help="share of scores moved for the last pass")
    parser.add_argument("--hubspot-concurrency", type=int, default=4, help="HubSpot batch calls in flight")
    parser.add_argument("--hubspot-import-threshold", type=int, default=WritebackConfig().hubspot_import_threshold,
                        help="HubSpot changes of one object past which they go as one import (0: always batches)")
    args = parser.parse_args()
    config = WritebackConfig.model_validate({"fields": {"matched_account": {"type": "text", "length": 18}}})
    catalogue = Catalogue(config)
    parent_end, child_end = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(child_end, args.salesforce, args.hubspot, args.hubspot_per_10s), daemon=True)
    started = time.perf_counter()
    server.start()
    rows = []
    try:
        where = parent_end.recv()
        sf_client, hs_client = clients(where)
        with tempfile.TemporaryDirectory(prefix="abm-bench-") as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'abm.db'}")
            migrate.upgrade(engine)
            sf_ids, hs_ids = store_scores(engine, args.salesforce, args.hubspot)
            print(f"{args.salesforce:,} Salesforce accounts and {args.hubspot:,} HubSpot companies in the sandbox "
                  f"and scored in the store in {time.perf_counter() - started:.1f} s")
            limiter = HubSpotRateLimiter(args.hubspot_per_10s, 4.0)  # one per portal: init's calls count too
            report = ProvisionReport(dry_run=False)
            provision_salesforce(sf_client, catalogue, report)
            provision_hubspot(hs_client, catalogue, config, report, limiter=limiter)
            print(f"{'pass':<26}{'written':>9}{'calls':>7}{'floor':>7}{'seconds':>9}{'records/s':>11}"
                  f"{'writer CPU s':>14}")
            sf = SalesforceWriter(sf_client, catalogue, bulk_threshold=config.bulk_threshold, bulk_poll_seconds=0.5)
            hs = HubSpotWriter(hs_client, catalogue, limiter=limiter, concurrency=args.hubspot_concurrency,
                               import_threshold=args.hubspot_import_threshold)
            for label, writer, ids in (("salesforce", sf, sf_ids), ("hubspot", hs, hs_ids)):
                for step in ("full", "unchanged", "changed") if ids else ():
                    changed = len(ids) if step == "full" else 0
                    if step == "changed":
                        changed = move_scores(engine, ids, args.change_share)
                    written, calls, seconds, cpu = measure(engine, config, writer)
                    floor = (salesforce_floor(changed, config.bulk_threshold) if label == "salesforce"
                             else hubspot_floor(changed, args.hubspot_import_threshold))
                    rows.append((label, step, written, calls, floor, seconds))
                    rate = written / seconds if seconds else 0.0
                    print(f"{label + ' ' + step:<26}{written:>9,}{calls:>7,}{floor:>7,}{seconds:>9.1f}{rate:>11,.0f}"
                          f"{cpu:>14.1f}")
                    if label == "hubspot" and step == "full" and hs.mode(changed) == "batch":
                        allowed = args.hubspot_per_10s / 10
                        achieved = calls / seconds
                        print(f"  HubSpot: {achieved:.1f} requests/s = {achieved / allowed:.0%} of the portal's "
                              f"{args.hubspot_per_10s} per 10 s ({allowed:.1f}/s); {args.hubspot_concurrency} in "
                              f"flight; waits on the limiter, summed over the threads: {limiter.waited_s:.0f} s; "
                              f"429 answers: {hs.policy.rate_limit_waits}")
            engine.dispose()
    finally:
        parent_end.send("stop")
        server.join(timeout=30)
    off = [f"{label} {step}: {calls} calls, floor {floor}" for label, step, _, calls, floor, _ in rows
           if calls != floor]
    print("calls equal the floor in every pass" if not off else "calls above the floor (each a further status check of "
          "a Bulk job or an import the CRM was still processing; see writeback/polling.py): " + "; ".join(off))
    print(f"peak RSS of the writing process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          "(the sandbox runs in another process)")


if __name__ == "__main__":
    main()
