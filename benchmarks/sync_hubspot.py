"""HubSpot pulls against a seeded sandbox: wall time, API calls against the floor, peak memory.

The sandbox runs in a child process seeded with the generator's org of the chosen size, so the
peak RSS printed is the pull's alone. The pull runs here into a fresh SQLite store, with the
client paced to the same limits the sandbox enforces (190 requests per 10 s by default,
HubSpot's highest tier; search 5 per second). Then a share of every object's records is
changed (and as many new marketing events appear) and an incremental pull runs.

The floor of an object is the fewest calls that can read it: its records / the page size
(100 for CRM list pages, 1,000 for email events, 100 for web events). Calls counted for an
object include everything spent on it: property list, pages, the archived listing, searches,
association reads and the association sweep.

    python -m benchmarks.sync_hubspot [--size M] [--seed 1] [--change 0.01] [--per-ten-seconds 190]

Targets (issue 5, L org): API calls within 5% of the floor, incremental after 1% change
<= 60 s, peak memory < 1 GB.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from config.connections import HubSpotConfig
from config.model import AbmConfig
from connectors.hubspot import pull_hubspot
from connectors.hubspot.activities import EMAIL_EVENTS, WEB_EVENTS
from connectors.hubspot.client import HubSpotApi
from connectors.hubspot.record_pull import HubSpotSyncTuning
from connectors.result import SyncResult
from store import migrate
from store.db import make_engine

# A property each object can take a new value in, to simulate users' edits.
EDITS = {"companies": "city", "contacts": "jobtitle", "deals": "amount", "calls": "hs_call_title",
         "emails": "hs_email_subject", "meetings": "hs_meeting_title", "notes": "hs_note_body",
         "tasks": "hs_task_subject"}


# -- the sandbox, in its own process ------------------------------------------------------------
def _change(handle: Any, share: float, round_: int = 0) -> dict[str, int]:
    """Edit ``share`` of every object's live records and add that share of new events.

    ``round_`` numbers the changes made to one org: each round edits other records, to other
    values, and adds events of new ids, so a change repeated on a reused org is a real change
    (repeating the same edits would change nothing, and measure an increment that is no work).
    """
    from sandbox.storage import quote_ident

    portal = handle.hubspot_portal
    changed: dict[str, int] = {}
    for object_type, prop in EDITS.items():
        obj = portal.object_type(object_type)
        ids = [int(r[0]) for r in portal.storage.fetchall(
            f'SELECT "hs_object_id" FROM {quote_ident(obj.table)} WHERE "_archived" = 0 ORDER BY "hs_object_id"')]
        step = max(1, round(1 / share)) if ids else 1
        picked = ids[round_ % step::step]
        for n, record_id in enumerate(picked):
            value = str(1000 + 7 * round_ + n) if prop == "amount" else f"edited {round_}-{n}"
            portal.update(obj, record_id, {prop: value})
        changed[object_type] = len(picked)
    now = int(time.time() * 1000) - 1000
    events = handle.hubspot_events
    email = portal.storage.fetchall("SELECT type, recipient, campaign FROM hs_email_events")
    step = max(1, round(1 / share))
    picked_email = email[round_ % step::step]
    changed[EMAIL_EVENTS] = events.load_email_events(
        {"id": f"bench-{round_}-{n}", "type": kind, "recipient": recipient, "emailCampaignId": campaign, "created": now}
        for n, (kind, recipient, campaign) in enumerate(picked_email))
    web = portal.storage.fetchall("SELECT object_id, event_type FROM hs_web_events")
    picked_web = web[round_ % step::step]
    changed[WEB_EVENTS] = events.load_web_events(
        {"id": f"bench-{round_}-{n}", "objectType": "contacts", "objectId": object_id, "eventType": event_type,
         "occurredAt": now, "properties": {"hs_url": "https://www.abm-sandbox.example/pricing"}}
        for n, (object_id, event_type) in enumerate(picked_web))
    return changed


def _serve(conn: Connection, seed: int, size: str, per_ten_seconds: int, search_per_second: int) -> None:
    from sandbox.runner import run_sandbox

    started = time.perf_counter()
    with run_sandbox(seed=seed, size=size) as handle:
        handle.hubspot_limits.configure(per_ten_seconds=per_ten_seconds, search_per_second=search_per_second)
        conn.send({"base_url": handle.base_url, "ca_path": str(handle.ca_path), "token": handle.hubspot_token,
                   "seeded": {k: v for k, v in handle.seeded.items() if k.startswith("hubspot.")},
                   "seed_s": time.perf_counter() - started})
        while True:
            command, argument = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "change":
                conn.send(_change(handle, argument))
            elif command == "answers":
                conn.send(Counter(e.status for e in handle.request_log.entries()))
                handle.request_log.clear()


# -- the pull, here -------------------------------------------------------------------------------
def _object_calls(api: HubSpotApi) -> Counter[str]:
    """Calls per object: every kind ("list:contacts", "search:contacts"...) folded into its object."""
    out: Counter[str] = Counter()
    for kind, calls in api.calls.items():
        out[kind.split(":", 1)[-1]] += calls
    return out


def _report(title: str, result: SyncResult, api: HubSpotApi, seconds: float, tuning: HubSpotSyncTuning,
            answers: Counter[int], waited_s: float) -> None:
    page = {EMAIL_EVENTS: tuning.email_events_page_size, WEB_EVENTS: tuning.web_events_page_size}
    calls = _object_calls(api)
    print(f"\n{title}: {seconds:,.1f} s wall, {result.api_calls:,} API calls, "
          f"{answers.get(429, 0)} answered 429, rate-limit waits {waited_s:,.1f} s")
    print(f"{'object':<14}{'read':>10}{'upserted':>10}{'deleted':>9}{'skipped':>9}{'calls':>8}{'floor':>8}"
          f"{'calls/floor':>13}")
    total_calls = total_floor = 0
    for name, counts in result.objects.items():
        floor = max(1, math.ceil(counts.read / page.get(name, 100)))
        total_calls += calls[name]
        total_floor += floor
        print(f"{name:<14}{counts.read:>10,}{counts.upserted:>10,}{counts.deleted:>9,}{counts.skipped:>9,}"
              f"{calls[name]:>8,}{floor:>8,}{calls[name] / floor:>13.3f}")
    print(f"{'total':<14}{'':>47}{total_calls:>8,}{total_floor:>8,}{total_calls / max(total_floor, 1):>13.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="M", choices=["S", "M", "L"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--change", type=float, default=0.01, help="share of records changed before the increment")
    parser.add_argument("--per-ten-seconds", type=int, default=190)
    parser.add_argument("--search-per-second", type=int, default=5)
    args = parser.parse_args(argv)

    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(theirs, args.seed, args.size, args.per_ten_seconds,
                                                  args.search_per_second), daemon=True)
    server.start()
    info = ours.recv()
    print(f"HubSpot sandbox, org {args.size} (seed {args.seed}), seeded in {info['seed_s']:.0f} s: "
          + ", ".join(f"{k.removeprefix('hubspot.')} {v:,}" for k, v in info["seeded"].items()))
    print(f"limits: {args.per_ten_seconds} requests / 10 s, search {args.search_per_second} / s "
          "(the client paces itself to the same figures)")
    tuning = HubSpotSyncTuning()
    with tempfile.TemporaryDirectory(prefix="abm-bench-hubspot-") as tmp:
        token = Path(tmp) / "token"
        token.write_text(info["token"])
        config = AbmConfig(hubspot=HubSpotConfig(
            enabled=True, base_url=info["base_url"], ca_file=Path(info["ca_path"]), access_token_file=token,
            requests_per_10s=args.per_ten_seconds, search_requests_per_second=float(args.search_per_second)))
        engine = make_engine(f"sqlite:///{Path(tmp) / 'abm.db'}")
        migrate.upgrade(engine)

        # Each pull's own client (to count its calls), on the process's one limiter for the portal, as the
        # worker's pulls and writes share it: the incremental's first calls come right after the change.
        api = HubSpotApi(config.hubspot)
        started, waited = time.perf_counter(), api.limiter.waited_s
        full = pull_hubspot(engine, config, full=True, api=api, tuning=tuning)
        full_s = time.perf_counter() - started
        api.close()
        ours.send(("answers", None))
        _report("full pull", full, api, full_s, tuning, ours.recv(), api.limiter.waited_s - waited)

        ours.send(("change", args.change))
        changed = ours.recv()
        print(f"\nchanged {args.change:.0%}: " + ", ".join(f"{k} {v:,}" for k, v in changed.items()))
        api = HubSpotApi(config.hubspot)
        started, waited = time.perf_counter(), api.limiter.waited_s
        incremental = pull_hubspot(engine, config, api=api, tuning=tuning)
        incremental_s = time.perf_counter() - started
        api.close()
        ours.send(("answers", None))
        _report(f"incremental pull after {args.change:.0%} changed", incremental, api, incremental_s, tuning,
                ours.recv(), api.limiter.waited_s - waited)
        engine.dispose()
    ours.send(("stop", None))
    ours.recv()
    server.join(timeout=60)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of the pulling process: {peak_mb:,.0f} MB")
    print("Targets (L): calls within 5% of the floor (calls/floor <= 1.05), incremental after 1% <= 60 s, "
          "peak < 1,024 MB. The incremental includes the association sweep (paced to re-read every record "
          f"once per {tuning.association_sweep_hours} h, at least {tuning.association_sweep_min_pages} page per "
          "object) and one archived listing per object.")


if __name__ == "__main__":
    main()
