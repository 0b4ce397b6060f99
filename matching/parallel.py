"""Matching spread over worker processes that share one built matcher.

The account index is built once, in the calling process; workers are forked from it and read it
copy-on-write, so nothing is pickled on the way in. The calling process matches the first share
of the people itself; each forked worker matches contiguous slices of the rest and sends its
results back. Where fork is not available (Windows, or a platform that
deprecates it) matching runs in the calling process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING

from matching.types import MatchResult, Pin, PreviousMatch
from store.records import PersonRecord

if TYPE_CHECKING:
    from matching.engine import Matcher

# What forked workers read: set just before the pool starts, cleared after it ends.
_shared: tuple[Matcher, Sequence[PersonRecord], Mapping[int, PreviousMatch], Mapping[int, Pin]] | None = None


_FIELDS = tuple(f.name for f in fields(MatchResult))
_as_tuple = operator.attrgetter(*_FIELDS)


def _match_slice(bounds: tuple[int, int]) -> list[MatchResult]:
    assert _shared is not None, "a worker started without the shared matcher"
    matcher, people, previous, pins = _shared
    start, end = bounds
    return [matcher.match_person(p, previous=previous.get(p.id), pin=pins.get(p.id)) for p in people[start:end]]


def _match_slice_as_tuples(bounds: tuple[int, int]) -> list[tuple]:
    """Results as plain tuples: unpickling a million slotted dataclasses costs the parent far more."""
    return [_as_tuple(result) for result in _match_slice(bounds)]


def match_in_processes(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
) -> list[MatchResult]:
    """Results in input order, computed by the calling process and ``workers - 1`` forked ones."""
    global _shared
    if workers <= 1 or len(people) < 2 * workers or "fork" not in multiprocessing.get_all_start_methods():
        _shared = (matcher, people, previous, pins)
        try:
            with collector_paused():
                return _match_slice((0, len(people)))
        finally:
            _shared = None
    # The calling process is one of the workers: it takes the first share (a little less than the
    # others, since it also rebuilds their results) and forked processes take the rest in slices.
    own = int(len(people) / workers * 0.9)
    rest = len(people) - own
    slices = (workers - 1) * 24  # small: a worker holds one slice's results (and their pickle) at a time
    step = max(1, -(-rest // slices))
    bounds = [(start, min(start + step, len(people))) for start in range(own, len(people), step)]
    _shared = (matcher, people, previous, pins)
    try:
        with collector_paused(), multiprocessing.get_context("fork").Pool(workers - 1) as pool:
            pending = pool.imap(_match_slice_as_tuples, bounds, chunksize=1)
            results = _match_slice((0, own))
            for part in pending:  # in order, each slice's tuples freed once rebuilt
                results.extend(MatchResult(*values) for values in part)
                del part
    finally:
        _shared = None
    return results


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while indexing or matching (in forked workers too).

    Both allocate millions of small acyclic objects (index columns, queries, signals, results,
    cache entries); each automatic collection walks every live object again, which costs nearly
    half of the index build at 100,000 accounts and a tenth of the matching, and in a forked
    worker it would also touch, and so copy, every shared page. Reference counting still frees
    everything; the collector resumes afterwards. Nested uses leave the outermost in charge.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    gc.freeze()  # what exists now (the index, the people) is left out of later collections for good measure
    try:
        yield
    finally:
        # what the block allocated joins the oldest generation rather than the youngest: left young, the
        # first allocation after enable() would walk millions of objects again (a second per million)
        gc.freeze()
        gc.unfreeze()
        gc.enable()
