"""``pull_hubspot``: one run's pull of a HubSpot portal into the canonical store.

Objects are pulled in dependency order (companies, then the contacts and deals that point at
them, then engagements, then marketing events, which need contacts to resolve recipients).
Each object commits as it goes, so a pause (the daily budget guard) or a failure keeps what
was read, and the next run continues from the saved cursors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine

from config.model import AbmConfig
from connectors.budget import BudgetExhausted
from connectors.concurrency import run_concurrently
from connectors.hubspot import store_ops
from connectors.hubspot.activities import EMAIL_EVENTS, WEB_EVENTS, HubSpotActivities
from connectors.hubspot.client import CRM, HubSpotApi, HubSpotApiError
from connectors.hubspot.event_pull import EmailEventPull, WebEventPull
from connectors.hubspot.objects import OBJECT_ORDER, SPECS
from connectors.hubspot.record_pull import HubSpotSyncTuning, RecordPull
from connectors.result import ProgressCallback, SyncResult, UnknownObjects, close_pull_run, open_pull_run
from store.held_meetings import complete_held_meetings
from store.types import utcnow

log = logging.getLogger(__name__)

ALL_OBJECTS = (*OBJECT_ORDER, EMAIL_EVENTS, WEB_EVENTS)


def plan_objects(objects: Sequence[str] | None, rules: HubSpotActivities) -> list[str]:
    """The objects to pull, in dependency order.

    By default every object, except engagement types the activity rules turn entirely into
    "no touch" (notes and tasks by default): pulling them would cost calls and store nothing.
    Asked for by name, an object is pulled whatever the rules say.
    """
    if objects:
        wanted = {o.lower() for o in objects}
        unknown = sorted(o for o in objects if o.lower() not in ALL_OBJECTS)
        if unknown:
            raise UnknownObjects(f"unknown HubSpot object(s) {', '.join(unknown)}; known: {', '.join(ALL_OBJECTS)}")
        return [name for name in ALL_OBJECTS if name in wanted]
    return [name for name in ALL_OBJECTS
            if (SPECS[name].table != "activities" if name in SPECS else False) or rules.pulls(name)]


EVENT_FEEDS = (EMAIL_EVENTS, WEB_EVENTS)


def lanes(names: Sequence[str], concurrent_objects: int) -> tuple[list[str], int]:
    """The order to start ``names`` in and how many to pull at once: the event feeds first, each in a lane of
    its own beside ``concurrent_objects`` record objects (unless that is 1: then one object at a time, in plan
    order).

    The feeds are paced by the general 10-second window, the record objects by search's per-second limit:
    started last, behind the searches, the feeds ran alone at the end of the L org's 1% increment (6.4 s of
    its 36 s pull, while search had been done for 3 s); in their own lanes they read beside the searches.
    """
    if concurrent_objects <= 1:
        return list(names), 1
    feeds = [name for name in names if name in EVENT_FEEDS]
    return feeds + [name for name in names if name not in EVENT_FEEDS], concurrent_objects + len(feeds)


def pull_hubspot(
    engine: Engine,
    config: AbmConfig,
    run_id: int | None = None,
    full: bool = False,
    objects: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    trigger: str = "cli",
    tuning: HubSpotSyncTuning | None = None,
    api: HubSpotApi | None = None,
) -> SyncResult:
    """Pull HubSpot into the store: everything when ``full`` (or never pulled), else what changed.

    Without ``run_id`` the pull records its own run (``full`` or ``incremental``) and finishes it
    as succeeded, paused (API budget) or failed. With a ``run_id`` the caller owns the run:
    record ``result.stage_report()`` in it and decide its state. ``api`` lets a caller bring its
    own client (and close it); ``tuning`` adjusts paging and the association sweep.
    """
    rules = HubSpotActivities(config.activities)
    tuning = tuning or HubSpotSyncTuning()
    names = plan_objects(objects, rules)
    owns_run = run_id is None
    if owns_run:
        run_id = open_pull_run(engine, CRM, full, trigger, names)
    started = time.monotonic()
    now = utcnow()
    run_start = now.replace(microsecond=now.microsecond // 1000 * 1000)  # HubSpot stamps are milliseconds
    settings = config.hubspot
    result = SyncResult(crm=CRM, full=full, run_id=run_id)
    client: HubSpotApi | None = api
    failure: BaseException | None = None
    try:
        client = client or HubSpotApi(settings)
        common = {"run_start": run_start, "lookback": timedelta(minutes=settings.sync.lookback_minutes),
                  "progress": progress}
        def pull_object(name: str) -> None:
            counts = result.counts(name)
            try:
                if name in SPECS:
                    RecordPull(engine, client, SPECS[name], rules, counts, page_size=settings.sync.page_size,
                               tuning=tuning, warn=result.warnings.append, **common).run(full)
                elif name == EMAIL_EVENTS:
                    EmailEventPull(engine, client, rules, counts, page_size=tuning.email_events_page_size,
                                   **common).run(full)
                else:
                    WebEventPull(engine, client, rules, counts, page_size=tuning.web_events_page_size,
                                 **common).run(full)
            except HubSpotApiError as exc:
                if exc.status != 403:
                    raise
                # A scope the app was not granted, or a feature the portal's plan lacks (event analytics
                # needs Enterprise): the other objects are still worth pulling.
                result.warnings.append(f"hubspot {name}: not pulled, HubSpot refused access ({exc}); grant the "
                                       "app the scope HubSpot names, or leave this object out with --objects")

        for name in names:
            result.counts(name)  # in plan order, before any thread adds its own
        # An incremental pull is paced by search's per-second limit: objects pulled side by side overlap one
        # object's searches with another's association reads, archived listings and event pages (the general
        # 10-second window). They do not depend on each other's rows (links are by CRM id; email events whose
        # contact arrives later are linked below), and each commits its own pages with its own cursor.
        run_concurrently(pull_object, *lanes(names, tuning.concurrent_objects), name="hubspot-pull")
        if EMAIL_EVENTS in names or "contacts" in names:
            with engine.begin() as conn:
                store_ops.link_email_events(conn, EMAIL_EVENTS)
        if "meetings" in names:
            with engine.begin() as conn:
                result.meetings_held = complete_held_meetings(conn, CRM, run_start)
    except BudgetExhausted as exc:
        result.paused, result.pause_reason = True, exc.message
        log.warning("%s", exc.message)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if client is not None:
            result.api_calls = sum(client.calls.values())
            result.api_used, result.api_total = client.budget.used, client.budget.total
            result.allowance = client.budget.allowance
            if api is None:
                client.close()
        result.seconds = time.monotonic() - started
        if owns_run:
            assert run_id is not None
            close_pull_run(engine, run_id, result, failure)
    return result
