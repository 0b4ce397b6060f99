"""What a writeback run did (or, with ``--dry-run``, would do), per CRM object.

The same report feeds the CLI's summary and the run record, so what an admin reads after a
run and what ``abm writeback --dry-run`` promised are the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from store.runs import StageReport
from writeback.diff import RecordChange
from writeback.state import RecordOutcome

NEVER_WRITTEN = "(unset)"


@dataclass(frozen=True)
class Sample:
    """One record's change as a rep would see it: field -> (old, new)."""

    crm_id: str
    changes: dict[str, tuple[str | None, str | None]]

    @classmethod
    def of(cls, change: RecordChange, written: Mapping[str, str | None]) -> Sample:
        """``written``: the record's baseline (field -> last value written; a missing field never was)."""
        return cls(change.crm_id, {name: (written.get(name, NEVER_WRITTEN), value)
                                   for name, value in change.items()})


@dataclass
class ObjectReport:
    crm: str
    object: str
    records: int = 0  # scored records in the store
    changed: int = 0  # records with a field to write
    deferred: int = 0  # failed before and still waiting for their retry time
    written: int = 0
    failed: int = 0
    mode: str = "none"  # collections | bulk | none
    samples: list[Sample] = field(default_factory=list)
    failures: list[RecordOutcome] = field(default_factory=list)  # the first few, with the CRM's message
    stopped: str | None = None
    # Seconds into the CRM's write-back at which the object was planned, its first write sent, its last write
    # done by the CRM and its last outcomes recorded: which object a slow write-back waited for (its plan, the
    # CRM, the object before it, or the database).
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def unchanged(self) -> int:
        return self.records - self.changed

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records, "changed": self.changed, "deferred": self.deferred, "written": self.written,
            "failed": self.failed, "mode": self.mode, "stopped": self.stopped,
            "failures": [{"crm_id": f.crm_id, "code": f.code, "message": f.message} for f in self.failures],
            "timings": {name: round(seconds, 3) for name, seconds in self.timings.items()},
        }


@dataclass
class WritebackReport:
    dry_run: bool
    force: bool
    objects: list[ObjectReport] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)
    rate_limited_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def stopped(self) -> list[str]:
        return [f"{o.crm} {o.object}: {o.stopped}" for o in self.objects if o.stopped]

    def total(self, name: str) -> int:
        return sum(getattr(o, name) for o in self.objects)

    def stage_report(self, name: str = "writeback") -> StageReport:
        """This report as a stage of a run record (``store.runs``)."""
        state = "paused" if self.stopped else "succeeded"
        return StageReport(
            name=name,
            state=state,  # type: ignore[arg-type]
            counts={"written": self.total("written"), "failed": self.total("failed"),
                    "skipped": self.total("unchanged") + self.total("deferred")},
            api_calls=dict(self.api_calls),
            seconds=self.seconds,
            error="; ".join(self.stopped) or None,
            detail={f"{o.crm}.{o.object}": o.to_json() for o in self.objects},
        )
