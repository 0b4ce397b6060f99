"""One run: pull each CRM -> match -> score -> write back, every stage recorded as it ends.

The orchestration rules live here and nowhere else:
- Stages run in order, except independent ones grouped in a step (the two pulls, the two writebacks),
  which run at once (the writebacks in processes of their own, see :mod:`worker.stage_process`); each
  one's report (counts, API calls, seconds, memory, error) is committed to the run record the moment
  it ends, so a later failure never hides what already happened.
- A stage that raises is recorded as failed with its error, and the run fails; what earlier stages
  and the stages running next to it committed (cursors, records, matches, scores) stays, and the
  next run continues from there.
- A pull that runs out of API budget is *paused*, not failed: the local stages still run on what
  was pulled, writing back to that CRM is skipped (it would spend the same budget), and the run
  ends paused so the next one resumes.
- A stop request (SIGTERM, lost lock) is honoured between stages (and inside stages that check the
  token between batches): the run ends cancelled with everything before it recorded.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine

from config import AbmConfig
from store.runs import StageReport, record_stage
from store.wal import log_watched
from worker.executor import StopToken, describe_error
from worker.huge_pages import numpy_huge_pages
from worker.memory import RssSampler, return_freed_memory
from worker.read_ahead import ReadAhead
from worker.stage_process import StageProcess, processes_possible, start_server
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
    read_ahead: dict[str, ReadAhead[Any]] = field(default_factory=dict)  # stage name -> its reading started


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[RunContext], StageReport]
    crm: str | None = None  # a CRM-bound stage (pull, write back)
    writes_to_crm: bool = False  # skipped when that CRM's pull paused for budget
    # Run in a process of its own when its step runs it beside others (worker.stage_process): it sees no notes
    # in ``RunContext.shared`` and leaves none, and ``run`` must pickle (a module-level function or a partial).
    own_process: bool = False
    # What the stage can read while an earlier step runs in processes of their own (worker.read_ahead), started
    # with the first such step: called on a thread with the run's context and the time mark, it returns what the
    # stage (or, for a later stage, the one before it) takes from ``RunContext.read_ahead``.
    read_ahead: Callable[[RunContext, datetime], Any] | None = None


def _log_stage(run_id: int, report: StageReport) -> None:
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    calls = " ".join(f"api_calls.{k}={v}" for k, v in report.api_calls.items())
    log.info("run %s stage %s %s in %.1fs %s %s", run_id, report.name, report.state, report.seconds, counts, calls,
             extra={"run_id": run_id, "stage": report.name, "state": report.state, "seconds": round(report.seconds, 3),
                    "counts": report.counts, "api_calls": report.api_calls})


Step = Stage | tuple[Stage, ...]  # a tuple: stages with no dependency on each other, run concurrently


def _skip_reason(ctx: RunContext, stage: Stage) -> str | None:
    if stage.writes_to_crm and stage.crm in ctx.paused_crms:
        return f"the {stage.crm} API budget is spent; the next run writes back"
    return None


def _run_one(ctx: RunContext, stage: Stage) -> tuple[StageReport, BaseException | None]:
    """Run one stage and return its report (a failed one with its error when it raised), with its
    memory: the process's peak RSS at its end and the highest RSS sampled while it ran."""
    started = time.perf_counter()
    error: BaseException | None = None
    with RssSampler() as memory:
        try:
            report = stage.run(ctx)
        except Exception as exc:
            error = exc
            report = StageReport(stage.name, state="failed", error=describe_error(exc))
    if not report.seconds:
        report.seconds = time.perf_counter() - started
    report.detail.update(memory.detail())
    return report, error


def _record(ctx: RunContext, stage: Stage, report: StageReport) -> None:
    record_stage(ctx.engine, ctx.run_id, report)
    _log_stage(ctx.run_id, report)
    if report.state == "paused" and stage.crm:
        ctx.paused_crms.add(stage.crm)


def _run_group(ctx: RunContext, group: Sequence[Stage]) -> list[tuple[Stage, StageReport, BaseException | None]]:
    """Run independent stages at once, one thread each (their work is waiting on a CRM's API), and
    record each as it ends. Each stage opens its own connections from the engine's pool; SQLite
    writers queue on its lock (``busy_timeout`` in :mod:`store.db`). A stage that fails does not
    stop its siblings: what they commit stays, and the run fails once all of them have ended.

    Stages marked ``own_process`` run in processes of their own instead (``worker.stage_processes``), started
    before the group's threads; a thread here waits for each one's report and records it."""
    outcomes: list[tuple[Stage, StageReport, BaseException | None]] = []
    lock = threading.Lock()  # record_stage reads and rewrites the run's JSON: one at a time
    processes = _start_processes(ctx, group)

    def work(stage: Stage) -> None:
        process = processes.get(stage.name)
        report, error = process.wait(ctx.stop) if process is not None else _run_one(ctx, stage)
        with lock:
            try:
                _record(ctx, stage, report)
            except Exception as exc:
                # The stage's record could not be written (SQLite locked past its busy timeout on a large
                # org): the run must fail with that cause, not end "succeeded" without the stage.
                log.exception("run %s: the %s stage's record could not be written", ctx.run_id, stage.name)
                error = error or exc
            outcomes.append((stage, report, error))

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(work, stage),
                                name=f"stage-{stage.name}", daemon=True) for stage in group[1:]]
    for thread in threads:
        thread.start()
    work(group[0])  # the first one in this thread: signals and tracebacks stay where they were
    for thread in threads:
        thread.join()
    return outcomes


@dataclass(frozen=True)
class StageJob:
    """What a stage needs to run in a process of its own (see :mod:`worker.stage_process`): everything in
    its run's context but the engine, which it opens again from the URL (as :func:`store.db.make_engine` does),
    and the notes of other stages."""

    stage: Stage
    database_url: str = field(repr=False)  # with its password
    config: AbmConfig
    run_id: int
    options: RunOptions
    paused_crms: frozenset[str]
    log_watched: bool = False  # the worker copies SQLite's write-ahead log meanwhile (store.wal)

    def __call__(self, stop: StopToken) -> tuple[StageReport, BaseException | None]:
        from store.db import make_engine
        from store.wal import leave_log_copy_to_watcher

        engine = make_engine(self.database_url)
        if self.log_watched:
            leave_log_copy_to_watcher(engine)
        try:
            ctx = RunContext(engine, self.config, self.run_id, self.options, stop, set(self.paused_crms))
            with numpy_huge_pages(self.config.worker.numpy_huge_pages):
                return _run_one(ctx, self.stage)
        finally:
            engine.dispose()


def uses_processes(ctx: RunContext, group: Sequence[Stage]) -> bool:
    """Whether the ``own_process`` stages of ``group`` run in processes of their own: not a stage alone in its
    step (nothing beside it would share its interpreter), and only where :func:`processes_possible`."""
    return (len(group) > 1 and any(stage.own_process for stage in group) and ctx.config.worker.stage_processes
            and processes_possible(ctx.engine))


def _start_processes(ctx: RunContext, group: Sequence[Stage]) -> dict[str, StageProcess]:
    """The group's ``own_process`` stages, started in processes of their own where :func:`uses_processes`."""
    if not uses_processes(ctx, group):
        return {}
    url = ctx.engine.url.render_as_string(hide_password=False)
    processes: dict[str, StageProcess] = {}
    for stage in group:
        if not stage.own_process:
            continue
        job = StageJob(stage, url, ctx.config, ctx.run_id, ctx.options, frozenset(ctx.paused_crms),
                       log_watched(ctx.engine))
        try:
            processes[stage.name] = StageProcess(stage.name, job)
        except OSError as exc:  # no process to be had (memory, process limit): the stage runs on a thread
            log.warning("run %s: the %s stage runs on a thread, as no process could be started for it: %s",
                        ctx.run_id, stage.name, exc)
    return processes


def _start_server_for(ctx: RunContext, steps: Sequence[Step]) -> None:
    """Start the fork server when a step of the run will use it: its imports then overlap the pulls rather than
    delay the writebacks. Should it fail to start, it is tried again when a stage needs it (and the stage runs
    on a thread if it fails again)."""
    if any(isinstance(step, tuple) and uses_processes(ctx, step) for step in steps):
        try:
            start_server()
        except OSError as exc:
            log.warning("run %s: the fork server for the writebacks did not start: %s", ctx.run_id, exc)


def run_stages(ctx: RunContext, steps: Sequence[Step]) -> str:
    """Run ``steps`` in order and return the run's final state (raises if a stage failed).

    A step is a stage or a tuple of independent stages run concurrently (the two pulls, the two
    writebacks), so a run costs the slower of them rather than their sum. While a step's stages run in
    processes of their own, the readings ahead of the stages after it (:attr:`Stage.read_ahead`) not started yet
    run on threads here.
    """
    try:
        return _run_steps(ctx, steps)
    finally:
        for ahead in ctx.read_ahead.values():  # left by a run that ended before their stage
            ahead.close()
        ctx.read_ahead.clear()


def _start_reading_ahead(ctx: RunContext, steps: Sequence[Step], started: set[str]) -> None:
    """Start the readings ahead of ``steps``' stages not ``started`` yet (see :class:`Stage`), noting them there."""
    for step in steps:
        for stage in step if isinstance(step, tuple) else (step,):
            if stage.read_ahead is not None and stage.name not in started:
                started.add(stage.name)
                ctx.read_ahead[stage.name] = ReadAhead(stage.name, partial(stage.read_ahead, ctx))


def _run_steps(ctx: RunContext, steps: Sequence[Step]) -> str:
    reading_started: set[str] = set()  # a stage's reading ahead starts once a run, even once taken
    for index, step in enumerate(steps):
        group = step if isinstance(step, tuple) else (step,)
        if ctx.stop.is_set():
            for stage in group:
                record_stage(ctx.engine, ctx.run_id, StageReport(stage.name, state="cancelled"))
            log.info("run %s stopping before %s", ctx.run_id, ", ".join(s.name for s in group))
            return "cancelled"
        to_run = []
        for stage in group:
            reason = _skip_reason(ctx, stage)
            if reason is None:
                to_run.append(stage)
                continue
            report = StageReport(stage.name, state="skipped", detail={"reason": reason})
            record_stage(ctx.engine, ctx.run_id, report)
            _log_stage(ctx.run_id, report)
        if not to_run:
            continue
        read_ahead = [stage.name for stage in to_run if stage.name in ctx.read_ahead]
        if index + 1 < len(steps) and uses_processes(ctx, to_run):  # this interpreter only waits for them
            _start_reading_ahead(ctx, steps[index + 1:], reading_started)
        outcomes = _run_group(ctx, to_run)
        if read_ahead:  # what they freed of it was allocated on the reading's thread (see return_freed_memory)
            return_freed_memory()
        errors = [error for _stage, _report, error in outcomes if error is not None]
        if errors:
            raise errors[0]
        if any(report.state == "cancelled" for _stage, report, _error in outcomes) and not ctx.stop.is_set():
            return "cancelled"  # (with a stop request, the next step is recorded cancelled first)
    if ctx.stop.is_set():
        return "cancelled"
    return "paused" if ctx.paused_crms else "succeeded"


class Pipeline:
    """The executor's pipeline function: builds the stage list for a run's options and runs it."""

    def __init__(self, engine: Engine, config: AbmConfig,
                 plan: Callable[[AbmConfig, RunOptions], Sequence[Step]]) -> None:
        self.engine = engine
        self.config = config
        self.plan = plan

    def __call__(self, run_id: int, options: RunOptions, stop: StopToken) -> str:
        ctx = RunContext(self.engine, self.config, run_id, options, stop)
        try:
            steps = self.plan(self.config, options)
            _start_server_for(ctx, steps)
            with numpy_huge_pages(self.config.worker.numpy_huge_pages):
                return run_stages(ctx, steps)
        except Exception:
            log.error("run %s failed", run_id, extra={"run_id": run_id})
            raise

