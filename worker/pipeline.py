"""One run: pull each CRM -> match -> score -> write back, every stage recorded as it ends.

The orchestration rules live here and nowhere else:
- Stages run in order; each one's report (counts, API calls, seconds, error) is committed to the
  run record the moment it ends, so a later failure never hides what already happened.
- A stage that raises is recorded as failed with its error, and the run fails; what earlier stages
  committed (cursors, records, matches, scores) stays, and the next run continues from there.
- A pull that runs out of API budget is *paused*, not failed: the local stages still run on what
  was pulled, writing back to that CRM is skipped (it would spend the same budget), and the run
  ends paused so the next one resumes.
- A stop request (SIGTERM, lost lock) is honoured between stages (and inside stages that check the
  token between batches): the run ends cancelled with everything before it recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from config import AbmConfig
from store.runs import StageReport, record_stage
from worker.executor import StopToken, describe_error
from worker.triggers import RunOptions

log = logging.getLogger("abm.pipeline")


@dataclass
class RunContext:
    """What every stage of one run sees; stages leave notes for later ones in ``shared``."""

    engine: Engine
    config: AbmConfig
    run_id: int
    options: RunOptions
    stop: StopToken
    paused_crms: set[str] = field(default_factory=set)
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext], StageReport]
    crm: str | None = None  # a CRM-bound stage (pull, write back)
    writes_to_crm: bool = False  # skipped when that CRM's pull paused for budget


def _log_stage(run_id: int, report: StageReport) -> None:
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    calls = " ".join(f"api_calls.{k}={v}" for k, v in report.api_calls.items())
    log.info("run %s stage %s %s in %.1fs %s %s", run_id, report.name, report.state, report.seconds, counts, calls,
             extra={"run_id": run_id, "stage": report.name, "state": report.state, "seconds": round(report.seconds, 3),
                    "counts": report.counts, "api_calls": report.api_calls})


def run_stages(ctx: RunContext, stages: Sequence[Stage]) -> str:
    """Run ``stages`` in order and return the run's final state (raises if a stage failed)."""
    for stage in stages:
        if ctx.stop.is_set():
            record_stage(ctx.engine, ctx.run_id, StageReport(stage.name, state="cancelled"))
            log.info("run %s stopping before %s", ctx.run_id, stage.name)
            return "cancelled"
        if stage.writes_to_crm and stage.crm in ctx.paused_crms:
            report = StageReport(stage.name, state="skipped",
                                 detail={"reason": f"the {stage.crm} API budget is spent; the next run writes back"})
            record_stage(ctx.engine, ctx.run_id, report)
            _log_stage(ctx.run_id, report)
            continue
        started = time.perf_counter()
        try:
            report = stage.run(ctx)
        except Exception as exc:
            failed = StageReport(stage.name, state="failed", seconds=time.perf_counter() - started,
                                 error=describe_error(exc))
            record_stage(ctx.engine, ctx.run_id, failed)
            _log_stage(ctx.run_id, failed)
            raise
        if not report.seconds:
            report.seconds = time.perf_counter() - started
        record_stage(ctx.engine, ctx.run_id, report)
        _log_stage(ctx.run_id, report)
        if report.state == "paused" and stage.crm:
            ctx.paused_crms.add(stage.crm)
        elif report.state == "cancelled":
            return "cancelled"
    if ctx.stop.is_set():
        return "cancelled"
    return "paused" if ctx.paused_crms else "succeeded"


class Pipeline:
    """The executor's pipeline function: builds the stage list for a run's options and runs it."""

    def __init__(self, engine: Engine, config: AbmConfig,
                 plan: Callable[[AbmConfig, RunOptions], Sequence[Stage]]) -> None:
        self.engine = engine
        self.config = config
        self.plan = plan

    def __call__(self, run_id: int, options: RunOptions, stop: StopToken) -> str:
        ctx = RunContext(self.engine, self.config, run_id, options, stop)
        try:
            return run_stages(ctx, self.plan(self.config, options))
        except Exception:
            log.error("run %s failed", run_id, extra={"run_id": run_id})
            raise

