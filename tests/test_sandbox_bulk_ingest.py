"""Bulk API 2.0 ingest jobs on the sandbox: per-record results in upload order, stored values.

The sandbox processes a job in chunks (one transaction each, the chunk's records read at its
start), so every test that cares about order or repeated records also runs with tiny chunks,
where records and repeats straddle chunk boundaries.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import uuid
from typing import Any

import pytest
from simple_salesforce import Salesforce

from sandbox.clients import simple_salesforce
from sandbox.runner import SandboxHandle
from sandbox.salesforce import bulk2
from sandbox.salesforce.schema import SfField
from sandbox.storage import Storage


@pytest.fixture
def sf(clean_sandbox: SandboxHandle) -> Salesforce:
    return simple_salesforce(clean_sandbox)


@pytest.fixture(params=[2000, 2, 1], ids=["one-chunk", "chunks-of-2", "chunks-of-1"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(bulk2, "PROCESS_CHUNK", request.param)
    return int(request.param)


def ingest(sf: Salesforce, obj: str, operation: str, data: str, **extra: Any) -> dict[str, Any]:
    job = sf.restful("jobs/ingest", method="POST", json={"object": obj, "operation": operation,
                                                          "contentType": "CSV", "lineEnding": "LF", **extra})
    headers = {**sf.headers, "Content-Type": "text/csv"}
    put = sf.session.put(f"{sf.bulk2_url}ingest/{job['id']}/batches", data=data.encode(), headers=headers)
    assert put.status_code == 201, put.text
    closed = sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "UploadComplete"})
    assert closed["state"] == "UploadComplete"
    out: dict[str, Any] = {"info": finished(sf, job["id"])}
    for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
        response = sf.session.get(f"{sf.bulk2_url}ingest/{job['id']}/{kind}/", headers=sf.headers)
        out[kind] = list(csv.reader(io.StringIO(response.text)))
    return out


def finished(sf: Salesforce, job_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The job's info once it is done: the sandbox processes a closed job in the background, as Salesforce does."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = sf.restful(f"jobs/ingest/{job_id}")
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info
        assert time.monotonic() < deadline, f"job {job_id} still {info['state']} after {timeout_s} s"
        time.sleep(0.01)


def to_csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def contacts(sf: Salesforce, count: int, tag: str) -> list[str]:
    return [sf.Contact.create({"LastName": f"{tag}-{i}", "FirstName": "Old"})["id"] for i in range(count)]


def stored(sf: Salesforce, ids: list[str], fields: str = "Id, FirstName, LastName, Name, Email, Title") -> dict:
    marks = ", ".join(f"'{i}'" for i in ids)
    return {r["Id"]: r for r in sf.query_all(f"SELECT {fields} FROM Contact WHERE Id IN ({marks})")["records"]}


def test_update_job_with_record_failures_keeps_upload_order(
    clean_sandbox: SandboxHandle, sf: Salesforce, chunk: int
) -> None:
    tag = uuid.uuid4().hex[:8]
    ok1, gone, ok2, rejected, ok3 = contacts(sf, 5, tag)
    sf.Contact.delete(gone)
    clean_sandbox.faults.reject_writes([rejected], message="No (test)", fields=["Title"])
    missing = ok1[:3] + "5bZZZZZZZZZZ"
    header = ["Id", "Title", "Email"]
    rows = [
        [ok1, "CEO", f"{tag}@example.com"],
        [missing, "CTO", ""],
        [gone, "CFO", ""],
        [ok2[:15], "COO", "#N/A"],                  # 15-character id
        ["not-an-id", "CMO", ""],
        [ok3, "x" * 200, ""],                       # too long for Title (128)
        [rejected, "VP", ""],
        [ok3[:15] + ok3[15:].lower(), "", "bad-address"],
        ["", "Nobody", ""],
        [ok1, "Chair"],                             # a column short
        [ok3, "Founder", ""],
    ]
    result = ingest(sf, "Contact", "update", to_csv([header, *rows]))

    assert result["info"]["state"] == "JobComplete"
    assert (result["info"]["numberRecordsProcessed"], result["info"]["numberRecordsFailed"]) == (11, 8)
    assert result["successfulResults"] == [
        ["sf__Id", "sf__Created", *header],
        [ok1, "false", *rows[0]],
        [ok2, "false", *rows[3]],
        [ok3, "false", *rows[10]],
    ]
    assert result["failedResults"] == [
        ["sf__Id", "sf__Error", *header],
        [missing, f"INVALID_CROSS_REFERENCE_KEY:invalid cross reference id: {missing}: --", *rows[1]],
        [gone, "ENTITY_IS_DELETED:entity is deleted: --", *rows[2]],
        ["not-an-id", "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id: not-an-id: --", *rows[4]],
        [ok3, f"STRING_TOO_LONG:Title: data value too large: {'x' * 40} (max length=128):Title --", *rows[5]],
        [rejected, "FIELD_CUSTOM_VALIDATION_EXCEPTION:No (test):Title --", *rows[6]],
        [rows[7][0], "INVALID_EMAIL_ADDRESS:Email: invalid email address: bad-address:Email --", *rows[7]],
        ["", "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id: : --", *rows[8]],
        ["", "INVALID_FIELD:row has a different number of columns than the header:--", *rows[9]],
    ]
    assert result["unprocessedrecords"] == [header]
    after = stored(sf, [ok1, ok2, ok3, rejected])
    assert (after[ok1]["Title"], after[ok1]["Email"]) == ("CEO", f"{tag}@example.com")
    assert (after[ok2]["Title"], after[ok2]["Email"]) == ("COO", None)
    assert after[ok3]["Title"] == "Founder"
    assert after[rejected]["Title"] is None


def test_a_record_named_twice_keeps_both_writes(sf: Salesforce, chunk: int) -> None:
    tag = uuid.uuid4().hex[:8]
    (one,) = contacts(sf, 1, tag)
    before = sf.Contact.get(one)
    rows = [["Id", "FirstName", "LastName"], [one, "Ada", ""], [one, "", f"Lovelace-{tag}"], [one[:15], "", ""]]
    result = ingest(sf, "Contact", "update", to_csv(rows))

    assert [r[0] for r in result["successfulResults"][1:]] == [one, one, one]
    after = sf.Contact.get(one)
    assert after["Name"] == f"Ada Lovelace-{tag}"  # derived from the first row's FirstName and the second's LastName
    assert after["SystemModstamp"] == after["LastModifiedDate"] >= before["LastModifiedDate"]


def test_a_field_created_after_a_job_is_written_and_read_by_the_next(
    clean_sandbox: SandboxHandle, sf: Salesforce
) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = contacts(sf, 3, tag)
    first = ingest(sf, "Contact", "update", to_csv([["Id", "Title"], *[[i, "Before"] for i in ids]]))
    assert first["info"]["numberRecordsFailed"] == 0
    sf.Contact.get(ids[0])  # a REST read before the field exists, too

    name = f"T{tag}__c"
    clean_sandbox.sandbox.salesforce.org.schema.add_field(
        "Contact", SfField(name, "double", custom=True, precision=5, scale=1))
    second = ingest(sf, "Contact", "update", to_csv([["Id", name, "Title"], *[[i, "4.5", "After"] for i in ids]]))

    assert second["info"]["numberRecordsFailed"] == 0
    assert [r[0] for r in second["successfulResults"][1:]] == ids
    assert {r[name] for r in stored(sf, ids, f"Id, Title, {name}").values()} == {4.5}
    assert sf.Contact.get(ids[0])[name] == 4.5


def test_delete_job_names_each_record_once_it_is_in_the_recycle_bin(
    clean_sandbox: SandboxHandle, sf: Salesforce, chunk: int
) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b, rejected = contacts(sf, 3, tag)
    clean_sandbox.faults.reject_writes([rejected])
    rows = [["Id"], [a], [b[:15]], [a], [rejected], ["003000000000000"]]
    result = ingest(sf, "Contact", "delete", to_csv(rows))

    assert result["successfulResults"] == [["sf__Id", "sf__Created", "Id"], [a, "false", a], [b, "false", b[:15]]]
    assert [r[:2] for r in result["failedResults"][1:]] == [
        [a, f"ENTITY_IS_DELETED:invalid cross reference id: {a}: --"],
        [rejected, "FIELD_CUSTOM_VALIDATION_EXCEPTION:Update rejected by a validation rule (sandbox fault): --"],
        ["003000000000000", "INVALID_CROSS_REFERENCE_KEY:invalid cross reference id: 003000000000000: --"],
    ]
    deleted = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE LastName LIKE '{tag}-%'", include_deleted=True)
    assert {r["Id"]: r["IsDeleted"] for r in deleted["records"]} == {a: True, b: True, rejected: False}


def test_upsert_by_id_creates_and_updates_in_upload_order(sf: Salesforce, chunk: int) -> None:
    tag = uuid.uuid4().hex[:8]
    old, gone = contacts(sf, 2, tag)
    sf.Contact.delete(gone)
    rows = [["Id", "LastName"], ["", f"{tag}-new"], [old, f"{tag}-renamed"], [gone, f"{tag}-x"], [old, ""]]
    result = ingest(sf, "Contact", "upsert", to_csv(rows), externalIdFieldName="Id")

    successes = result["successfulResults"][1:]
    assert [(r[1], r[2]) for r in successes] == [("true", ""), ("false", old), ("false", old)]
    assert successes[1][0] == successes[2][0] == old
    assert result["failedResults"][1:] == [[gone, "ENTITY_IS_DELETED:entity is deleted: --", gone, f"{tag}-x"]]
    assert sf.Contact.get(successes[0][0])["LastName"] == f"{tag}-new"
    assert sf.Contact.get(old)["Name"] == f"Old {tag}-renamed"


def test_insert_job_reports_each_record(sf: Salesforce, chunk: int) -> None:
    tag = uuid.uuid4().hex[:8]
    rows = [["LastName", "Email"], [f"{tag}-a", ""], ["", ""], [f"{tag}-b", "nope"], [f"{tag}-c", "c@example.com"]]
    result = ingest(sf, "Contact", "insert", to_csv(rows))

    assert [r[1:] for r in result["successfulResults"][1:]] == [["true", *rows[1]], ["true", *rows[4]]]
    assert [r[1].split(":")[0] for r in result["failedResults"][1:]] == ["REQUIRED_FIELD_MISSING",
                                                                         "INVALID_EMAIL_ADDRESS"]
    created = {r["Id"] for r in sf.query_all(f"SELECT Id FROM Contact WHERE LastName LIKE '{tag}-%'")["records"]}
    assert created == {r[0] for r in result["successfulResults"][1:]}


def test_a_closed_job_is_processed_in_the_background_and_an_abort_stops_it_between_chunks(
    clean_sandbox: SandboxHandle, sf: Salesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk2, "PROCESS_CHUNK", 2)
    tag = uuid.uuid4().hex[:8]
    ids = contacts(sf, 6, tag)
    rows = [[record_id, f"Title {n}"] for n, record_id in enumerate(ids)]
    job = sf.restful("jobs/ingest", method="POST", json={"object": "Contact", "operation": "update",
                                                          "contentType": "CSV", "lineEnding": "LF"})
    headers = {**sf.headers, "Content-Type": "text/csv"}
    sf.session.put(f"{sf.bulk2_url}ingest/{job['id']}/batches", data=to_csv([["Id", "Title"], *rows]).encode(),
                   headers=headers)
    with clean_sandbox.sandbox.storage.batched():  # the job cannot write a record until this block ends
        closed = sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "UploadComplete"})
        waiting = sf.restful(f"jobs/ingest/{job['id']}")
        aborted = sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "Aborted"})
    info = finished(sf, job["id"])

    assert closed["state"] == "UploadComplete"  # answered at once, not once the records are written
    assert (waiting["state"], waiting["numberRecordsProcessed"]) in (("UploadComplete", 0), ("InProgress", 0))
    assert aborted["state"] == info["state"] == "Aborted"
    written = [r[2:] for r in csv.reader(io.StringIO(sf.session.get(
        f"{sf.bulk2_url}ingest/{job['id']}/successfulResults/", headers=sf.headers).text))][1:]
    left = list(csv.reader(io.StringIO(sf.session.get(
        f"{sf.bulk2_url}ingest/{job['id']}/unprocessedrecords/", headers=sf.headers).text)))[1:]
    assert len(written) in (0, 2)  # at most the chunk under way when the abort came
    assert written + left == rows  # every record either written or listed as unprocessed, in upload order
    titles = {record_id: r["Title"] for record_id, r in stored(sf, ids).items()}
    assert titles == {record_id: title if [record_id, title] in written else None for record_id, title in rows}


# -- the pieces -----------------------------------------------------------------------------
def test_field_names_follow_added_fields(clean_sandbox: SandboxHandle) -> None:
    org = clean_sandbox.sandbox.salesforce.org
    obj = org.object("Lead")
    before = obj.field_names()
    name = f"F{uuid.uuid4().hex[:8]}__c"
    org.schema.add_field("Lead", SfField(name, "string", custom=True, length=20))
    assert obj.field_names() == [*before, name]
    lead = org.create(obj, {"LastName": "X", "Company": "Y", name: "z"}, org.integration_user_id)
    assert org.row(obj, lead)[name] == "z"  # type: ignore[index]


def test_batched_keeps_what_ran_before_an_error_and_holds_other_threads_off() -> None:
    storage = Storage()
    storage.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError), storage.batched():
        storage.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert storage.fetchall("SELECT x FROM t") == [(1,)]

    with pytest.raises(RuntimeError), storage.transaction(), storage.batched():  # nested: adds nothing
        storage.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    assert storage.fetchall("SELECT x FROM t") == [(1,)]

    seen: list[list[tuple[int]]] = []
    with storage.batched():
        storage.execute("INSERT INTO t VALUES (3)")
        reader = threading.Thread(target=lambda: seen.append(storage.fetchall("SELECT x FROM t ORDER BY x")))
        reader.start()
        reader.join(0.2)
        assert reader.is_alive()  # waits for the batch
        storage.execute("INSERT INTO t VALUES (4)")
    reader.join(5)
    assert seen == [[(1,), (3,), (4,)]]
