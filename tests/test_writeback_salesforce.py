"""Writeback to Salesforce, against the HTTPS sandbox through simple-salesforce, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from itertools import accumulate, islice
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from sqlalchemy import Engine, select, update
from test_writeback_support import (
    bump_engagement,
    change_scores,
    later,
    salesforce_mismatches,
    seed_salesforce,
    write_requests,
    writeback_config,
)

from connectors.retry import RetrySettings
from sandbox.clients import simple_salesforce
from sandbox.runner import SandboxHandle, run_sandbox
from store.schema import Account, WritebackError, WritebackState
from writeback.catalogue import Catalogue, FieldNotInCatalogue
from writeback.diff import RecordChange
from writeback.polling import poll_waits
from writeback.provision import ProvisionReport
from writeback.provision_salesforce import provision_salesforce
from writeback.report import WritebackReport
from writeback.run import preview_writeback, run_writeback
from writeback.salesforce import SalesforceWriter
from writeback.state import OnBatch, WritebackLedger

CONFIG = writeback_config()
CATALOGUE = Catalogue(CONFIG)
COLLECTIONS = r"/composite/sobjects$"


@pytest.fixture(scope="module")
def provisioned() -> Iterator[SandboxHandle]:
    """A sandbox of this module's own, with the catalogue's fields created."""
    with run_sandbox() as handle:
        report = ProvisionReport(dry_run=False)
        provision_salesforce(simple_salesforce(handle), CATALOGUE, report)
        assert report.ok, report.fields
        yield handle


@pytest.fixture
def handle(provisioned: SandboxHandle) -> Iterator[SandboxHandle]:
    provisioned.reset()
    yield provisioned
    provisioned.reset()


@pytest.fixture
def sf(handle: SandboxHandle) -> Salesforce:
    return simple_salesforce(handle)


FAST_RETRY = RetrySettings(attempts=5, initial_seconds=0.001, max_seconds=0.01)


def fast_writer(handle: SandboxHandle, sf: Salesforce, **options: Any) -> SalesforceWriter:
    """A writer whose retry and job waits are milliseconds, so fault tests stay fast. After each wait the sandbox
    finishes the Bulk job it is processing, if any: it processes a closed job on a thread of its own, which a
    busy machine can leave behind 50 ms, and the tests count the status checks a job done in time needs."""
    options.setdefault("max_rate_limit_wait_s", 60.0)

    def wait(seconds: float) -> None:
        time.sleep(seconds)
        handle.sandbox.salesforce.jobs.wait_processed(timeout_s=30)

    return SalesforceWriter(sf, CATALOGUE, bulk_poll_seconds=0.05, retry=FAST_RETRY, sleep=wait, **options)


def assert_crm_equals_store(sf: Salesforce, engine: Engine, obj: str, crm_ids: list[str]) -> None:
    assert salesforce_mismatches(sf, engine, CONFIG, obj, crm_ids) == []


def catalogue_only(handle: SandboxHandle) -> None:
    """No request ever carried a field outside the catalogue (the record id aside)."""
    allowed = {f.api_name for obj in CATALOGUE.objects("salesforce") for f in CATALOGUE.fields("salesforce", obj)}
    for entry in handle.request_log.entries():
        assert set(entry.fields_written) <= allowed | {"Id"}, entry


def run(engine: Engine, writer: SalesforceWriter, **options: Any) -> WritebackReport:
    return run_writeback(engine, CONFIG, [writer], **options)


def by_object(report: WritebackReport) -> dict[str, Any]:
    return {o.object: o for o in report.objects}


# -- the happy path -------------------------------------------------------------------------
def test_writes_every_scored_record_then_nothing_then_only_changes(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=1000, n_leads=450, n_contacts=250)
    first = run(engine, fast_writer(handle, sf))
    objects = by_object(first)
    assert {o: (r.records, r.written, r.failed) for o, r in objects.items()} == {
        "Account": (1000, 1000, 0), "Lead": (450, 450, 0), "Contact": (250, 250, 0)}
    assert handle.request_log.count("PATCH", COLLECTIONS) == 5 + 3 + 2
    assert first.api_calls == {"salesforce": 10}
    for obj, ids in (("Account", list(seeded.accounts)), ("Lead", seeded.person_ids("Lead")),
                     ("Contact", seeded.person_ids("Contact"))):
        assert_crm_equals_store(sf, engine, obj, ids)

    handle.request_log.clear()
    second = run(engine, fast_writer(handle, sf))
    assert write_requests(handle) == [] and second.api_calls == {"salesforce": 0}
    assert second.total("changed") == 0

    # 1% of the accounts move by 5 points, 1% of the accounts by 0.4 (under the tolerance)
    account_store_ids = list(seeded.accounts.values())
    bump_engagement(engine, "account", account_store_ids[:10], by=5.0)
    bump_engagement(engine, "account", account_store_ids[10:20], by=0.4)
    handle.request_log.clear()
    third = run(engine, fast_writer(handle, sf))
    assert by_object(third)["Account"].written == 10
    assert handle.request_log.count("PATCH", COLLECTIONS) == math.ceil(10 / 200)
    sample = by_object(third)["Account"].samples[0]
    assert list(sample.changes) == ["ABM_Engagement_Score__c"]  # only the field that moved is sent
    catalogue_only(handle)


def test_grade_always_rewritten_small_moves_are_not(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=30)
    run(engine, fast_writer(handle, sf))
    ids = list(seeded.accounts.values())
    with engine.begin() as conn:
        current = dict(conn.execute(select(Account.id, Account.crm_id)).all())
    change_scores(engine, "account", ids[:3], grade=4)
    change_scores(engine, "account", ids[3:6], grade=1)
    bump_engagement(engine, "account", ids[6:12], by=0.3)
    handle.request_log.clear()
    report = run(engine, fast_writer(handle, sf))
    changed_grades = {crm_id for s in by_object(report)["Account"].samples for crm_id in [s.crm_id]}
    assert by_object(report)["Account"].changed <= 6 and changed_grades <= {current[i] for i in ids[:6]}
    assert_crm_equals_store(sf, engine, "Account", [current[i] for i in ids[:6]])


def test_force_rewrites_everything_and_dry_run_writes_nothing(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seed_salesforce(handle, engine, n_accounts=50, n_leads=10)
    preview = preview_writeback(engine, CONFIG, ["salesforce"])
    assert handle.request_log.entries() == []
    assert by_object(preview)["Account"].changed == 50 and by_object(preview)["Account"].written == 0
    sample = by_object(preview)["Account"].samples[0]
    assert sample.changes["ABM_Grade__c"][0] == "(unset)"
    run(engine, fast_writer(handle, sf))
    handle.request_log.clear()
    forced = run(engine, fast_writer(handle, sf), force=True)
    assert by_object(forced)["Account"].written == 50 and by_object(forced)["Lead"].written == 10
    assert handle.request_log.count("PATCH", COLLECTIONS) == 2


def test_matched_account_fields_on_people(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=5, n_leads=9)
    run(engine, fast_writer(handle, sf))
    rows = sf.query_all("SELECT Id, ABM_Matched_Account__c, ABM_Match_Confidence__c, ABM_Match_Reason__c FROM Lead "
                        "WHERE Id IN (" + ", ".join(f"'{i}'" for i in seeded.person_ids("Lead")) + ")")["records"]
    matched = [r for r in rows if r["ABM_Matched_Account__c"]]
    assert len(matched) == 6 and {r["ABM_Matched_Account__c"] for r in matched} <= set(seeded.accounts)
    assert all(90 <= r["ABM_Match_Confidence__c"] <= 100 for r in matched)
    assert all(r["ABM_Match_Reason__c"] is None for r in rows if not r["ABM_Matched_Account__c"])


# -- Bulk API 2.0 ---------------------------------------------------------------------------
def test_bulk_job_above_threshold_with_record_failures(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=300)
    ids = list(seeded.accounts)
    handle.faults.reject_writes(ids[:2], message="Region is required for key accounts")
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    account = by_object(report)["Account"]
    assert (account.mode, account.written, account.failed) == ("bulk", 298, 2)
    assert handle.request_log.count("PATCH", COLLECTIONS) == 0
    assert handle.request_log.count("POST", r"/jobs/ingest$") == 1
    assert handle.request_log.count("PUT", r"/jobs/ingest/[^/]+/batches$") == 1
    assert {f.message for f in account.failures} == {"Region is required for key accounts"}
    assert report.api_calls == {"salesforce": 5}  # create, upload, close, one status check, failed records
    assert_crm_equals_store(sf, engine, "Account", ids[2:])
    catalogue_only(handle)


def test_a_closed_job_is_checked_every_second_then_every_2_s_for_a_minute_then_ever_less_often() -> None:
    """A small job can be done a second after its close; one done within 20 s is seen within a second of its
    end, one done within the first minute within 2 s; one that takes minutes is checked ever less often."""
    waits = list(islice(poll_waits(0.5), 60))
    assert waits[:4] == [0.5, 1.0, 1.0, 1.0]
    checks = list(accumulate(waits))
    first_20_s = [at for at in checks if at <= 20.5]
    assert all(b - a <= 1.0 for a, b in zip(first_20_s, first_20_s[1:], strict=False))
    first_minute = [at for at in checks if at <= 61.5]
    assert all(b - a <= 2.0 for a, b in zip(first_minute, first_minute[1:], strict=False))
    assert [b - a for a, b in zip(checks, checks[1:], strict=False) if 20.5 <= a < 59.5] == [2.0] * 20
    assert next(at for at in checks if at >= 8.1) == 8.5  # the L org's Account job: seen at 15.5 s, then 9.5 s
    later = [b - a for a, b in zip(checks, checks[1:], strict=False) if a >= 59.5]
    assert later[:5] == [4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_job_done_at_its_close_is_seen_half_a_second_later(handle: SandboxHandle, sf: Salesforce,
                                                             engine: Engine) -> None:
    seed_salesforce(handle, engine, n_accounts=150)
    waits: list[float] = []  # recorded, not slept

    def wait(seconds: float) -> None:
        # what half a second gives a job of 150 records, as Salesforce runs small jobs: the time to be processed
        # (the sandbox processes a closed job on a thread of its own, which a busy machine can leave behind)
        waits.append(seconds)
        handle.sandbox.salesforce.jobs.wait_processed(timeout_s=30)

    writer = SalesforceWriter(sf, CATALOGUE, bulk_threshold=100, retry=FAST_RETRY, sleep=wait)
    report = run(engine, writer)
    assert by_object(report)["Account"].written == 150
    assert waits == [0.5]  # the default first wait; the sandbox, like a small job, is done by then


def test_changes_beyond_one_upload_go_in_as_many_jobs_one_after_another(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    """Salesforce refuses an upload over its size limit (150 MB once base64-encoded): more changes than
    one upload holds are cut into jobs, every record still written once."""
    seeded = seed_salesforce(handle, engine, n_accounts=300)
    limit = 12_000
    handle.sandbox.salesforce.jobs.max_upload_bytes = limit
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100, bulk_max_upload_bytes=limit))
    account = by_object(report)["Account"]
    assert (account.mode, account.written, account.failed) == ("bulk", 300, 0)
    uploads = handle.request_log.entries(method="PUT", path=r"/jobs/ingest/[^/]+/batches$")
    assert len(uploads) >= 3
    steps = [e.method for e in handle.request_log.entries(path=r"/jobs/ingest(/[^/]+(/batches)?)?$")]
    assert steps == ["POST", "PUT", "PATCH", "GET"] * len(uploads)  # each job ends before the next starts
    assert report.api_calls == {"salesforce": 4 * len(uploads)}
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_an_upload_over_the_limit_is_refused_by_the_sandbox(handle: SandboxHandle, sf: Salesforce,
                                                            engine: Engine) -> None:
    """The emulator holds Salesforce's limit, so a writer that ignored it would fail the test above."""
    seed_salesforce(handle, engine, n_accounts=300)
    handle.sandbox.salesforce.jobs.max_upload_bytes = 12_000
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    account = by_object(report)["Account"]
    assert account.written == 0 and "Exceeded max size limit of 12000" in (account.stopped or "")


def test_bulk_job_step_failing_once_is_retried_alone(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=150)
    handle.faults.fail(503, method="GET", path=r"/jobs/ingest/[^/]+$", times=1)  # the status check
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    assert by_object(report)["Account"].written == 150
    assert handle.request_log.count("PUT", r"/batches$") == 1  # not uploaded again
    assert report.api_calls == {"salesforce": 5}  # the clean floor of 4, plus the retried check
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_bulk_job_whose_close_answer_is_lost_runs_once(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    """The PATCH that closes the job is served but its answer lost (as when a big job's close times
    out): the retried close finds the job closed, and the writer waits for it instead of failing."""
    seeded = seed_salesforce(handle, engine, n_accounts=150)
    handle.faults.lose_answer(method="PATCH", path=r"/jobs/ingest/[^/]+$", times=1)
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    account = by_object(report)["Account"]
    assert (account.mode, account.written, account.failed) == ("bulk", 150, 0)
    assert handle.request_log.count("POST", r"/jobs/ingest$") == 1
    assert handle.request_log.count("PUT", r"/batches$") == 1  # not uploaded again
    assert handle.request_log.count("PATCH", r"/jobs/ingest/[^/]+$") == 2  # the lost close and its retry
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_account_and_contact_jobs_run_one_after_another_lead_jobs_beside(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    """The next object is diffed while a job runs, but the Contact job starts only once the Account job has
    ended: the two would contend for the accounts' row locks. A Lead update locks nothing else, so the Leads'
    job goes as soon as they are diffed, here while the Account job's close is still being answered."""
    seeded = seed_salesforce(handle, engine, n_accounts=150, n_leads=120, n_contacts=110)
    handle.faults.delay(0.5, method="PATCH", path=r"/jobs/ingest/[^/]+$", times=None)  # every job's close
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    assert {o: (r.mode, r.written, r.failed) for o, r in by_object(report).items()} == {
        "Account": ("bulk", 150, 0), "Lead": ("bulk", 120, 0), "Contact": ("bulk", 110, 0)}
    jobs = {job.object: job.id for job in handle.sandbox.salesforce.jobs.list(is_query=False)}

    def steps(obj: str) -> list[int]:  # the job's upload, close and status check, in the order they ended
        entries = handle.request_log.entries(path=rf"/jobs/ingest/{jobs[obj]}(/batches)?$")
        assert [e.method for e in entries] == ["PUT", "PATCH", "GET"]
        return [e.seq for e in entries]

    account, lead, contact = steps("Account"), steps("Lead"), steps("Contact")
    assert account[-1] < contact[0]
    assert lead[0] < account[-1]
    assert report.api_calls == {"salesforce": 12}  # each answer counted once, though two jobs ran at once
    for obj, ids in (("Account", seeded.accounts), ("Lead", seeded.people["Lead"]),
                     ("Contact", seeded.people["Contact"])):
        assert_crm_equals_store(sf, engine, obj, list(ids))


class _RecordingWriter(SalesforceWriter):
    """The real writer, noting the order in which objects' writes start. A plan ends with asking the mode of
    its changes: the Contacts' (``contacts`` changes) is held until the Account write has ended, as on an
    increment, where the Account job is done long before the Contacts are diffed; the Leads' (``leads``)
    until the Contact write has started, which it does at once only if it does not wait for their plan."""

    def __init__(self, sf: Salesforce, contacts: int, leads: int, account_outlasts_contact_plan: bool = False,
                 **options: Any) -> None:
        super().__init__(sf, CATALOGUE, bulk_poll_seconds=0.05, retry=FAST_RETRY, **options)
        self.contacts, self.leads = contacts, leads
        self.account_outlasts_contact_plan = account_outlasts_contact_plan
        self.started: list[str] = []
        self.account_written = threading.Event()
        self.contacts_planned = threading.Event()
        self.contact_started = threading.Event()
        self.held: dict[str, bool] = {}

    def mode(self, count: int) -> str:
        if count == self.contacts and "Contact" not in self.held:
            self.held["Contact"] = self.account_outlasts_contact_plan or self.account_written.wait(30)
            self.contacts_planned.set()
        elif count == self.leads and "Lead" not in self.held:
            self.held["Lead"] = self.contact_started.wait(10)
        return super().mode(count)

    def write(self, obj: str, changes: Sequence[RecordChange], on_batch: OnBatch) -> None:
        self.started.append(obj)
        if obj == "Contact":
            self.contact_started.set()
        if obj == "Account" and self.account_outlasts_contact_plan:
            assert self.contacts_planned.wait(30)
        super().write(obj, changes, on_batch)
        if obj == "Account":
            self.account_written.set()


@pytest.mark.parametrize("account_outlasts_contact_plan", [False, True], ids=["account-done-first", "account-busy"])
def test_contacts_are_planned_first_and_sent_at_once_behind_the_account_job(
    handle: SandboxHandle, sf: Salesforce, engine: Engine, account_outlasts_contact_plan: bool
) -> None:
    """The Contact write waits for the Account write and for its own plan; the Leads, written beside,
    wait for nothing. With the Account job over by the time the Contacts are planned, planning the Leads
    first would only delay the Contacts: they are sent as soon as they are planned, the Leads after. With the
    Account job still running once the Contacts are planned, the Contacts are queued behind it at once, and
    start the moment it ends, whatever the Leads' plan still takes."""
    seed_salesforce(handle, engine, n_accounts=150, n_leads=120, n_contacts=110)
    writer = _RecordingWriter(sf, contacts=110, leads=120, bulk_threshold=100,
                              account_outlasts_contact_plan=account_outlasts_contact_plan)
    report = run(engine, writer)
    assert writer.held == {"Contact": True, "Lead": True}  # the Contact write started before the Leads' plan ended
    assert writer.started == ["Account", "Contact", "Lead"]
    assert [o.object for o in report.objects] == ["Account", "Lead", "Contact"]  # the catalogue's order
    at = {o.object: o.timings for o in report.objects}  # seconds into the write-back, in the run record too
    assert at["Account"]["planned"] <= at["Account"]["sent"] <= at["Account"]["done"] <= at["Contact"]["sent"]
    assert at["Contact"]["planned"] <= at["Lead"]["planned"] <= at["Lead"]["sent"] <= at["Lead"]["done"]
    assert report.stage_report().detail["salesforce.Contact"]["timings"] == {
        step: round(s, 3) for step, s in at["Contact"].items()}
    assert {o: (r.mode, r.written, r.failed) for o, r in by_object(report).items()} == {
        "Account": ("bulk", 150, 0), "Lead": ("bulk", 120, 0), "Contact": ("bulk", 110, 0)}


def test_the_contact_job_starts_while_the_account_outcomes_are_still_being_recorded(
    handle: SandboxHandle, sf: Salesforce, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcomes are recorded on a thread of their own: recording the Accounts' (here held until the Contact
    job exists, and so forever if the Contact job waited for it) does not hold the Contact job back."""
    seeded = seed_salesforce(handle, engine, n_accounts=150, n_contacts=110)
    record, contact_job_first = WritebackLedger.record, []

    def held_until_the_contact_job(ledger: WritebackLedger, *args: Any, **kwargs: Any) -> None:
        if ledger.obj == "Account":
            deadline = time.monotonic() + 10
            while handle.request_log.count("POST", r"/jobs/ingest$") < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            contact_job_first.append(handle.request_log.count("POST", r"/jobs/ingest$") == 2)
        record(ledger, *args, **kwargs)

    monkeypatch.setattr(WritebackLedger, "record", held_until_the_contact_job)
    report = run(engine, fast_writer(handle, sf, bulk_threshold=100))
    assert contact_job_first == [True]
    at = {o.object: o.timings for o in report.objects}
    assert at["Account"]["done"] <= at["Contact"]["sent"] < at["Account"]["recorded"]
    assert at["Contact"]["done"] <= at["Contact"]["recorded"]
    assert {o: (r.written, r.failed) for o, r in by_object(report).items() if r.changed} == {
        "Account": (150, 0), "Contact": (110, 0)}
    with engine.connect() as conn:  # every outcome recorded once the run returns
        assert len(conn.execute(select(WritebackState.crm_id)).scalars().all()) == 260
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_an_outcome_that_cannot_be_recorded_fails_the_run_and_stops_the_writes_after_it(
    handle: SandboxHandle, sf: Salesforce, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Accounts' first batch cannot be recorded (the database refuses it): the writer's next batch stops
    on that error, the Contacts are not attempted, and the run fails with it."""
    seed_salesforce(handle, engine, n_accounts=450, n_contacts=50)
    handle.faults.delay(0.3, method="PATCH", path=COLLECTIONS, times=None)  # recording fails between batches

    def refused(ledger: WritebackLedger, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database or disk is full")

    monkeypatch.setattr(WritebackLedger, "record", refused)
    with pytest.raises(RuntimeError, match="disk is full"):
        run(engine, fast_writer(handle, sf, bulk_threshold=1_000))
    sent = handle.request_log.entries(method="PATCH", path=COLLECTIONS)
    assert len(sent) == 2  # the first two batches of 200 Accounts: neither the third nor the Contacts' is sent
    with engine.connect() as conn:
        assert conn.execute(select(WritebackState.crm_id)).first() is None


# -- faults ---------------------------------------------------------------------------------
def test_partial_failures_deleted_record_and_field_security_are_retried_later(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=400)
    ids = list(seeded.accounts)
    validation, locked, no_access, deleted = ids[5:7], ids[250], ids[300], ids[399]
    handle.faults.reject_writes(validation, message="Industry is required")
    handle.faults.reject_writes([locked], message="unable to obtain exclusive access to this record",
                                error_code="UNABLE_TO_LOCK_ROW")
    handle.faults.reject_writes([no_access], message="Unable to create/update fields: ABM_Grade__c. Please check "
                                "the security settings of this field", fields=["ABM_Grade__c"],
                                error_code="INVALID_FIELD_FOR_INSERT_UPDATE")
    sf.Account.delete(deleted)  # deleted in the CRM after scoring, before writing
    handle.request_log.clear()
    first = run(engine, fast_writer(handle, sf), now=later(0))
    account = by_object(first)["Account"]
    assert (account.written, account.failed) == (395, 5)
    assert handle.request_log.count("PATCH", COLLECTIONS) == 2  # failures do not block the rest
    with engine.connect() as conn:
        errors = {e.crm_id: e for e in conn.execute(select(WritebackError))}
        baseline_ids = set(conn.execute(select(WritebackState.crm_id).distinct()).scalars())
    assert set(errors) == {*validation, locked, no_access, deleted}
    assert errors[locked].code == "UNABLE_TO_LOCK_ROW" and errors[no_access].code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert "ABM_Grade__c" in errors[no_access].message and errors[deleted].code == "ENTITY_IS_DELETED"
    assert all(e.attempts == 1 and e.next_retry_at is not None for e in errors.values())
    assert not baseline_ids & set(errors)

    # before their retry time, failed records wait; nothing else needs writing
    handle.request_log.clear()
    waiting = run(engine, fast_writer(handle, sf), now=later(0.1))
    assert by_object(waiting)["Account"].deferred == 5 and write_requests(handle) == []

    # the admin fixes the rule and the field security; the next run after the wait retries only those
    handle.faults.clear()
    handle.request_log.clear()
    retry = run(engine, fast_writer(handle, sf), now=later(1))
    account = by_object(retry)["Account"]
    assert (account.changed, account.written, account.failed) == (5, 4, 1)
    assert handle.request_log.count("PATCH", COLLECTIONS) == 1
    with engine.connect() as conn:
        left = conn.execute(select(WritebackError)).all()
    assert [(e.crm_id, e.attempts) for e in left] == [(deleted, 2)]
    assert left[0].next_retry_at > errors[deleted].next_retry_at  # backoff grows
    assert_crm_equals_store(sf, engine, "Account", [i for i in ids if i != deleted])

    # the connector marks the record deleted in the store: it is no longer a target
    with engine.begin() as conn:
        conn.execute(update(Account).where(Account.crm_id == deleted).values(is_deleted=True))
    handle.request_log.clear()
    assert by_object(run(engine, fast_writer(handle, sf), now=later(48)))["Account"].changed == 0
    assert write_requests(handle) == []


def test_whole_batch_refused_is_split_to_isolate_records(handle: SandboxHandle, sf: Salesforce,
                                                         engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=200)
    handle.faults.fail(400, method="PATCH", path=COLLECTIONS, times=1,
                       body=[{"errorCode": "JSON_PARSER_ERROR", "message": "Cannot deserialize instance of double"}])
    report = run(engine, fast_writer(handle, sf))
    assert by_object(report)["Account"].written == 200
    assert handle.request_log.count("PATCH", COLLECTIONS) == 3  # the refused 200, then two halves of 100
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_a_single_record_refused_as_a_whole_is_recorded_with_the_message(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=4)
    body = [{"errorCode": "JSON_PARSER_ERROR", "message": "Cannot deserialize instance of double"}]
    handle.faults.fail(400, method="PATCH", path=COLLECTIONS, times=3, body=body)  # 4, then 2 + 2, then 1
    report = run(engine, fast_writer(handle, sf))
    account = by_object(report)["Account"]
    assert (account.written, account.failed) == (3, 1)
    assert account.failures[0].code == "JSON_PARSER_ERROR" and "deserialize" in account.failures[0].message
    assert account.failures[0].crm_id in seeded.accounts


def test_rate_limit_storm_is_waited_out_not_failed(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=600)
    handle.faults.fail(429, method="PATCH", path=COLLECTIONS, times=12)
    writer = fast_writer(handle, sf)
    report = run(engine, writer)
    account = by_object(report)["Account"]
    assert (account.written, account.failed, account.stopped) == (600, 0, None)
    assert writer.policy.rate_limit_waits == 12 and report.rate_limited_s["salesforce"] > 0
    assert handle.request_log.count("PATCH", COLLECTIONS) == 3 + 12
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_endless_rate_limiting_stops_the_run_cleanly(handle: SandboxHandle, sf: Salesforce, engine: Engine) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=300, n_leads=5, n_contacts=5)
    handle.faults.fail(429, method="PATCH", path=COLLECTIONS, times=None)
    report = run(engine, fast_writer(handle, sf, max_rate_limit_wait_s=0.05))
    objects = by_object(report)
    assert "rate limited" in (objects["Account"].stopped or "")
    assert objects["Contact"].stopped and objects["Contact"].stopped.startswith("not attempted")
    # Leads go beside the Account write: stopped by the same limit, or not attempted once it had stopped
    lead = objects["Lead"].stopped or ""
    assert lead.startswith("not attempted") or "rate limited" in lead
    with engine.connect() as conn:
        assert conn.execute(select(WritebackError)).first() is None  # waiting is not a record failure
    handle.faults.clear()
    after = run(engine, fast_writer(handle, sf))
    assert [by_object(after)[obj].written for obj in ("Account", "Lead", "Contact")] == [300, 5, 5]
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_spent_daily_budget_ends_the_run_and_the_next_one_resumes(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=10)
    handle.exhaust_daily_limit()
    report = run(engine, fast_writer(handle, sf))
    assert "daily API budget" in (by_object(report)["Account"].stopped or "")
    handle.limits.reset()
    assert by_object(run(engine, fast_writer(handle, sf)))["Account"].written == 10
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_connection_lost_halfway_then_next_run_writes_only_the_rest(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=1000)
    done = []

    def cut_after_two_batches(response: Any, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "PATCH":
            done.append(response.status_code)
            if len(done) == 2:  # from now on every write drops the connection: the worker is cut off
                handle.faults.drop(method="PATCH", path=COLLECTIONS, times=None)

    sf.session.hooks["response"].append(cut_after_two_batches)
    report = run(engine, fast_writer(handle, sf))
    sf.session.hooks["response"].remove(cut_after_two_batches)
    account = by_object(report)["Account"]
    assert account.written == 400 and account.failed == 0 and "kept failing" in (account.stopped or "")

    handle.faults.clear()
    handle.request_log.clear()
    resumed = run(engine, fast_writer(handle, sf))
    assert by_object(resumed)["Account"].written == 600
    assert handle.request_log.count("PATCH", COLLECTIONS) == math.ceil(600 / 200)
    assert_crm_equals_store(sf, engine, "Account", list(seeded.accounts))


def test_untrusted_certificate_stops_at_once_without_retries(handle: SandboxHandle, engine: Engine) -> None:
    seed_salesforce(handle, engine, n_accounts=3)
    untrusted = requests.Session()
    untrusted.trust_env = False  # the system's trust store: the sandbox CA is not in it
    sf = Salesforce(instance_url=handle.base_url, session_id=handle.salesforce_session(), session=untrusted)
    report = run(engine, fast_writer(handle, sf))
    assert "TLS verification failed" in (by_object(report)["Account"].stopped or "")
    assert handle.request_log.count("PATCH", COLLECTIONS) == 0


# -- the guard ------------------------------------------------------------------------------
def test_guard_refuses_fields_outside_the_catalogue_before_any_request(
    handle: SandboxHandle, sf: Salesforce, engine: Engine
) -> None:
    seeded = seed_salesforce(handle, engine, n_accounts=1)
    crm_id = next(iter(seeded.accounts))
    writer = fast_writer(handle, sf)
    for values in ({"Name": "Hijacked"}, {"ABM_Grade__c": "4", "OwnerId": "005000000000001AAA"},
                   {"ABM_Match_Reason__c": "contacts only"}):
        with pytest.raises(FieldNotInCatalogue):
            writer.write("Account", [RecordChange(crm_id, values)], lambda batch, outcomes: None)
    with pytest.raises(FieldNotInCatalogue):
        writer.write("Opportunity", [RecordChange(crm_id, {"ABM_Grade__c": "4"})], lambda b, o: None)
    assert handle.request_log.entries() == []
