"""``pull_salesforce``: a full or incremental pull of the configured objects into the store.

One run: one ``/limits`` call (the budget), then per object, parents first (the activities in a
lane of their own beside the others, see :func:`lanes`): its field list (describe, cached for a
day), its next window (see :mod:`connectors.salesforce.reader`) and, at most once per
``hard_delete_check_minutes``, the ``deleted/`` window for hard deletes. An incremental run that
finds nothing costs one query per object plus the limits call.

The run ends ``paused`` (not failed) when the API budget is spent; every committed page has
its cursor saved with it, so the next run continues where this one stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from simple_salesforce.exceptions import SalesforceMalformedRequest
from sqlalchemy import Connection, Engine

from config.model import AbmConfig
from config.salesforce_pull import SALESFORCE_OBJECTS
from connectors.activity_rules import ActivityClassifier
from connectors.budget import ApiBudget, BudgetExhausted
from connectors.concurrency import run_concurrently, stopped
from connectors.cursor import Cursor, Window, load_cursor, save_cursor, set_state_datetime, state_datetime
from connectors.result import (
    ObjectCounts,
    Progress,
    ProgressCallback,
    SyncResult,
    UnknownObjects,
    close_pull_run,
    open_pull_run,
)
from connectors.salesforce.client import SalesforceClient, error_code
from connectors.salesforce.deletes import flag_hard_deleted
from connectors.salesforce.fields import (
    describe_is_fresh,
    forget_describe,
    remember_describe,
    select_fields,
    wanted_fields,
)
from connectors.salesforce.mapping import RecordMapper
from connectors.salesforce.objects import SPECS, ObjectSpec
from connectors.salesforce.reader import FULL_NEXT_KEY, ObjectPull, PullContext
from connectors.salesforce.values import parse_datetime, truncate_to_ms
from store.held_meetings import complete_held_meetings
from store.types import utcnow

log = logging.getLogger(__name__)
CRM = "salesforce"
DEFAULT_OWNED_PREFIX = "ABM_"
VIRTUAL_FIELDS = frozenset({"CampaignType"})  # rule fields the connector derives, not Salesforce fields
DELETED_KEPT = timedelta(days=15)  # how far back Salesforce's deleted/ window reaches
DELETED_MIN_SPAN = timedelta(minutes=1)
DELETED_UNTIL_KEY = "deleted_until"


def owned_prefix(config: AbmConfig) -> str:
    """Field names abm-sync writes start with the writeback prefix (``ABM_`` unless configured)."""
    writeback = getattr(config, "writeback", None)
    return str(getattr(writeback, "prefix", DEFAULT_OWNED_PREFIX) or DEFAULT_OWNED_PREFIX)


def resolve_objects(requested: Sequence[str] | None, configured: Sequence[str]) -> list[str]:
    """Object names as Salesforce spells them, in pull order; unknown names are refused."""
    if not requested:
        return [o for o in SALESFORCE_OBJECTS if o in configured]
    by_lower = {o.lower(): o for o in SALESFORCE_OBJECTS}
    unknown = [r for r in requested if r.lower() not in by_lower]
    if unknown:
        raise UnknownObjects(
            f"unknown Salesforce object(s) {', '.join(unknown)}; known: {', '.join(SALESFORCE_OBJECTS)}"
        )
    wanted = {by_lower[r.lower()] for r in requested}
    return [o for o in SALESFORCE_OBJECTS if o in wanted]


def pull_salesforce(
    engine: Engine,
    config: AbmConfig,
    run_id: int | None = None,
    full: bool = False,
    objects: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    *,
    trigger: str = "cli",
    sleep: Callable[[float], Any] = time.sleep,
) -> SyncResult:
    """Pull Salesforce into the store.

    Without ``run_id`` the pull records its own run (``full`` or ``incremental``) and finishes
    it as succeeded, paused (API budget) or failed. With a ``run_id`` the caller owns the run:
    record ``result.stage_report()`` in it and decide its state.
    """
    names = resolve_objects(objects, config.salesforce.pull.objects)
    owns_run = run_id is None
    if owns_run:
        run_id = open_pull_run(engine, CRM, full, trigger, names)
    started = time.monotonic()
    result = SyncResult(CRM, full, run_id)
    budget = ApiBudget(CRM, config.salesforce.sync.max_api_share)
    failure: BaseException | None = None
    try:
        client = SalesforceClient(config.salesforce, budget, sleep=sleep)
        ctx = PullContext(engine, client, result, truncate_to_ms(utcnow()), full, config.salesforce.sync,
                          config.salesforce.pull, run_id, progress, sleep=sleep)
        _Pull(ctx, ActivityClassifier(config.activities.salesforce, config.activities), owned_prefix(config)).run(
            names)
        if "Event" in names:
            with engine.begin() as conn:
                result.meetings_held = complete_held_meetings(conn, CRM, ctx.now)
    except BudgetExhausted as exc:
        result.paused, result.pause_reason = True, exc.message
        log.warning("%s", exc.message)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        result.api_calls, result.api_used, result.api_total = budget.calls, budget.used, budget.total
        result.allowance = budget.allowance
        result.seconds = time.monotonic() - started
        if owns_run:
            assert run_id is not None
            close_pull_run(engine, run_id, result, failure)
    return result



# Objects whose stored rows the activities look up as they are mapped (a campaign's type, an opportunity's account).
ACTIVITY_PARENTS = frozenset({"Campaign", "Opportunity"})


def lanes(names: Sequence[str]) -> list[list[str]]:
    """``names`` in two lanes pulled side by side: the activities after the parents they look up, and the
    other objects (users, accounts, people); each lane keeps the pull order.

    An incremental run's activities are most of its records: on the L org's 1% increment, 126,000 Tasks read
    through a Bulk job, asked for 5.4 s into the pull, after the accounts and people were read and stored,
    and then stored for 15 s. In a lane of their own their job is asked for at once (4.1 s in, behind the
    first page's query), and Salesforce runs it while the accounts and people are read: with query jobs that
    take 3 s to run (the sandbox's ``query_job_seconds``), a full pull of a 200-account org took 38.3 s one
    object at a time and 21.3 s in two lanes. The sandbox's jobs are ready at once, so the L increment's pull
    gained nothing measurable there (24.9-26.6 s against 22.9-26.2 s); its two lanes hold two objects'
    pages at once (peak 491-501 MB against 296 MB).
    """
    activities = [n for n in names if n in ACTIVITY_PARENTS or SPECS[n].is_activity]
    others = [n for n in names if n not in activities]
    return [lane for lane in (activities, others) if lane]


class _Pull:
    def __init__(self, ctx: PullContext, classifier: ActivityClassifier, prefix: str) -> None:
        self.ctx = ctx
        self.classifier = classifier
        self.prefix = prefix.lower()

    def run(self, names: list[str]) -> None:
        limits = self.ctx.client.limits()
        daily = limits.get("DailyApiRequests") or {}
        if "Max" in daily and "Remaining" in daily:
            self.ctx.client.budget.observe(int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))
        bulk_jobs = (limits.get("DailyBulkV2QueryJobs") or {}).get("Remaining")
        self.ctx.bulk_ok = self.ctx.options.bulk and (bulk_jobs is None or int(bulk_jobs) > 0)
        for name in names:
            self.ctx.result.counts(name)  # in pull order, before a lane adds its own
        object_lanes = lanes(names) if self.ctx.options.activities_beside_records else [list(names)]
        run_concurrently(self.lane, object_lanes, len(object_lanes), name="salesforce-pull")

    def lane(self, names: list[str]) -> None:
        for name in names:
            if stopped():  # the other lane failed: end as a sequential pull would have
                return
            self.object(SPECS[name])

    def object(self, spec: ObjectSpec) -> None:
        ctx = self.ctx
        counts = ctx.result.counts(spec.name)
        ctx.emit(Progress(spec.name, "start"))
        with ctx.engine.connect() as conn:
            for attempt in (1, 2):
                with conn.begin():
                    cursor = load_cursor(conn, CRM, spec.name)
                fields = self.fields(conn, spec, cursor)
                mapper = RecordMapper(spec, fields, self.classifier, ctx.now,
                                      extra_fields=ctx.options.extra_fields.get(spec.name, []))
                try:
                    window = ObjectPull(ctx, conn, spec, cursor, mapper, list(fields), counts).run()
                    break
                except SalesforceMalformedRequest as exc:
                    # A field was deleted since the cached describe: describe again, once.
                    if attempt == 2 or error_code(exc) != "INVALID_FIELD":
                        raise
                    log.info("Salesforce %s: a field is gone since the last describe; describing again", spec.name)
                    with conn.begin():
                        cursor = load_cursor(conn, CRM, spec.name)
                        forget_describe(cursor)
                        save_cursor(conn, cursor)
            self.hard_deletes(conn, spec, cursor, window, counts)
        counts.done = True
        ctx.emit(Progress(spec.name, "done", counts.read, counts.estimate))

    # -- fields --------------------------------------------------------------------------------
    def is_owned(self, field_name: str) -> bool:
        return field_name.lower().startswith(self.prefix)

    def fields(self, conn: Connection, spec: ObjectSpec, cursor: Cursor) -> dict[str, str]:
        ctx = self.ctx
        rule_fields = self.classifier.fields_used(spec.name) - VIRTUAL_FIELDS if spec.is_activity else set()
        wanted = wanted_fields(spec, ctx.options.extra_fields.get(spec.name, []), rule_fields)
        refresh = timedelta(hours=ctx.options.describe_refresh_hours)
        described = False
        if not describe_is_fresh(cursor, wanted, ctx.now, refresh):
            remember_describe(cursor, ctx.client.describe(spec.name), wanted, ctx.now)
            described = True
        selection = select_fields(spec, cursor, wanted, self.is_owned)
        if selection.newly_missing:
            ctx.warn(f"Salesforce {spec.name}: the org lacks (or hides from the integration user) "
                     f"{', '.join(selection.newly_missing)}; skipped")
        if described and selection.owned:
            ctx.warn(f"Salesforce {spec.name}: {', '.join(selection.owned)} are abm-sync's own fields "
                     f"(prefix {self.prefix.upper()}); they are not read")
        if described or selection.newly_missing:
            with conn.begin():
                save_cursor(conn, cursor)
        return selection.fields

    # -- hard deletes --------------------------------------------------------------------------
    def hard_deletes(self, conn: Connection, spec: ObjectSpec, cursor: Cursor, window: Window,
                     counts: ObjectCounts) -> None:
        ctx = self.ctx
        now = ctx.now
        checked = state_datetime(cursor, DELETED_UNTIL_KEY)
        if checked is None or (window.full and window.lower is None):
            # A read from the start reflects today's org: look for hard deletes from now on.
            with conn.begin():
                set_state_datetime(cursor, DELETED_UNTIL_KEY, now)
                save_cursor(conn, cursor)
            return
        if now - checked < timedelta(minutes=ctx.options.hard_delete_check_minutes):
            return
        start = checked - ctx.lookback
        if now - start < DELETED_MIN_SPAN:
            return
        if now - start > DELETED_KEPT:
            self._reread_for_deletes(conn, spec, cursor, f"the last check was {(now - checked).days} days ago")
            return
        answer = ctx.client.call(f"deleted {spec.name}", lambda sf: getattr(sf, spec.name).deleted(start, now))
        earliest = parse_datetime(answer.get("earliestDateAvailable"))
        if earliest is not None and earliest > start:
            self._reread_for_deletes(conn, spec, cursor, "Salesforce purged its delete log past the last check")
            return
        deleted = {r["id"]: parse_datetime(r["deletedDate"]) for r in answer.get("deletedRecords", [])}
        covered = parse_datetime(answer.get("latestDateCovered")) or now
        with conn.begin():
            counts.deleted += flag_hard_deleted(conn, spec.table, spec.name, deleted, now)  # type: ignore[arg-type]
            set_state_datetime(cursor, DELETED_UNTIL_KEY, min(covered, now))
            save_cursor(conn, cursor)

    def _reread_for_deletes(self, conn: Connection, spec: ObjectSpec, cursor: Cursor, why: str) -> None:
        self.ctx.warn(f"Salesforce {spec.name}: hard deletes cannot be listed ({why}); the next run re-reads "
                      f"{spec.name} in full to find them")
        with conn.begin():
            cursor.state[FULL_NEXT_KEY] = True
            set_state_datetime(cursor, DELETED_UNTIL_KEY, self.ctx.now)
            save_cursor(conn, cursor)
