"""A stage run in a process of its own, beside the other stages of its step.

The two pulls of a run go at the same time, and so do the two writebacks, but on threads they share one
interpreter: planning, encoding and recording are Python work, and on an L org's increment HubSpot's batch
calls went at 16 a second, below the portal's 19, while Salesforce's job took the GIL. In processes of their
own each CRM gets a core (the L org's increment: the Salesforce writeback 25.7 s on a thread, 22.8 and
21.3 s in a process of its own; HubSpot's 27.6 s, then 26.6 s twice, its batch calls at 17-18 a second; the
pulls, Salesforce's 28.9 s and HubSpot's 26.6 s on threads, 24.3 and 21.2 s in processes).

The processes come from a fork server (``multiprocessing``'s ``forkserver``), not from the worker itself.
SQLite keeps the locks of a process's connections in the process's memory, and a child forked from the
worker inherits that bookkeeping for whatever the worker's threads held at that moment (a read mark, the
write lock) without the locks: it then skips locks it believes it holds, or waits for ones nobody will
release. SQLite's documentation forbids carrying an open database across fork, and the worker's pool,
heartbeats and log watcher always have one open; forked from the worker, a writeback's ledger write on
the L org waited out its 30 s busy timeout ("database is locked"). The fork server is a fresh interpreter
that never opens the database: started early in a run (:func:`start_server`), it imports the stages' code
while the pulls wait on the CRMs, and forks each stage process from that clean state in milliseconds.

So a stage crosses by pickling: its job (:class:`StageJob` in :mod:`worker.pipeline`: the stage, the run's
config and options, the database URL) goes in, its :class:`StageReport` and error come back, and it opens
its own engine. It sees the worker's environment as it is when it starts. Its log records are sent to the
worker and handled there, by the worker's handlers and secret masking. Notes a stage leaves in
``RunContext.shared`` stay in its process, and it sees none: stages run this way must need none.

Stopping works as on a thread: the worker forwards its stop request (SIGTERM, lost lock), the stage stops
between batches and reports. The process also stops between batches on its own SIGTERM or SIGINT (a
service manager signals every process of the service) and when the worker is gone, as the fork server
ends with it (nobody would record its report, and the lock it ran under expires).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Engine

from store.runs import StageReport
from worker.executor import StopToken, describe_error
from worker.logs import quiet_noisy_libraries

# How often the parent passes its stop request on while it waits for the report.
_STOP_POLL_SECONDS = 0.2
# What the fork server imports once, so that each stage process starts with it (its own imports took 3.4 s).
# worker.forkserver_exit: the server then exits without the final garbage collections.
PRELOAD = ["worker.forkserver_exit", "worker.pipeline", "worker.stages", "writeback.run", "writeback.connect",
           "writeback.salesforce", "writeback.hubspot", "connectors.registry"]

StageWork = Callable[[StopToken], tuple[StageReport, "BaseException | None"]]


def fork_available() -> bool:
    """Whether this platform has a fork server (not Windows; macOS has one, but forking is unsafe there with
    the system frameworks some libraries load, so only Linux and the BSDs use it)."""
    return "forkserver" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def processes_possible(engine: Engine) -> bool:
    """Whether stages on ``engine``'s database can run in processes of their own: a database another process
    can open by its URL (PostgreSQL, an SQLite file; not an in-memory SQLite database)."""
    if not fork_available():
        return False
    if engine.dialect.name != "sqlite":
        return True
    database = engine.url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in database


def server_context() -> Any:
    """The fork server's context: processes started from it begin from the server's clean state (see above)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_server() -> None:
    """Start the fork server now, if it is not running: its imports then overlap what the run does first."""
    from multiprocessing import forkserver

    server_context()
    forkserver.ensure_running()


def start_server_early(stage_processes: bool) -> None:
    """Start the fork server as a command that runs the pipeline starts, before its own imports and set-up: the
    run's first stages (the pulls) run in its processes, and its imports (2.6 s) would otherwise delay them.
    A failure here is left to the run, which tries again (and runs its stages on threads if it fails again)."""
    if stage_processes and fork_available():
        with contextlib.suppress(OSError):
            start_server()


class ChildStop:
    """The stop token inside the stage's process: the parent's request, its own signal, or the parent gone."""

    def __init__(self, forwarded: Any, parent_pid: int) -> None:
        self._forwarded = forwarded  # a multiprocessing.Event the parent sets
        self._own = threading.Event()
        self._parent_pid = parent_pid

    def request(self) -> None:
        self._own.set()

    def is_set(self) -> bool:
        if self._own.is_set() or self._forwarded.is_set():
            return True
        if os.getppid() != self._parent_pid:  # the fork server ended with the worker: nobody waits for us
            self._own.set()
            return True
        return False


class StageProcess:
    """``work`` (picklable) started now in a process of its own; :meth:`wait` returns its report and error."""

    def __init__(self, name: str, work: StageWork) -> None:
        context = server_context()
        self.name = name
        self._stop = context.Event()
        self._reader, writer = context.Pipe(duplex=False)
        self._logs = context.Queue()
        level = logging.getLogger().getEffectiveLevel()
        self._process = context.Process(
            target=_child_main, args=(work, self._stop, writer, self._logs, level, dict(os.environ)),
            name=f"stage-{name}", daemon=False)
        self._process.start()
        writer.close()  # the child's end: with it closed here, the child's exit ends our reads
        self._forwarder = threading.Thread(target=_forward_logs, args=(self._logs,), name=f"logs-{name}",
                                           daemon=True)
        self._forwarder.start()

    def wait(self, stop: StopToken) -> tuple[StageReport, BaseException | None]:
        """The stage's report and error; ``stop`` is passed on to the stage while it runs."""
        try:
            while not self._reader.poll(_STOP_POLL_SECONDS):
                if stop.is_set():
                    self._stop.set()
            try:
                payload = self._reader.recv_bytes()
            except EOFError:
                payload = None
        finally:
            self._stop.set()  # whatever ended the wait, a stage still running stops after its batch
            self._reader.close()
        self._process.join()
        self._logs.put(None)  # after everything the process sent (it flushes its queue before it exits)
        self._forwarder.join(timeout=10)  # a process killed halfway through a record leaves the rest unread
        self._logs.close()
        if payload is None:
            return self._died()
        report, chain = pickle.loads(payload)
        return report, _rebuilt_error(chain)

    def _died(self) -> tuple[StageReport, BaseException]:
        code = self._process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        error = StageProcessDied(f"the {self.name} stage's process ended ({how}) before reporting; what it "
                                 "committed stays, and the next run continues from there")
        return StageReport(self.name, state="failed", error=describe_error(error)), error


class StageProcessDied(RuntimeError):
    """The stage's process ended without a report (killed, out of memory, crashed in native code)."""


def _forward_logs(records: Any) -> None:
    """Handle the stage process's log records here, as if logged here (the worker's handlers, its masking)."""
    while (record := records.get()) is not None:
        logging.getLogger(record.name).handle(record)


def _child_main(work: StageWork, forwarded: Any, writer: Connection, records: Any, level: int,
                environ: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(environ)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)
    quiet_noisy_libraries(level)  # as the worker's logging leaves them (worker.logs.configure_logging)
    stop = ChildStop(forwarded, os.getppid())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.request())
    report, error = work(stop)
    try:
        payload = pickle.dumps((report, _error_chain(error)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a report that cannot cross (a detail no JSON would hold either): say so
        unsent = RuntimeError(f"the {report.name} stage's report could not be sent from its process: {exc}")
        failed = StageReport(report.name, state="failed", seconds=report.seconds, error=describe_error(unsent))
        payload = pickle.dumps((failed, _error_chain(unsent)), protocol=pickle.HIGHEST_PROTOCOL)
    writer.send_bytes(payload)
    writer.close()


# An error crosses as its chain of causes, each either the exception itself (when it survives pickling)
# or its type's name and message: pickling keeps neither ``__cause__`` nor ``__context__``, and the run
# records the whole chain (worker.executor.describe_error).
_Link = tuple[BaseException | None, str, str]


def _error_chain(error: BaseException | None) -> list[_Link]:
    chain: list[_Link] = []
    seen: set[int] = set()
    current = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kept: BaseException | None = None
        try:
            kept = pickle.loads(pickle.dumps(current, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            kept = None  # an exception whose arguments do not rebuild it: its name and message cross instead
        chain.append((kept, type(current).__name__, str(current)))
        current = current.__cause__ or current.__context__
    if chain and chain[0][0] is not None and error is not None:
        where = "".join(traceback.format_exception(error))
        chain[0][0].add_note(f"raised in the stage's own process (pid {os.getpid()}):\n{where}")
    return chain


def _rebuilt_error(chain: list[_Link]) -> BaseException | None:
    errors = [kept if kept is not None else _named(name)(message) for kept, name, message in chain]
    for error, cause in zip(errors, errors[1:], strict=False):
        error.__cause__ = cause
    return errors[0] if errors else None


def _named(name: str) -> type[Exception]:
    """An exception type named as the one that could not cross, so the run's error reads the same."""
    return type(name, (Exception,), {"__module__": __name__})
