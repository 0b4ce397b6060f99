"""The writer's memory in the store: the baseline (the last values written to each record, one row
per record) and the records that failed, with when to try them again.

Each batch's outcomes are committed as soon as the CRM answers, so a run killed halfway keeps
everything it wrote and the next run sends only the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

import orjson
from sqlalchemy import Connection, Delete, Engine, Table, delete, insert, select, update

from store.schema import WritebackError, WritebackState
from store.types import JsonText
from store.upsert import upsert
from writeback.diff import RecordChange

_ID_CHUNK = 900  # crm ids per IN list: under every SQLite's limit on bound parameters
# Records whose outcomes are committed in one transaction. A Bulk API job answers for up to a few hundred
# thousand records at once; their baseline (one row per record and field) in one transaction held SQLite's
# write lock for longer than the other CRM's writer would wait, and built millions of rows in memory at once.
RECORD_SLICE = 2_000

STATE_KEY = ("crm", "object", "crm_id")
# Baselines kept from planning for recording, at most, per object (see WritebackLedger.keep): about 1.5 KB each,
# so a full pass that plans a whole object before writing it holds some 75 MB of them and reads the rest again.
KEPT_BASELINES_MAX = 50_000
_NOTHING_WRITTEN: Mapping[str, str | None] = {}


@dataclass(frozen=True)
class RecordOutcome:
    """What the CRM said about one record of a batch."""

    crm_id: str
    ok: bool
    code: str | None = None
    message: str | None = None


OnBatch = Callable[[Sequence[RecordChange], list["RecordOutcome"]], None]
"""What a writer calls with each batch's outcomes as soon as the CRM has answered."""


@dataclass(frozen=True)
class PendingError:
    attempts: int
    first_failed_at: datetime
    next_retry_at: datetime | None

    def due(self, now: datetime) -> bool:
        return self.next_retry_at is None or self.next_retry_at <= now


@dataclass(frozen=True)
class Backoff:
    """Wait before retrying a failed record: ``base`` after the first failure, doubling, at most ``cap``."""

    base: timedelta
    cap: timedelta

    def after(self, attempts: int) -> timedelta:
        return min(self.cap, self.base * (2 ** max(0, attempts - 1)))


class WritebackLedger:
    """Baseline and errors of one CRM object."""

    def __init__(self, engine: Engine, crm: str, obj: str, backoff: Backoff, run_id: int | None = None) -> None:
        self.engine = engine
        self.crm = crm
        self.obj = obj
        self.backoff = backoff
        self.run_id = run_id
        self._errors: dict[str, PendingError] = {}
        self._kept: dict[str, Mapping[str, str | None]] = {}
        self._kept_lock = threading.Lock()  # planned on one thread, recorded on the CRM's writer threads

    def baseline(self, crm_ids: Sequence[str] | None = None) -> dict[str, dict[str, str | None]]:
        """crm_id -> {field: last value written}; only of ``crm_ids`` when given (read in chunks).
        Planning reads its targets' baseline with them (:func:`writeback.source.iter_targets`); this
        serves the outcomes of records not planned here, and tools.

        Given ids are always read through IN lists on the state key, however many: on the L org
        (measured when the baseline still had a row per field) the lists read 46,000 records'
        baseline in 0.7 s where one scan of the object took 6.4 s, and every record's (500,000 ids)
        in about the time of the scan, so a scan never wins by much and loses by ten times on an
        incremental run.
        """
        if crm_ids is None:
            t = WritebackState.__table__
            with self.engine.connect() as conn:
                return dict(conn.execute(select(t.c.crm_id, t.c.field_values).where(
                    t.c.crm == self.crm, t.c.object == self.obj)).all())
        return self._baseline_of(crm_ids)

    def keep(self, changes: Iterable[RecordChange], baseline: Mapping[str, Mapping[str, str | None]]) -> None:
        """Hold the baseline that planned ``changes`` until their outcomes are recorded, rather than read it again.

        Recording merges the fields written into what the record held; reading that again cost the L org's 1%
        increment 5.2 s of its write-back, as much as the planning's own read. What is held stays current: only
        this object's writer writes its records' rows, once each per run. At most ``KEPT_BASELINES_MAX`` are
        held; the others are read again when recorded.
        """
        with self._kept_lock:
            for change in islice(changes, max(0, KEPT_BASELINES_MAX - len(self._kept))):
                self._kept[change.crm_id] = baseline.get(change.crm_id, _NOTHING_WRITTEN)

    def _before(self, outcomes: Sequence[RecordOutcome]) -> dict[str, Mapping[str, str | None]]:
        """What the written records of ``outcomes`` held: as kept from planning, else read. Every record of
        ``outcomes`` is let go, written or not."""
        with self._kept_lock:
            kept = {o.crm_id: self._kept.pop(o.crm_id) for o in outcomes if o.crm_id in self._kept}
        before = {o.crm_id: kept[o.crm_id] for o in outcomes if o.ok and o.crm_id in kept}
        unknown = [o.crm_id for o in outcomes if o.ok and o.crm_id not in kept]
        if unknown:
            before.update(self._baseline_of(unknown))
        return before

    def _baseline_of(self, crm_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        t = WritebackState.__table__
        query = select(t.c.crm_id, t.c.field_values).where(t.c.crm == self.crm, t.c.object == self.obj)
        out: dict[str, dict[str, str | None]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(crm_ids), _ID_CHUNK):
                out.update(conn.execute(query.where(t.c.crm_id.in_(crm_ids[start:start + _ID_CHUNK]))).all())
        return out

    def errors(self) -> dict[str, PendingError]:
        """crm_id -> the pending failure of that record."""
        t = WritebackError.__table__
        query = select(t.c.crm_id, t.c.attempts, t.c.first_failed_at, t.c.next_retry_at).where(
            t.c.crm == self.crm, t.c.object == self.obj
        )
        with self.engine.connect() as conn:
            self._errors = {row.crm_id: PendingError(row.attempts, row.first_failed_at, row.next_retry_at)
                            for row in conn.execute(query)}
        return dict(self._errors)

    def record(self, changes: Mapping[str, RecordChange], outcomes: Iterable[RecordOutcome], now: datetime) -> None:
        """Successes become the baseline and clear their error; failures are kept with a retry time.

        Committed ``RECORD_SLICE`` records at a time: a run stopped in between keeps the slices
        committed, and the next run sends the others again (writing a value twice is harmless).
        """
        outcomes = list(outcomes)
        for start in range(0, len(outcomes), RECORD_SLICE):
            self._record_slice(changes, outcomes[start:start + RECORD_SLICE], now)

    def _record_slice(self, changes: Mapping[str, RecordChange], outcomes: Sequence[RecordOutcome],
                      now: datetime) -> None:
        written = [o.crm_id for o in outcomes if o.ok]
        cleared = [crm_id for crm_id in written if crm_id in self._errors]
        failures = [(o, sorted(changes[o.crm_id].names)) for o in outcomes if not o.ok]
        # A change holds the fields sent, not the record's others: they are merged into what the record held.
        # Kept from planning or read before the transaction, whose first statement must be a write: a SQLite
        # transaction that read first cannot write once the other CRM's writer has committed meanwhile
        # ("database is locked" at once, whatever the busy timeout). Only this object's writer writes these
        # rows, so they stay current.
        before = self._before(outcomes)
        rows = [{"crm": self.crm, "object": self.obj, "crm_id": crm_id,
                 "field_values": _baseline_text({**before.get(crm_id, {}), **changes[crm_id].values}),
                 "written_at": now, "run_id": self.run_id} for crm_id in written]
        errors = WritebackError.__table__
        with self.engine.begin() as conn:
            if rows:
                upsert(conn, WritebackState.__table__, rows, key=STATE_KEY)
            for start in range(0, len(cleared), _ID_CHUNK):
                conn.execute(delete(errors).where(errors.c.crm == self.crm, errors.c.object == self.obj,
                                                  errors.c.crm_id.in_(cleared[start:start + _ID_CHUNK])))
            for outcome, fields in failures:
                self._record_failure(conn, outcome, fields, now)
        for crm_id in cleared:
            self._errors.pop(crm_id, None)

    def _record_failure(self, conn: Connection, outcome: RecordOutcome, fields: list[str], now: datetime) -> None:
        errors = WritebackError.__table__
        previous = self._errors.get(outcome.crm_id)
        attempts = previous.attempts + 1 if previous else 1
        values = {"fields": fields, "code": outcome.code, "message": outcome.message, "attempts": attempts,
                  "last_failed_at": now, "next_retry_at": now + self.backoff.after(attempts), "run_id": self.run_id}
        if previous is None:
            conn.execute(insert(errors).values(crm=self.crm, object=self.obj, crm_id=outcome.crm_id,
                                               first_failed_at=now, **values))
        else:
            conn.execute(update(errors).where(errors.c.crm == self.crm, errors.c.object == self.obj,
                                              errors.c.crm_id == outcome.crm_id).values(**values))
        self._errors[outcome.crm_id] = PendingError(attempts, previous.first_failed_at if previous else now,
                                                    values["next_retry_at"])


def _baseline_text(values: Mapping[str, str | None]) -> JsonText:
    """A record's baseline encoded for its JSON column: field names to the texts written, which orjson encodes
    in 1.2 µs against 10.8 µs with ``json`` (an L increment records some 140,000 of them). Only here: the upserts'
    own encoding (``json``'s form, with spaces) is what SQLite compares a pulled record's JSON columns by, so
    another form there would count every record read again as changed, once."""
    return JsonText(orjson.dumps(values).decode())


def drop_baseline(engine: Engine, crm: str | None = None, crm_ids: Collection[str] | None = None) -> int:
    """Forget what was written (``abm resync --rewrite``), so the next writeback sends every value.

    Scoped to one CRM and/or some records when given; pending errors go too, so their
    records are retried at once. Returns the number of baseline rows dropped.
    """
    def scoped(table: Table) -> Delete:
        stmt = delete(table)
        if crm is not None:
            stmt = stmt.where(table.c.crm == crm)
        if crm_ids is not None:
            stmt = stmt.where(table.c.crm_id.in_(list(crm_ids)))
        return stmt

    with engine.begin() as conn:
        conn.execute(scoped(WritebackError.__table__))
        return conn.execute(scoped(WritebackState.__table__)).rowcount
