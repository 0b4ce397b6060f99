"""Pausing Python's cyclic garbage collector while millions of acyclic objects are built, and at exit.

Loading an L org's scoring inputs creates tens of millions of tuples (driver rows, dict keys), each
a container the cyclic collector tracks. Every few hundred thousand that survive a young
collection trigger a full one, which walks every tracked object alive (the 1.8 million person keys
of the entity index among them): measured on the L org, that took 41 of the load's 77 CPU seconds
(35.5 with the collector paused). Nothing built there forms a reference cycle, so reference
counting frees it all the same; cycles made meanwhile elsewhere wait for the next collection.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block, restoring whatever state it had."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def skip_collections_at_exit() -> None:
    """Leave the objects alive when the interpreter exits out of its final garbage collections.

    At exit CPython runs full collections over every object still alive. In a process that imported the
    pipeline (scikit-learn, SciPy, the CRM clients) they take 1.4-1.6 s, after the command's work is done and
    its output written, and whoever waits for the command waits them out: a shell script, a service manager, a
    test reading the command's output to its end (which the fork server, holding the same output open, delays
    as long again). They would free nothing the end of the process does not: memory, files and sockets go back
    to the system with it, output is flushed by the interpreter and logging's exit handler, and an SQLite
    database whose connection a cycle kept open is whole (what was committed is in its write-ahead log, which
    the next connection reads). Exit handlers still run, and what they make after the freeze is collected.
    """
    atexit.register(gc.freeze)
