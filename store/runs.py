"""The record of every run, as a small state machine that admins can read.

Sales ops leave the worker alone for weeks; when a number looks wrong, the run record is what
tells them what happened: which stages ran, how many records each read and wrote, how many API
calls each CRM cost, how long it took, and the error with its cause. Each stage's entry is
written as soon as the stage ends (committed), so a crash leaves the record of everything that
finished before it.

States: queued -> running -> succeeded | failed | paused (API budget spent: resumable) | cancelled.
A run left ``running`` by a worker that died is closed as failed by :func:`fail_abandoned`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select, update

from store.schema import Run
from store.types import utcnow

RunState = Literal["queued", "running", "paused", "succeeded", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"paused", "succeeded", "failed", "cancelled"})
ACTIVE_STATES: frozenset[str] = frozenset({"queued", "running"})
# The counters an admin reads on every run, in display order.
COUNT_KEYS = ("read", "upserted", "deleted", "matched", "scored", "written", "skipped", "failed")


class RunStateError(RuntimeError):
    """A transition the state machine does not allow (e.g. finishing a run twice)."""


@dataclass
class StageReport:
    """What one stage did: folded into the run's ``stages``, ``counts`` and ``api_calls``."""

    name: str
    state: Literal["succeeded", "failed", "paused", "skipped", "cancelled"] = "succeeded"
    counts: dict[str, int] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)  # per CRM
    seconds: float = 0.0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "seconds": round(self.seconds, 3), "counts": self.counts}
        if self.api_calls:
            out["api_calls"] = self.api_calls
        if self.error:
            out["error"] = self.error
        if self.detail:
            out["detail"] = self.detail
        return out


def create_run(
    engine: Engine,
    kind: str,
    trigger: str,
    options: Mapping[str, Any] | None = None,
    *,
    state: RunState = "queued",
) -> int:
    """A new run record (queued unless said otherwise); returns its id."""
    now = utcnow()
    values: dict[str, Any] = {
        "kind": kind,
        "trigger": trigger,
        "state": state,
        "options": dict(options or {}),
        "counts": {},
        "api_calls": {},
        "stages": {},
        "created_at": now,
    }
    if state == "running":
        values.update(started_at=now, heartbeat_at=now)
    with engine.begin() as conn:
        return int(conn.execute(Run.__table__.insert().values(**values).returning(Run.id)).scalar_one())


def claim_run(engine: Engine, run_id: int) -> bool:
    """queued -> running, atomically: False when another worker claimed it first."""
    now = utcnow()
    with engine.begin() as conn:
        return (
            conn.execute(
                update(Run)
                .where(Run.id == run_id, Run.state == "queued")
                .values(state="running", started_at=now, heartbeat_at=now)
            ).rowcount
            == 1
        )


def _load(conn: Any, run_id: int) -> Any:
    row = conn.execute(select(Run.state, Run.counts, Run.api_calls, Run.stages).where(Run.id == run_id)).first()
    if row is None:
        raise RunStateError(f"run {run_id} does not exist")
    return row


def record_stage(engine: Engine, run_id: int, report: StageReport) -> None:
    """Add one finished stage to a running run (counts and API calls are summed across stages)."""
    with engine.begin() as conn:
        row = _load(conn, run_id)
        if row.state != "running":
            raise RunStateError(f"run {run_id} is {row.state}, not running: cannot record stage {report.name!r}")
        counts = dict(row.counts or {})
        for key, value in report.counts.items():
            counts[key] = counts.get(key, 0) + int(value)
        api_calls = dict(row.api_calls or {})
        for crm, calls in report.api_calls.items():
            api_calls[crm] = api_calls.get(crm, 0) + int(calls)
        stages = dict(row.stages or {})
        # "seq" keeps the stages in the order they ran: JSONB does not keep key order.
        stages[report.name] = {**report.to_json(), "seq": len(stages)}
        conn.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(counts=counts, api_calls=api_calls, stages=stages, heartbeat_at=utcnow())
        )


def finish_run(engine: Engine, run_id: int, state: RunState, error: str | None = None) -> None:
    if state not in FINAL_STATES:
        raise RunStateError(f"{state!r} is not a final state; expected one of {sorted(FINAL_STATES)}")
    with engine.begin() as conn:
        done = conn.execute(
            update(Run)
            .where(Run.id == run_id, Run.state.in_(ACTIVE_STATES))
            .values(state=state, error=error, finished_at=utcnow())
        ).rowcount
    if done != 1:
        raise RunStateError(f"run {run_id} is not queued or running: cannot mark it {state}")


def touch_run(engine: Engine, run_id: int) -> None:
    """Heartbeat of a running run, so a dead worker's run can be told from a slow one."""
    with engine.begin() as conn:
        conn.execute(update(Run).where(Run.id == run_id, Run.state == "running").values(heartbeat_at=utcnow()))


def fail_abandoned(engine: Engine, stale_after: timedelta) -> list[int]:
    """Close runs left ``running`` by a worker that stopped heartbeating; returns their ids.

    Their committed stages stay (cursors, matches, scores): the next run continues from there.
    """
    cutoff = utcnow() - stale_after
    with engine.begin() as conn:
        ids = [
            int(i)
            for i in conn.execute(
                select(Run.id).where(Run.state == "running", Run.heartbeat_at < cutoff)
            ).scalars()
        ]
        if ids:
            conn.execute(
                update(Run)
                .where(Run.id.in_(ids), Run.state == "running")
                .values(
                    state="failed",
                    finished_at=utcnow(),
                    error=f"the worker stopped (no heartbeat for {int(stale_after.total_seconds())} s); "
                    "committed stages were kept and the next run continues from them",
                )
            )
    return ids


def running_run(engine: Engine) -> int | None:
    """The id of the run in progress, if any."""
    with engine.connect() as conn:
        return conn.execute(
            select(Run.id).where(Run.state == "running").order_by(Run.id.desc()).limit(1)
        ).scalar_one_or_none()


def next_queued_run(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(Run.id).where(Run.state == "queued").order_by(Run.id).limit(1)
        ).scalar_one_or_none()


def get_run(engine: Engine, run_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(Run).where(Run.id == run_id)).first()
    return run_as_dict(row._mapping) if row else None


def list_runs(engine: Engine, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Run.id < before_id)
    with engine.connect() as conn:
        return [run_as_dict(r._mapping) for r in conn.execute(query)]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_as_dict(m: Mapping[str, Any]) -> dict[str, Any]:
    started, finished = m["started_at"], m["finished_at"]
    seconds = (finished - started).total_seconds() if started and finished else None
    return {
        "id": m["id"],
        "kind": m["kind"],
        "trigger": m["trigger"],
        "state": m["state"],
        "options": m["options"] or {},
        "counts": {k: (m["counts"] or {}).get(k, 0) for k in COUNT_KEYS},
        "api_calls": m["api_calls"] or {},
        "stages": dict(sorted((m["stages"] or {}).items(), key=lambda item: item[1].get("seq", 0))),
        "error": m["error"],
        "created_at": _iso(m["created_at"]),
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "heartbeat_at": _iso(m["heartbeat_at"]),
        "seconds": round(seconds, 3) if seconds is not None else None,
    }


# How many of the latest runs are searched for a stage that succeeded.
RECENT_RUNS = 200


def last_stage_start(conn: Connection, stage: str, recent_runs: int = RECENT_RUNS, *,
                     scope: str | None = None) -> datetime | None:
    """When ``stage`` last started in a run where it succeeded (its ``started_at`` detail), and had
    the recorded ``scope`` if one is given; None when no recent run records one, and the caller then
    works on everything."""
    rows = conn.execute(select(Run.stages).where(Run.started_at.is_not(None)).order_by(Run.id.desc())
                        .limit(recent_runs))
    for (stages,) in rows:
        record = (stages or {}).get(stage) or {}
        if record.get("state") != "succeeded":
            continue
        detail = record.get("detail") or {}
        if scope is not None and detail.get("scope") != scope:
            continue
        started_at = detail.get("started_at")
        if started_at:
            return datetime.fromisoformat(started_at)
    return None
