"""What the worker measures of its memory and gives back (worker.memory)."""

from __future__ import annotations

import sys
import threading

import pytest

from worker.memory import RssSampler, current_rss_mb, return_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim and /proc: Linux")
def test_memory_freed_on_another_thread_is_given_back_when_asked() -> None:
    """What a thread allocates comes from an arena of its own, which keeps what is freed in it resident while a
    few blocks still live there, until malloc_trim gives the free pages back."""
    kept: list[bytearray] = []

    def allocate() -> None:
        blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(3_000)]  # 190 MB, each below mmap's threshold
        kept.extend(blocks[::50])  # a few stay: the arena cannot shrink from its top

    thread = threading.Thread(target=allocate)
    thread.start()
    thread.join()
    before = current_rss_mb()
    assert before is not None
    assert return_freed_memory()
    after = current_rss_mb()
    assert after is not None and before - after > 100, (before, after)
    assert len(kept) == 60


def test_a_stage_records_the_highest_rss_sampled_and_the_peak_so_far() -> None:
    with RssSampler(interval_s=0.01) as sampler:
        block = bytearray(b"x" * (50 * 2**20))
    detail = sampler.detail()
    assert detail["stage_rss_mb"] >= 50 and detail["peak_rss_mb"] >= detail["stage_rss_mb"] - 1
    del block
