"""The HubSpot connector's pure parts: value parsing, mapping, associations, search paging, pacing.

No server here: these pin down the rules (ties, the 10,000 cap, primary associations, activity
types) on data small enough to reason about. The sandbox tests drive the same code over HTTPS.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from config.activities import ActivityMappingConfig, ActivityRule
from connectors.cursor import Cursor
from connectors.hubspot import values as v
from connectors.hubspot.activities import HubSpotActivities, default_hubspot_rules
from connectors.hubspot.associations import Link, first_id, from_inline, from_v4_results
from connectors.hubspot.client import PagingLoopError, next_token
from connectors.hubspot.events import map_email_event, map_web_event
from connectors.hubspot.objects import SPECS, map_record
from connectors.hubspot.ratelimit import HubSpotRateLimiter, RollingWindowLimiter
from connectors.hubspot.record_pull import list_is_faster, sweep_pages
from connectors.hubspot.search_plan import SearchOrderError, SearchPosition, next_position, search_body
from connectors.hubspot.sink import PageSink
from connectors.hubspot.sync import lanes, plan_objects
from connectors.result import ObjectCounts, UnknownObjects
from store import migrate
from store.db import make_engine

RULES = HubSpotActivities()
NOW = datetime(2024, 7, 1, tzinfo=UTC)


# -- values ---------------------------------------------------------------------------------
def test_timestamps_from_iso_and_epoch_millis_agree() -> None:
    iso = v.timestamp("2024-05-01T10:00:00.123Z")
    assert iso == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert v.timestamp(str(v.to_millis(iso))) == iso
    assert v.millis("2024-05-01T10:00:00.123Z") == v.to_millis(iso)
    assert v.timestamp("") is None and v.timestamp(None) is None and v.timestamp("yesterday") is None


def test_numbers_ranges_flags_and_domains() -> None:
    assert v.number("250000.50") == 250000.5 and v.number("n/a") is None and v.number(" ") is None
    assert v.whole_number("25-50") == 25 and v.whole_number("1000+") == 1000 and v.whole_number("1,200") == 1200
    assert v.flag("true") is True and v.flag("false") is False and v.flag(None) is None
    assert v.id_list("12;34; 56") == ["12", "34", "56"] and v.id_list(None) == []
    assert v.domain_of(None, "https://www.Acme.io/about?x=1") == "acme.io"
    assert v.domain_of("acme.com", "https://other.org") == "acme.com"
    assert v.day("2024-06-30T00:00:00Z") == date(2024, 6, 30) and v.day("2024-06-30") == date(2024, 6, 30)


# -- associations ---------------------------------------------------------------------------
def test_inline_associations_put_the_primary_company_first() -> None:
    links = from_inline("contacts", {"companies": {"results": [
        {"id": "5", "type": "contact_to_company_unlabeled"},
        {"id": "9", "type": "contact_to_company"},
        {"id": "9", "type": "contact_to_company_unlabeled"},
    ]}})
    assert links["companies"] == [Link("9", True), Link("5", False)]
    assert first_id(links, "companies") == "9"
    assert first_id(links, "deals") is None


def test_v4_associations_read_the_primary_type_id() -> None:
    results = [{"from": {"id": "1"}, "to": [
        {"toObjectId": 30, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]},
        {"toObjectId": 40, "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}]},
    ]}]
    links = from_v4_results("contacts", "companies", results)
    assert [link.to_id for link in links["1"]] == ["40", "30"]
    # engagements have no primary: the lowest id comes first
    calls = from_v4_results("calls", "contacts", [{"from": {"id": "2"}, "to": [
        {"toObjectId": 70, "associationTypes": [{"typeId": 194}]}, {"toObjectId": 8, "associationTypes": []}]}])
    assert [link.to_id for link in calls["2"]] == ["8", "70"]


# -- mapping --------------------------------------------------------------------------------
def _record(record_id: str, **props: str | None) -> dict:
    return {"id": record_id, "properties": {"hs_object_id": record_id, **props},
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-02-01T00:00:00Z", "archived": False}


def test_company_maps_to_an_account_with_its_salesforce_link() -> None:
    row = map_record(SPECS["companies"], _record(
        "101", name="Acme GmbH", domain="acme.de", numberofemployees="250", annualrevenue="1000000.0",
        salesforceaccountid="001000000000001AAA", hs_lastmodifieddate="2024-03-01T00:00:00Z",
        lifecyclestage="customer", hs_merged_object_ids="7;8"), {}, RULES, NOW)
    assert row is not None
    assert (row["crm"], row["object"], row["crm_id"]) == ("hubspot", "companies", "101")
    assert row["name"] == "Acme GmbH" and row["domain"] == "acme.de" and row["employees"] == 250
    assert row["linked_salesforce_id"] == "001000000000001AAA"
    assert row["modified_at"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert row["created_at"] == datetime(2024, 1, 1, tzinfo=UTC)
    assert row["extra"] == {"lifecyclestage": "customer", "merged_object_ids": ["7", "8"]}


def test_contact_account_comes_from_the_primary_association_then_the_property() -> None:
    spec = SPECS["contacts"]
    record = _record("5", firstname="Ana", email="ana@acme.de", associatedcompanyid="300", numemployees="25-50")
    links = {"companies": [Link("200", True), Link("100")]}
    row = map_record(spec, record, links, RULES, NOW)
    assert row is not None and row["kind"] == "contact"
    assert row["account_crm_id"] == "200" and row["employees"] == 25
    assert row["extra"] == {"associations": {"companies": ["200", "100"]}}
    assert map_record(spec, record, {}, RULES, NOW)["account_crm_id"] == "300"  # type: ignore[index]


def test_deal_closed_flags_fall_back_to_the_stage() -> None:
    spec = SPECS["deals"]
    won = map_record(spec, _record("9", dealname="Big", dealstage="closedwon", amount="5000",
                                   closedate="2024-06-30T00:00:00Z"), {"companies": [Link("1", True)]}, RULES, NOW)
    assert won is not None and won["is_closed"] and won["is_won"] and won["account_crm_id"] == "1"
    assert won["close_date"] == date(2024, 6, 30) and won["closed_at"] == datetime(2024, 6, 30, tzinfo=UTC)
    open_deal = map_record(spec, _record("10", dealstage="qualifiedtobuy", hs_is_closed="false",
                                         closedate="2024-09-01T00:00:00Z"), {}, RULES, NOW)
    assert open_deal is not None and not open_deal["is_closed"] and open_deal["closed_at"] is None


@pytest.mark.parametrize(("props", "expected"), [
    ({"hs_call_duration": "600000"}, "meaningful_conversation"),  # 10 minutes
    ({"hs_call_duration": "60000"}, "call_connected"),  # a minute
    ({"hs_call_duration": "0"}, "call"),  # no answer
    ({}, "call"),
])
def test_call_types(props: dict, expected: str) -> None:
    row = map_record(SPECS["calls"], _record("1", hs_timestamp="2024-04-01T09:00:00Z", **props),
                     {"contacts": [Link("5")], "companies": [Link("9")]}, RULES, NOW)
    assert row is not None and row["activity_type"] == expected and row["team"] == "sales"
    assert row["person_crm_id"] == "5" and row["account_crm_id"] == "9"
    assert row["occurred_at"] == datetime(2024, 4, 1, 9, tzinfo=UTC)


def test_meetings_emails_notes_and_tasks() -> None:
    meeting = map_record(SPECS["meetings"], _record(
        "2", hs_meeting_outcome="COMPLETED", hs_meeting_start_time="2024-04-01T09:00:00Z",
        hs_meeting_end_time="2024-04-01T09:30:00Z"), {}, RULES, NOW)
    assert meeting is not None and meeting["activity_type"] == "meeting_completed"
    assert meeting["duration_seconds"] == 1800 and meeting["crm_type"] == "meetings:COMPLETED"
    assert map_record(SPECS["meetings"], _record("3", hs_meeting_outcome="CANCELED"), {}, RULES, NOW) is None
    upcoming = _record("4", hs_meeting_outcome="SCHEDULED", hs_meeting_end_time="2024-07-02T10:00:00Z")
    assert map_record(SPECS["meetings"], upcoming, {}, RULES, NOW)["activity_type"] == "meeting_scheduled"  # type: ignore[index]
    held = _record("4", hs_meeting_outcome="SCHEDULED", hs_meeting_end_time="2024-06-02T10:00:00Z")
    assert map_record(SPECS["meetings"], held, {}, RULES, NOW)["activity_type"] == "meeting_completed"  # type: ignore[index]
    reply = map_record(SPECS["emails"], _record("5", hs_email_direction="INCOMING_EMAIL"), {}, RULES, NOW)
    assert reply is not None and reply["activity_type"] == "email_reply"
    assert map_record(SPECS["notes"], _record("6", hs_note_body="x"), {}, RULES, NOW) is None
    assert map_record(SPECS["tasks"], _record("7", hs_task_type="CALL"), {}, RULES, NOW) is None


def test_activity_rules_come_from_the_activities_config() -> None:
    custom_rules = [r for r in default_hubspot_rules() if r.object != "tasks"] + [
        ActivityRule(object="tasks", type="call", equals={"hs_task_type": ["CALL"], "hs_task_status": ["COMPLETED"]}),
        ActivityRule(object="tasks", type=None),
    ]
    custom = HubSpotActivities(ActivityMappingConfig(hubspot=custom_rules))
    assert custom.pulls("tasks") and not RULES.pulls("tasks") and not RULES.pulls("notes")
    assert custom.fields_used("tasks") == {"hs_task_type", "hs_task_status"}
    row = map_record(SPECS["tasks"], _record("8", hs_task_type="call", hs_task_status="COMPLETED"), {}, custom, NOW)
    assert row is not None and row["activity_type"] == "call"
    with pytest.raises(ValidationError, match="unknown activity type"):
        ActivityRule(object="calls", type="phone_call")
    # only the event types some rule keeps are requested; a typed catch-all needs them all
    assert RULES.requested_values("email_events", "type") == ["CLICK", "OPEN"]
    assert RULES.requested_values("web_events", "eventType") == ["e_submitted_form", "e_visited_page"]
    everything = HubSpotActivities(ActivityMappingConfig(hubspot=[ActivityRule(object="email_events",
                                                                                type="email_open")]))
    assert everything.requested_values("email_events", "type") is None
    assert plan_objects(None, RULES) == ["companies", "contacts", "deals", "calls", "emails", "meetings",
                                         "email_events", "web_events"]
    assert plan_objects(["web_events", "Notes"], RULES) == ["notes", "web_events"]
    with pytest.raises(UnknownObjects, match="unknown HubSpot object"):
        plan_objects(["tickets"], RULES)


def test_event_feeds_start_first_in_lanes_of_their_own() -> None:
    names = plan_objects(None, RULES)
    # beside three record objects: the feeds are paced by the general window, not by search
    assert lanes(names, 3) == (["email_events", "web_events", "companies", "contacts", "deals", "calls", "emails",
                                "meetings"], 5)
    assert lanes(["contacts", "web_events"], 2) == (["web_events", "contacts"], 3)
    assert lanes(["companies", "contacts"], 3) == (["companies", "contacts"], 3)
    assert lanes(names, 1) == (names, 1)  # one object at a time: plan order, nothing beside it


def test_marketing_events_map_to_marketing_activities() -> None:
    open_event = {"id": "e1", "type": "OPEN", "created": 1714550400000, "recipient": "Ana@Acme.de",
                  "emailCampaignId": 77, "subject": "Spring launch"}
    row = map_email_event(open_event, RULES, {"ana@acme.de": "5"}.get)
    assert row is not None and row["activity_type"] == "email_open" and row["team"] == "marketing"
    assert row["person_crm_id"] == "5" and row["campaign_crm_id"] == "77"
    assert row["occurred_at"] == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert map_email_event({**open_event, "type": "DELIVERED"}, RULES, {}.get) is None
    unknown = map_email_event({**open_event, "recipient": "who@else.org"}, RULES, {}.get)
    assert unknown is not None and unknown["person_crm_id"] is None
    assert unknown["extra"] == {"recipient": "who@else.org"}

    def visit(url: str) -> str | None:
        row = map_web_event({"id": url, "eventType": "e_visited_page", "objectId": "5", "objectType": "CONTACT",
                             "occurredAt": "2024-05-01T08:00:00Z", "properties": {"hs_url": url}}, RULES)
        return row["activity_type"] if row else None

    assert visit("https://acme.io/pricing") == "pricing_page_visit"
    assert visit("https://acme.io/blog/x") == "blog_visit" and visit("https://acme.io/") == "web_visit"
    form = map_web_event({"id": "f", "eventType": "e_submitted_form", "objectId": 5,
                          "occurredAt": "2024-05-01T08:00:00Z", "properties": {"hs_form_title": "Request a Demo"}},
                         RULES)
    assert form is not None and form["activity_type"] == "demo_request" and form["person_crm_id"] == "5"


def test_a_record_without_an_id_is_skipped_with_a_warning(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'abm.db'}")
    migrate.upgrade(engine)
    warnings: list[str] = []
    counts = ObjectCounts()
    sink = PageSink(engine, SPECS["contacts"], RULES, counts, Cursor("hubspot", "contacts"), NOW, warn=warnings.append)
    sink.add([{"properties": {"email": "x@y.example"}}, _record("9", email="ana@acme.de")])
    sink.flush()
    assert (counts.read, counts.skipped, counts.upserted) == (1, 1, 1)
    assert warnings and "without an id" in warnings[0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT crm_id, email FROM people")).all() == [("9", "ana@acme.de")]
    engine.dispose()


def test_a_page_token_that_does_not_move_stops_paging() -> None:
    page = {"paging": {"next": {"after": "200"}}}
    assert next_token(page, "100", "GET /crm/v3/objects/contacts") == "200"
    assert next_token({}, "100", "GET /crm/v3/objects/contacts") is None
    with pytest.raises(PagingLoopError, match="the one just used"):
        next_token(page, "200", "GET /crm/v3/objects/contacts")


# -- search paging --------------------------------------------------------------------------
class _Search:
    """HubSpot's search semantics over a list: filters, one sort, a 10,000-result cap on paging."""

    def __init__(self, records: list[tuple[int, int]]) -> None:  # (modified ms, id)
        self.records = records
        self.calls = 0

    def __call__(self, body: dict) -> list[dict]:
        self.calls += 1
        assert "after" not in body, "keyset paging never sends after"
        matching = self.records
        for f in body["filterGroups"][0]["filters"]:
            index = 0 if f["propertyName"] == "hs_lastmodifieddate" else 1
            value = int(f["value"])
            op = {"GTE": int.__ge__, "LT": int.__lt__, "EQ": int.__eq__, "GT": int.__gt__}[f["operator"]]
            matching = [r for r in matching if op(r[index], value)]
        index = 0 if body["sorts"][0]["propertyName"] == "hs_lastmodifieddate" else 1
        # ties in the sort come back in arbitrary order, as they may in HubSpot
        shuffled = random.Random(self.calls).sample(matching, len(matching))
        ordered = sorted(shuffled, key=lambda r: r[index])
        return [{"id": str(i), "properties": {"hs_lastmodifieddate": str(ts)}} for ts, i in ordered[:body["limit"]]]


def _drain(records: list[tuple[int, int]], start: int, upper: int, limit: int = 200) -> tuple[set[int], int]:
    search = _Search(records)
    position: SearchPosition | None = SearchPosition(start)
    seen: set[int] = set()
    while position is not None:
        assert search.calls < 10_000, "paging does not terminate"
        page = search(search_body(position, upper, "hs_lastmodifieddate", ["hs_object_id"], limit))
        seen.update(int(r["id"]) for r in page)
        position = next_position(position, page, limit, "hs_lastmodifieddate")
    return seen, search.calls


def test_search_paging_reads_a_huge_tie_exactly_once_per_record() -> None:
    tie = [(5_000, i) for i in range(1, 25_001)]
    others = [(4_000 + i, 100_000 + i) for i in range(300)] + [(6_000 + i, 200_000 + i) for i in range(300)]
    seen, calls = _drain(others + tie, 0, 10_000)
    assert seen == {i for _, i in others + tie}
    # 25,000 tied records at 200 a page plus the rest: a few pages of overlap, no loop
    assert calls <= (25_000 + 600) // 200 + 8


def test_search_paging_respects_the_window_and_many_small_ties() -> None:
    rng = random.Random(7)
    records = [(rng.randrange(0, 3_000), i) for i in range(1, 12_001)]  # ~4 records per millisecond
    seen, calls = _drain(records, 1_000, 2_000)
    assert seen == {i for ts, i in records if 1_000 <= ts < 2_000}
    assert calls < len(seen) / 200 * 1.2 + 3


def test_search_order_violations_are_refused() -> None:
    page = [{"id": "1", "properties": {"hs_lastmodifieddate": "5"}}] * 2
    with pytest.raises(SearchOrderError):
        next_position(SearchPosition(10), page, 2, "hs_lastmodifieddate")
    with pytest.raises(SearchOrderError):
        next_position(SearchPosition(5, 7), page, 2, "hs_lastmodifieddate")
    assert SearchPosition.from_json(SearchPosition(5, 7).to_json()) == SearchPosition(5, 7)


def test_the_association_sweep_is_paced_by_time_not_by_run() -> None:
    day = timedelta(hours=24)
    assert sweep_pages(1_000_000, 100, timedelta(hours=6), day, 1) == 2_500  # a quarter of the day: a quarter
    assert sweep_pages(1_000_000, 100, timedelta(minutes=15), day, 1) == 105
    assert sweep_pages(1_000_000, 100, timedelta(days=3), day, 1) == 10_000  # never more than one whole sweep
    assert sweep_pages(1_000_000, 100, timedelta(0), day, 1) == 1  # the minimum keeps it moving
    assert sweep_pages(0, 100, timedelta(hours=1), day, 2) == 2


@pytest.mark.parametrize(("changed", "records", "listed"), [
    (600_000, 1_000_000, True),  # the run after a full run: its write-back stamped most records
    (500_000, 1_000_000, False),  # half: 2,500 searches at 5/s (500 s) against 10,000 list pages at 19/s (526 s)
    (10_000, 1_000_000, False),  # an ordinary day
    (0, 1_000_000, False),
    (1_000, 1_200, True),  # 12 list pages against 4 more searches (0.8 s at 5/s)
    (150, 1_200, False),  # the first page held them all: one association read left
])
def test_listing_replaces_search_once_it_takes_less_of_the_portals_time(changed: int, records: int,
                                                                       listed: bool) -> None:
    """At HubSpot's rates (190 calls per 10 s, 5 searches a second), contacts with one association type."""
    assert list_is_faster(changed, records, search_page=200, list_page=100, association_batch=1000,
                          association_types=1, requests_per_s=19.0, searches_per_s=5.0) is listed


def test_at_the_lower_general_limit_listing_never_wins() -> None:
    """At 100 calls per 10 s a list page (100 records) takes as long as a search page (200 at 5/s)."""
    rates = {"search_page": 200, "list_page": 100, "association_batch": 1000, "searches_per_s": 5.0}
    assert list_is_faster(600_000, 1_000_000, requests_per_s=19.0, association_types=1, **rates)
    assert not list_is_faster(600_000, 1_000_000, requests_per_s=10.0, association_types=1, **rates)
    assert not list_is_faster(1_000_000, 1_000_000, requests_per_s=10.0, association_types=2, **rates)

# -- pacing ---------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rolling_window_counts_from_completion() -> None:
    clock = _Clock()
    limiter = RollingWindowLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(7):
        with limiter.slot():
            starts.append(clock.now)
            clock.now += 0.5  # each request takes half a second
    # any 10 s after a completion holds at most 3 completions; the 4th start waits for the 1st end + 10 s
    assert starts[:3] == [0.0, 0.5, 1.0]
    assert starts[3] == pytest.approx(10.5) and starts[6] == pytest.approx(21.0)
    ends = [s + 0.5 for s in starts]
    for start in starts:
        assert sum(1 for e in ends if start - 10.0 < e <= start) < 3


def test_search_limiter_paces_fractional_rates() -> None:
    clock = _Clock()
    limiter = HubSpotRateLimiter(100, 2.5, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        with limiter.slot(search=True):
            pass
    assert clock.now == pytest.approx(4 * 0.8)  # 2 per 0.8 s
    with pytest.raises(ValueError):
        RollingWindowLimiter(0, 1.0)


def test_pulls_and_writers_of_one_portal_share_its_rate_window(tmp_path) -> None:
    """HubSpot counts every call of the app in one rolling window: a run's pull and its write-back (and the
    next pull) must pace against the same limiter, or the second bursts a full window into 429s."""
    from config import AbmConfig
    from config.connections import HubSpotConfig
    from connectors.hubspot.client import HubSpotApi
    from writeback.connect import hubspot_limiter

    token = tmp_path / "token"
    token.write_text("pat-na1-test")
    portal = HubSpotConfig(enabled=True, base_url="https://127.0.0.1:9", access_token_file=token,
                           requests_per_10s=100)
    other = HubSpotConfig(enabled=True, base_url="https://127.0.0.2:9", access_token_file=token,
                          requests_per_10s=100)
    pull, next_pull, elsewhere = HubSpotApi(portal), HubSpotApi(portal), HubSpotApi(other)
    try:
        assert pull.limiter is next_pull.limiter is hubspot_limiter(AbmConfig(hubspot=portal))
        assert elsewhere.limiter is not pull.limiter
    finally:
        for api in (pull, next_pull, elsewhere):
            api.close()
