"""Marketing email events and web analytics events on the sandbox (httpx and hubspot-api-client)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.requests import Request

from sandbox.clients import httpx_client, hubspot_client
from sandbox.hubspot.event_pages import KeysetPage
from sandbox.hubspot.events import email_events_query, web_events_query
from sandbox.runner import SandboxHandle

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events(sandbox: SandboxHandle) -> tuple[str, str]:
    """Seven email events for one recipient and five web events for one contact id."""
    recipient = f"e{uuid.uuid4().hex[:10]}@example.com"
    contact_id = str(500_000_000 + uuid.uuid4().int % 10_000_000)
    kinds = ["SENT", "DELIVERED", "OPEN", "CLICK", "OPEN", "SENT", "BOUNCE"]
    sandbox.hubspot_events.load_email_events(
        {"id": f"{recipient}-{i}", "created": T0 + timedelta(hours=i), "type": kind, "recipient": recipient.upper(),
         "emailCampaignId": 4242, **({"url": "https://example.com/pricing"} if kind == "CLICK" else {})}
        for i, kind in enumerate(kinds))
    web = ["e_visited_page", "e_visited_page", "e_submitted_form", "e_visited_page", "e_visited_page"]
    sandbox.hubspot_events.load_web_events(
        {"id": f"w{contact_id}-{i}", "objectType": "contact", "objectId": contact_id, "eventType": kind,
         "occurredAt": (T0 + timedelta(days=i)).isoformat(), "properties": {"hs_url": f"https://example.com/{i}"}}
        for i, kind in enumerate(web))
    return recipient, contact_id


@pytest.fixture
def http(clean_sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"Bearer {clean_sandbox.hubspot_access_token}"}
    with httpx_client(clean_sandbox, headers=auth) as client:
        yield client


def test_email_events_for_a_recipient_newest_first_with_offset_paging(http: httpx.Client, events: tuple) -> None:
    recipient = events[0]
    pages, offset = [], None
    while True:
        params = {"recipient": recipient, "limit": 3, **({"offset": offset} if offset else {})}
        body = http.get("/email/public/v1/events", params=params).json()
        pages.append([e["type"] for e in body["events"]])
        if not body["hasMore"]:
            break
        offset = body["offset"]
    assert pages == [["BOUNCE", "SENT", "OPEN"], ["CLICK", "OPEN", "DELIVERED"], ["SENT"]]
    first = http.get("/email/public/v1/events", params={"recipient": recipient, "limit": 1}).json()["events"][0]
    assert first["recipient"] == recipient and first["created"] == int((T0 + timedelta(hours=6)).timestamp() * 1000)
    assert first["emailCampaignId"] == 4242 and first["portalId"] and first["id"] == f"{recipient}-6"


def test_email_events_filters(http: httpx.Client, events: tuple) -> None:
    recipient = events[0]
    start = int((T0 + timedelta(hours=2)).timestamp() * 1000)
    end = int((T0 + timedelta(hours=4)).timestamp() * 1000)
    body = http.get("/email/public/v1/events", params={"recipient": recipient, "startTimestamp": start,
                                                       "endTimestamp": end}).json()
    assert [e["type"] for e in body["events"]] == ["OPEN", "CLICK", "OPEN"]
    clicks = http.get("/email/public/v1/events", params={"recipient": recipient, "eventType": "CLICK"}).json()
    assert [e["url"] for e in clicks["events"]] == ["https://example.com/pricing"]
    bad = http.get("/email/public/v1/events", params={"eventType": "LIKED"})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    one = clicks["events"][0]
    assert http.get(f"/email/public/v1/events/{one['created']}/{one['id']}").json() == one


def test_web_events_through_the_sdk(clean_sandbox: SandboxHandle, events: tuple) -> None:
    hs = hubspot_client(clean_sandbox)
    contact_id = events[1]
    page = hs.events.events_api.get_page(object_type="contact", object_id=int(contact_id), limit=2,
                                         sort=["ASCENDING"])
    assert [e.event_type for e in page.results] == ["e_visited_page", "e_visited_page"]
    assert page.results[0].object_type == "CONTACT" and page.results[0].object_id == contact_id
    assert page.results[0].properties == {"hs_url": "https://example.com/0"}
    rest = hs.events.events_api.get_page(object_type="contact", object_id=int(contact_id), limit=10,
                                         sort=["ASCENDING"], after=page.paging.next.after)
    assert [e.occurred_at for e in rest.results] == [T0 + timedelta(days=i) for i in range(2, 5)]
    forms = hs.events.events_api.get_page(object_type="contact", object_id=int(contact_id),
                                          event_type="e_submitted_form")
    assert len(forms.results) == 1 and forms.paging is None
    recent = hs.events.events_api.get_page(object_type="contact", object_id=int(contact_id),
                                           occurred_after=T0 + timedelta(days=2, hours=1))
    assert [e.occurred_at for e in recent.results] == [T0 + timedelta(days=4), T0 + timedelta(days=3)]
    assert "e_submitted_form" in hs.events.events_api.get_types().event_types


def test_web_events_need_object_type_with_object_id(http: httpx.Client) -> None:
    answer = http.get("/events/v3/events", params={"objectId": "1"})
    assert answer.status_code == 400 and "objectType" in answer.json()["message"]


def test_invalid_generated_events_are_refused(sandbox: SandboxHandle) -> None:
    with pytest.raises(ValueError, match="LIKED"):
        sandbox.hubspot_events.load_email_events([{"created": T0, "type": "LIKED", "recipient": "a@b.example"}])
    with pytest.raises(ValueError, match="objectType"):
        sandbox.hubspot_events.load_web_events([{"objectType": "widget", "objectId": 1, "eventType": "e",
                                                 "occurredAt": T0}])


# -- keyset paging ----------------------------------------------------------------------------
def _pages(http: httpx.Client, path: str, params: dict[str, Any], items: str, token: str) -> list[str]:
    """Every event id, page after page (two events a page), following the endpoint's own token."""
    ids: list[str] = []
    position = None
    while True:
        body = http.get(path, params={**params, "limit": 2, **({token: position} if position else {})}).json()
        ids += [e["id"] for e in body[items]]
        position = body["paging"]["next"]["after"] if token == "after" and body.get("paging") else (
            body["offset"] if token == "offset" and body["hasMore"] else None)
        if position is None:
            return ids


def test_events_sharing_a_timestamp_are_paged_once_each_in_id_order(sandbox: SandboxHandle,
                                                                    http: httpx.Client) -> None:
    contact_id = str(600_000_000 + uuid.uuid4().int % 10_000_000)
    recipient = f"tie{uuid.uuid4().hex[:10]}@example.com"
    ids = [f"tie-{contact_id}-{n}" for n in "cadbe"]
    sandbox.hubspot_events.load_web_events({"id": i, "objectType": "contact", "objectId": contact_id,
                                            "eventType": "e_visited_page", "occurredAt": T0} for i in ids)
    sandbox.hubspot_events.load_email_events({"id": i, "type": "OPEN", "recipient": recipient, "created": T0}
                                             for i in ids)
    web = {"objectType": "contact", "objectId": contact_id}
    assert _pages(http, "/events/v3/events", {**web, "sort": "ASCENDING"}, "results", "after") == sorted(ids)
    assert _pages(http, "/events/v3/events", web, "results", "after") == sorted(ids, reverse=True)
    assert _pages(http, "/email/public/v1/events", {"recipient": recipient}, "events", "offset") == sorted(
        ids, reverse=True)


def _plan(sandbox: SandboxHandle, query: KeysetPage) -> str:
    sql, params = query.sql(100)
    rows = sandbox.hubspot_portal.storage.fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    return " | ".join(str(r[-1]) for r in rows)


def _request(params: dict[str, Any]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                    "query_string": urlencode(params, doseq=True).encode()})


@pytest.mark.parametrize(("params", "index"), [
    ({"objectType": "contact", "eventType": "e_visited_page"}, "object_type_event_type_occurred_at_id"),
    ({"objectType": "contact"}, "object_type_occurred_at_id"),
    ({"objectType": "contact", "objectId": "42", "sort": "DESCENDING"}, "object_type_object_id_occurred_at_id"),
    ({}, "occurred_at_id"),
])
def test_a_deep_web_events_page_seeks_in_an_index_that_covers_filter_and_order(
        sandbox: SandboxHandle, params: dict[str, Any], index: str) -> None:
    """The connector's request (window, sort, a page token from deep in the list): one index seek on
    the filter and the position, rows read in page order, no sort of everything before the page."""
    after = base64.urlsafe_b64encode(b"1780000000000:w-1234").decode()  # a page token from mid-2026
    query = web_events_query(sandbox.hubspot_portal, _request({
        "sort": "ASCENDING", "occurredAfter": "2026-01-01T00:00:00.000Z", "occurredBefore": "2026-11-01T00:00:00Z",
        "after": after, **params}))
    plan = _plan(sandbox, query)
    assert f"USING INDEX ix_hs_web_events_{index} (" in plan and "(occurred_at,id)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(("params", "index"), [
    ({"eventType": "OPEN"}, "type_created_id"),
    ({"recipient": "someone@example.com"}, "recipient_created_id"),
    ({}, "created_id"),
])
def test_a_deep_email_events_page_seeks_in_an_index_that_covers_filter_and_order(
        sandbox: SandboxHandle, params: dict[str, Any], index: str) -> None:
    query = email_events_query(_request({"startTimestamp": 1_600_000_000_000, "endTimestamp": 1_800_000_000_000,
                                         "offset": base64.urlsafe_b64encode(b"1700000000000:e-9").decode(), **params}))
    plan = _plan(sandbox, query)
    assert f"USING INDEX ix_hs_email_events_{index} (" in plan and "(created,id)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
