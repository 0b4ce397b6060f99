"""How much memory the worker holds, recorded per stage so a memory limit can be traced to a stage.

The worker must stay under its memory limit (issue 9: 4 GB on an L org). ``ru_maxrss`` is the
process's peak since it started, so recorded at each stage's end it only ever rises and the stage
where it rises is the one that set it; but a long-lived worker (``abm serve``) keeps the peak of
an earlier run, so each stage also samples the process's current RSS while it runs and records the
highest value seen: that one belongs to the stage (and to stages running next to it).
"""

from __future__ import annotations

import resource
import threading
from types import TracebackType

_PAGE_MB = resource.getpagesize() / (1024 * 1024)


def peak_rss_mb() -> float:
    """The process's peak resident set since it started, in MB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
