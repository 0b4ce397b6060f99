"""One writeback pass: for every CRM object in the catalogue, diff the store against the baseline
and write what changed, recording each batch's outcome as it lands.

The database work (reading targets, baseline and errors; recording outcomes) happens here and
in :mod:`writeback.state` / :mod:`writeback.source`; deciding *what* to write is the pure
:func:`plan_changes`. Writers only talk to their CRM.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine

from config.writeback import WritebackConfig
from store.types import utcnow
from writeback.catalogue import Catalogue, CatalogueField
from writeback.diff import RecordChange, differ
from writeback.report import ObjectReport, Sample, WritebackReport
from writeback.retry import WritebackStopped
from writeback.source import iter_targets
from writeback.state import Backoff, OnBatch, PendingError, RecordOutcome, WritebackLedger
from writeback.values import TargetRecord, values_reader

MAX_FAILURES_SHOWN = 20


class Writer(Protocol):
    """A CRM writer: updates catalogue fields of existing records, batch by batch."""

    crm: str
    api_calls: int

    def mode(self, count: int) -> str: ...

    def write(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None: ...


@dataclass(frozen=True)
class Plan:
    due: list[RecordChange]
    deferred: list[RecordChange]


def plan_changes(
    records: Sequence[TargetRecord],
    fields: Sequence[CatalogueField],
    baseline: Mapping[str, Mapping[str, str | None]],
    errors: Mapping[str, PendingError],
    now: datetime,
    force: bool = False,
) -> Plan:
    """What to write for one CRM object: changes due now, and those still in their retry wait."""
    due: list[RecordChange] = []
    deferred: list[RecordChange] = []
    empty: dict[str, str | None] = {}
    desired_values, diff = values_reader(fields), differ(fields, force)
    for record in records:
        change = diff(record.crm_id, desired_values(record), baseline.get(record.crm_id, empty))
        if change is None:
            continue
        pending = errors.get(record.crm_id)
        if pending is not None and not force and not pending.due(now):
            deferred.append(change)
        else:
            due.append(change)
    return Plan(due, deferred)


def _object_report(engine: Engine, config: WritebackConfig, catalogue: Catalogue, crm: str, obj: str,
                   ledger: WritebackLedger, now: datetime, force: bool,
                   account_ids: Collection[int] | None,
                   changed_since: datetime | None = None) -> tuple[ObjectReport, Plan]:
    """Diff one object's records against their baseline, a chunk of records at a time: only the
    changes outlive their chunk (a full pass would otherwise hold every record and its baseline)."""
    fields = catalogue.fields(crm, obj)
    errors = ledger.errors()
    due: list[RecordChange] = []
    deferred: list[RecordChange] = []
    records = 0
    samples: list[Sample] = []
    for chunk in iter_targets(engine, crm, obj, catalogue.kind(crm, obj), account_ids, changed_since):
        # by ids, even in a full pass: reading all 500,000 Contacts' baseline so costs about what one scan
        # does (see WritebackLedger.baseline), and only a chunk's is held
        baseline = ledger.baseline([r.crm_id for r in chunk])
        part = plan_changes(chunk, fields, baseline, errors, now, force)
        samples += [Sample.of(c, baseline.get(c.crm_id, {})) for c in part.due[: config.sample_size - len(samples)]]
        due += part.due
        deferred += part.deferred
        records += len(chunk)
    report = ObjectReport(crm, obj, records=records, changed=len(due) + len(deferred), deferred=len(deferred),
                          samples=samples)
    return report, Plan(due, deferred)


def _backoff(config: WritebackConfig) -> Backoff:
    return Backoff(timedelta(minutes=config.retry_base_minutes), timedelta(hours=config.retry_max_hours))


def preview_writeback(
    engine: Engine,
    config: WritebackConfig,
    crms: Sequence[str],
    *,
    force: bool = False,
    now: datetime | None = None,
    account_ids: Collection[int] | None = None,
    changed_since: datetime | None = None,
) -> WritebackReport:
    """What :func:`run_writeback` would write (``--dry-run``): counts and samples, no CRM contact at all."""
    started = time.perf_counter()
    now = now or utcnow()
    catalogue = Catalogue(config)
    report = WritebackReport(dry_run=True, force=force)
    for crm in crms:
        for obj in catalogue.objects(crm):
            ledger = WritebackLedger(engine, crm, obj, _backoff(config))
            obj_report, plan = _object_report(engine, config, catalogue, crm, obj, ledger, now, force, account_ids,
                                              changed_since)
            obj_report.mode = write_mode(config, crm, len(plan.due))
            report.objects.append(obj_report)
    report.seconds = time.perf_counter() - started
    return report


def write_mode(config: WritebackConfig, crm: str, count: int) -> str:
    """How ``count`` changed records of one object are sent."""
    if count == 0:
        return "none"
    if crm == "hubspot":
        return "batch"
    return "bulk" if count > config.bulk_threshold else "collections"


def run_writeback(
    engine: Engine,
    config: WritebackConfig,
    writers: Sequence[Writer],
    *,
    force: bool = False,
    now: datetime | None = None,
    run_id: int | None = None,
    account_ids: Collection[int] | None = None,
    changed_since: datetime | None = None,
) -> WritebackReport:
    """Write every changed catalogue field of every scored record to each writer's CRM.

    ``account_ids`` (store ids) limits the pass to those accounts and the people matched to
    them; ``changed_since`` (an incremental run) to the records whose score or match changed
    after it or whose last write failed (see :mod:`writeback.source`). Either way what is
    written is still only what differs from what was last written to the CRM, unless ``force``.
    A CRM that stops the run (budget spent, outage, rate limited too long) keeps what was
    written; the other CRMs still run.
    """
    started = time.perf_counter()
    now = now or utcnow()
    catalogue = Catalogue(config)
    report = WritebackReport(dry_run=False, force=force)
    for writer in writers:
        calls_before = writer.api_calls
        stopped: str | None = None
        # One object is written at a time (a Contact job next to an Account job would fight over the
        # accounts' row locks in Salesforce), but the next object is read and diffed while the CRM
        # works on the previous one: on the L org that time was spent waiting for Bulk jobs.
        with ThreadPoolExecutor(1, thread_name_prefix=f"abm-{writer.crm}-writeback") as pool:
            writing: _Writing | None = None
            for obj in catalogue.objects(writer.crm):
                ledger = WritebackLedger(engine, writer.crm, obj, _backoff(config), run_id)
                obj_report, plan = _object_report(engine, config, catalogue, writer.crm, obj, ledger, now, force,
                                                  account_ids, changed_since)
                obj_report.mode = writer.mode(len(plan.due))
                report.objects.append(obj_report)
                stopped = _finish(writing, stopped)
                writing = None
                if stopped is not None:
                    obj_report.stopped = f"not attempted: {stopped}"
                    continue
                if not plan.due:
                    continue
                future = pool.submit(contextvars.copy_context().run, writer.write, obj, plan.due,
                                     _recorder(ledger, obj_report, now))
                writing = _Writing(future, obj_report)
            stopped = _finish(writing, stopped)
        report.api_calls[writer.crm] = writer.api_calls - calls_before
        policy = getattr(writer, "policy", None)
        if policy is not None:
            report.rate_limited_s[writer.crm] = policy.rate_limited_s
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Writing:
    """One object's write, running on the CRM's writer thread."""

    future: Future[None]
    report: ObjectReport


def _finish(writing: _Writing | None, stopped: str | None) -> str | None:
    """Wait for ``writing`` to end; the reason the CRM's later objects are not attempted, if any.

    A :class:`WritebackStopped` is the object's outcome (its batches so far are recorded); any
    other error is raised, as it would have been from the write itself.
    """
    if writing is None:
        return stopped
    try:
        writing.future.result()
    except WritebackStopped as exc:
        writing.report.stopped = exc.reason
        if exc.whole_crm:
            return exc.reason
    return stopped


def _recorder(ledger: WritebackLedger, obj_report: ObjectReport, now: datetime) -> OnBatch:
    def on_batch(batch: Sequence[RecordChange], outcomes: list[RecordOutcome]) -> None:
        ledger.record({c.crm_id: c for c in batch}, outcomes, now)
        for outcome in outcomes:
            if outcome.ok:
                obj_report.written += 1
            else:
                obj_report.failed += 1
                if len(obj_report.failures) < MAX_FAILURES_SHOWN:
                    obj_report.failures.append(outcome)

    return on_batch
