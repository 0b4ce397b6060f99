"""The connector's plain parts, without a server: cursor windows, budget guard, retry waits, SOQL, values."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest

from config.salesforce_pull import SALESFORCE_OBJECTS
from connectors.budget import ApiBudget, BudgetExhausted
from connectors.cursor import Cursor, CursorError, Window
from connectors.retry import RetrySettings, parse_retry_after, retrying
from connectors.salesforce.pull import lanes
from connectors.salesforce.soql import window_query
from connectors.salesforce.values import converter, soql_datetime

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LOOKBACK = timedelta(minutes=10)


def test_first_window_is_full_and_capped_at_the_run_start() -> None:
    window = Cursor("salesforce", "Account").window(T0, LOOKBACK)
    assert window == Window(None, None, T0, True)


def test_next_window_rereads_the_lookback_and_never_passes_the_run_start() -> None:
    cursor = Cursor("salesforce", "Account")
    first = cursor.window(T0, LOOKBACK)
    cursor.begin(first)
    cursor.complete(first)
    assert (cursor.ts, cursor.id, cursor.in_progress) == (T0, None, False)
    later = T0 + timedelta(hours=1)
    assert cursor.window(later, LOOKBACK) == Window(T0 - LOOKBACK, None, later, False)
    assert cursor.window(later, timedelta(0)) == Window(T0, None, later, False)
    assert cursor.window(T0 - timedelta(minutes=5), LOOKBACK).upper == T0 - timedelta(minutes=5)


def test_a_paused_window_resumes_exactly_without_lookback_and_stays_full() -> None:
    cursor = Cursor("salesforce", "Account")
    window = cursor.window(T0, LOOKBACK)
    cursor.begin(window)
    cursor.advance(T0 - timedelta(days=1), "001000000000001AAA", window)
    later = T0 + timedelta(hours=2)
    assert cursor.window(later, timedelta(0)) == Window(T0 - timedelta(days=1), "001000000000001AAA", later, True)
    assert cursor.window(later, LOOKBACK, full=True).full  # a full run does not restart a full window


def test_the_cursor_refuses_to_pass_the_window_or_go_back() -> None:
    cursor = Cursor("salesforce", "Account")
    window = cursor.window(T0, LOOKBACK)
    cursor.begin(window)
    with pytest.raises(CursorError, match="past the window's end"):
        cursor.advance(T0, "001000000000001AAA", window)
    cursor.advance(T0 - timedelta(seconds=1), "001000000000005AAA", window)
    with pytest.raises(CursorError, match="backwards"):
        cursor.advance(T0 - timedelta(seconds=1), "001000000000004AAA", window)


def test_budget_guard_leaves_the_configured_share() -> None:
    budget = ApiBudget("salesforce", 0.8)
    budget.before_call()  # unknown usage: the first call (limits) goes through
    budget.observe(used=75, total=100)
    assert (budget.ceiling, budget.allowance, budget.remaining) == (80, 5, 25)
    for _ in range(5):
        budget.before_call()
    with pytest.raises(BudgetExhausted, match="at most 80%"):
        budget.before_call("query Account")
    assert budget.calls == 6 and budget.used == 80


def test_a_report_that_has_not_counted_the_calls_in_flight_does_not_lower_the_estimate() -> None:
    budget = ApiBudget("salesforce", 0.8)
    budget.before_call()
    budget.observe(used=20, total=30)  # ceiling 24
    for _ in range(3):
        budget.before_call()  # three calls in flight, from several threads: 23 by the local count
    budget.observe(used=21, total=30)  # the first one's answer: the CRM has counted only it
    assert budget.used == 23
    budget.before_call()
    with pytest.raises(BudgetExhausted):
        budget.before_call()  # the 25th call would pass the share, whatever the late reports said
    budget.observe(used=26, total=30)  # other integrations called meanwhile: the CRM's figure, higher, wins
    assert budget.used == 26
    budget.observe(used=3, total=30)  # the daily count started over: a drop larger than this run's calls
    assert budget.used == 3 and budget.allowance == 21
    budget.observe(used=2, total=50)  # another allowance: taken as is
    assert (budget.used, budget.total) == (2, 50)


def test_retry_waits_retry_after_else_backoff_and_never_retries_validation_errors() -> None:
    class Throttled(Exception):
        retry_after = 3.0

    sleeps: list[float] = []
    attempts = 0
    settings = RetrySettings(attempts=4, initial_seconds=0.5, max_seconds=2)

    def call() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise Throttled()
        if attempts == 2:
            raise ConnectionError()
        return "ok"

    for attempt in retrying(lambda e: isinstance(e, Throttled | ConnectionError),
                            lambda e: getattr(e, "retry_after", None), settings, sleep=sleeps.append):
        with attempt:
            result = call()
    assert result == "ok" and sleeps[0] == 3.0 and 0 <= sleeps[1] <= 1.0
    with pytest.raises(ValueError):
        for attempt in retrying(lambda e: False, lambda e: None, settings, sleep=sleeps.append):
            with attempt:
                raise ValueError("MALFORMED_QUERY")
    assert len(sleeps) == 2
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_window_queries() -> None:
    upper = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    full = window_query("Account", ["Id", "Name"], Window(None, None, upper, True), ordered=False)
    assert full == "SELECT Id, Name FROM Account WHERE SystemModstamp < 2025-03-01T12:00:00.123Z"
    after = window_query("Account", ["Id"], Window(T0, None, upper, False), position=(T0, "001000000000001AAA"))
    assert after == ("SELECT Id FROM Account WHERE (SystemModstamp > 2025-03-01T12:00:00.000Z OR "
                     "(SystemModstamp = 2025-03-01T12:00:00.000Z AND Id > '001000000000001AAA')) AND "
                     "SystemModstamp < 2025-03-01T12:00:00.123Z ORDER BY SystemModstamp ASC, Id ASC")
    with pytest.raises(ValueError, match="not a Salesforce id"):
        window_query("Account", ["Id"], Window(T0, "x' OR Name != '", upper, False))
    with pytest.raises(ValueError, match="API name"):
        window_query("Account", ["Id, (SELECT Id FROM Contacts)"], Window(None, None, upper, True))


def test_rest_and_bulk_values_convert_alike() -> None:
    assert converter("datetime")("2025-03-01T12:00:00.000+0000") == converter("datetime")("2025-03-01T12:00:00.000Z")
    assert converter("boolean")(True) is converter("boolean")("true") is True
    assert converter("int")("42") == converter("int")(42) == 42
    assert converter("currency")("1.5") == 1.5 and converter("currency")("") is None
    assert converter("date")("2025-03-01") == date(2025, 3, 1)
    assert converter("string")("") is None and converter("picklist")("Open") == "Open"
    assert soql_datetime(datetime(2025, 3, 1, 13, 0, tzinfo=UTC)) == "2025-03-01T13:00:00.000Z"


def test_activities_are_pulled_in_a_lane_of_their_own_after_the_parents_they_look_up() -> None:
    assert lanes(list(SALESFORCE_OBJECTS)) == [["Campaign", "Opportunity", "Task", "Event", "CampaignMember"],
                                               ["User", "Account", "Lead", "Contact"]]
    assert lanes(["Task"]) == [["Task"]]
    assert lanes(["Account", "Contact"]) == [["Account", "Contact"]]


def test_the_budget_counts_every_call_made_from_several_threads() -> None:
    budget = ApiBudget("salesforce", 1.0, used=0, total=100_000)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: [budget.before_call() for _ in range(2_000)], range(4)))
    assert budget.calls == 8_000 and budget.used == 8_000
