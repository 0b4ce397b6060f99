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

from config.connections import HubSpotConfig
from connectors.budget import BudgetExhausted
from connectors.hubspot import store_ops
from connectors.hubspot.activity_map import HubSpotActivityMapping
from connectors.hubspot.client import CRM, HubSpotApi
from connectors.hubspot.event_pull import EmailEventPull, WebEventPull
from connectors.hubspot.events import EMAIL_EVENTS, EVENT_OBJECTS, WEB_EVENTS
from connectors.hubspot.objects import OBJECT_ORDER, SPECS
from connectors.hubspot.record_pull import HubSpotSyncTuning, RecordPull
from connectors.result import ProgressCallback, SyncResult
from store.types import utcnow

log = logging.getLogger(__name__)

ALL_OBJECTS = (*OBJECT_ORDER, *EVENT_OBJECTS)


def plan_objects(objects: Sequence[str] | None, mapping: HubSpotActivityMapping) -> list[str]:
    """The objects to pull, in dependency order.

    By default every object, except engagement types the mapping turns entirely into "no
    touch" (notes and tasks by default): pulling them would cost calls and store nothing.
    Asked for by name, an object is pulled whatever the mapping says.
    """
    if objects:
        unknown = sorted(set(objects) - set(ALL_OBJECTS))
        if unknown:
            raise ValueError(f"unknown HubSpot object(s) {', '.join(unknown)}; known: {', '.join(ALL_OBJECTS)}")
        return [name for name in ALL_OBJECTS if name in set(objects)]
    return [name for name in ALL_OBJECTS
            if SPECS.get(name) is None or SPECS[name].table != "activities" or mapping.pulls(name)]


def pull_hubspot(
    engine: Engine,
    config: HubSpotConfig,
    run_id: int | None = None,
    full: bool = False,
    objects: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    mapping: HubSpotActivityMapping | None = None,
    tuning: HubSpotSyncTuning | None = None,
    api: HubSpotApi | None = None,
) -> SyncResult:
    """Pull HubSpot into the store: everything when ``full`` (or never pulled), else what changed.

    Returns counts per object, API calls and usage; ``paused`` is set when the daily budget
    guard stopped the run (state is saved: the next run resumes). Other errors propagate
    after everything read so far has been committed.
    """
    mapping = mapping or HubSpotActivityMapping()
    tuning = tuning or HubSpotSyncTuning()
    names = plan_objects(objects, mapping)
    started = time.monotonic()
    now = utcnow()
    run_start = now.replace(microsecond=now.microsecond // 1000 * 1000)  # HubSpot stamps are milliseconds
    lookback = timedelta(minutes=config.sync.lookback_minutes)
    client = api or HubSpotApi(config)
    result = SyncResult(crm=CRM, full=full, run_id=run_id)
    common = {"run_start": run_start, "lookback": lookback, "progress": progress}
    try:
        for name in names:
            counts = result.counts(name)
            if name in SPECS:
                RecordPull(engine, client, SPECS[name], mapping, counts, page_size=config.sync.page_size,
                           tuning=tuning, warn=result.warnings.append, **common).run(full)
            elif name == EMAIL_EVENTS:
                EmailEventPull(engine, client, mapping, counts, page_size=tuning.email_events_page_size,
                               **common).run(full)
            elif name == WEB_EVENTS:
                WebEventPull(engine, client, mapping, counts, page_size=tuning.web_events_page_size,
                             **common).run(full)
        if EMAIL_EVENTS in names or "contacts" in names:
            with engine.begin() as conn:
                store_ops.link_email_events(conn, EMAIL_EVENTS)
    except BudgetExhausted as exc:
        result.paused = True
        result.pause_reason = exc.message
        log.warning("%s", exc.message)
    finally:
        result.api_calls = sum(client.calls.values())
        result.api_used = client.budget.used
        result.api_total = client.budget.total
        result.allowance = client.budget.allowance
        result.seconds = time.monotonic() - started
        if api is None:
            client.close()
    return result
