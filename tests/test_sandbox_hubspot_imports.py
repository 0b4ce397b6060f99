"""CRM imports v3 on the sandbox, driven through hubspot-api-client over HTTPS: updates of existing records
from a CSV file, processed in the background, with per-row errors."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from sandbox.clients import hubspot_client
from sandbox.hubspot import imports
from sandbox.runner import SandboxHandle


@pytest.fixture
def hs(clean_sandbox: SandboxHandle) -> HubSpot:
    return hubspot_client(clean_sandbox)


def new_contacts(hs: HubSpot, n: int) -> list[str]:
    return [hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": f"t{uuid.uuid4().hex[:10]}@example.com", "jobtitle": "Analyst"})).id for _ in range(n)]


def mapping(columns: list[str], type_id: str = "0-1") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"columnObjectTypeId": type_id, "columnName": "Record ID",
                                  "propertyName": "hs_object_id", "columnType": "HUBSPOT_OBJECT_ID"}]
    return out + [{"columnObjectTypeId": type_id, "columnName": c, "propertyName": c} for c in columns]


def start(hs: HubSpot, tmp_path: Path, text: str, mappings: list[dict[str, Any]],
          operations: dict[str, str] | None = None) -> Any:
    path = tmp_path / "contacts.csv"
    path.write_text(text)
    request = {"name": "test import", "importOperations": operations or {"0-1": "UPDATE"},
               "files": [{"fileName": "contacts.csv", "fileFormat": "CSV",
                          "fileImportPage": {"hasHeader": True, "columnMappings": mappings}}]}
    return hs.crm.imports.core_api.create(files=str(path), import_request=json.dumps(request))


def finished(hs: HubSpot, import_id: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = hs.crm.imports.core_api.get_by_id(import_id)
        if found.state in ("DONE", "FAILED", "CANCELED") or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def properties(hs: HubSpot, ids: list[str], names: list[str]) -> dict[str, dict[str, str | None]]:
    return {i: {n: hs.crm.contacts.basic_api.get_by_id(i, properties=names).properties.get(n) for n in names}
            for i in ids}


def test_an_update_import_writes_its_rows_in_the_background_and_lists_the_rows_it_could_not_write(
    hs: HubSpot, clean_sandbox: SandboxHandle, tmp_path: Path
) -> None:
    a, b, rejected = new_contacts(hs, 3)
    clean_sandbox.faults.reject_writes([rejected], message="Blocked by a validation rule", fields=["jobtitle"])
    text = (f"Record ID,jobtitle,hs_lead_status\n{a},VP,OPEN\n{b},,CONNECTED\n999999999997,CTO,\n"
            f"{rejected},CEO,\n{a},Director,BOGUS\n")
    accepted = start(hs, tmp_path, text, mapping(["jobtitle", "hs_lead_status"]))
    done = finished(hs, accepted.id)
    errors = hs.crm.imports.public_imports_api.get_errors(accepted.id, include_error_message=True,
                                                          include_row_data=True).results

    assert accepted.state == "STARTED"  # answered as accepted, whether or not its rows are written by then
    assert done.state == "DONE"
    assert done.metadata.counters == {"TOTAL_ROWS": 5, "UPDATED_OBJECTS": 2, "ERRORS": 3}
    assert sorted((e.source_data.line_number, e.error_type, e.source_data.row_data[0]) for e in errors) == [
        (4, "UNKNOWN_OBJECT_ID", "999999999997"), (5, "INVALID_PROPERTY_VALUE", rejected),
        (6, "INVALID_PROPERTY_VALUE", a)]
    assert all(e.error_message and e.object_type_id == "0-1" for e in errors)
    # a blank cell leaves the property as it was; a row with an invalid value writes none of its values
    assert properties(hs, [a, b, rejected], ["jobtitle", "hs_lead_status"]) == {
        a: {"jobtitle": "VP", "hs_lead_status": "OPEN"}, b: {"jobtitle": "Analyst", "hs_lead_status": "CONNECTED"},
        rejected: {"jobtitle": "Analyst", "hs_lead_status": None}}
    logged = clean_sandbox.request_log.entries("POST", r"/crm/v3/imports/?$")
    assert [e.fields_written for e in logged] == [("hs_lead_status", "jobtitle")]


@pytest.mark.parametrize(("columns", "operations", "header", "says"), [
    (["nosuchproperty"], None, "Record ID,nosuchproperty", "does not exist"),
    (["jobtitle"], {"0-1": "UPSERT"}, "Record ID,jobtitle", "UPDATE"),
    (["jobtitle"], None, "Record ID,jobtitle,extra", "columnMappings has 2 entries"),
    (["lastmodifieddate"], None, "Record ID,lastmodifieddate", "read only"),
], ids=["unknown-property", "not-an-update", "column-count", "read-only"])
def test_an_import_the_sandbox_cannot_run_is_refused_before_anything_is_written(
    hs: HubSpot, tmp_path: Path, columns: list[str], operations: dict[str, str] | None, header: str, says: str
) -> None:
    (contact,) = new_contacts(hs, 1)
    with pytest.raises(Exception) as err:  # noqa: B017 - each API module has its own exception class
        start(hs, tmp_path, f"{header}\n{contact},x{',x' * (header.count(',') - 1)}\n", mapping(columns), operations)
    assert getattr(err.value, "status", None) == 400
    assert says in json.loads(err.value.body)["message"]  # type: ignore[attr-defined]
    assert hs.crm.imports.core_api.get_page().results == []
    assert properties(hs, [contact], ["jobtitle"]) == {contact: {"jobtitle": "Analyst"}}


def test_an_import_without_a_record_id_column_is_refused(hs: HubSpot, tmp_path: Path) -> None:
    (contact,) = new_contacts(hs, 1)
    only_title = [{"columnObjectTypeId": "0-1", "columnName": "jobtitle", "propertyName": "jobtitle"}]
    with pytest.raises(Exception) as err:  # noqa: B017
        start(hs, tmp_path, "jobtitle\nVP\n", only_title)
    assert getattr(err.value, "status", None) == 400
    assert "hs_object_id" in json.loads(err.value.body)["message"]  # type: ignore[attr-defined]


def test_a_canceled_import_stops_between_chunks_and_a_failing_one_writes_nothing(
    hs: HubSpot, clean_sandbox: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "PROCESS_CHUNK", 2)
    ids = new_contacts(hs, 6)
    text = "Record ID,jobtitle\n" + "".join(f"{i},Title {n}\n" for n, i in enumerate(ids))
    with clean_sandbox.sandbox.storage.batched():  # the import cannot write a record until this block ends
        accepted = start(hs, tmp_path, text, mapping(["jobtitle"]))
        waiting = hs.crm.imports.core_api.get_by_id(accepted.id)
        hs.crm.imports.core_api.cancel(accepted.id)
    canceled = finished(hs, accepted.id)
    clean_sandbox.sandbox.hubspot.imports.wait_processed()
    titles = [p["jobtitle"] for p in properties(hs, ids, ["jobtitle"]).values()]

    assert waiting.state in ("STARTED", "PROCESSING")
    assert canceled.state == "CANCELED"
    assert titles in (["Analyst"] * 6, ["Title 0", "Title 1"] + ["Analyst"] * 4)  # at most the chunk under way

    clean_sandbox.sandbox.hubspot.imports.fail_imports(1)
    failed = finished(hs, start(hs, tmp_path, text, mapping(["jobtitle"])).id)
    assert failed.state == "FAILED"
    assert [p["jobtitle"] for p in properties(hs, ids, ["jobtitle"]).values()] == titles
    listed = hs.crm.imports.core_api.get_page().results
    assert [i.state for i in listed] == ["FAILED", "CANCELED"]  # newest first
