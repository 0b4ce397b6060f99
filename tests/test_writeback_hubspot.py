"""Writeback to HubSpot (batch updates, and CRM imports for large sets), against the HTTPS sandbox through
hubspot-api-client, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from sqlalchemy import Engine, select
from test_writeback_support import (
    bump_engagement,
    change_scores,
    crm_value,
    expected_values,
    later,
    seed_hubspot,
    write_requests,
    writeback_config,
)

from connectors.hubspot.ratelimit import HubSpotRateLimiter
from connectors.retry import RetrySettings
from sandbox.clients import hubspot_client
from sandbox.runner import SandboxHandle, run_sandbox
from store.schema import WritebackError
from writeback import run as writeback_run
from writeback.catalogue import Catalogue, FieldNotInCatalogue
from writeback.diff import RecordChange
from writeback.hubspot import HubSpotWriter
from writeback.hubspot_import import import_file, split_clears
from writeback.provision import ProvisionReport
from writeback.provision_hubspot import provision_hubspot
from writeback.report import WritebackReport
from writeback.run import run_writeback
from writeback.state import RecordOutcome

CONFIG = writeback_config()
CATALOGUE = Catalogue(CONFIG)
BATCH_UPDATE = r"/crm/v3/objects/\w+/batch/update$"
FAST_RETRY = RetrySettings(attempts=5, initial_seconds=0.001, max_seconds=0.01)


@pytest.fixture(scope="module")
def provisioned() -> Iterator[SandboxHandle]:
    """A sandbox of this module's own, with the catalogue's properties created."""
    with run_sandbox() as handle:
        report = ProvisionReport(dry_run=False)
        provision_hubspot(hubspot_client(handle), CATALOGUE, CONFIG, report)
        assert report.ok, report.fields
        yield handle


@pytest.fixture
def handle(provisioned: SandboxHandle) -> Iterator[SandboxHandle]:
    provisioned.reset()
    yield provisioned
    provisioned.reset()


@pytest.fixture
def hs(handle: SandboxHandle) -> HubSpot:
    return hubspot_client(handle)


def fast_writer(hs: HubSpot, **options: Any) -> HubSpotWriter:
    options.setdefault("max_rate_limit_wait_s", 60.0)
    options.setdefault("limiter", HubSpotRateLimiter(1000, 4.0))
    return HubSpotWriter(hs, CATALOGUE, retry=FAST_RETRY, **options)


def read_back(hs: HubSpot, obj: str, ids: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

    out = {}
    for start in range(0, len(ids), 100):
        body = BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + 100]], properties=names,
            properties_with_history=[])
        for record in hs.crm.objects.batch_api.read(obj, body).results:
            out[record.id] = record.properties
    return out


def assert_crm_equals_store(hs: HubSpot, engine: Engine, obj: str, crm_ids: list[str]) -> None:
    expected = expected_values(engine, CONFIG, "hubspot", obj, crm_ids)
    kinds = {f.api_name: f.type for f in CATALOGUE.fields("hubspot", obj)}
    raw = read_back(hs, obj, crm_ids, list(kinds))
    actual = {i: {name: crm_value(kinds[name], props.get(name)) for name in kinds} for i, props in raw.items()}
    assert set(actual) == set(expected)
    mismatches = [(i, name, expected[i][name], actual[i][name]) for i in expected for name in kinds
                  if expected[i][name] != actual[i][name]]
    assert mismatches == []


def catalogue_only(handle: SandboxHandle) -> None:
    allowed = {f.api_name for obj in CATALOGUE.objects("hubspot") for f in CATALOGUE.fields("hubspot", obj)}
    for entry in handle.request_log.entries():
        assert set(entry.fields_written) <= allowed, entry


def run(engine: Engine, writer: HubSpotWriter, **options: Any) -> WritebackReport:
    return run_writeback(engine, CONFIG, [writer], **options)


def by_object(report: WritebackReport) -> dict[str, Any]:
    return {o.object: o for o in report.objects}


def test_writes_every_scored_record_then_nothing_then_only_changes(
    handle: SandboxHandle, hs: HubSpot, engine: Engine
) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=1000, n_contacts=250)
    first = run(engine, fast_writer(hs))
    objects = by_object(first)
    assert {o: (r.records, r.written, r.failed) for o, r in objects.items()} == {
        "companies": (1000, 1000, 0), "contacts": (250, 250, 0)}
    assert handle.request_log.count("POST", BATCH_UPDATE) == 10 + 3 == first.api_calls["hubspot"]
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))
    assert_crm_equals_store(hs, engine, "contacts", seeded.person_ids("contacts"))

    handle.request_log.clear()
    second = run(engine, fast_writer(hs))
    assert write_requests(handle) == [] and second.api_calls == {"hubspot": 0}

    bump_engagement(engine, "account", list(seeded.accounts.values())[:10], by=7.0)
    bump_engagement(engine, "person", list(seeded.people["contacts"].values())[:3], by=7.0)
    handle.request_log.clear()
    third = run(engine, fast_writer(hs))
    assert by_object(third)["companies"].written == 10 and by_object(third)["contacts"].written == 3
    assert handle.request_log.count("POST", r"/companies/batch/update$") == math.ceil(10 / 100)
    assert handle.request_log.count("POST", r"/contacts/batch/update$") == math.ceil(3 / 100)
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts)[:10])
    catalogue_only(handle)


def test_207_partial_failures_and_archived_records(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=250)
    ids = list(seeded.accounts)
    handle.faults.reject_writes(ids[3:5], message="Annual revenue is required for this stage")
    archived = ids[200]
    handle.hubspot_portal.archive(handle.hubspot_portal.object_type("companies"), int(archived))
    report = run(engine, fast_writer(hs), now=later(0))
    companies = by_object(report)["companies"]
    assert (companies.written, companies.failed) == (247, 3)
    assert handle.request_log.count("POST", BATCH_UPDATE) == 3
    with engine.connect() as conn:
        errors = {e.crm_id: e for e in conn.execute(select(WritebackError))}
    assert set(errors) == {*ids[3:5], archived}
    assert errors[archived].code == "OBJECT_NOT_FOUND"
    assert "Annual revenue is required" in errors[ids[3]].message

    handle.faults.clear()
    handle.request_log.clear()
    retry = run(engine, fast_writer(hs), now=later(1))
    assert (by_object(retry)["companies"].written, by_object(retry)["companies"].failed) == (2, 1)
    assert handle.request_log.count("POST", BATCH_UPDATE) == 1
    assert_crm_equals_store(hs, engine, "companies", [i for i in ids if i != archived])


def test_whole_batch_refused_is_split(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=100)
    body = {"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid input JSON on line 1"}
    handle.faults.fail(400, method="POST", path=BATCH_UPDATE, times=1, body=body)
    report = run(engine, fast_writer(hs))
    assert by_object(report)["companies"].written == 100
    assert handle.request_log.count("POST", BATCH_UPDATE) == 3
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_429_storm_is_waited_out(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=300)
    handle.faults.fail(429, method="POST", path=BATCH_UPDATE, times=8, retry_after=0.01)
    writer = fast_writer(hs)
    report = run(engine, writer)
    companies = by_object(report)["companies"]
    assert (companies.written, companies.failed, companies.stopped) == (300, 0, None)
    assert writer.policy.rate_limit_waits == 8
    assert handle.request_log.count("POST", BATCH_UPDATE) == 3 + 8 == writer.api_calls
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_daily_limit_stops_cleanly(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=20)
    handle.exhaust_hubspot_daily_limit()
    report = run(engine, fast_writer(hs))
    assert "daily API limit" in (by_object(report)["companies"].stopped or "")
    handle.reset()
    assert by_object(run(engine, fast_writer(hs)))["companies"].written == 20
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_daily_limit_reached_with_batches_in_flight(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=1000)
    handle.hubspot_limits.configure(daily=3)  # three calls left today
    try:
        report = run(engine, fast_writer(hs, concurrency=4))
    finally:
        handle.hubspot_limits.configure(daily=1_000_000)
        handle.reset()
    companies = by_object(report)["companies"]
    assert (companies.written, companies.failed) == (300, 0) and "daily API limit" in (companies.stopped or "")
    handle.request_log.clear()
    resumed = run(engine, fast_writer(hs, concurrency=4))
    assert by_object(resumed)["companies"].written == 700
    assert handle.request_log.count("POST", BATCH_UPDATE) == 7
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_parts_are_sent_while_the_rest_is_planned(handle: SandboxHandle, hs: HubSpot, engine: Engine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """HubSpot's first batch goes out once the first part is planned, not the whole object: the planning of
    the last part waits for it (and would wait in vain if parts were held back)."""
    seeded = seed_hubspot(handle, engine, n_companies=500)
    monkeypatch.setattr(writeback_run, "STREAMED_CHUNK", 100)
    plan_changes, parts, sent_before_last = writeback_run.plan_changes, [], []

    def planned_while_sending(records: Any, *args: Any, **kwargs: Any) -> Any:
        parts.append(len(records))
        if len(parts) == 5:
            deadline = time.monotonic() + 10
            while handle.request_log.count("POST", BATCH_UPDATE) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            sent_before_last.append(handle.request_log.count("POST", BATCH_UPDATE))
        return plan_changes(records, *args, **kwargs)

    monkeypatch.setattr(writeback_run, "plan_changes", planned_while_sending)
    report = run(engine, fast_writer(hs))
    companies = by_object(report)["companies"]
    assert parts == [100] * 5 and sent_before_last[0] >= 1
    assert (companies.records, companies.changed, companies.written, companies.mode) == (500, 500, 500, "batch")
    assert handle.request_log.count("POST", BATCH_UPDATE) == 5
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_a_part_that_stops_the_portal_stops_the_parts_after_it(handle: SandboxHandle, hs: HubSpot, engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=1000, n_contacts=40)
    monkeypatch.setattr(writeback_run, "STREAMED_CHUNK", 100)
    handle.hubspot_limits.configure(daily=3)  # three calls left today: three parts of companies
    try:
        report = run(engine, fast_writer(hs, concurrency=4))
    finally:
        handle.hubspot_limits.configure(daily=1_000_000)
        handle.reset()
    companies, contacts = by_object(report)["companies"], by_object(report)["contacts"]
    assert (companies.written, companies.failed) == (300, 0) and "daily API limit" in (companies.stopped or "")
    assert contacts.written == 0 and contacts.changed == 40
    assert (contacts.stopped or "").startswith("not attempted: ") and "daily API limit" in contacts.stopped
    handle.request_log.clear()
    resumed = run(engine, fast_writer(hs, concurrency=4))
    assert (by_object(resumed)["companies"].written, by_object(resumed)["contacts"].written) == (700, 40)
    assert handle.request_log.count("POST", BATCH_UPDATE) == 7 + 1
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))
    assert_crm_equals_store(hs, engine, "contacts", list(seeded.people["contacts"]))


def test_guard(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=1)
    crm_id = next(iter(seeded.accounts))
    with pytest.raises(FieldNotInCatalogue):
        fast_writer(hs).write("companies", [RecordChange(crm_id, {"name": "Hijacked"})], lambda b, o: None)
    with pytest.raises(FieldNotInCatalogue):
        fast_writer(hs).write("companies", [RecordChange(crm_id, {"abm_match_reason": "x"})], lambda b, o: None)
    assert handle.request_log.entries() == []


# -- large writebacks as CRM imports ---------------------------------------------------------
IMPORT = r"/crm/v3/imports/?$"


def clearing(engine: Engine, obj: str, crm_ids: list[str]) -> list[str]:
    """The records whose first write empties a field (no value to write there): those fields go by batch."""
    expected = expected_values(engine, CONFIG, "hubspot", obj, crm_ids)
    return [i for i in crm_ids if any(v is None for v in expected[i].values())]


def test_an_object_past_the_threshold_goes_as_one_import_and_its_clears_by_batch(
    handle: SandboxHandle, hs: HubSpot, engine: Engine
) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=450, n_contacts=60)
    companies = list(seeded.accounts)
    empties = clearing(engine, "companies", companies)
    writer = fast_writer(hs, import_threshold=100)
    report = run(engine, writer)
    objects = by_object(report)

    assert 0 < len(empties) < len(companies)  # some records have an empty field to clear, most do not
    assert {o: (r.written, r.failed, r.mode) for o, r in objects.items()} == {
        "companies": (450, 0, "import"), "contacts": (60, 0, "batch")}
    assert handle.request_log.count("POST", IMPORT) == 1
    assert handle.request_log.count("POST", r"/companies/batch/update$") == math.ceil(len(empties) / 100)
    assert handle.request_log.count("POST", r"/contacts/batch/update$") == 1
    polls = handle.request_log.count("GET", r"/crm/v3/imports/\d+$")
    assert writer.api_calls == report.api_calls["hubspot"] == 1 + polls + 1 + math.ceil(len(empties) / 100) + 1
    assert_crm_equals_store(hs, engine, "companies", companies)
    assert_crm_equals_store(hs, engine, "contacts", seeded.person_ids("contacts"))
    catalogue_only(handle)

    handle.request_log.clear()
    again = run(engine, fast_writer(hs, import_threshold=100))
    assert by_object(again)["companies"].changed == 0 and handle.request_log.count("POST") == 0


def test_rows_an_import_refuses_are_failed_records_retried_by_the_next_run(
    handle: SandboxHandle, hs: HubSpot, engine: Engine
) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=250)
    ids = list(seeded.accounts)
    rejected, archived = ids[3:5], ids[200]  # each with its clears too, for some
    handle.faults.reject_writes(rejected, message="Annual revenue is required for this stage")
    handle.hubspot_portal.archive(handle.hubspot_portal.object_type("companies"), int(archived))
    report = run(engine, fast_writer(hs, import_threshold=100), now=later(0))
    companies = by_object(report)["companies"]
    with engine.connect() as conn:
        errors = {e.crm_id: e for e in conn.execute(select(WritebackError))}

    assert (companies.written, companies.failed, companies.mode) == (247, 3, "import")
    assert {i: e.code for i, e in errors.items()} == {
        rejected[0]: "INVALID_PROPERTY_VALUE", rejected[1]: "INVALID_PROPERTY_VALUE", archived: "UNKNOWN_OBJECT_ID"}
    assert "Annual revenue is required" in errors[rejected[0]].message

    handle.faults.clear()
    handle.request_log.clear()
    retry = run(engine, fast_writer(hs, import_threshold=100), now=later(1))
    assert (by_object(retry)["companies"].written, by_object(retry)["companies"].failed) == (2, 1)
    assert handle.request_log.count("POST", BATCH_UPDATE) == 1  # three records: under the threshold
    assert_crm_equals_store(hs, engine, "companies", [i for i in ids if i != archived])


def test_an_import_the_portal_refuses_goes_by_batch_and_the_writer_stops_asking(
    handle: SandboxHandle, hs: HubSpot, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=150, n_contacts=150)
    body = {"status": "error", "category": "MISSING_SCOPES", "message": "This app hasn't been granted all "
            "required scopes to make this call. Read more about required scopes here: https://developers."
            "hubspot.com/scopes."}
    handle.faults.fail(403, method="POST", path=IMPORT, times=None, body=body)  # as a portal without the scope
    writer = fast_writer(hs, import_threshold=100)
    with caplog.at_level(logging.WARNING, logger="writeback.hubspot"):
        report = run(engine, writer)

    assert {o: (r.written, r.failed) for o, r in by_object(report).items()} == {
        "companies": (150, 0), "contacts": (150, 0)}
    assert handle.request_log.count("POST", IMPORT) in (1, 2)  # each object asked at most once
    assert writer.mode(150) == "batch" and writer.streams
    assert "crm.import" in caplog.text
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))
    assert_crm_equals_store(hs, engine, "contacts", seeded.person_ids("contacts"))

    bump_engagement(engine, "account", list(seeded.accounts.values()), by=7.0)
    handle.request_log.clear()
    again = run(engine, writer)
    assert by_object(again)["companies"].written == 150 and handle.request_log.count("POST", IMPORT) == 0


def test_a_spent_daily_limit_stops_an_import_cleanly(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=150)
    handle.exhaust_hubspot_daily_limit()
    report = run(engine, fast_writer(hs, import_threshold=100))
    assert "daily API limit" in (by_object(report)["companies"].stopped or "")
    assert handle.request_log.count("POST", IMPORT) == 1 and handle.request_log.count("POST", BATCH_UPDATE) == 0
    handle.reset()
    assert by_object(run(engine, fast_writer(hs, import_threshold=100)))["companies"].written == 150
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_an_import_that_fails_as_a_whole_goes_by_batch(handle: SandboxHandle, hs: HubSpot, engine: Engine) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=250)
    handle.sandbox.hubspot.imports.fail_imports(1)
    report = run(engine, fast_writer(hs, import_threshold=100))
    assert (by_object(report)["companies"].written, by_object(report)["companies"].failed) == (250, 0)
    assert handle.request_log.count("POST", IMPORT) == 1
    assert handle.request_log.count("POST", r"/companies/batch/update$") >= 3
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


def test_an_import_still_running_at_the_timeout_is_canceled_and_its_records_sent_again(
    handle: SandboxHandle, hs: HubSpot, engine: Engine
) -> None:
    seeded = seed_hubspot(handle, engine, n_companies=150)
    change_scores(engine, "account", seeded.accounts.values(), predictive=50.0)  # nothing to clear by batch
    with handle.sandbox.storage.batched():  # the import cannot write a record meanwhile
        report = run(engine, fast_writer(hs, import_threshold=100, import_timeout_s=0.2), now=later(0))
    handle.sandbox.hubspot.imports.wait_processed()
    companies = by_object(report)["companies"]

    assert handle.request_log.count("POST", r"/crm/v3/imports/\d+/cancel$") == 1
    assert (companies.written, companies.failed) == (0, 150)
    assert {f.code for f in companies.failures} == {"IMPORT_CANCELED"}

    retry = run(engine, fast_writer(hs, import_threshold=100), now=later(1))
    assert by_object(retry)["companies"].written == 150
    assert_crm_equals_store(hs, engine, "companies", list(seeded.accounts))


# -- the pieces -----------------------------------------------------------------------------
def test_clears_are_split_from_the_values_an_import_carries() -> None:
    changes = [RecordChange("1", {"a": "x", "b": None}), RecordChange("2", {"a": "y"}),
               RecordChange("3", {"b": None})]
    settable, clearing_, split = split_clears(changes)
    assert settable == [RecordChange("1", {"a": "x"}), RecordChange("2", {"a": "y"})]
    assert clearing_ == [RecordChange("1", {"b": None}), RecordChange("3", {"b": None})]
    recorded: list[tuple[list[str], list[RecordOutcome]]] = []
    split.held(lambda batch, outcomes: recorded.append(([c.crm_id for c in batch], outcomes)))(
        clearing_, [RecordOutcome("1", False, "X", "refused"), RecordOutcome("3", True)])
    assert recorded == [(["3"], [RecordOutcome("3", True)])]  # record 1 waits for its import's outcome
    joined = split.joined(settable, [RecordOutcome("1", True), RecordOutcome("2", True)])
    # one outcome per record: record 1 whole, failed as its clear failed
    assert joined == ([changes[0], changes[1]], [RecordOutcome("1", False, "X", "refused"), RecordOutcome("2", True)])


def test_the_import_file_names_every_property_once_and_leaves_the_others_blank() -> None:
    fields = CATALOGUE.fields("hubspot", "companies")
    scored = next(f.api_name for f in fields if f.type == "datetime")
    changes = [RecordChange("11", {"abm_grade": "4", scored: "2026-12-06T06:23:59.190Z"}),
               RecordChange("12", {"abm_top_reasons": 'demo, "pricing" x3'})]
    columns, data = import_file(changes, fields)
    assert columns == ["abm_grade", scored, "abm_top_reasons"]
    assert data.decode().splitlines() == [
        f"Record ID,abm_grade,{scored},abm_top_reasons", "11,4,1796538239190,", '12,,,"demo, ""pricing"" x3"']
