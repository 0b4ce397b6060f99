"""Stages of one step in processes of their own: what they commit, report, log, raise, and how they stop.

The stage functions are module-level (a stage crosses to its process by pickling, see worker.stage_process).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

import pytest
from sqlalchemy import Engine, select

from config import AbmConfig
from store.db import make_engine
from store.runs import StageReport, claim_run, create_run, get_run, list_runs
from store.schema import Run
from store.wal import wal_kept_small
from worker import read_ahead
from worker.pipeline import RunContext, Stage, run_stages
from worker.stage_process import fork_available, processes_possible
from worker.stages import build_plan
from worker.triggers import RunOptions

pytestmark = pytest.mark.skipif(not fork_available(), reason="stages run in processes of their own only here")


def _ctx(engine: Engine, stop: threading.Event | None = None, processes: bool = True) -> RunContext:
    run_id = create_run(engine, "incremental", "cli")
    assert claim_run(engine, run_id)
    config = AbmConfig.model_validate({"worker": {"stage_processes": processes}})
    return RunContext(engine, config, run_id, RunOptions(), stop or threading.Event())


def _mark(name: str, rows: int, ctx: RunContext) -> StageReport:
    """Commit ``rows`` runs of its own through its own connections, log a line, and report its pid."""
    for n in range(rows):
        create_run(ctx.engine, f"marker:{name}", str(n))
    logging.getLogger("abm.test").warning("%s wrote %d markers", name, rows)
    return StageReport(name, counts={"upserted": rows}, api_calls={name.split(":")[1]: 1},
                       detail={"pid": os.getpid(), "shared": sorted(ctx.shared)})


def _marking(name: str, rows: int = 5) -> Stage:
    return Stage(name, partial(_mark, name, rows), crm=name.split(":")[1], own_process=True)


def test_each_stage_of_a_step_runs_in_a_process_of_its_own_commits_logs_and_is_recorded(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    assert processes_possible(engine)
    ctx = _ctx(engine)
    ctx.shared["live_accounts"] = ["not for the writebacks"]
    with caplog.at_level(logging.INFO):
        assert run_stages(ctx, [(_marking("writeback:salesforce"), _marking("writeback:hubspot"))]) == "succeeded"
    run = get_run(engine, ctx.run_id)
    pids = {name: run["stages"][name]["detail"]["pid"] for name in ("writeback:salesforce", "writeback:hubspot")}
    assert os.getpid() not in pids.values() and len(set(pids.values())) == 2
    assert all(run["stages"][name]["detail"]["shared"] == [] for name in pids)  # no notes cross
    assert run["counts"]["upserted"] == 10 and run["api_calls"] == {"salesforce": 1, "hubspot": 1}
    assert all(run["stages"][name]["detail"]["stage_rss_mb"] > 0 for name in pids)
    kinds = [r["kind"] for r in list_runs(engine, limit=100)]
    assert kinds.count("marker:writeback:salesforce") == 5 and kinds.count("marker:writeback:hubspot") == 5
    # their log lines are handled here, by this process's handlers
    assert {r.getMessage() for r in caplog.records if r.name == "abm.test"} == {
        "writeback:salesforce wrote 5 markers", "writeback:hubspot wrote 5 markers"}
    # the parent's connections were left alone: it still reads and writes through its pool
    with engine.connect() as conn:
        assert conn.execute(select(Run.state).where(Run.id == ctx.run_id)).scalar_one() == "running"


def _log_copy(name: str, ctx: RunContext) -> StageReport:
    with ctx.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() if conn.dialect.name == "sqlite" else 0
    return StageReport(name, detail={"autocheckpoint": pages})


def test_stages_in_processes_leave_the_logs_copy_to_the_workers_watcher(engine: Engine) -> None:
    ctx = _ctx(engine)
    step = tuple(Stage(n, partial(_log_copy, n), crm=n.split(":")[1], own_process=True)
                 for n in ("pull:salesforce", "pull:hubspot"))
    with wal_kept_small(engine, every=60):
        assert run_stages(ctx, [step]) == "succeeded"
    first = ctx.run_id
    ctx = _ctx(engine)
    assert run_stages(ctx, [step]) == "succeeded"  # no watcher: their commits copy the log, as SQLite's do
    watched, alone = (get_run(engine, run_id)["stages"] for run_id in (first, ctx.run_id))
    if engine.dialect.name == "sqlite":
        assert [watched[n]["detail"]["autocheckpoint"] for n in ("pull:salesforce", "pull:hubspot")] == [0, 0]
        assert [alone[n]["detail"]["autocheckpoint"] for n in ("pull:salesforce", "pull:hubspot")] == [1000, 1000]


def test_a_runs_pulls_and_writebacks_go_to_processes_of_their_own_and_pickle() -> None:
    """Each CRM's pull and writeback is Python work beside the other CRM's: on threads they would share one
    interpreter (the L org's increment: pulls 28.9 and 26.6 s on threads, 24.3 and 21.2 s in processes)."""
    config = AbmConfig.model_validate({"salesforce": {"enabled": True}, "hubspot": {"enabled": True}})
    steps = build_plan(config, RunOptions())
    pairs = [step for step in steps if isinstance(step, tuple)]
    assert [[s.name for s in pair] for pair in pairs] == [["pull:salesforce", "pull:hubspot"],
                                                          ["writeback:salesforce", "writeback:hubspot"]]
    for stage in (s for pair in pairs for s in pair):
        assert stage.own_process
        assert pickle.loads(pickle.dumps(stage)).name == stage.name


def test_the_fork_server_preloads_what_pulls_and_writebacks_run_and_no_more() -> None:
    """The first stage process waits for the fork server's preload. Pulls and writebacks never score: scoring and
    scikit-learn with scipy (2 s to import alone) load where a model is trained or loaded, and the match and score
    stages' modules where those stages run."""
    script = ("import importlib, sys\n"
              "from worker.stage_process import PRELOAD\n"
              "for name in PRELOAD: importlib.import_module(name)\n"
              "heavy = ('sklearn', 'scipy', 'joblib', 'scoring', 'worker.score_stage', 'worker.match_stage')\n"
              "print([m for m in heavy if m in sys.modules], 'writeback.salesforce' in sys.modules)\n"
              "import scoring.predictive as p, numpy as np\n"
              "p._metrics(np.array([0, 1]), np.array([0.2, 0.7]), np.ones(2))\n"
              "print('sklearn' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[] True", "True"]


def test_with_stage_processes_off_a_stage_alone_or_an_in_memory_database_it_runs_here(engine: Engine) -> None:
    ctx = _ctx(engine, processes=False)
    assert run_stages(ctx, [(_marking("pull:salesforce"), _marking("pull:hubspot"))]) == "succeeded"
    stages = get_run(engine, ctx.run_id)["stages"]
    assert {stages[n]["detail"]["pid"] for n in ("pull:salesforce", "pull:hubspot")} == {os.getpid()}

    ctx = _ctx(engine)
    assert run_stages(ctx, [(_marking("pull:salesforce"),)]) == "succeeded"
    assert get_run(engine, ctx.run_id)["stages"]["pull:salesforce"]["detail"]["pid"] == os.getpid()

    assert not processes_possible(make_engine("sqlite://"))  # another process would open another database


class _Unpicklable(Exception):
    """An exception its pickled form cannot rebuild (it needs two arguments and keeps one)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}")


def _broken(ctx: RunContext) -> StageReport:
    try:
        raise _Unpicklable(503, "portal unavailable")
    except _Unpicklable as exc:
        raise ConnectionError("hubspot is down") from exc


def test_a_failing_stage_raises_its_error_with_its_causes_and_its_sibling_commits(engine: Engine) -> None:
    ctx = _ctx(engine)
    with pytest.raises(ConnectionError, match="hubspot is down") as raised:
        run_stages(ctx, [(Stage("writeback:hubspot", _broken, crm="hubspot", own_process=True),
                          _marking("writeback:salesforce")), Stage("after", partial(_mark, "after:x", 0))])
    cause = raised.value.__cause__
    assert type(cause).__name__ == "_Unpicklable" and str(cause) == "503: portal unavailable"
    assert any("raised in the stage's own process" in note for note in raised.value.__notes__)
    from worker.executor import describe_error

    assert describe_error(raised.value) == ("ConnectionError: hubspot is down\n"
                                            "caused by _Unpicklable: 503: portal unavailable")
    run = get_run(engine, ctx.run_id)
    assert run["stages"]["writeback:hubspot"]["state"] == "failed"
    assert "caused by _Unpicklable: 503: portal unavailable" in run["stages"]["writeback:hubspot"]["error"]
    assert run["stages"]["writeback:salesforce"]["state"] == "succeeded" and run["counts"]["upserted"] == 5
    assert "after" not in run["stages"]


def _killed(ctx: RunContext) -> StageReport:
    os.kill(os.getpid(), signal.SIGKILL)  # out of memory, say
    raise AssertionError("unreachable")


def test_a_stage_whose_process_dies_fails_the_run_and_its_sibling_still_commits(engine: Engine) -> None:
    ctx = _ctx(engine)
    from worker.stage_process import StageProcessDied

    with pytest.raises(StageProcessDied, match="killed by signal 9"):
        run_stages(ctx, [(Stage("writeback:hubspot", _killed, crm="hubspot", own_process=True),
                          _marking("writeback:salesforce"))])
    run = get_run(engine, ctx.run_id)
    assert "killed by signal 9" in run["stages"]["writeback:hubspot"]["error"]
    assert run["stages"]["writeback:salesforce"]["state"] == "succeeded"


def _batches(name: str, ctx: RunContext, signal_first: bool = False) -> StageReport:
    """Work in batches and, asked to stop, end cancelled after the batch in hand."""
    if signal_first:
        os.kill(os.getpid(), signal.SIGTERM)
    batches = 0
    while not ctx.stop.is_set() and batches < 600:  # a minute at most: a failure, not a hang
        create_run(ctx.engine, f"batch:{name}", str(batches))
        batches += 1
        time.sleep(0.1)
    state = "cancelled" if ctx.stop.is_set() else "succeeded"
    return StageReport(name, state=state, counts={"written": batches}, detail={"pid": os.getpid()})


def _batches_until_stopped(name: str, signal_first: bool = False) -> Stage:
    return Stage(name, partial(_batches, name, signal_first=signal_first), crm=name.split(":")[1], own_process=True)


def test_the_runs_stop_request_reaches_stages_in_their_processes(engine: Engine) -> None:
    stop = threading.Event()
    ctx = _ctx(engine, stop)
    threading.Timer(1.5, stop.set).start()
    plan = [(_batches_until_stopped("writeback:salesforce"), _batches_until_stopped("writeback:hubspot"))]
    assert run_stages(ctx, plan) == "cancelled"
    run = get_run(engine, ctx.run_id)
    kinds = [r["kind"] for r in list_runs(engine, limit=1000)]
    for name in ("writeback:salesforce", "writeback:hubspot"):
        stage = run["stages"][name]
        assert stage["state"] == "cancelled" and 0 < stage["counts"]["written"] < 100
        assert kinds.count(f"batch:{name}") == stage["counts"]["written"]  # each batch it counted, committed


def test_a_sigterm_to_the_stages_process_stops_it_after_its_batch(engine: Engine) -> None:
    """A service manager signals every process of the service: the stage ends its batch and reports."""
    ctx = _ctx(engine)
    plan = [(_batches_until_stopped("writeback:hubspot", signal_first=True), _marking("writeback:salesforce"))]
    assert run_stages(ctx, plan) == "cancelled"
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["writeback:hubspot"]["state"] == "cancelled" and stages["writeback:hubspot"]["counts"]["written"] <= 1
    assert stages["writeback:salesforce"]["state"] == "succeeded"


def _unsendable(ctx: RunContext) -> StageReport:
    return StageReport("writeback:hubspot", detail={"lock": threading.Lock()})


def test_a_report_that_cannot_leave_its_process_fails_the_stage_with_the_reason(engine: Engine) -> None:
    ctx = _ctx(engine)
    with pytest.raises(RuntimeError, match="report could not be sent from its process"):
        run_stages(ctx, [(Stage("writeback:hubspot", _unsendable, crm="hubspot", own_process=True),
                          _marking("writeback:salesforce"))])
    assert get_run(engine, ctx.run_id)["stages"]["writeback:hubspot"]["state"] == "failed"


def test_a_stage_whose_parent_is_gone_stops_after_its_batch() -> None:
    """Nobody would record its report, and the lock it ran under expires: it must not keep writing to a CRM."""
    import multiprocessing

    from worker.stage_process import ChildStop

    forwarded = multiprocessing.get_context("forkserver").Event()
    assert not ChildStop(forwarded, os.getppid()).is_set()
    orphaned = ChildStop(forwarded, parent_pid=os.getppid() + 1_000_000)
    assert orphaned.is_set() and orphaned.is_set()
    forwarded.set()
    assert ChildStop(forwarded, os.getppid()).is_set()


def _huge_pages(name: str, ctx: RunContext) -> StageReport:
    from worker.huge_pages import numpy_asks_for_huge_pages

    return StageReport(name, detail={"pid": os.getpid(), "huge_pages": numpy_asks_for_huge_pages()})


@pytest.mark.parametrize("huge_pages", [False, True])
def test_numpy_huge_pages_hold_in_the_stages_processes_too(engine: Engine, huge_pages: bool) -> None:
    ctx = _ctx(engine)
    ctx.config.worker.numpy_huge_pages = huge_pages
    plan = [tuple(Stage(name, partial(_huge_pages, name), own_process=True)
                  for name in ("writeback:salesforce", "writeback:hubspot"))]
    assert run_stages(ctx, plan) == "succeeded"
    stages = get_run(engine, ctx.run_id)["stages"]
    for name in ("writeback:salesforce", "writeback:hubspot"):
        assert stages[name]["detail"]["pid"] != os.getpid()
        assert stages[name]["detail"]["huge_pages"] is huge_pages


def _read_runs(ctx: RunContext, mark: datetime) -> tuple[datetime, str, int, int]:
    """A reading ahead: its mark, its thread and the thread's niceness, and how many runs the store held."""
    with ctx.engine.connect() as conn:
        return (mark, threading.current_thread().name, len(conn.execute(select(Run.id)).all()),
                os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))


def _broken_reading(ctx: RunContext, mark: datetime) -> None:
    raise RuntimeError("the disk is gone")


def _take_reading(ctx: RunContext) -> StageReport:
    reading = ctx.read_ahead.pop("match", None)
    value = reading.result() if reading is not None else None
    return StageReport("match", detail={"reading": None if value is None else
                                        [value[0].isoformat(), *value[1:]],
                                        "niceness": os.getpriority(os.PRIO_PROCESS, threading.get_native_id())})


def test_a_stage_reads_ahead_on_a_thread_here_while_the_step_before_runs_in_processes(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    ctx = _ctx(engine)
    pulls = (_marking("pull:salesforce"), _marking("pull:hubspot"))
    assert run_stages(ctx, [pulls, Stage("match", _take_reading, read_ahead=_read_runs)]) == "succeeded"
    reading = get_run(engine, ctx.run_id)["stages"]["match"]["detail"]["reading"]
    mark = datetime.fromisoformat(reading[0])
    markers = [r for r in list_runs(engine, limit=100) if r["kind"].startswith("marker:")]
    assert len(markers) == 10 and all(mark <= datetime.fromisoformat(r["created_at"]) for r in markers)
    assert reading[1] == "read-ahead-match"  # on a thread of its own, beside the pulls
    detail = get_run(engine, ctx.run_id)["stages"]["match"]["detail"]
    assert reading[3] == read_ahead.NICENESS + detail["niceness"]  # niced, the stage's own thread not
    assert not ctx.read_ahead  # taken by its stage

    with caplog.at_level(logging.WARNING, logger="abm.pipeline"):  # a reading that failed: the stage reads itself
        ctx = _ctx(engine)
        assert run_stages(ctx, [pulls, Stage("match", _take_reading, read_ahead=_broken_reading)]) == "succeeded"
    assert get_run(engine, ctx.run_id)["stages"]["match"]["detail"]["reading"] is None
    assert "reading ahead failed" in caplog.text and "the disk is gone" in caplog.text

    ctx = _ctx(engine, processes=False)  # pulls on threads here: the interpreter is theirs, no reading ahead
    assert run_stages(ctx, [pulls, Stage("match", _take_reading, read_ahead=_read_runs)]) == "succeeded"
    assert get_run(engine, ctx.run_id)["stages"]["match"]["detail"]["reading"] is None


class _Held:
    """A reading that holds something to let go of (as the score stage's holds its process)."""

    def __init__(self, name: str, closed: list[str]) -> None:
        self.name, self._closed = name, closed

    def close(self) -> None:
        self._closed.append(self.name)


def _taking(name: str) -> Callable[[RunContext], StageReport]:
    def run(ctx: RunContext) -> StageReport:
        reading = ctx.read_ahead.pop(name, None)
        value = reading.result() if reading is not None else None
        return StageReport(name, detail={"took": None if value is None else value.name})

    return run


def test_every_later_stage_reads_ahead_once_from_the_first_step_in_processes_and_what_is_left_is_closed(
        engine: Engine) -> None:
    started: list[str] = []
    closed: list[str] = []

    def holding(name: str) -> Callable[[RunContext, datetime], _Held]:
        def read(ctx: RunContext, mark: datetime) -> _Held:
            started.append(name)
            return _Held(name, closed)

        return read

    pulls = (_marking("pull:salesforce"), _marking("pull:hubspot"))
    writebacks = (_marking("writeback:salesforce"), _marking("writeback:hubspot"))
    ctx = _ctx(engine)
    plan = [pulls, Stage("match", _taking("match"), read_ahead=holding("match")),
            Stage("score", _taking("score"), read_ahead=holding("score")), writebacks]
    assert run_stages(ctx, plan) == "succeeded"
    stages = get_run(engine, ctx.run_id)["stages"]
    assert stages["match"]["detail"]["took"] == "match" and stages["score"]["detail"]["took"] == "score"
    assert sorted(started) == ["match", "score"]  # both with the pulls, neither again with the writebacks
    assert closed == [] and not ctx.read_ahead  # each taken by its stage

    def broken(ctx: RunContext) -> StageReport:
        raise RuntimeError("the match stage failed")

    ctx = _ctx(engine)
    with pytest.raises(RuntimeError, match="the match stage failed"):
        run_stages(ctx, [pulls, Stage("match", broken), Stage("score", _taking("score"), read_ahead=holding("score"))])
    assert closed == ["score"] and not ctx.read_ahead  # the run ended before the stage: its reading let go
