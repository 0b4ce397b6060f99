"""The Salesforce pull under production's failures, injected by the sandbox: every disturbed pull must end
with the same store as an undisturbed one (429 storms, 503s, dropped connections, an expired session,
failing or refused Bulk jobs, the daily limit spent mid-run and the budget guard)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from test_sync_salesforce_support import OBJECTS, build_org, cursors, sf_config, store_snapshot

from connectors.result import Progress
from connectors.salesforce import pull_salesforce, reader
from sandbox.runner import SandboxHandle, run_sandbox
from sandbox.salesforce.context import API_LIMIT
from store import migrate
from store.db import make_engine
from store.runs import get_run
from store.schema import Activity

# For the tests that count calls or act at a given object, which only a pull of one object at a time makes
# certain: with the activities pulled beside the other objects, what the other lane sends meanwhile varies.
ONE_LANE = {"activities_beside_records": False}


@pytest.fixture
def org() -> Iterator[SandboxHandle]:
    """A sandbox with a small org of every object."""
    with run_sandbox() as handle:
        build_org(handle.sandbox.salesforce.org, accounts=50)
        yield handle


def undisturbed(handle: SandboxHandle, tmp_path: Path) -> dict[str, list[tuple[str, ...]]]:
    """The store a pull without faults ends with (on its own SQLite file)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'undisturbed.db'}")
    migrate.upgrade(engine)
    assert not pull_salesforce(engine, sf_config(handle, tmp_path), full=True).paused
    handle.reset()
    return store_snapshot(engine)


class Sleeps(list[float]):
    """Records the waits the pull asks for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def faulted(handle: SandboxHandle) -> list[str]:
    return [f"{e.method} {e.endpoint} {e.status}" for e in handle.request_log.entries() if e.fault]


def test_429_storms_wait_as_long_as_retry_after_says(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.faults.fail(429, "POST", r"/jobs/query$", times=3, retry_after=7)
    org.faults.fail(429, "GET", r"/jobs/query/[^/]+/results", times=4, retry_after=2.5)
    sleeps = Sleeps()
    result = pull_salesforce(engine, sf_config(org, tmp_path), full=True, sleep=sleeps)
    assert not result.paused and len(faulted(org)) == 7
    assert sleeps.count(7.0) == 3 and sleeps.count(2.5) == 4
    assert store_snapshot(engine) == expected
    org.faults.fail(429, "GET", r"/queryAll", times=5, retry_after=1)
    again = pull_salesforce(engine, sf_config(org, tmp_path), sleep=sleeps)
    assert not again.paused and sleeps.count(1.0) == 5 and store_snapshot(engine) == expected


def test_503s_and_500s_are_retried_with_backoff(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.faults.fail(503, "GET", r"/limits", times=2)
    org.faults.fail(503, "GET", r"/describe", times=3)
    org.faults.fail(500, "GET", r"/jobs/query/[^/]+$", times=2)
    sleeps = Sleeps()
    config = sf_config(org, tmp_path, pull={"retry_initial_seconds": 0.5, "retry_max_seconds": 4})
    result = pull_salesforce(engine, config, full=True, sleep=sleeps)
    assert not result.paused and len(faulted(org)) == 7 and len(sleeps) >= 7
    assert all(0 <= s <= 4 for s in sleeps)
    assert store_snapshot(engine) == expected


def test_a_validation_error_is_not_retried(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    org.faults.fail(400, "GET", r"/describe", times=1,
                    body=[{"errorCode": "INVALID_TYPE", "message": "sObject type 'User' is not supported."}])
    sleeps = Sleeps()
    with pytest.raises(Exception, match="INVALID_TYPE"):
        pull_salesforce(engine, sf_config(org, tmp_path, pull=ONE_LANE), sleep=sleeps)
    assert sleeps == [] and org.request_log.count(path="/describe") == 1
    runs = [get_run(engine, 1)]
    assert runs[0]["state"] == "failed" and "INVALID_TYPE" in runs[0]["error"]


def test_dropped_connections_mid_pull(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.faults.drop("GET", r"/jobs/query/[^/]+/results", times=2)
    result = pull_salesforce(engine, sf_config(org, tmp_path), full=True, sleep=Sleeps())
    assert not result.paused and len(faulted(org)) == 2
    assert store_snapshot(engine) == expected
    org.faults.drop("GET", r"/queryAll/01g", times=1)  # the second page of a REST query
    config = sf_config(org, tmp_path, sync={"page_size": 200}, pull={"objects": ["Task"], "bulk": False})
    again = pull_salesforce(engine, config, full=True, sleep=Sleeps())
    assert not again.paused and again.objects["Task"].read == 250 and len(faulted(org)) == 3
    assert store_snapshot(engine) == expected


def test_an_expired_session_signs_in_again_mid_pull(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)

    def expire_after_accounts(event: Progress) -> None:
        if event.event == "done" and event.object in ("Account", "Contact"):
            org.expire_sessions()

    result = pull_salesforce(engine, sf_config(org, tmp_path, pull=ONE_LANE), full=True,
                             progress=expire_after_accounts)
    assert not result.paused
    assert org.request_log.count(path="/oauth2/token") == 3
    assert len([e for e in org.request_log.entries() if e.status == 401]) == 2
    assert store_snapshot(engine) == expected


def test_an_expired_session_met_by_both_lanes_signs_in_again_once(org: SandboxHandle, engine: Engine,
                                                                   tmp_path) -> None:
    expected = undisturbed(org, tmp_path)

    def expire_after_accounts(event: Progress) -> None:
        if event.event == "done" and event.object == "Account":
            org.expire_sessions()

    result = pull_salesforce(engine, sf_config(org, tmp_path), full=True, progress=expire_after_accounts)
    assert not result.paused
    assert org.request_log.count(path="/oauth2/token") == 2  # the run's sign-in, and one more for both lanes
    assert len([e for e in org.request_log.entries() if e.status == 401]) in (1, 2)  # each lane meets it at most once
    assert store_snapshot(engine) == expected


def test_a_failed_bulk_job_falls_back_to_rest(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.sandbox.salesforce.jobs.fail_query_jobs(1)  # the first object's job (User) ends Failed
    result = pull_salesforce(engine, sf_config(org, tmp_path, pull=ONE_LANE), full=True)
    assert result.objects["User"].method == "bulk+rest"
    assert all(result.objects[o].method == "bulk" for o in OBJECTS[1:])
    assert any("Bulk API query not used" in w and "Failed" in w for w in result.warnings)
    assert store_snapshot(engine) == expected


def test_query_jobs_that_take_time_are_polled_until_complete(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.sandbox.salesforce.jobs.query_job_seconds = 0.3  # as Salesforce takes time to run a query
    result = pull_salesforce(engine, sf_config(org, tmp_path), full=True)
    assert all(result.objects[o].method == "bulk" for o in OBJECTS)
    jobs = org.request_log.count("POST", r"/jobs/query$")
    statuses = [e.status for e in org.request_log.entries() if e.method == "GET" and e.endpoint.endswith("{job}")]
    assert jobs == len(OBJECTS) and len(statuses) > jobs and set(statuses) == {200}  # InProgress, then done
    assert store_snapshot(engine) == expected


def test_bulk_refused_to_the_user_means_rest_for_every_object(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    org.faults.fail(403, "POST", r"/jobs/query$", times=None, body=[
        {"errorCode": "API_DISABLED_FOR_ORG", "message": "Bulk API is not enabled for this user"}])
    result = pull_salesforce(engine, sf_config(org, tmp_path), full=True)
    assert not result.paused and {c.method for c in result.objects.values()} == {"rest"}
    # asked once per lane at most (both may ask before the first refusal), then REST for the rest of the run
    assert org.request_log.count("POST", r"/jobs/query$") in (1, 2)
    assert store_snapshot(engine) == expected


def test_daily_limit_spent_mid_run_pauses_then_resumes_to_the_same_store(
    org: SandboxHandle, engine: Engine, tmp_path
) -> None:
    expected = undisturbed(org, tmp_path)
    config = sf_config(org, tmp_path, sync={"max_api_share": 1.0}, pull=ONE_LANE)

    def other_integrations_spend_the_day(event: Progress) -> None:
        if event == Progress("Lead", "start"):
            org.exhaust_daily_limit()

    paused = pull_salesforce(engine, config, full=True, progress=other_integrations_spend_the_day)
    assert paused.paused and "daily API limit" in (paused.pause_reason or "")
    run = get_run(engine, paused.run_id)
    assert run["state"] == "paused" and run["stages"]["pull_salesforce"]["state"] == "paused"
    saved = cursors(engine)
    assert {o for o, (ts, _, state) in saved.items() if ts is not None} == {"User", "Account", "Campaign"}
    assert paused.objects["Account"].done and not paused.objects["Lead"].done
    org.limits.reset()
    resumed = pull_salesforce(engine, config)
    assert not resumed.paused and get_run(engine, resumed.run_id)["state"] == "succeeded"
    assert store_snapshot(engine) == expected


def test_a_pause_inside_a_bulk_job_resumes_the_same_job(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    config = sf_config(org, tmp_path, sync={"max_api_share": 1.0}, pull={"bulk_page_records": 1000, **ONE_LANE})

    def spend_before_results(event: Progress) -> None:
        if event.object == "Task" and event.event == "estimate":
            org.exhaust_daily_limit()

    paused = pull_salesforce(engine, config, full=True, progress=spend_before_results)
    assert paused.paused
    task_state = cursors(engine)["Task"][2]
    assert task_state["bulk"]["locator"] is None and task_state["window"]["full"] is True
    org.limits.reset()
    org.request_log.clear()
    resumed = pull_salesforce(engine, config)
    assert not resumed.paused and resumed.objects["Task"].method.startswith("bulk")
    assert org.request_log.count("GET", "/jobs/query/" + task_state["bulk"]["job"]) >= 2  # status, results
    assert org.request_log.count("POST", r"/jobs/query$") == 2  # Event and CampaignMember only
    assert store_snapshot(engine) == expected


class Crash(Exception):
    """The worker process dies (killed, out of memory) in the middle of a Bulk results page."""


def test_a_crash_inside_a_bulk_page_keeps_what_was_committed_and_reads_the_page_again(
    org: SandboxHandle, engine: Engine, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is stored in transactions of STORE_BATCH records (one transaction of 250,000 held SQLite's write
    lock longer than the HubSpot pull beside it would wait): a crash keeps the batches committed, and the
    next run reads the page again from its saved locator."""
    expected = undisturbed(org, tmp_path)
    monkeypatch.setattr(reader, "STORE_BATCH", 40)
    config = sf_config(org, tmp_path, pull={"bulk_page_records": 1000})
    batches: list[int] = []

    def crash_on_the_third_batch(event: Progress) -> None:
        if event.object == "Task" and event.event == "records":
            batches.append(event.read)
            if len(batches) == 2:
                raise Crash

    with pytest.raises(Crash):
        pull_salesforce(engine, config, full=True, progress=crash_on_the_third_batch)
    assert batches == [40, 80]
    with engine.connect() as conn:  # the first two batches' touches (an open task is none), committed
        committed = conn.execute(select(func.count()).where(Activity.object == "Task")).scalar_one()
    assert 0 < committed <= 80
    task_state = cursors(engine)["Task"][2]
    assert task_state["bulk"]["locator"] is None  # the page they came from is still the one to read
    resumed = pull_salesforce(engine, config)
    assert not resumed.paused and resumed.objects["Task"].method.startswith("bulk")
    assert store_snapshot(engine) == expected


def test_the_budget_guard_stops_before_the_configured_share(org: SandboxHandle, engine: Engine, tmp_path) -> None:
    expected = undisturbed(org, tmp_path)
    used = org.limits.used(API_LIMIT)
    org.limits.set_maximum(API_LIMIT, used + 30)  # the run may use 80% of it: 24 calls, short of a full pull
    config = sf_config(org, tmp_path)
    paused = pull_salesforce(engine, config, full=True)
    assert paused.paused and "sync.max_api_share" in (paused.pause_reason or "")
    assert paused.api_used is not None and paused.api_used <= int(0.8 * (used + 30))
    assert paused.allowance == 0 and [e for e in org.request_log.entries() if e.status == 403] == []
    org.limits.set_maximum(API_LIMIT, 100_000)
    resumed = pull_salesforce(engine, config)
    assert not resumed.paused and store_snapshot(engine) == expected


def test_a_field_removed_since_the_last_describe_is_described_again(
    org: SandboxHandle, engine: Engine, tmp_path
) -> None:
    expected = undisturbed(org, tmp_path)
    config = sf_config(org, tmp_path)
    pull_salesforce(engine, config, full=True)
    org.request_log.clear()
    org.faults.fail(400, "GET", r"/queryAll", times=1, body=[
        {"errorCode": "INVALID_FIELD", "message": "No such column 'Rating__c' on entity 'User'."}])
    result = pull_salesforce(engine, config)
    assert not result.paused and org.request_log.count(path="/describe") == 1
    assert store_snapshot(engine) == expected
