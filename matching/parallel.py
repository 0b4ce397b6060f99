"""Matching spread over worker processes that share one built matcher.

The account index is built once, in the calling process; workers are forked from it and read it
copy-on-write, so nothing is pickled on the way in. The people are cut into small contiguous
slices that the calling process and the forked workers claim one at a time; the workers send their
slices' results back. Results are yielded either in input order, as soon as the slices before them
are done, or, faster, with each person's position as each slice is done, the people first ordered
by the company they typed (:func:`grouped_order`); either way a caller need not hold them all.
Where fork is not available (Windows, or a platform that deprecates it) matching runs in the
calling process.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import operator
import signal
import sys
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from multiprocessing.pool import IMapIterator
from typing import TYPE_CHECKING, Any

from matching.types import MatchResult, Pin, PreviousMatch
from store.records import PersonRecord

if TYPE_CHECKING:
    from matching.engine import Matcher

# The matcher's cache bound while people come grouped by the company they typed: a name's repeats come one after
# another, so 20,000 entries find nearly all of them (names pre-ranked in the benchmark's million leads: 261,323
# against 258,102 with the 100,000 input order needs, where they would be 740,240) and hold about 110 MB less.
GROUPED_CACHE_LIMIT = 20_000

# What forked workers read: set just before the pool starts, cleared after it ends.
_shared: tuple[Matcher, Sequence[PersonRecord], Mapping[int, PreviousMatch], Mapping[int, Pin]] | None = None


def forked_pool_started() -> None:
    """Initializer of every forked pool's processes: SIGTERM ends them, and SIGINT interrupts them, as by default.

    A forked process inherits its parent's signal handlers. The worker's (``abm run``, ``abm serve``) turn SIGTERM
    and SIGINT into "stop after this batch", but ``Pool.terminate()`` (which leaving a pool's ``with`` block
    calls) stops idle processes with SIGTERM and then waits for them: with the inherited handler a process lived
    on, waiting for a lock the terminating pool holds, and the stage waited for it for good.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


_FIELDS = tuple(f.name for f in fields(MatchResult))
_company = operator.attrgetter("company")
_as_tuple = operator.attrgetter(*_FIELDS)


def _match_slice(bounds: tuple[int, int]) -> list[MatchResult]:
    assert _shared is not None, "a worker started without the shared matcher"
    matcher, people, previous, pins = _shared
    start, end = bounds
    return [matcher.match_person(p, previous=previous.get(p.id), pin=pins.get(p.id)) for p in people[start:end]]


def _match_slice_as_tuples(bounds: tuple[int, int]) -> list[tuple]:
    """Results as plain tuples: unpickling a million slotted dataclasses costs the parent far more."""
    return [_as_tuple(result) for result in _match_slice(bounds)]


# The slices of the people, and the index of the next one no process has claimed yet (shared memory).
_bounds: list[tuple[int, int]] | None = None
_next: Any = None


def claim(counter: Any) -> int:
    """The next slice index no process has claimed from ``counter`` (a shared ``multiprocessing.Value``),
    claimed: the caller and its forked pool each take the next one when they are free."""
    with counter.get_lock():
        claimed = counter.value
        counter.value = claimed + 1
    return claimed


def _match_claimed(_task: int) -> tuple[int, list[tuple]] | None:
    """One pool task: match the next unclaimed slice, if any is left."""
    assert _bounds is not None, "a worker started without the slices"
    claimed = claim(_next)
    if claimed >= len(_bounds):
        return None
    return claimed, _match_slice_as_tuples(_bounds[claimed])


class PoolAnswers:
    """The answers of a forked pool's tasks, one per slice: ``(slice index, what it built)`` for a slice the task
    claimed, None when the caller had claimed them all. Whatever came in waits in ``ready`` by slice index until
    the caller yields it in order."""

    def __init__(self, pending: IMapIterator, tasks: int) -> None:
        self.pending = pending  # the pool's imap_unordered
        self.tasks = tasks
        self.answered = 0
        self.ready: dict[int, Any] = {}

    def collect(self, block: bool) -> None:
        """Take in the answers already there; ``block``: wait for one (unless all are in)."""
        while self.answered < self.tasks:
            try:
                done = self.pending.next(timeout=None if block else 0)
            except multiprocessing.TimeoutError:
                return
            self.answered += 1
            if done is not None:
                self.ready[done[0]] = done[1]
            if block:
                return


def grouped_order(people: Sequence[PersonRecord]) -> list[int]:
    """The positions of ``people``, ordered by the company name each typed, case folded.

    What the matcher works out for a typed name (its normalized form, the accounts pre-ranked for it) and for a
    whole query is kept in caches that are emptied when full, for memory. In input order a name's repeats are
    scattered over the whole run and mostly come back after the caches were emptied; ordered by the typed name
    they come one after another, and spellings that read the same once normalized ('ACME', 'Acme', 'Acme Inc')
    lie close. In the benchmark's million leads (524,127 names typed, 244,936 once normalized) the names
    pre-ranked, counted with the caches' bounds, fall from 456,345 to 258,102 (290,124 without the case
    folding), for about a second of sorting.
    """
    keys = [company.casefold() if company else "" for company in map(_company, people)]
    return sorted(range(len(people)), key=keys.__getitem__)


# People past which their grouped order is worked out by a forked process while the caller builds the matcher
# (fewer sort in less time than a fork costs).
ORDER_BESIDE_FROM = 100_000
_order_people: Sequence[PersonRecord] | None = None  # what the forked process sorts: set while it forks


def _order_bytes() -> bytes:
    assert _order_people is not None, "a process forked without the people to order"
    gc.disable()  # a full collection here would touch, and so copy, every page the parent shares with it
    return array("l", grouped_order(_order_people)).tobytes()


@contextlib.contextmanager
def ordered_beside(people: Sequence[PersonRecord], workers: int) -> Iterator[Callable[[], array]]:
    """A function giving :func:`grouped_order` of ``people`` (as an array), worked out by a forked process
    while the block builds the matcher.

    Sorting a million people by the name they typed takes a second and a half that the index build,
    which keeps one core for itself most of its time, leaves the other core free for. With one worker,
    few people, or no fork, the order is worked out when asked for. The people must not change in the block.
    """
    global _order_people
    if workers <= 1 or len(people) < ORDER_BESIDE_FROM or "fork" not in multiprocessing.get_all_start_methods():
        yield lambda: array("l", grouped_order(people))
        return
    _order_people = people
    try:
        pool = multiprocessing.get_context("fork").Pool(1, initializer=forked_pool_started)  # forks here
    finally:
        _order_people = None
    with pool:
        pending = pool.apply_async(_order_bytes)

        def order() -> array:
            found = array("l")
            found.frombytes(pending.get())
            return found

        yield order


def match_in_processes(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
    order: array | None = None,
) -> list[MatchResult]:
    """Results in input order, computed by the calling process and ``workers - 1`` forked ones (in
    :func:`grouped_order`, or ``order`` when the caller has it: the list is built whole anyway)."""
    results: list[MatchResult | None] = [None] * len(people)
    for position, result in iter_grouped(matcher, people, previous, pins, workers, order):
        results[position] = result
    return results  # type: ignore[return-value]  # every position was filled


def iter_in_processes(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
) -> Iterator[MatchResult]:
    """Results in input order as they are ready, so a caller that writes or counts them need not hold a million.

    Only the slices finished ahead of the first one still being matched wait here (a few slices), not
    every result. One run at a time per process: the forked workers read module globals. Consume it to
    the end (or close it): the pool lives as long as the iteration.
    """
    for _, part in _slices_matched(matcher, people, previous, pins, workers, in_order=True):
        yield from _results(part)


def iter_grouped(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
    order: array | None = None,
) -> Iterator[tuple[int, MatchResult]]:
    """``(position in people, result)`` for every person, matched in :func:`grouped_order` and yielded as soon as
    each slice is done: the fastest way through many people, for a caller that writes or counts results by
    person rather than in input order. Like :func:`iter_in_processes` otherwise. ``order``: that order, when the
    caller had it worked out already (:func:`ordered_beside`)."""
    if order is None:
        order = array("l", grouped_order(people))  # 8 bytes a person; a list of ints holds 36 while matching
    grouped = operator.itemgetter(*order)(people) if len(order) > 1 else people  # gathered in C
    bound = matcher.cache_limit
    matcher.cache_limit = min(bound, GROUPED_CACHE_LIMIT)
    try:
        for (start, end), part in _slices_matched(matcher, grouped, previous, pins, workers, in_order=False):
            yield from zip(order[start:end], _results(part), strict=True)
    finally:
        matcher.cache_limit = bound


def _slices_matched(
    matcher: Matcher,
    people: Sequence[PersonRecord],
    previous: Mapping[int, PreviousMatch],
    pins: Mapping[int, Pin],
    workers: int,
    in_order: bool,
) -> Iterator[tuple[tuple[int, int], list[MatchResult] | list[tuple]]]:
    """Each slice's bounds and results, in input order (``in_order``) or as they are done."""
    global _shared, _bounds, _next
    # ~100 slices a process: at a million leads one is ~0.7 s of work, the most a process waits for the other at
    # the end (with 24 a process, ~3 s); a slice's round trip costs well under a millisecond.
    step = max(1, -(-len(people) // (max(workers, 1) * 96)))
    bounds = [(start, min(start + step, len(people))) for start in range(0, len(people), step)]
    if workers <= 1 or len(people) < 2 * workers or "fork" not in multiprocessing.get_all_start_methods():
        _shared = (matcher, people, previous, pins)
        try:
            with collector_paused():
                for part in bounds:
                    yield part, _match_slice(part)
        finally:
            _shared = None
        return
    # The calling process is one of the workers. All processes claim the next slice from a shared counter
    # until none is left, so whichever runs slower (the calling process also unpickles the others' results,
    # other programs share the cores) simply takes fewer slices. Slices are small: a worker holds one
    # slice's results (and their pickle) at a time, and the last slice claimed bounds the wait at the end.
    # Slices are claimed in input order, so the ones finished out of order and waiting to be yielded are few.
    context = multiprocessing.get_context("fork")
    _shared, _bounds, _next = (matcher, people, previous, pins), bounds, context.Value("i", 0)
    try:
        with collector_paused(), results_read_promptly(), \
                context.Pool(workers - 1, initializer=forked_pool_started) as pool:
            answers = PoolAnswers(pool.imap_unordered(_match_claimed, range(len(bounds)), chunksize=1), len(bounds))
            ready: dict[int, list[MatchResult] | list[tuple]] = answers.ready
            yielded = 0  # slices yielded so far (in input order, the index of the next one to yield)
            claiming = True
            while yielded < len(bounds):
                if claiming and (claimed := claim(_next)) < len(bounds):
                    ready[claimed] = _match_slice(bounds[claimed])
                    answers.collect(block=False)
                else:
                    claiming = False  # all claimed: what is left comes from the workers
                    if not ready or (in_order and yielded not in ready):
                        answers.collect(block=True)
                        continue
                while ready and (not in_order or yielded in ready):
                    done = yielded if in_order else next(iter(ready))
                    yield bounds[done], ready.pop(done)
                    yielded += 1
    finally:
        _shared = _bounds = _next = None


def _results(part: list[MatchResult] | list[tuple]) -> Iterator[MatchResult]:
    """A slice's results: the calling process's own as they are, a worker's rebuilt from their tuples."""
    for item in part:
        yield item if isinstance(item, MatchResult) else MatchResult(*item)


# How long the calling process's matching may keep the interpreter from the thread that reads the workers' results
# (seconds; Python's default is 5 ms).
_HANDOFF_SWITCH = 0.0002


@contextlib.contextmanager
def results_read_promptly() -> Iterator[None]:
    """A shorter thread switch interval while the calling process matches beside its workers.

    A worker's results go through a pipe that holds 64 KB; the pool's thread in this process reads it
    chunk by chunk, and after each read waits for the interpreter, which the matching thread here gives
    up only every switch interval. The worker, blocked on the full pipe, waited 5 ms per 64 KB: ~28 ms a
    slice, 3 s of its 30 s at 200,000 leads (0.9 s with this), and ~10 s at a million. The interval
    only matters while another thread waits, so matching alone runs as fast.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, _HANDOFF_SWITCH))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


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
