"""Generate records on a background thread while the loader writes the previous ones.

SQLite releases the GIL while it steps through a batch insert, so a producer thread that
keeps building records overlaps generation with the database work; on the two-core machine
that takes a good share off seeding the L org. Order is preserved (one producer, one FIFO),
so output stays deterministic; memory is bounded by ``depth`` chunks; an error in the
generator is raised in the consumer, and a consumer that stops early stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class Prefetched(Generic[T]):
    """An iterator over ``source`` whose items are produced ahead on a daemon thread."""

    def __init__(self, source: Iterable[T], chunk: int = 2_000, depth: int = 8) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer: list[T] = []
        self._position = 0
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(iter(source), chunk), name="seed-prefetch",
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, source: Iterator[T], chunk: int) -> None:
        try:
            batch: list[T] = []
            for item in source:
                batch.append(item)
                if len(batch) >= chunk:
                    if not self._put(batch):
                        return
                    batch = []
            if batch and not self._put(batch):
                return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._position < len(self._buffer):
            item = self._buffer[self._position]
            self._position += 1
            return item
        if self._finished:
            raise StopIteration
        got = self._queue.get()
        if got is _DONE:
            self._finished = True
            self._thread.join()
            raise StopIteration
        if isinstance(got, BaseException):
            self._finished = True
            self._thread.join()
            raise got
        self._buffer, self._position = got, 1  # type: ignore[assignment]
        return self._buffer[0]

    def close(self) -> None:
        """Stop the producer (when the consumer gives up before the end)."""
        self._stop.set()
        self._finished = True
        self._thread.join(timeout=5)

    def __del__(self) -> None:
        self._stop.set()
