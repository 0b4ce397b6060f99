"""Matching spread over worker processes that share one built matcher.

The account index is built once, in the calling process; workers are forked from it and read it
copy-on-write, so nothing is pickled on the way in. Each worker matches a contiguous slice of the
people and sends its results back. Where fork is not available (Windows, or a platform that
deprecates it) matching runs in the calling process.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from matching.types import MatchResult, Pin, PreviousMatch
from store.records import PersonRecord

if TYPE_CHECKING:
    from matching.engine import Matcher

# What forked workers read: set just before the pool starts, cleared after it ends.
_shared: tuple[Matcher, Sequence[PersonRecord], Mapping[int, PreviousMatch], Mapping[int, Pin]] | None = None


def _match_slice(bounds: tuple[int, int]) -> list[MatchResult]:
    assert _shared is not None, "a worker started without the shared matcher"
    matcher, people, previous, pins = _shared
    start, end = bounds
    return [matcher.match_person(p, previous=previous.get(p.id), pin=pins.get(p.id)) for p in people[start:end]]


def match_in_processes(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
) -> list[MatchResult]:
    """Results in input order, computed by ``workers`` forked processes."""
    global _shared
    if workers <= 1 or len(people) < 2 * workers or "fork" not in multiprocessing.get_all_start_methods():
        _shared = (matcher, people, previous, pins)
        try:
            return _match_slice((0, len(people)))
        finally:
            _shared = None
    # A few slices per worker even out uneven slices (companies with many leads, slow names).
    slices = workers * 4
    step = -(-len(people) // slices)
    bounds = [(start, min(start + step, len(people))) for start in range(0, len(people), step)]
    _shared = (matcher, people, previous, pins)
    gc.freeze()  # the collector would otherwise touch (and so copy) every shared object in each worker
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_match_slice, bounds, chunksize=1)
    finally:
        gc.unfreeze()
        _shared = None
    return [result for part in parts for result in part]
