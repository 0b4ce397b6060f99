"""Items built slice by slice by a forked process and this one, yielded in order as they are ready.

The score stage's save builds a row per rescored entity (its reasons and breakdown) and then compares and
writes it: about half of the save's CPU each, in one process, while the second core idled (15.4 s of the
L org's 1% increment). Here a forked process builds slices while this process writes what is ready and
builds a slice itself when nothing is: whichever is slower sets the pace, not their sum.

The builder reads the caller's data copy-on-write (nothing is pickled on the way in); only the built items
come back, pickled, each slice in a file (in memory, under /dev/shm, where there is one) read and removed
when its turn comes. Through the pool's pipe, 64 KB at a time by a thread of this process contending with
the writes for the interpreter, the rows of an L increment took 4 s of this process's time to receive. The
forked process stays at most ``AHEAD`` slices ahead of what was yielded: a full rescore's writes are slower
than its building, and every slice built ahead is memory held (a worker killed mid-save leaves at most that
many in its ``abm-slices-*`` folder, about 4 MB each on the L org).

The builder must be a pure function of that data: the forked process inherits the caller's database
connection and must leave it alone. Slices are claimed from a shared counter in input order. Consume the
iterator to the end (or close it): the forked process lives as long as the iteration. One iteration at a
time per process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from matching.parallel import PoolAnswers, claim, forked_pool_started

Build = Callable[[int, int], list[Any]]

# What the forked process reads: set just before the pool starts, cleared after it ends.
_build: Build | None = None
_bounds: list[tuple[int, int]] | None = None
_next: Any = None  # the index of the next slice no process has claimed (shared memory)
_folder: str | None = None  # where the forked process leaves the slices it built
_ahead: Any = None  # a semaphore: a slice built by the forked process holds one until this process reads it
AHEAD = 8


def _build_claimed(_task: int) -> tuple[int, None] | None:
    """One pool task: build the next unclaimed slice, if any is left, into its file; the slice's index (and None:
    its items wait in the file)."""
    assert _build is not None and _bounds is not None and _folder is not None, "a forked builder without its work"
    _ahead.acquire()
    claimed = claim(_next)
    if claimed >= len(_bounds):
        _ahead.release()
        return None
    with open(_slice_file(_folder, claimed), "wb") as file:
        pickle.dump(_build(*_bounds[claimed]), file, protocol=pickle.HIGHEST_PROTOCOL)
    return claimed, None


def _slice_file(folder: str, index: int) -> str:
    return os.path.join(folder, f"{index}.pickle")


def _read_slice(folder: str, index: int) -> list[Any]:
    path = _slice_file(folder, index)
    with open(path, "rb") as file:
        items = pickle.load(file)
    os.unlink(path)
    return items


# Free space /dev/shm must have to hold the slices (a container's is 64 MB by default); else the temporary
# folder on disk is used (a full /dev/shm would fail the stage).
MEMORY_FOLDER_FREE_BYTES = 256 * 1024 * 1024


def memory_folder() -> str | None:
    """Where slices pass from the forked process: in memory where the system has a memory file system with room
    to spare, else None (the default temporary folder)."""
    folder = "/dev/shm"
    try:
        roomy = shutil.disk_usage(folder).free >= MEMORY_FOLDER_FREE_BYTES
    except OSError:
        return None
    return folder if roomy and os.access(folder, os.W_OK) else None


def iter_built(build: Build, total: int, *, forked: bool = True, slice_size: int = 2_000) -> Iterator[Any]:
    """``build(start, end)``'s items for consecutive slices of ``range(total)``, in order.

    ``forked``: with a forked process beside this one (where fork exists); else slice by slice here, which
    also holds one slice at a time.
    """
    slice_size = max(1, slice_size)
    bounds = [(start, min(start + slice_size, total)) for start in range(0, total, slice_size)]
    if not forked or len(bounds) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for start, end in bounds:
            yield from build(start, end)
        return
    global _build, _bounds, _next, _folder, _ahead
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="abm-slices-", dir=memory_folder()) as folder:
        _build, _bounds, _next, _folder = build, bounds, context.Value("i", 0), folder
        _ahead = context.Semaphore(AHEAD)
        try:
            with context.Pool(1, initializer=forked_pool_started) as pool:
                answers = PoolAnswers(pool.imap_unordered(_build_claimed, range(len(bounds)), chunksize=1),
                                      len(bounds))
                # slices built here, or None: built by the forked process, in its file until yielded
                ready: dict[int, list[Any] | None] = answers.ready
                for emitted in range(len(bounds)):
                    answers.collect(block=False)
                    # build here only while the next slice is not ready: the caller's own work on the items
                    # (the writes) comes first, and the forked process keeps building meanwhile
                    while emitted not in ready and (claimed := claim(_next)) < len(bounds):
                        ready[claimed] = build(*bounds[claimed])
                        answers.collect(block=False)
                    while emitted not in ready:
                        answers.collect(block=True)
                    items = ready.pop(emitted)
                    if items is None:
                        items = _read_slice(folder, emitted)
                        _ahead.release()
                    yield from items
        finally:
            _build = _bounds = _next = _folder = _ahead = None
