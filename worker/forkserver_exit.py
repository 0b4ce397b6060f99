"""Imported by the stage processes' fork server (``worker.stage_process.PRELOAD``) for its one effect: the
server skips the final garbage collections when it exits (:func:`worker.gc_pause.skip_collections_at_exit`).

The server ends when the worker does, and it holds the worker's standard output open until then: whoever
reads that output to its end (a test, a pipe) waited 1.5 s more for the collections of its preloaded modules.
A fork server runs only what it imports, so an import is the only way to run this in it.
"""

from worker.gc_pause import skip_collections_at_exit

skip_collections_at_exit()
