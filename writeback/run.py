"""One writeback pass: for every CRM object in the catalogue, diff the store against the baseline
and write what changed, recording each batch's outcome as it lands.

The database work (reading targets, baseline and errors; recording outcomes) happens here and
in :mod:`writeback.state` / :mod:`writeback.source`; deciding *what* to write is the pure
:func:`plan_changes`. Writers only talk to their CRM.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


def _planned_parts(engine: Engine, config: WritebackConfig, catalogue: Catalogue, crm: str, obj: str,
                   ledger: WritebackLedger, now: datetime, force: bool, account_ids: Collection[int] | None,
                   changed_since: datetime | None, report: ObjectReport, chunk: int | None = None) -> Iterator[Plan]:
    """Diff one object's records against their baseline, a chunk of records at a time (``chunk``, default
    :data:`~writeback.source.TARGET_CHUNK`), counting them into ``report``: only the changes outlive their
    chunk (a full pass would otherwise hold every record and its baseline)."""
    fields = catalogue.fields(crm, obj)
    errors = ledger.errors()
    for targets, baseline in iter_targets(engine, crm, obj, catalogue.kind(crm, obj), account_ids, changed_since,
                                          chunk):
        part = plan_changes(targets, fields, baseline, errors, now, force)
        ledger.keep(part.due, baseline)
        report.samples += [Sample.of(c, baseline.get(c.crm_id, {}))
                           for c in part.due[: config.sample_size - len(report.samples)]]
        report.records += len(targets)
        report.changed += len(part.due) + len(part.deferred)
        report.deferred += len(part.deferred)
        yield part


def _object_report(engine: Engine, config: WritebackConfig, catalogue: Catalogue, crm: str, obj: str,
                   ledger: WritebackLedger, now: datetime, force: bool,
                   account_ids: Collection[int] | None,
                   changed_since: datetime | None = None) -> tuple[ObjectReport, Plan]:
    """One object's report and whole plan (see :func:`_planned_parts`)."""
    report = ObjectReport(crm, obj)
    due: list[RecordChange] = []
    deferred: list[RecordChange] = []
    for part in _planned_parts(engine, config, catalogue, crm, obj, ledger, now, force, account_ids, changed_since,
                               report):
        due += part.due
        deferred += part.deferred
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
        imports = config.hubspot_import_threshold
        return "import" if imports and count > imports else "batch"
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
        # One object is written at a time (a Contact job next to an Account job would fight over the
        # accounts' row locks in Salesforce; see _write_whole for the objects that lock nothing), but the
        # next object is read and diffed while the CRM works on the previous one: on the L org that time
        # was spent waiting for Bulk jobs.
        with ThreadPoolExecutor(1, thread_name_prefix=f"abm-{writer.crm}-writeback") as pool:
            write = _write_streamed if getattr(writer, "streams", False) else _write_whole
            write(pool, engine, config, catalogue, writer, report, now, force, run_id, account_ids, changed_since,
                  time.perf_counter())
        report.api_calls[writer.crm] = writer.api_calls - calls_before
        policy = getattr(writer, "policy", None)
        if policy is not None:
            report.rate_limited_s[writer.crm] = policy.rate_limited_s
    report.seconds = time.perf_counter() - started
    return report


def _write_whole(pool: ThreadPoolExecutor, engine: Engine, config: WritebackConfig, catalogue: Catalogue,
                 writer: Writer, report: WritebackReport, now: datetime, force: bool, run_id: int | None,
                 account_ids: Collection[int] | None, changed_since: datetime | None, began: float) -> None:
    """Each object planned whole, then queued to be written while the next one is planned: how a writer
    whose way of sending depends on how many records changed (Salesforce: Bulk API or collections) works.

    Objects are written one after the other on ``pool``'s one thread, except the writer's
    ``independent_objects`` (their updates lock no other object's records: Salesforce's Leads), each written
    on a thread of its own as soon as it is planned, beside the others: on the L org's increment, the 8,000
    Leads' 42 collection calls took 10 s between the Account and the Contact jobs.

    The objects written one after the other are planned first, and each is queued as soon as it is planned,
    so the Contact write starts the moment the Account write ends, or its own plan does: planning the Leads
    between them (1.6-1.8 s of the L org's increment, where the Account job took 3.5-6.2 s and the Contacts'
    plan 5.4-6.6 s) delayed the Contact job, and a Lead job waits for nothing and ends beside it. Reports keep
    the catalogue's order. A queued write is not attempted once a write stopped the whole CRM (see
    :class:`_Gate`), nor is an object planned after that.
    """
    independent = getattr(writer, "independent_objects", frozenset())
    catalogue_order = catalogue.objects(writer.crm)
    first_report = len(report.objects)
    futures: list[Future[None]] = []
    with _Gate(writer.crm, began) as gate, \
            ThreadPoolExecutor(max(len(independent), 1), thread_name_prefix=f"abm-{writer.crm}-beside") as lanes:
        for obj in sorted(catalogue_order, key=lambda o: o in independent):  # stable: in order within each
            ledger = WritebackLedger(engine, writer.crm, obj, _backoff(config), run_id)
            obj_report, plan = _object_report(engine, config, catalogue, writer.crm, obj, ledger, now, force,
                                              account_ids, changed_since)
            obj_report.mode = writer.mode(len(plan.due))
            obj_report.timings["planned"] = time.perf_counter() - began
            report.objects.append(obj_report)
            if gate.error is not None:
                break
            if gate.stopped is not None:
                obj_report.stopped = f"not attempted: {gate.stopped}"
                continue
            if plan.due:
                futures.append((lanes if obj in independent else pool).submit(
                    contextvars.copy_context().run, gate.send, writer, obj, plan.due,
                    gate.recorder(ledger, obj_report, now), obj_report))
        wait(futures)
    report.objects[first_report:] = sorted(report.objects[first_report:],
                                           key=lambda r: catalogue_order.index(r.object))
    if gate.error is not None:
        raise gate.error


# Records planned per part by a writer that sends each part as soon as it is planned: its first call then
# waits for this many records' reads and diff, not for the whole object's.
STREAMED_CHUNK = 5_000


class _Gate:
    """What the writes queued for a CRM (objects, or parts of one) look at before sending: the object or the
    CRM a write stopped (budget spent, properties missing), or an error the run must fail with. It also notes
    in each object's ``timings`` when its first write was sent and its last one done by the CRM, seconds after
    ``began`` (writes it does not attempt are not timed), and when its last outcomes were recorded.

    Outcomes are recorded on a thread of the gate's own (:meth:`recorder`), one batch after the other in the
    order they came, and the writer goes on meanwhile: replaying the L org's increment, the 35,000 Accounts'
    outcomes took 2.8-3.7 s to record once their job was over in Salesforce, and the Contact job waited for
    them. Leaving the gate's block waits for every recording. A recording that fails is the run's error: the
    writes queued after it are not attempted, and the writer's next batch stops on it (the batch it had sent
    meanwhile is written again next run, as after a crash).
    """

    def __init__(self, crm: str, began: float) -> None:
        self.began = began
        self.stopped_objects: set[str] = set()
        self.stopped: str | None = None  # the whole CRM's stop reason
        self.stopped_by: str | None = None  # and the object whose part stopped it
        self.error: BaseException | None = None
        self._recording = ThreadPoolExecutor(1, thread_name_prefix=f"abm-{crm}-record")

    def __enter__(self) -> _Gate:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._recording.shutdown(wait=True)

    def recorder(self, ledger: WritebackLedger, obj_report: ObjectReport, now: datetime) -> OnBatch:
        """What a writer calls with each batch's outcomes, for ``ledger`` to record and ``obj_report`` to count."""

        def record(batch: Sequence[RecordChange], outcomes: list[RecordOutcome]) -> None:
            try:
                ledger.record({c.crm_id: c for c in batch}, outcomes, now)
            except BaseException as exc:  # noqa: BLE001 - raised by the writer's next batch, or by the run
                self.error = self.error or exc
                return
            for outcome in outcomes:
                if outcome.ok:
                    obj_report.written += 1
                else:
                    obj_report.failed += 1
                    if len(obj_report.failures) < MAX_FAILURES_SHOWN:
                        obj_report.failures.append(outcome)
            obj_report.timings["recorded"] = time.perf_counter() - self.began

        def on_batch(batch: Sequence[RecordChange], outcomes: list[RecordOutcome]) -> None:
            if self.error is not None:
                raise self.error
            self._recording.submit(contextvars.copy_context().run, record, batch, outcomes)

        return on_batch

    def send(self, writer: Writer, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch,
             obj_report: ObjectReport) -> None:
        if self.error is not None or self.stopped is not None or obj in self.stopped_objects:
            if self.stopped is not None and obj_report.stopped is None:  # queued after a stop of the CRM
                obj_report.stopped = f"not attempted: {self.stopped}"
            return
        obj_report.timings.setdefault("sent", time.perf_counter() - self.began)
        try:
            writer.write(obj, changes, on_batch)
        except WritebackStopped as exc:
            obj_report.stopped = exc.reason
            self.stopped_objects.add(obj)
            if exc.whole_crm:
                self.stopped, self.stopped_by = exc.reason, obj
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            obj_report.timings["done"] = time.perf_counter() - self.began


def _write_streamed(pool: ThreadPoolExecutor, engine: Engine, config: WritebackConfig, catalogue: Catalogue,
                    writer: Writer, report: WritebackReport, now: datetime, force: bool, run_id: int | None,
                    account_ids: Collection[int] | None, changed_since: datetime | None, began: float) -> None:
    """Each part of an object written on ``pool`` as soon as it is planned (``STREAMED_CHUNK`` records),
    for a writer that sends every change the same way whatever their number (HubSpot's batches).

    A rate-limited CRM so starts sending after one part's reads and diff rather than the whole object's:
    on the L org's incremental run, HubSpot's first batch went out 5.6 s into the writeback when objects
    were sent whole, 0.6 s part by part, and from then on the portal's allowance (190 calls per 10 s)
    set the pace. Parts leave in the order they were planned, one object after the other; a part that
    stops the object or the CRM stops those queued after it, and an object planned after a stop of the
    CRM is reported not attempted, as when objects are written whole.
    """
    planned: list[ObjectReport] = []
    futures: list[Future[None]] = []
    with _Gate(writer.crm, began) as gate:
        for obj in catalogue.objects(writer.crm):
            ledger = WritebackLedger(engine, writer.crm, obj, _backoff(config), run_id)
            obj_report = ObjectReport(writer.crm, obj)
            report.objects.append(obj_report)
            planned.append(obj_report)
            recorder = gate.recorder(ledger, obj_report, now)
            due = 0
            for part in _planned_parts(engine, config, catalogue, writer.crm, obj, ledger, now, force,
                                       account_ids, changed_since, obj_report, STREAMED_CHUNK):
                due += len(part.due)
                if part.due:
                    futures.append(pool.submit(contextvars.copy_context().run, gate.send, writer, obj, part.due,
                                               recorder, obj_report))
            obj_report.mode = writer.mode(due)
            obj_report.timings["planned"] = time.perf_counter() - began
        wait(futures)
    if gate.error is not None:
        raise gate.error
    if gate.stopped is not None:  # the objects after the one that stopped the CRM, with nothing to write too
        objects = [o.object for o in planned]
        for later in planned[objects.index(gate.stopped_by) + 1:]:
            later.stopped = f"not attempted: {gate.stopped}"
