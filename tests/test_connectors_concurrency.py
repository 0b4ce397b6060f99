"""Pieces of a pull run side by side: every piece's error is kept, and the one to raise chosen."""

from __future__ import annotations

import threading
import time

import pytest

from connectors.budget import BudgetExhausted
from connectors.concurrency import run_concurrently, stopped


def test_every_item_runs_and_in_several_threads() -> None:
    threads: dict[int, str] = {}
    both_started = threading.Barrier(2, timeout=10)

    def work(item: int) -> None:
        both_started.wait()  # would time out if the items ran one after the other
        threads[item] = threading.current_thread().name

    run_concurrently(work, [1, 2], 2, name="lane")
    assert sorted(threads) == [1, 2] and len(set(threads.values())) == 2
    assert all(name.startswith("lane") for name in threads.values())


def test_a_failure_lets_the_others_finish_then_is_raised_and_they_see_it() -> None:
    seen: list[bool] = []
    both_started = threading.Barrier(2, timeout=10)

    def work(item: str) -> None:
        both_started.wait()
        if item == "fails":
            raise ValueError("no such field")
        deadline = time.monotonic() + 10
        while not stopped() and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(stopped())

    with pytest.raises(ValueError, match="no such field"):
        run_concurrently(work, ["fails", "goes on"], 2)
    assert seen == [True]


def test_a_spent_budget_is_raised_before_any_other_error() -> None:
    both_failing = threading.Barrier(2, timeout=10)

    def work(item: str) -> None:
        both_failing.wait()
        if item == "budget":
            raise BudgetExhausted("salesforce", "the daily limit is spent")
        raise RuntimeError("boom")

    with pytest.raises(BudgetExhausted):
        run_concurrently(work, ["boom", "budget"], 2)


def test_one_worker_runs_in_order_in_the_caller() -> None:
    order: list[tuple[int, str]] = []
    run_concurrently(lambda i: order.append((i, threading.current_thread().name)), [3, 1, 2], 1)
    assert [i for i, _ in order] == [3, 1, 2]
    assert {name for _, name in order} == {threading.current_thread().name}
    assert not stopped()
