"""HubSpot CRM search on the sandbox: operators, sorts, paging and the 10,000-result cap."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import PublicObjectSearchRequest

from connectors.hubspot.objects import SPECS, ObjectSpec
from connectors.hubspot.search_plan import SearchPosition, search_body
from sandbox.clients import hubspot_client
from sandbox.hubspot.search import search_sql
from sandbox.runner import SandboxHandle


@pytest.fixture(scope="module")
def seeded(sandbox: SandboxHandle) -> Iterator[tuple[SandboxHandle, str, int]]:
    """Twelve tasks sharing a tag: subjects s00..s11, priorities cycling, every third without a status."""
    tag = "q" + uuid.uuid4().hex[:8]
    base = 800_000_000 + (uuid.uuid4().int % 100_000) * 1000
    priorities = ["LOW", "MEDIUM", "HIGH"]
    records = []
    for i in range(12):
        props = {"hs_task_subject": f"{tag} s{i:02d}", "hs_task_body": tag, "hs_task_priority": priorities[i % 3],
                 "hs_timestamp": f"2026-01-{i + 1:02d}T12:00:00.000Z"}
        if i % 3:
            props["hs_task_status"] = "COMPLETED" if i % 2 else "NOT_STARTED"
        records.append({"id": str(base + i), "properties": props, "createdAt": "2026-01-01T00:00:00Z",
                        "updatedAt": f"2026-02-{i + 1:02d}T00:00:00Z"})
    sandbox.hubspot_portal.load("tasks", records)
    sandbox.hubspot_limits.configure(search_per_second=1000)
    yield sandbox, tag, base
    sandbox.hubspot_limits.configure(search_per_second=5)


def search(hs: HubSpot, tag: str, *filters: dict, **kwargs) -> list[int]:
    """Indexes (0..11) of the seeded tasks matching ``filters`` AND the tag."""
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_task_body", "operator": "EQ", "value": tag}, *filters]}],
        properties=["hs_task_subject"], limit=kwargs.pop("limit", 100), **kwargs)
    response = hs.crm.objects.search_api.do_search("tasks", request)
    return [int(r.properties["hs_task_subject"][-2:]) for r in response.results]


@pytest.fixture
def hs(seeded: tuple[SandboxHandle, str, int]) -> HubSpot:
    seeded[0].reset()
    return hubspot_client(seeded[0])


@pytest.mark.parametrize(("spec", "expected"), [
    ({"propertyName": "hs_task_priority", "operator": "EQ", "value": "high"}, [2, 5, 8, 11]),
    ({"propertyName": "hs_task_priority", "operator": "NEQ", "value": "HIGH"}, [0, 1, 3, 4, 6, 7, 9, 10]),
    ({"propertyName": "hs_timestamp", "operator": "LT", "value": "2026-01-03T12:00:00.000Z"}, [0, 1]),
    ({"propertyName": "hs_timestamp", "operator": "LTE", "value": "1767441600000"}, [0, 1, 2]),
    ({"propertyName": "hs_timestamp", "operator": "GT", "value": "2026-01-10T12:00:00Z"}, [10, 11]),
    ({"propertyName": "hs_timestamp", "operator": "GTE", "value": "2026-01-10T12:00:00Z"}, [9, 10, 11]),
    ({"propertyName": "hs_timestamp", "operator": "BETWEEN", "value": "2026-01-04T00:00:00Z",
      "highValue": "2026-01-06T12:00:00Z"}, [3, 4, 5]),
    ({"propertyName": "hs_task_priority", "operator": "IN", "values": ["low", "medium"]}, [0, 1, 3, 4, 6, 7, 9, 10]),
    ({"propertyName": "hs_task_priority", "operator": "NOT_IN", "values": ["LOW", "MEDIUM"]}, [2, 5, 8, 11]),
    ({"propertyName": "hs_task_status", "operator": "HAS_PROPERTY"}, [1, 2, 4, 5, 7, 8, 10, 11]),
    ({"propertyName": "hs_task_status", "operator": "NOT_HAS_PROPERTY"}, [0, 3, 6, 9]),
    ({"propertyName": "hs_task_status", "operator": "NEQ", "value": "COMPLETED"}, [0, 2, 3, 4, 6, 8, 9, 10]),
    ({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "2026-02-12T00:00:00Z"}, [11]),
])
def test_operators(hs: HubSpot, seeded: tuple, spec: dict, expected: list[int]) -> None:
    assert search(hs, seeded[1], spec) == expected


def test_filter_groups_are_or_of_ands(hs: HubSpot, seeded: tuple) -> None:
    tag = seeded[1]
    body = {"propertyName": "hs_task_body", "operator": "EQ", "value": tag}
    request = PublicObjectSearchRequest(filter_groups=[
        {"filters": [body, {"propertyName": "hs_task_subject", "operator": "EQ", "value": f"{tag} s00"}]},
        {"filters": [body, {"propertyName": "hs_task_subject", "operator": "EQ", "value": f"{tag} s07"}]},
    ], properties=["hs_task_subject"])
    response = hs.crm.objects.search_api.do_search("tasks", request)
    assert response.total == 2 and [r.properties["hs_task_subject"] for r in response.results] == [
        f"{tag} s00", f"{tag} s07"]


def test_sort_descending_and_paging(hs: HubSpot, seeded: tuple) -> None:
    tag = seeded[1]
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}]
    pages, after = [], None
    while True:
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": [{"propertyName": "hs_task_body", "operator": "EQ", "value": tag}]}],
            sorts=sorts, properties=["hs_task_subject"], limit=5, after=after)
        response = hs.crm.objects.search_api.do_search("tasks", request)
        assert response.total == 12
        pages.append([int(r.properties["hs_task_subject"][-2:]) for r in response.results])
        if response.paging is None:
            break
        after = response.paging.next.after
    assert pages == [[11, 10, 9, 8, 7], [6, 5, 4, 3, 2], [1, 0]]


def test_results_carry_default_and_requested_properties(hs: HubSpot, seeded: tuple) -> None:
    _, tag, base = seeded
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": str(base)}]}])
    result = hs.crm.objects.search_api.do_search("tasks", request).results[0]
    assert set(result.properties) == {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
    assert result.properties["hs_lastmodifieddate"] == "2026-02-01T00:00:00.000Z" and result.id == str(base)


def test_query_searches_default_text_properties(hs: HubSpot, seeded: tuple) -> None:
    tag = seeded[1]
    response = hs.crm.objects.search_api.do_search("tasks", PublicObjectSearchRequest(query=f"{tag} s1", limit=20))
    assert response.total == 2  # s10, s11


@pytest.mark.parametrize(("body", "fragment"), [
    ({"limit": 201}, "limit must be between 1 and 200"),
    ({"after": "10000"}, "at most 10000 results"),
    ({"sorts": [{"propertyName": "hs_timestamp"}, {"propertyName": "hs_object_id"}]}, "Only one sort"),
    ({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}, "nope"),
    ({"filterGroups": [{"filters": [{"propertyName": "hs_timestamp", "operator": "LIKE", "value": "1"}]}]},
     "Invalid operator"),
    ({"filterGroups": [{"filters": []}] * 6}, "Too many filter groups"),
])
def test_invalid_searches_answer_400(seeded: tuple, body: dict, fragment: str) -> None:
    handle = seeded[0]
    from sandbox.clients import httpx_client

    with httpx_client(handle) as http:
        answer = http.post("/crm/v3/objects/tasks/search", json=body,
                           headers={"Authorization": f"Bearer {handle.hubspot_access_token}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["category"] == "VALIDATION_ERROR" and fragment in answer.json()["message"]


def test_paging_past_ten_thousand_results_fails(hs: HubSpot, seeded: tuple) -> None:
    handle = seeded[0]
    base = 700_000_000 + (uuid.uuid4().int % 10_000) * 20_000
    marker = "cap" + uuid.uuid4().hex[:8]
    handle.hubspot_portal.load("notes", ({"id": str(base + i), "properties": {"hs_note_body": marker},
                                          "updatedAt": "2026-03-01T00:00:00Z"} for i in range(10_050)))
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_note_body", "operator": "EQ", "value": marker}]}],
        limit=200, after="9900")
    response = hs.crm.objects.search_api.do_search("notes", request)
    assert response.total == 10_050 and len(response.results) == 100
    assert response.paging.next.after == "10000"  # HubSpot offers the next page, then refuses it
    request.after = response.paging.next.after
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.objects.search_api.do_search("notes", request)
    assert err.value.status == 400 and json.loads(err.value.body)["category"] == "VALIDATION_ERROR"


def test_search_responses_have_no_rate_limit_headers(hs: HubSpot, seeded: tuple) -> None:
    request = PublicObjectSearchRequest(filter_groups=[], limit=1)
    _, status, headers = hs.crm.objects.search_api.do_search_with_http_info("tasks", request)
    assert status == 200 and "X-HubSpot-RateLimit-Remaining" not in headers
    assert "X-HubSpot-Correlation-Id" in headers


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@pytest.mark.parametrize("position", [SearchPosition(1_780_000_000_000), SearchPosition(1_780_000_000_000, 4242)],
                         ids=["window", "tie"])
def test_the_connectors_searches_read_one_index_range_in_page_order(
        sandbox: SandboxHandle, spec: ObjectSpec, position: SearchPosition) -> None:
    """The pages an incremental pull asks for (a window of modification dates, or the ids after one in a
    tie) seek in the (_archived, modified, hs_object_id) index: no scan of every record, no sort."""
    obj = sandbox.hubspot_portal.object_type(spec.name)
    sql = search_sql(obj, search_body(position, 1_790_000_000_000, spec.modified_property, spec.all_properties))
    index = f"ix_{obj.table}__archived_{spec.modified_property}_hs_object_id"
    for query, params in ((sql.count, sql.params), (sql.page, [*sql.params, 200, 0])):
        plan = " | ".join(str(r[-1]) for r in sandbox.hubspot_portal.storage.fetchall(
            f"EXPLAIN QUERY PLAN {query}", params))
        assert f"USING COVERING INDEX {index} (_archived=? AND " in plan, plan
        assert "TEMP B-TREE" not in plan, plan
