"""How much memory the worker holds, recorded per stage so a memory limit can be traced to a stage.

The worker must stay under its memory limit (issue 9: 4 GB on an L org). ``ru_maxrss`` is the
process's peak since it started, so recorded at each stage's end it only ever rises and the stage
where it rises is the one that set it; but a long-lived worker (``abm serve``) keeps the peak of
an earlier run, so each stage also samples the process's current RSS while it runs and records the
highest value seen: that one belongs to the stage (and to stages running next to it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import threading
from collections.abc import Callable
from types import TracebackType

_PAGE_MB = resource.getpagesize() / (1024 * 1024)


def peak_rss_mb() -> float:
    """The process's peak resident set since it started, in MB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def return_freed_memory() -> bool:
    """Give the memory malloc holds free back to the system (glibc's ``malloc_trim``); False where there is none.

    glibc serves each thread from an arena of its own and returns what is freed in those arenas only when
    asked. A stage's reading ahead (worker.read_ahead) reads on a thread of its own, and what the stage frees of
    it stayed resident through the stages after it: the L org's increment peaked at 2,951 MB instead of 2,697 MB
    (measured with one arena for every thread, ``MALLOC_ARENA_MAX=1``).
    """
    trim = _malloc_trim()
    return trim is not None and bool(trim(0))


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None


def current_rss_mb() -> float | None:
    """The process's resident set now, in MB; None where ``/proc`` is not available."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


class RssSampler:
    """Samples the current RSS in a daemon thread while a stage runs and keeps the highest value.

    Use as a context manager; ``max_mb`` is the highest sample (taken at start and at exit too, so a
    stage shorter than the interval still has one). Sampling is a read of ``/proc/self/statm``:
    microseconds per sample, no effect on the stage.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.max_mb: float | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = current_rss_mb()
        if now is not None and (self.max_mb is None or now > self.max_mb):
            self.max_mb = now

    def _loop(self) -> None:
        while not self._done.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._sample()

    def detail(self) -> dict[str, int]:
        """What a stage's record keeps: the process peak so far and this stage's own highest sample."""
        out = {"peak_rss_mb": round(peak_rss_mb())}
        if self.max_mb is not None:
            out["stage_rss_mb"] = round(self.max_mb)
        return out
