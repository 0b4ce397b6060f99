"""Items built slice by slice by a forked process and the caller, yielded in order."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest

from worker import forked_slices
from worker.forked_slices import iter_built


def _build(start: int, end: int) -> list[tuple[int, int]]:
    time.sleep(0.002)  # long enough that both processes take slices
    return [(i, os.getpid()) for i in range(start, end)]


@pytest.mark.parametrize("forked", [True, False])
def test_items_come_in_order_whoever_built_them(forked: bool) -> None:
    items = list(iter_built(_build, 1_003, forked=forked, slice_size=10))
    assert [i for i, _ in items] == list(range(1_003))
    builders = {pid for _, pid in items}
    if forked:
        assert len(builders) == 2 and os.getpid() in builders  # the forked process and this one
    else:
        assert builders == {os.getpid()}
    assert forked_slices._build is None and forked_slices._bounds is None  # nothing left for a next iteration


PARENT = os.getpid()


def _fails_in_the_fork(start: int, end: int) -> list[int]:
    if os.getpid() != PARENT:
        raise ValueError(f"slice {start}-{end} cannot be built")
    time.sleep(0.01)
    return list(range(start, end))


def test_a_slice_that_fails_in_the_forked_process_fails_the_iteration() -> None:
    with pytest.raises(ValueError, match="cannot be built"):
        list(iter_built(_fails_in_the_fork, 200, slice_size=10))
    assert [i for i, _ in iter_built(_build, 30, slice_size=10)] == list(range(30))  # a next iteration works


def test_an_iteration_left_early_ends_the_forked_process() -> None:
    items = iter_built(_build, 10_000, slice_size=10)
    assert [next(items)[0] for _ in range(25)] == list(range(25))
    items.close()
    assert forked_slices._build is None
    assert not list(Path(forked_slices.memory_folder() or tempfile.gettempdir()).glob("abm-slices-*"))  # no files left
    assert [i for i, _ in iter_built(_build, 40, slice_size=10)] == list(range(40))


def test_nothing_to_build_yields_nothing() -> None:
    assert list(iter_built(_build, 0)) == []


def test_the_forked_process_builds_only_a_few_slices_ahead_of_what_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller slower than the builder (a full rescore's writes) must not find every slice built and held."""
    monkeypatch.setattr(forked_slices, "AHEAD", 3)
    folder = Path(forked_slices.memory_folder() or tempfile.gettempdir())
    items = iter_built(_build, 400, slice_size=10)
    next(items)
    time.sleep(0.5)  # time for the forked process to build every slice, were it not held back
    held = [len(list(d.iterdir())) for d in folder.glob("abm-slices-*")]
    assert held and max(held) <= 3
    assert [i for i, _ in items] == list(range(1, 400))


def test_slices_go_through_the_disk_when_the_memory_folder_is_small(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's /dev/shm is 64 MB by default: filling it would fail the stage."""
    monkeypatch.setattr(forked_slices, "MEMORY_FOLDER_FREE_BYTES", 2**62)
    assert forked_slices.memory_folder() is None
    assert [i for i, _ in iter_built(_build, 50, slice_size=10)] == list(range(50))
