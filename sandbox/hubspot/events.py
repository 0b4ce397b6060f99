"""Marketing engagement: email events (``/email/public/v1/events``) and web analytics events
(``/events/v3/events``), stored as HubSpot sends them and served with each API's own paging.

Email events page newest first with an opaque ``offset`` and ``hasMore``; web analytics events
page with ``paging.next.after``. Both are filtered by time window, type and recipient/object
the way connectors pull them incrementally. Events are loaded in bulk from the generator and
can be appended while the sandbox runs (new activity between two syncs).

Pages are keyset pages (``event_pages``) on indexes that each lead with a filter the endpoints
take (object type, event type, recipient) and end with the page order (timestamp, id), so every
page costs the same however deep a connector pages.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.hubspot.context import HubSpotContext, api_endpoint, json_response, query_bool, query_int
from sandbox.hubspot.errors import not_found, validation
from sandbox.hubspot.event_pages import KeysetPage
from sandbox.hubspot.portal import PORTAL_ID, HubSpotPortal
from sandbox.hubspot.schema import HubSpotSchema
from sandbox.hubspot.values import iso_ms, parse_timestamp
from sandbox.storage import Storage

EMAIL_TABLE = "hs_email_events"
WEB_TABLE = "hs_web_events"
EMAIL_EVENT_TYPES = ("SENT", "DROPPED", "PROCESSED", "DELIVERED", "DEFERRED", "BOUNCE", "OPEN", "CLICK",
                     "STATUSCHANGE", "SPAMREPORT", "SUPPRESSED", "PRINT", "FORWARD")
STANDARD_WEB_EVENT_TYPES = ("e_visited_page", "e_submitted_form", "e_clicked_cta", "e_viewed_cta",
                            "e_opened_email", "e_clicked_email_link")
EMAIL_PAGE_DEFAULT, EMAIL_PAGE_MAX = 1000, 1000
# HubSpot's reference for /events/v3/events gives ``limit`` no maximum; 100 is the largest page any
# description of it states, so the sandbox serves no more than that (a connector tuned here to a
# larger page could not rely on getting it from HubSpot).
WEB_PAGE_DEFAULT, WEB_PAGE_MAX = 100, 100
BATCH_ROWS = 20_000
# Equality filters that lead the events' indexes (each index then ends with timestamp, id).
EMAIL_INDEXES: tuple[tuple[str, ...], ...] = ((), ("type",), ("recipient",))
WEB_INDEXES: tuple[tuple[str, ...], ...] = ((), ("object_type",), ("object_type", "event_type"),
                                            ("object_type", "object_id"))


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(":".join(str(p) for p in parts).encode()).decode()


def _uncursor(raw: str, name: str) -> tuple[int, str]:
    try:
        stamp, _, event_id = base64.urlsafe_b64decode(raw.encode()).decode().partition(":")
        return int(stamp), event_id
    except (ValueError, UnicodeDecodeError):
        raise validation(f"{name} must be the value the previous page returned, got {raw!r}") from None


def _timestamp_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return parse_timestamp(raw)
    except (ValueError, OverflowError):
        raise validation(f"{name} must be epoch milliseconds or an ISO 8601 datetime, got {raw!r}") from None


class EventStore:
    def __init__(self, storage: Storage, schema: HubSpotSchema) -> None:
        self.storage = storage
        self.schema = schema
        storage.create_table(EMAIL_TABLE, {"id": "TEXT", "created": "INTEGER", "type": "TEXT", "recipient": "TEXT",
                                           "campaign": "INTEGER", "body": "TEXT"}, "id")
        for leading in EMAIL_INDEXES:
            storage.create_index(EMAIL_TABLE, [*leading, "created", "id"])
        storage.create_table(WEB_TABLE, {"id": "TEXT", "object_type": "TEXT", "object_id": "TEXT",
                                         "event_type": "TEXT", "occurred_at": "INTEGER", "body": "TEXT"}, "id")
        for leading in WEB_INDEXES:
            storage.create_index(WEB_TABLE, [*leading, "occurred_at", "id"])

    # -- loading ---------------------------------------------------------------------------
    def _insert(self, table: str, columns: list[str], rows: Iterable[list[Any]]) -> int:
        count, pending = 0, []
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)

        def flush() -> None:
            with self.storage.transaction() as conn:
                conn.executemany(f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})", pending)

        for row in rows:
            pending.append(row)
            count += 1
            if len(pending) >= BATCH_ROWS:
                flush()
                pending = []
        if pending:
            flush()
        return count

    def load_email_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Store email events in the API's shape (``created`` may be ms or a datetime)."""
        def rows() -> Iterable[list[Any]]:
            for raw in events:
                event = dict(raw)
                event_type = str(event.get("type", "")).upper()
                if event_type not in EMAIL_EVENT_TYPES:
                    raise ValueError(f"email event {event.get('id')!r} has type {event.get('type')!r}; expected one "
                                     f"of {', '.join(EMAIL_EVENT_TYPES)}")
                event["type"] = event_type
                event["created"] = created = parse_timestamp(event["created"])
                event.setdefault("id", str(uuid.uuid4()))
                event.setdefault("portalId", PORTAL_ID)
                event.setdefault("appId", 113)
                event.setdefault("appName", "BatchEmail")
                recipient = str(event.get("recipient") or "").lower()
                event["recipient"] = recipient
                campaign = event.get("emailCampaignId")
                yield [str(event["id"]), created, event_type, recipient, int(campaign) if campaign else None,
                       json.dumps(event, default=str)]

        return self._insert(EMAIL_TABLE, ["id", "created", "type", "recipient", "campaign", "body"], rows())

    def load_web_events(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Store web analytics events: ``{"id", "objectType", "objectId", "eventType", "occurredAt", "properties"}``."""
        def rows() -> Iterable[list[Any]]:
            for raw in events:
                event = dict(raw)
                obj = self.schema.get(str(event.get("objectType", "")))
                if obj is None:
                    raise ValueError(f"web event {event.get('id')!r} has unknown objectType "
                                     f"{event.get('objectType')!r}")
                occurred = parse_timestamp(event["occurredAt"])
                event.setdefault("id", str(uuid.uuid4()))
                event["objectType"] = obj.singular.upper()
                event["objectId"] = str(event["objectId"])
                event["occurredAt"] = iso_ms(occurred)
                event["properties"] = {k: (v if isinstance(v, str) else json.dumps(v, default=str))
                                       for k, v in (event.get("properties") or {}).items()}
                yield [str(event["id"]), obj.name, event["objectId"], str(event["eventType"]), occurred,
                       json.dumps(event)]

        return self._insert(WEB_TABLE, ["id", "object_type", "object_id", "event_type", "occurred_at", "body"],
                            rows())

    def web_event_types(self) -> list[str]:
        stored = {r[0] for r in self.storage.fetchall(f"SELECT DISTINCT event_type FROM {WEB_TABLE}")}
        return sorted(stored | set(STANDARD_WEB_EVENT_TYPES))


def _path_int(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not str(raw).isdigit():
        raise not_found("Email event not found")
    return int(raw)


def email_events_query(request: Request) -> KeysetPage:
    """The page ``GET /email/public/v1/events`` asks for: newest first, past the ``offset`` event."""
    params = request.query_params
    query = KeysetPage(EMAIL_TABLE, "created", descending=True)
    start, end = _timestamp_param(request, "startTimestamp"), _timestamp_param(request, "endTimestamp")
    if start is not None:
        query.since(start)
    if end is not None:
        query.until(end)
    event_type = params.get("eventType")
    if event_type:
        if event_type.upper() not in EMAIL_EVENT_TYPES:
            raise validation(f"eventType must be one of {', '.join(EMAIL_EVENT_TYPES)}, got {event_type!r}")
        query.filter("type = ?", event_type.upper())
    if params.get("recipient"):
        query.filter("recipient = ?", params["recipient"].lower())
    if params.get("campaignId"):
        query.filter("campaign = ?", query_int(request, "campaignId", 0))
    if query_bool(request, "excludeFilteredEvents"):
        query.filter("json_extract(body, '$.filteredEvent') IS NOT 1")
    if params.get("offset"):
        query.resume_after(*_uncursor(params["offset"], "offset"))
    return query


def web_events_query(portal: HubSpotPortal, request: Request) -> KeysetPage:
    """The page ``GET /events/v3/events`` asks for: by ``sort`` (newest first by default), past ``after``."""
    params = request.query_params
    sort = (params.get("sort") or "DESCENDING").upper()
    if sort not in ("ASCENDING", "DESCENDING", "OCCURREDAT", "-OCCURREDAT"):
        raise validation(f"sort must be ASCENDING or DESCENDING, got {params.get('sort')!r}")
    query = KeysetPage(WEB_TABLE, "occurred_at", descending=sort in ("DESCENDING", "-OCCURREDAT"))
    object_type, object_id = params.get("objectType"), params.get("objectId")
    if object_id and not object_type:
        raise validation("objectId needs objectType (e.g. objectType=contact&objectId=123)")
    if object_type:
        query.filter("object_type = ?", portal.object_type(object_type).name)
    if object_id:
        query.filter("object_id = ?", object_id)
    if params.get("eventType"):
        query.filter("event_type = ?", params["eventType"])
    after_ts, before_ts = _timestamp_param(request, "occurredAfter"), _timestamp_param(request, "occurredBefore")
    if after_ts is not None:
        query.since(after_ts + 1)  # both bounds are exclusive, timestamps whole milliseconds
    if before_ts is not None:
        query.until(before_ts - 1)
    ids = params.getlist("id")
    if ids:
        query.filter(f"id IN ({', '.join('?' for _ in ids)})", *ids)
    if params.get("after"):
        query.resume_after(*_uncursor(params["after"], "after"))
    return query


def routes(ctx: HubSpotContext, store: EventStore) -> list[Route]:
    storage = ctx.portal.storage

    async def email_events(request: Request) -> Response:
        limit = min(query_int(request, "limit", EMAIL_PAGE_DEFAULT, minimum=1), EMAIL_PAGE_MAX)
        page, more = email_events_query(request).fetch(storage, limit)
        offset = request.query_params.get("offset") or ""
        body: dict[str, Any] = {"hasMore": more, "offset": _cursor(page[-1][0], page[-1][1]) if page else offset,
                                "events": [json.loads(r[2]) for r in page]}
        return json_response(body)

    async def email_event(request: Request) -> Response:
        row = storage.fetchone(f"SELECT body FROM {EMAIL_TABLE} WHERE id = ? AND created = ?",
                               (request.path_params["id"], _path_int(request, "created")))
        if row is None:
            raise not_found("Email event not found")
        return json_response(json.loads(row[0]))

    async def web_events(request: Request) -> Response:
        limit = min(query_int(request, "limit", WEB_PAGE_DEFAULT, minimum=1), WEB_PAGE_MAX)
        page, more = web_events_query(ctx.portal, request).fetch(storage, limit)
        body: dict[str, Any] = {"results": [json.loads(r[2]) for r in page]}
        if more:
            token = _cursor(page[-1][0], page[-1][1])
            body["paging"] = {"next": {"after": token, "link": f"{request.url.path}?after={token}"}}
        return json_response(body)

    async def web_event_types(request: Request) -> Response:
        return json_response({"eventTypes": store.web_event_types()})

    ep = lambda handler: api_endpoint(ctx, handler)  # noqa: E731
    return [
        Route("/email/public/v1/events", ep(email_events), methods=["GET"]),
        Route("/email/public/v1/events/{created}/{id}", ep(email_event), methods=["GET"]),
        Route("/events/v3/events", ep(web_events), methods=["GET"]),
        Route("/events/v3/events/event-types", ep(web_event_types), methods=["GET"]),
    ]

