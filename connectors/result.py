"""What a pull returns, the same for every CRM: per-object counts, API calls, budget, paused or not.

The worker folds it into the run record (:meth:`SyncResult.stage_report`), the CLI prints it,
and tests compare it with the sandbox's request log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine

from store.runs import StageReport, create_run, finish_run, record_stage


class UnknownObjects(ValueError):
    """Objects asked for that the connector does not pull (a usage error, reported before any API call)."""


@dataclass
class ObjectCounts:
    read: int = 0  # records received from the CRM (re-reads included)
    upserted: int = 0  # rows inserted or changed in the store
    deleted: int = 0  # rows flagged deleted (CRM deletes, merges, hard deletes)
    skipped: int = 0  # records deliberately not stored (e.g. mapped to no activity type)
    method: str = ""  # how it was read: "rest", "bulk", "bulk+rest" (fallback)...
    estimate: int | None = None  # rows the CRM said the window holds, when it said
    done: bool = False  # the object's window was read to its end

    def as_dict(self) -> dict[str, int | str | bool | None]:
        return {"read": self.read, "upserted": self.upserted, "deleted": self.deleted, "skipped": self.skipped,
                "method": self.method, "done": self.done}


@dataclass
class SyncResult:
    crm: str
    full: bool
    run_id: int | None = None
    objects: dict[str, ObjectCounts] = field(default_factory=dict)
    api_calls: int = 0  # calls this pull sent (OAuth token requests not included)
    api_used: int | None = None  # org-wide usage today, as last reported
    api_total: int | None = None  # the org's daily allowance
    allowance: int | None = None  # calls the run could still have made under max_api_share
    paused: bool = False
    pause_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    meetings_held: int = 0  # scheduled meetings stored earlier whose end has passed since (store.held_meetings)

    def counts(self, name: str) -> ObjectCounts:
        return self.objects.setdefault(name, ObjectCounts())

    def totals(self) -> dict[str, int]:
        keys = ("read", "upserted", "deleted", "skipped")
        return {k: sum(getattr(c, k) for c in self.objects.values()) for k in keys}

    @property
    def remaining(self) -> int | None:
        """Calls left in the org's daily allowance, for every integration."""
        if self.api_used is None or self.api_total is None:
            return None
        return max(self.api_total - self.api_used, 0)

    def stage_report(self, name: str | None = None) -> StageReport:
        """This pull as one stage of a run record."""
        state: Literal["succeeded", "paused"] = "paused" if self.paused else "succeeded"
        detail: dict[str, object] = {"objects": {k: v.as_dict() for k, v in self.objects.items()},
                                     "full": self.full}
        if self.api_total is not None:
            detail["api_usage"] = {"used": self.api_used, "total": self.api_total, "allowance": self.allowance}
        if self.meetings_held:
            detail["meetings_held"] = self.meetings_held
        if self.warnings:
            detail["warnings"] = self.warnings
        return StageReport(
            name=name or f"pull_{self.crm}",
            state=state,
            counts=self.totals(),
            api_calls={self.crm: self.api_calls},
            seconds=self.seconds,
            error=self.pause_reason,
            detail=detail,
        )


@dataclass(frozen=True)
class Progress:
    """One step of a pull, for progress bars: ``total`` is the CRM's estimate when it gave one."""

    object: str
    event: Literal["start", "estimate", "records", "done"]
    read: int = 0
    total: int | None = None


ProgressCallback = Callable[[Progress], None]


def open_pull_run(engine: Engine, crm: str, full: bool, trigger: str, objects: list[str]) -> int:
    """A run record for a pull started on its own (`abm sync`); the pipeline passes its own run instead."""
    return create_run(engine, "full" if full else "incremental", trigger,
                      {"crm": crm, "full": full, "objects": objects}, state="running")


def close_pull_run(engine: Engine, run_id: int, result: SyncResult, failure: BaseException | None) -> None:
    """Record the pull as the run's one stage and finish it: failed, paused (API budget) or succeeded."""
    report = result.stage_report()
    if failure is not None:  # our messages and the CRMs' carry no secrets; length-capped for the record
        report.state, report.error = "failed", f"{type(failure).__name__}: {failure}"[:2000]
    record_stage(engine, run_id, report)
    finish_run(engine, run_id, "failed" if failure is not None else "paused" if result.paused else "succeeded",
               report.error)
