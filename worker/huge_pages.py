"""Whether numpy backs its large arrays with transparent huge pages while the worker runs.

numpy asks the kernel for huge pages (``madvise(MADV_HUGEPAGE)``) for every array of 4 MiB or
more. On a kernel in ``madvise`` mode, as on the benchmark machine, each 2 MiB page is then found
and zeroed when the array is first written. A run allocates its large arrays afresh at every step
(on an L org's scoring, one of 60 MB per column of 7.7 million touches, 410 MB for the people by
touch type), so how fast pages come matters more than the TLB misses huge pages save. On the
2-core virtual machine the benchmarks run on, they came slowly: the first 1 GiB array of a fresh
process took 10.8 s to fill with huge pages and 1.0 s without; loading the L org's scoring inputs
took 19.4 s with them and 8.2 s without, and its rules-based scoring pass 11.0 s against 5.3 s.

The worker therefore turns them off for the length of a run (``worker.numpy_huge_pages``), and
gives the process back as it found it: a notebook that imports :mod:`scoring` is not affected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np


def _madvise_setter() -> Callable[[bool], bool] | None:
    """numpy's switch (it returns the previous setting), or None on a numpy without it.

    The switch is numpy's own, under a private name, since numpy 1.20: ``_core`` from 2.0, ``core`` before.
    """
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    multiarray = getattr(core, "multiarray", None)
    return getattr(multiarray, "_set_madvise_hugepage", None)


@contextlib.contextmanager
def numpy_huge_pages(enabled: bool) -> Iterator[None]:
    """Inside the block, numpy asks for huge pages for large arrays only if ``enabled``; afterwards, as before."""
    setter = _madvise_setter()
    if setter is None:
        yield
        return
    before = setter(enabled)
    try:
        yield
    finally:
        setter(before)


def numpy_asks_for_huge_pages() -> bool | None:
    """numpy's current setting (None: this numpy has no such switch). Reading it means setting it back."""
    setter = _madvise_setter()
    if setter is None:
        return None
    current = setter(True)
    setter(current)
    return current
