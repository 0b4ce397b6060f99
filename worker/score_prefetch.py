"""What an incremental score stage reads of the pulled data, read by a process of its own beside the match stage.

An incremental score stage first finds what changed since the last one (:mod:`worker.score_scope`), and when that
touched too many entities to read them alone, it rescores from everyone's touches and people, read from the copies
kept between runs and what changed since (:mod:`worker.kept_touches`, :mod:`worker.kept_people`), and from their
titles' persona codes (:mod:`worker.kept_titles`), encoding those copies again once they have grown stale. All of
that on one core, after the match stage, which keeps one core busy for 18 seconds of the L org's 1% increment and
leaves the other idle most of that time. None of it depends on what the match stage writes (matches, cross-CRM
links): what the pulls touched (:func:`touched_by_pulls`, to which the score stage adds what the matching did),
the touches, the people and their titles are what the pulls left. So the match stage starts this process, which
reads them and encodes the copies that are due, writing nothing, and the score stage takes the result and only
writes those copies. On the L org's 1% increment the process works 6.5-10 CPU seconds beside the match stage,
and the score stage's reading (finding what changed, loading its inputs) went from 8.5-8.9 s to 5.6-6.3 s, 0.9-1.0 s
of it taking the result.

The result is used only where it is what the score stage would read itself:

- the store's touches and people are as they were when the process read them: the highest id and the latest
  ``changed_at`` of both tables are the same before its reads, after them, and when the score stage takes them
  (every write of what the copies keep adds a row or moves ``changed_at``, see :mod:`worker.kept_touches`), and it
  read from the same start of the last score stage;
- for everyone's touches, the touches whose person or account is not resolved to a store id are the same ones
  (resolving one moves no ``changed_at``; :mod:`store.touch_refs`);
- everyone's touches and people are read only when the pulls touched too many entities for the score stage to read
  them alone (the match stage only adds to what they touched, see
  :data:`worker.score_stage.SUBSET_MAX_SHARE`).

Otherwise, or when the process failed or could not start, the score stage reads them itself, as before.

Where the pulls run in processes of their own, the process starts with them (the score stage's reading ahead, see
:mod:`worker.read_ahead`) and reads the kept copies meanwhile (:func:`read_copies`): that was half its time beside
the match stage, and the pulls leave a core idle where the match stage needs both. It then waits for the match
stage to set it going (:meth:`ScorePrefetch.begin`) and reads what the pulls wrote. A copy read early is used only
while it is still the copy stored (each copy written has an id of its own, :func:`store.kept_copies.still_stored`),
which the score stage's detail says (``kept copies read beside the pulls``).

The process runs at a lower priority (``NICENESS``): it works on what the match stage leaves idle, and the
stage's index build and matching, which take both cores for a few seconds each, go first.

The process comes from the run's fork server (:mod:`worker.stage_process`: a child forked from the worker would
inherit its SQLite connections' lock bookkeeping) and opens its own engine. Its result crosses in a file (in
memory, under /dev/shm, where there is room: see :func:`worker.forked_slices.memory_folder`), about 500 MB on the
L org, read once by the score stage and removed, as it is when the run ends without a score stage.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from config.scoring import ScoringConfig
from scoring.inputs import PeopleColumns
from scoring.personas import PersonaColumns
from store import kept_copies
from store.kept_copies import Current
from store.schema import Activity, Person
from worker import kept_people, kept_titles, kept_touches
from worker.executor import describe_error
from worker.forked_slices import memory_folder
from worker.kept_touches import TouchRows
from worker.score_inputs import UnresolvedKeys, epoch_seconds, unresolved_keys
from worker.score_scope import Touched, touched_by_pulls
from worker.stage_process import processes_possible, server_context

log = logging.getLogger("abm.scoring")

# How long the score stage waits for the process (which on the L org is done 10 s before the stage starts): a
# process stuck for any reason must not hold up the run, whose stage then reads everything itself.
WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class StoreMark:
    """The highest id and the latest ``changed_at`` of the touches and of the people: equal marks, same rows."""

    touches: tuple[Any, Any]
    people: tuple[Any, Any]


def store_mark(conn: Connection) -> StoreMark:
    """The mark of the store now (four index lookups: one aggregate a query, which SQLite reads off an index)."""
    def mark(table: Any) -> tuple[Any, Any]:
        return (conn.execute(select(func.max(table.id))).scalar_one(),
                conn.execute(select(func.max(table.changed_at))).scalar_one())

    return StoreMark(mark(Activity), mark(Person))


@dataclass(frozen=True)
class Everyone:
    """Every touch and every live person as the score stage reads them, with the touches not resolved to store
    ids they were read with."""

    unresolved: UnresolvedKeys
    touches: Current[TouchRows]
    people: Current[PeopleColumns]
    personas: Current[PersonaColumns]  # the people's, classified under the rules ``personas_rules`` names
    personas_rules: str  # kept_titles.fingerprint of the scoring settings the process was given


@dataclass(frozen=True)
class Prefetched:
    """What the pulls touched since the last score stage, everyone's touches and people when the score stage will
    read everyone (None: few entities touched), and the mark of the store they were read from."""

    mark: StoreMark
    since: datetime
    touched: Touched  # by the pulls only: the match stage adds its own (worker.score_scope.touched_by_matching)
    everyone: Everyone | None
    copies_ahead: tuple[str, ...] = ()  # the kept copies read while the pulls ran that were used


# The kept copies the process reads before the pulls end (see read_copies).
COPIES = (kept_touches.COPY, kept_people.COPY, kept_titles.COPY)


def read_copies(conn: Connection) -> dict[str, kept_copies.Kept]:
    """The kept copies of the touches, the people and their titles' persona codes, as stored now: they can be read
    while the pulls run, which write the tables they copy but never the copies (a score stage keeps them). On the
    L org (8.7 million touches, 1.8 million people) they take 2.8 s to read alone, and beside the match stage,
    which needs both cores, they took 8 of the process's 16 seconds there."""
    copies = {spec.name: spec.load(conn) for spec in COPIES}
    return {name: kept for name, kept in copies.items() if kept is not None}


def read_prefetch(conn: Connection, since: datetime, config: ScoringConfig,
                  ahead: kept_copies.ReadEarlier | None = None) -> Prefetched | str:
    """What an incremental score stage scoring from ``since`` under ``config`` reads of the pulls' data, or why it
    cannot be read now. Writes nothing. ``ahead``: the kept copies as read earlier (:func:`read_copies`), each used
    while it is still the one stored."""
    from worker.score_stage import touched_little  # the stage imports this module

    mark = store_mark(conn)
    touched = touched_by_pulls(conn, since)
    everyone = None
    used: tuple[str, ...] = ()
    if not touched_little(conn, touched):  # the match stage only adds to these: the stage will read everyone
        unresolved = unresolved_keys(conn)
        if unresolved is not None:  # else the stage reads the touches with their keys inline
            ids = (unresolved[0].keys(), unresolved[1].keys())
            used = tuple(name for name, kept in (ahead or {}).items() if kept_copies.still_stored(conn, name, kept))
            touches = kept_touches.read_current(conn, epoch_seconds(conn), ids, reuse=True, ahead=ahead)
            people = kept_people.read_current(conn, partial(epoch_seconds, conn), reuse=True, ahead=ahead)
            personas = kept_titles.read_classified(conn, config, people.value.title, reuse=True, ahead=ahead)
            everyone = Everyone(unresolved, touches, people, personas, kept_titles.fingerprint(config))
    if store_mark(conn) != mark:
        return "the store changed while it was read"
    return Prefetched(mark, since, touched, everyone, used)


def still_current(conn: Connection, prefetched: Prefetched) -> bool:
    """Whether the store's touches and people are still as ``prefetched`` read them (the touches not resolved to
    store ids aside: see :func:`resolved_alike`)."""
    return store_mark(conn) == prefetched.mark


def resolved_alike(conn: Connection, everyone: Everyone) -> bool:
    """Whether the touches not resolved to store ids are still those ``everyone`` was read with (resolving one
    moves no change stamp, see :mod:`store.touch_refs`)."""
    return unresolved_keys(conn) == everyone.unresolved


class _Collected(logging.Handler):
    """The process's log records, sent back with its result and handled by the worker (its handlers, masking)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None  # arguments may not pickle
        record.exc_info = None
        self.records.append(record)


# The process's niceness: it works on what the match stage leaves idle, and must not slow the stage's own
# processes (the index build and the matching take both cores for a few seconds each).
NICENESS = 10


def _copies_ahead(engine: Engine) -> dict[str, kept_copies.Kept]:
    """:func:`read_copies` in a transaction of its own, ended before the process waits: an open SQLite reader
    would keep the pulls' writes in the WAL file. None read when that fails (logged): they are read later."""
    try:
        with engine.connect() as conn:
            return read_copies(conn)
    except Exception as exc:
        log.warning("the score stage's kept copies could not be read beside the pulls: %s", describe_error(exc))
        return {}


def _child_main(url: str, path: str, since: datetime | None, go: Any, config: ScoringConfig) -> None:
    from store.db import make_engine

    with contextlib.suppress(OSError):  # a system refusing it: the process runs at the worker's priority
        os.nice(NICENESS)
    collected = _Collected()
    logging.getLogger().addHandler(collected)
    outcome: Prefetched | str
    try:
        engine = make_engine(url)
        try:
            ahead = {}
            if since is None:  # to be set going: the copies first, while the pulls run
                ahead = _copies_ahead(engine)
                try:
                    since = go.recv()  # from ScorePrefetch.begin, once the pulls are done
                except EOFError:  # the worker let go of it without setting it going (or is gone): nothing to read
                    return
                finally:
                    go.close()
            with engine.connect() as conn:
                outcome = read_prefetch(conn, since, config, ahead)
            del ahead
        finally:
            engine.dispose()
    except Exception as exc:  # the score stage reads everything itself: why, in the run record and the worker's log
        log.warning("the score stage's reads beside the match stage failed: %s", describe_error(exc))
        outcome = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    partial_path = f"{path}.part"
    with open(partial_path, "wb") as file:
        pickle.dump((outcome, collected.records), file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial_path, path)  # whole or absent: a process killed while writing leaves no result


def _discard(process: Any, folder: str, go: Any) -> None:
    if go is not None:
        go.close()
    if process.is_alive():
        process.terminate()
    process.join()
    shutil.rmtree(folder, ignore_errors=True)


class ScorePrefetch:
    """The process reading what the score stage scoring from ``since`` under ``config`` will read (see the module
    docstring).

    Without ``since``, the process first reads the kept copies (:func:`read_copies`), then waits to be set going
    (:meth:`begin`): a pipeline starts it with the pulls, and the match stage sets it going once they are done.
    """

    def __init__(self, engine: Engine, since: datetime | None, config: ScoringConfig) -> None:
        self._folder = tempfile.mkdtemp(prefix="abm-prefetch-", dir=memory_folder())
        self._path = os.path.join(self._folder, "prefetched.pickle")
        url = engine.url.render_as_string(hide_password=False)
        context = server_context()
        receiver, self._go = context.Pipe(duplex=False) if since is None else (None, None)
        self._begun = since is not None
        self._process = context.Process(target=_child_main, args=(url, self._path, since, receiver, config),
                                        name="score-prefetch", daemon=True)
        try:
            self._process.start()
        except BaseException:
            if self._go is not None:
                self._go.close()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        finally:
            if receiver is not None:
                receiver.close()  # the process has its own
        # the result file goes with this object, whether or not a score stage takes it
        self._discard = weakref.finalize(self, _discard, self._process, self._folder, self._go)

    def begin(self, since: datetime) -> None:
        """Set the process, started without ``since``, reading for a score stage scoring from ``since``, now that
        the pulls are done. A process already gone says so in :meth:`result`."""
        if self._begun or self._go is None:
            raise RuntimeError("the score stage's reading was already set going")
        self._begun = True
        try:
            self._go.send(since)
        except OSError:
            pass
        finally:
            self._go.close()

    def result(self, timeout_s: float = WAIT_SECONDS) -> Prefetched | str:
        """What the process read (waiting for it at most ``timeout_s``), or why there is nothing to use; the process
        and its file go."""
        if not self._begun:
            self.close()
            return "never set going"
        self._process.join(timeout_s)
        if self._process.is_alive():
            self.close()
            return f"still reading after {timeout_s:.0f} s"
        try:
            with open(self._path, "rb") as file:
                outcome, records = pickle.load(file)
        except (OSError, EOFError, pickle.UnpicklingError):
            return f"its process ended (exit code {self._process.exitcode}) without a result"
        finally:
            self.close()
        for record in records:
            logging.getLogger(record.name).handle(record)
        return outcome

    def close(self) -> None:
        """Stop the process if it still runs and remove its file."""
        self._discard()


def start_prefetch(engine: Engine, since: datetime | None, config: ScoringConfig,
                   stage_processes: bool) -> ScorePrefetch | None:
    """The process reading for an incremental score stage scoring from ``since`` under ``config`` (None: from the
    ``since`` given to :meth:`ScorePrefetch.begin` later), where stages can run in processes of their own
    (``stage_processes``, the worker setting; see :mod:`worker.stage_process`); None where not, or when it cannot
    start (the score stage then reads everything itself)."""
    if not stage_processes or not processes_possible(engine):
        return None
    try:
        return ScorePrefetch(engine, since, config)
    except OSError as exc:
        log.warning("the score stage's reads could not start beside the match stage: %s", exc)
        return None
