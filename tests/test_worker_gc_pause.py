"""cyclic_gc_paused: off inside the block, and the collector's own state back after it, error or not.
skip_collections_at_exit: what is alive at exit is left uncollected, and exit handlers still run."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from worker.gc_pause import cyclic_gc_paused
from worker.stage_process import PRELOAD

ROOT = Path(__file__).resolve().parents[1]


def test_the_collector_is_paused_and_restored() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("load failed")
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


# A process whose last object alive is in a reference cycle: only a collection finalizes it.
_EXITING = """
import atexit, os, sys
from worker.gc_pause import skip_collections_at_exit
if sys.argv[1] == "skip":
    skip_collections_at_exit()
class Cycle:
    def __init__(self):
        self.me = self
    def __del__(self, write=os.write):
        write(1, b"collected\\n")
kept = Cycle()
atexit.register(print, "exit handler ran", flush=True)
"""


@pytest.mark.parametrize(("mode", "collected"), [("skip", False), ("default", True)])
def test_objects_alive_at_exit_are_left_to_the_system_and_exit_handlers_still_run(mode: str, collected: bool) -> None:
    out = subprocess.run([sys.executable, "-c", _EXITING, mode], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert "exit handler ran" in out
    assert ("collected" in out) is collected


def test_the_fork_server_skips_them_too() -> None:
    """Its first preload is the module that says so: it ends with the worker, holding the worker's output open."""
    assert PRELOAD[0] == "worker.forkserver_exit"
    preloaded = _EXITING.replace("skip_collections_at_exit()", "import worker.forkserver_exit")
    out = subprocess.run([sys.executable, "-c", preloaded, "skip"], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert "collected" not in out
