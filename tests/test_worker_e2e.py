"""The whole product against the sandbox (both CRMs over HTTPS), on SQLite and PostgreSQL.

Runs go through the real pipeline: connectors, matcher, scorer and writers. What a run wrote is
read back from the store's writeback baseline (every field written, per record) and from the CRMs.
Worker-process behaviour (two workers, a killed worker, SIGTERM) uses real `abm run` processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crm_support import config_for, provisioned_crm
from sqlalchemy import Engine, func, select

from config import AbmConfig
from sandbox.clients import hubspot_client, simple_salesforce
from sandbox.runner import SandboxHandle
from store import migrate
from store.db import make_engine
from store.runs import get_run, list_runs
from store.schema import Account, Activity, Lock, Person, WritebackState
from worker.executor import Executor
from worker.lock import LeaseLock
from worker.pipeline import Pipeline
from worker.scheduler import queue_scheduled_run
from worker.stages import build_plan
from worker.triggers import RunOptions, request_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHandle, Path]]:
    """A small org in both CRMs, fields provisioned (`abm init`), and an abm.yaml pointing at it."""
    with provisioned_crm(tmp_path_factory.mktemp("e2e")) as crm:
        yield crm


def _executor(engine: Engine, config: AbmConfig) -> Executor:
    return Executor(engine, Pipeline(engine, config, build_plan), LeaseLock(engine), threading.Event())


def _written_since(engine: Engine, since: datetime) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(WritebackState.crm, WritebackState.object, WritebackState.crm_id)
                            .where(WritebackState.written_at >= since))
        return {tuple(r) for r in rows}


def _people_of(engine: Engine, account_crm_ids: set[str]) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(Person.crm, Person.object, Person.crm_id)
                            .where(Person.account_crm_id.in_(sorted(account_crm_ids))))
        return {tuple(r) for r in rows}


def _full_run(engine: Engine, config: AbmConfig) -> None:
    run_id = request_run(engine, RunOptions(full=True), "cli")
    assert _executor(engine, config).run_queued(run_id) == "succeeded", get_run(engine, run_id)


@pytest.fixture
def fresh_store(crm, database_url: str) -> tuple[Engine, AbmConfig, str]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    return engine, config_for(crm[1], database_url), database_url


@pytest.fixture
def store(fresh_store: tuple[Engine, AbmConfig, str]) -> tuple[Engine, AbmConfig, str]:
    """A store after a full run: the CRMs' fields already hold every score."""
    _full_run(*fresh_store[:2])
    return fresh_store


def _stored(engine: Engine, crm: str) -> tuple[int, int]:
    with engine.connect() as conn:
        accounts = conn.execute(select(func.count()).select_from(Account).where(Account.crm == crm)).scalar_one()
        people = conn.execute(select(func.count()).select_from(Person).where(Person.crm == crm)).scalar_one()
    return accounts, people


def test_both_pulls_of_a_run_run_at_once_and_commit_everything(crm, fresh_store) -> None:
    """The two pulls share one store (SQLite: one writer at a time) and both land whole."""
    engine, config, _ = fresh_store
    run_id = request_run(engine, RunOptions(full=True), "cli")
    assert _executor(engine, config).run_queued(run_id) == "succeeded", get_run(engine, run_id)
    run = get_run(engine, run_id)
    assert list(run["stages"])[2:] == ["match", "score", "writeback:salesforce", "writeback:hubspot"] or \
        list(run["stages"])[2:] == ["match", "score", "writeback:hubspot", "writeback:salesforce"]
    pulls = {name: run["stages"][name] for name in ("pull:salesforce", "pull:hubspot")}
    assert all(p["state"] == "succeeded" and p["counts"]["read"] > 0 for p in pulls.values()), pulls
    assert run["counts"]["read"] >= sum(p["counts"]["read"] for p in pulls.values())
    assert set(run["api_calls"]) == {"salesforce", "hubspot"}
    assert all(p["detail"]["peak_rss_mb"] > 0 for p in run["stages"].values())
    handle, _ = crm
    sf_accounts = simple_salesforce(handle).query("SELECT COUNT() FROM Account")["totalSize"]
    assert _stored(engine, "salesforce")[0] == sf_accounts
    assert all(n > 0 for n in (*_stored(engine, "salesforce"), *_stored(engine, "hubspot")))
    # each pull resolved its touches to the people and accounts they name, as it ended
    assert all(p["detail"]["touches_resolved"]["person"] > 0 for p in pulls.values()), pulls
    # ...and recorded how long that took, a part of the stage's time
    assert all(0 < p["detail"]["touches_resolved"]["seconds"] < p["seconds"] for p in pulls.values()), pulls
    with engine.connect() as conn:
        named = select(Person.id).where(Person.crm == Activity.crm, Person.crm_id == Activity.person_crm_id)
        left = select(func.count()).select_from(Activity).where(Activity.person_ref.is_(None), named.exists())
        assert conn.execute(left).scalar_one() == 0


def test_a_failing_pull_lets_the_other_crms_pull_commit(crm, fresh_store) -> None:
    """Salesforce's pull (the first in the plan) fails; HubSpot's, running beside it, still commits."""
    handle, _ = crm
    engine, config, _ = fresh_store
    handle.faults.fail(400, path="^/services/data/", times=None)
    try:
        run_id = request_run(engine, RunOptions(full=True), "cli")
        assert _executor(engine, config).run_queued(run_id) == "failed"
    finally:
        handle.faults.clear()
    run = get_run(engine, run_id)
    assert run["state"] == "failed" and "400" in run["error"]
    assert run["stages"]["pull:salesforce"]["state"] == "failed"
    hubspot = run["stages"]["pull:hubspot"]
    assert hubspot["state"] == "succeeded" and hubspot["counts"]["read"] > 0, hubspot
    assert run["counts"]["read"] == hubspot["counts"]["read"] and "match" not in run["stages"]
    assert _stored(engine, "hubspot")[0] > 0 and _stored(engine, "salesforce") == (0, 0)
    # The next run continues from HubSpot's committed cursors: it does not list everything again.
    run_id = request_run(engine, RunOptions(), "cli")
    assert _executor(engine, config).run_queued(run_id) == "succeeded", get_run(engine, run_id)
    again = get_run(engine, run_id)["stages"]["pull:hubspot"]
    assert again["counts"]["read"] < hubspot["counts"]["read"]
    assert _stored(engine, "salesforce")[0] > 0


def test_a_scheduled_run_after_new_activity_rewrites_exactly_the_affected_accounts(crm, store) -> None:
    handle, _ = crm
    engine, config, _ = store
    sf = simple_salesforce(handle)
    contact = sf.query("SELECT Id, AccountId FROM Contact WHERE AccountId != null ORDER BY Id LIMIT 1")["records"][0]
    sf.Task.create({"WhoId": contact["Id"], "WhatId": contact["AccountId"], "Subject": "Pricing call",
                    "TaskSubtype": "Call", "Type": "Call", "CallDurationInSeconds": 1200, "Status": "Completed",
                    "ActivityDate": datetime.now(UTC).date().isoformat()})
    hs = hubspot_client(handle)
    with engine.connect() as conn:  # a HubSpot-only company with a contact
        company, hs_contact = conn.execute(
            select(Account.crm_id, Person.crm_id).join(Person, (Person.crm == "hubspot")
                                                       & (Person.account_crm_id == Account.crm_id))
            .where(Account.crm == "hubspot", Account.linked_salesforce_id.is_(None)).order_by(Account.id).limit(1)
        ).one()
    from hubspot.crm.objects import SimplePublicObjectInputForCreate

    hs.crm.objects.meetings.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": datetime.now(UTC).isoformat(), "hs_meeting_title": "Demo",
                    "hs_meeting_outcome": "COMPLETED"},
        associations=[{"to": {"id": hs_contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                           "associationTypeId": 200}]}]))
    since = datetime.now(UTC)
    queue_scheduled_run(engine, RunOptions())
    [(run_id, state)] = _executor(engine, config).drain()
    assert state == "succeeded", get_run(engine, run_id)
    # The accounts and contacts were read beside the pulls, and beside the match stage, a process read what the
    # pulls touched (two touches: nothing of everyone).
    match = get_run(engine, run_id)["stages"]["match"]["detail"]
    assert match["read_ahead"].startswith("every account and contact read beside the pulls in "), match
    score = get_run(engine, run_id)["stages"]["score"]["detail"]
    assert score["prefetch"] == "used: what the pulls touched (the few entities touched read alone)", score

    written = _written_since(engine, since)
    with engine.connect() as conn:
        linked = {r.crm_id for r in conn.execute(select(Account.crm_id).where(
            Account.linked_salesforce_id == contact["AccountId"]))}
    affected_accounts = {("salesforce", "Account", contact["AccountId"]), ("hubspot", "companies", company)}
    affected_accounts |= {("hubspot", "companies", c) for c in linked}
    allowed = affected_accounts | _people_of(engine, {contact["AccountId"], company, *linked})
    assert {("salesforce", "Account", contact["AccountId"]), ("hubspot", "companies", company)} <= written
    assert written <= allowed, written - allowed
    # What the CRMs hold now is what the store says.
    row = sf.query(f"SELECT ABM_Engagement_Score__c FROM Account WHERE Id = '{contact['AccountId']}'")["records"][0]
    with engine.connect() as conn:
        stored = conn.execute(select(WritebackState.field_values).where(
            WritebackState.crm_id == contact["AccountId"])).scalar()["ABM_Engagement_Score__c"]
    assert float(row["ABM_Engagement_Score__c"]) == pytest.approx(float(stored))

    queue_scheduled_run(engine, RunOptions())
    [(again, _)] = _executor(engine, config).drain()
    assert get_run(engine, again)["counts"]["written"] == 0  # nothing new: nothing written


def test_a_resync_of_one_account_rewrites_only_it_and_its_people(store) -> None:
    engine, config, _ = store
    with engine.connect() as conn:
        account = conn.execute(select(Account.crm_id).join(Person, Person.account_crm_id == Account.crm_id)
                               .where(Account.crm == "salesforce").order_by(Account.id).limit(1)).scalar_one()
    since = datetime.now(UTC)
    run_id = request_run(engine, RunOptions(resync=True, accounts=(account[:15],)), "api")
    assert _executor(engine, config).run_queued(run_id) == "succeeded", get_run(engine, run_id)
    written = _written_since(engine, since)
    with engine.connect() as conn:
        linked = {r.crm_id for r in conn.execute(select(Account.crm_id).where(Account.linked_salesforce_id == account))}
    allowed = {("salesforce", "Account", account)} | {("hubspot", "companies", c) for c in linked}
    allowed |= _people_of(engine, {account, *linked})
    assert ("salesforce", "Account", account) in written and written <= allowed, written - allowed
    assert len(written & _people_of(engine, {account})) >= 1  # its people too, though nothing changed


_started: list[subprocess.Popen] = []  # this test's `abm` processes, stopped at its end whatever happened


@pytest.fixture(autouse=True)
def _no_worker_left_behind() -> Iterator[None]:
    """A test that fails while its `abm` processes still run (a timeout) must not leave them working on: they
    would hold the sandbox, the store and a core while the next tests run."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def _abm(config: Path, database_url: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABM_")}
    env |= {"ABM_CONFIG": str(config), "ABM_DATABASE_URL": database_url}
    process = subprocess.Popen([sys.executable, "-m", "worker.cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    _started.append(process)
    return process


def test_two_workers_started_together_never_run_at_once(crm, fresh_store) -> None:
    engine, _, url = fresh_store
    first, second = (_abm(crm[1], url, "run", "--quiet", "--wait", "300") for _ in range(2))
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    runs = sorted(list_runs(engine), key=lambda r: r["started_at"])
    assert len(runs) == 2 and all(r["state"] == "succeeded" for r in runs)
    assert runs[0]["finished_at"] <= runs[1]["started_at"]  # one after the other, never overlapping


def _wait_for(condition, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _slow_crm(handle: SandboxHandle) -> None:
    """Every Salesforce query takes a while: long enough to stop a worker in the middle of a run."""
    handle.faults.delay(1.5, path="/query", times=None)


def test_a_killed_worker_leaves_a_lock_that_expires_and_a_run_recorded_failed(crm, fresh_store) -> None:
    handle, path = crm
    engine, _, url = fresh_store
    _slow_crm(handle)
    try:
        victim = _abm(path, url, "run", "--quiet")
        _wait_for(lambda: any(r["state"] == "running" for r in list_runs(engine)), what="the run to start")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        with engine.connect() as conn:
            assert conn.execute(select(Lock.holder)).scalar() is not None  # the dead worker's lock stays...
    finally:
        handle.faults.clear()
    # ...until it is known dead: on SQLite at once (the kernel dropped its holder file), on PostgreSQL when its
    # lease (5 s) has run out
    survivor = _abm(path, url, "run", "--quiet", "--wait", "120")
    out = survivor.communicate(timeout=300)[0]
    assert survivor.returncode == 0, out
    dead, done = sorted(list_runs(engine, limit=2), key=lambda r: r["id"])
    assert dead["state"] == "failed" and "no heartbeat" in dead["error"]
    assert done["state"] == "succeeded"


def test_sigterm_ends_a_run_cancelled_with_its_stages_recorded(crm, fresh_store) -> None:
    handle, path = crm
    engine, _, url = fresh_store
    _slow_crm(handle)
    try:
        worker = _abm(path, url, "run", "--quiet")
        _wait_for(lambda: any(r["state"] == "running" for r in list_runs(engine)), what="the run to start")
        worker.send_signal(signal.SIGTERM)
        out = worker.communicate(timeout=120)[0]
    finally:
        handle.faults.clear()
    run = list_runs(engine, limit=1)[0]
    assert worker.returncode == 1 and run["state"] == "cancelled", out
    assert run["stages"] and list(run["stages"].values())[-1]["state"] == "cancelled"
    with engine.connect() as conn:
        assert conn.execute(select(Lock.holder)).first() is None  # released on the way out
    assert run["finished_at"] is not None and datetime.fromisoformat(run["finished_at"]) > datetime.now(
        UTC) - timedelta(minutes=5)
