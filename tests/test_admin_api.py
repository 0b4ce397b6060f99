"""The admin API over real HTTP (uvicorn on 127.0.0.1, httpx), on SQLite and a real PostgreSQL.

Auth everywhere, run triggers (202, 409 with the run in the way, 400), run records as the run
state machine and a real executor recorded them, the account view, and Prometheus metrics read
back with prometheus_client's own parser.
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from admin_support import HOSTILE_NAME, Seeded, seed_store, serve
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from starlette.routing import Mount, Route

from config import AbmConfig
from sandbox.clients import ReadAgainTransport
from store.runs import StageReport, get_run, list_runs, record_stage
from store.schema import Run
from worker.admin import create_admin_app
from worker.executor import Executor, StopToken
from worker.lock import LeaseLock
from worker.triggers import RunOptions

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Notifications:
    """Stands in for ``Executor.notify``: counts the wake-ups the API sends."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.count += 1


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ABM_ADMIN_TOKEN", TOKEN)


@pytest.fixture
def notifications() -> Notifications:
    return Notifications()


@pytest.fixture
def app(engine: Engine, admin_env: None, notifications: Notifications):
    return create_admin_app(engine, AbmConfig(), notifications)


@pytest.fixture
def base_url(app) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    # the server closes a connection idle for 5 s; a read sent as it closes is sent again (see sandbox.clients)
    with httpx.Client(base_url=base_url, timeout=30, follow_redirects=False, transport=ReadAgainTransport()) as c:
        yield c


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed_store(engine)


def concrete_paths(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled with 1."""
    out = []
    for route in app.routes:
        if isinstance(route, Route):
            path = route.path.replace("{run_id:int}", "1").replace("{account_id:int}", "1")
            out += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
        else:
            assert isinstance(route, Mount) and route.path == "/static", f"unexpected route {route!r}"
    return out


# -- auth ------------------------------------------------------------------------------------
PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login")}


def test_every_route_but_health_and_login_needs_the_token(app, engine: Engine, client: httpx.Client,
                                                           seeded: Seeded) -> None:
    routes = concrete_paths(app)
    guarded = [r for r in routes if r not in PUBLIC]
    assert {("POST", "/api/runs"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/accounts/1")} <= set(guarded)
    wrong = [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
        {"Cookie": f"abm_admin_session={TOKEN}"},
    ]
    for method, path in guarded:
        for headers in wrong:
            response = client.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert response.status_code == 401, (method, path, headers)
            assert TOKEN not in response.text
            if path.startswith("/api/") or path == "/metrics":
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert "authentication required" in response.json()["error"]
            else:
                assert 'name="token"' in response.text  # people get the sign-in form
    # The token in a query string is not a credential (it would end up in access logs).
    assert client.get("/api/runs", params={"token": TOKEN}).status_code == 401
    with engine.connect() as conn:  # none of the refused POSTs queued a run
        assert conn.execute(select(func.count()).select_from(Run)).scalar_one() == len(seeded.runs)
    for method, path in guarded:
        if method == "GET":
            assert client.get(path, headers=AUTH).status_code in (200, 404), path


def test_health_is_public_and_headers_forbid_framing_caching_and_foreign_scripts(client: httpx.Client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    response = client.get("/", headers=AUTH)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# -- browser sessions ------------------------------------------------------------------------
def test_login_sets_a_strict_httponly_session_that_is_not_the_token(base_url: str, seeded: Seeded) -> None:
    with httpx.Client(base_url=base_url, follow_redirects=False) as browser:
        refused = browser.post("/login", data={"token": "wrong-token-wrong-token", "next": "/runs"})
        assert refused.status_code == 401 and "not right" in refused.text and "set-cookie" not in refused.headers
        assert "wrong-token-wrong-token" not in refused.text

        signed_in = browser.post("/login", data={"token": TOKEN, "next": "/runs"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/runs"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert TOKEN not in cookie
        assert browser.get("/runs").status_code == 200
        assert browser.get("/api/runs").status_code == 200

        # A page on another site cannot make the signed-in browser trigger runs.
        cross = browser.post("/api/runs", json={}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        same = browser.post("/api/runs", json={}, headers={"Origin": base_url})
        assert same.status_code == 202
        assert get_run_via(browser, same.json()["run_id"])["trigger"] == "page"

        signed_out = browser.post("/logout", headers={"Origin": base_url})
        assert signed_out.status_code == 303
        assert browser.get("/runs").status_code == 401


def get_run_via(client: httpx.Client, run_id: int) -> dict:
    response = client.get(f"/api/runs/{run_id}")
    assert response.status_code == 200
    return response.json()


def test_tampered_or_foreign_sessions_are_refused(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as browser:
        browser.post("/login", data={"token": TOKEN})
        value = browser.cookies["abm_admin_session"]
        expires, signature = value.split(".")
        forged = [f"{int(expires) + 3600}.{signature}", f"{expires}.{'0' * len(signature)}", "9999999999.", "x"]
        for cookie in forged:
            browser.cookies.clear()
            browser.cookies.set("abm_admin_session", cookie)
            assert browser.get("/api/runs").status_code == 401, cookie


def test_sessions_expire() -> None:
    from pydantic import SecretStr

    from worker.admin.auth import AdminAuth

    auth = AdminAuth(SecretStr(TOKEN), session_seconds=60)
    session = auth.new_session(now=1_000_000)
    assert auth.session_valid(session, now=1_000_030)
    assert not auth.session_valid(session, now=1_000_061)
    assert not AdminAuth(SecretStr(TOKEN + "rotated"), 60).session_valid(session, now=1_000_030)


def test_login_never_redirects_off_site(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as browser:
        for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "runs"):
            response = browser.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"] == "/", target


# -- triggers --------------------------------------------------------------------------------
def test_trigger_queues_a_run_and_wakes_the_executor(engine: Engine, client: httpx.Client,
                                                     notifications: Notifications) -> None:
    response = client.post("/api/runs", json={"full": True, "crms": ["hubspot"], "resync": True}, headers=AUTH)
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.headers["location"] == f"/api/runs/{run_id}"
    assert notifications.count == 1
    run = get_run(engine, run_id)
    assert run["state"] == "queued" and run["trigger"] == "api" and run["kind"] == "full_resync"
    assert RunOptions.from_json(run["options"]) == RunOptions(full=True, crms=("hubspot",), resync=True)


def test_a_second_trigger_conflicts_unless_it_asks_to_queue(engine: Engine, client: httpx.Client,
                                                            notifications: Notifications) -> None:
    first = client.post("/api/runs", json={}, headers=AUTH).json()["run_id"]
    conflict = client.post("/api/runs", json={"rewrite": True, "resync": True}, headers=AUTH)
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["running_run_id"] == first and body["state"] == "queued" and "queue" in body["error"]
    queued = client.post("/api/runs", json={"accounts": ["001Dn0000000001IAA"], "queue": True}, headers=AUTH)
    assert queued.status_code == 202 and queued.json()["kind"] == "account_resync"
    assert notifications.count == 2  # the refused trigger woke nobody
    assert [r["id"] for r in list_runs(engine)] == [queued.json()["run_id"], first]


def test_concurrent_triggers_start_exactly_one_run(engine: Engine, client: httpx.Client) -> None:
    def trigger(_: int) -> httpx.Response:
        return client.post("/api/runs", json={"resync": True, "full": True}, headers=AUTH)

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(trigger, range(16)))
    accepted = [r for r in responses if r.status_code == 202]
    assert len(accepted) == 1
    winner = accepted[0].json()["run_id"]
    refused = [r for r in responses if r.status_code == 409]
    assert len(refused) == 15 and {r.json()["running_run_id"] for r in refused} == {winner}
    assert [r["id"] for r in list_runs(engine)] == [winner]


def test_a_running_run_blocks_triggers_until_it_finishes(engine: Engine, client: httpx.Client) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        started.set()
        release.wait(10)
        record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 5}))
        return "succeeded"

    executor = Executor(engine, slow_pipeline, LeaseLock(engine, holder="api-test", lease=timedelta(seconds=5)),
                        threading.Event())
    run_id = client.post("/api/runs", json={}, headers=AUTH).json()["run_id"]
    worker = threading.Thread(target=executor.drain)
    worker.start()
    try:
        assert started.wait(10)
        busy = client.post("/api/runs", json={}, headers=AUTH)
        assert busy.status_code == 409
        assert busy.json()["running_run_id"] == run_id and busy.json()["state"] == "running"
        assert get_run_via_auth(client, run_id)["state"] == "running"
    finally:
        release.set()
        worker.join(10)
    assert get_run_via_auth(client, run_id)["state"] == "succeeded"
    assert client.post("/api/runs", json={}, headers=AUTH).status_code == 202


def get_run_via_auth(client: httpx.Client, run_id: int) -> dict:
    response = client.get(f"/api/runs/{run_id}", headers=AUTH)
    assert response.status_code == 200
    return response.json()


INVALID_BODIES = [
    ({"ful": True}, "unknown run option"),
    ({"crms": ["dynamics"]}, "unknown CRM"),
    ({"full": "yes"}, "true or false"),
    ({"accounts": [" "]}, "must not be blank"),
    ({"accounts": [1, 2]}, "list of strings"),
    ({"queue": "please"}, "queue must be true or false"),
    ([], "JSON object"),
    ("{not json", "not valid JSON"),
]


def test_invalid_options_are_refused_with_the_reason(engine: Engine, client: httpx.Client,
                                                     notifications: Notifications) -> None:
    for body, message in INVALID_BODIES:
        content = body if isinstance(body, str) else json.dumps(body)
        response = client.post("/api/runs", content=content, headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 400 and message in response.json()["error"], body
    assert list_runs(engine) == [] and notifications.count == 0


# -- reading runs ----------------------------------------------------------------------------
def test_runs_are_listed_newest_first_in_pages_as_recorded(engine: Engine, client: httpx.Client,
                                                           seeded: Seeded) -> None:
    body = client.get("/api/runs", headers=AUTH).json()
    assert body["runs"] == json.loads(json.dumps(list_runs(engine)))  # exactly what the store holds
    assert [r["id"] for r in body["runs"]] == [seeded.runs["partial"], seeded.runs["failed"], seeded.runs["full"]]
    assert body["next_before"] is None

    first = client.get("/api/runs", params={"limit": 2}, headers=AUTH).json()
    assert [r["id"] for r in first["runs"]] == [seeded.runs["partial"], seeded.runs["failed"]]
    rest = client.get("/api/runs", params={"limit": 2, "before": first["next_before"]}, headers=AUTH).json()
    assert [r["id"] for r in rest["runs"]] == [seeded.runs["full"]] and rest["next_before"] is None

    full = next(r for r in body["runs"] if r["id"] == seeded.runs["full"])
    assert full["state"] == "succeeded" and full["kind"] == "full" and full["trigger"] == "schedule"
    assert list(full["stages"]) == ["pull:salesforce", "pull:hubspot", "match", "score", "writeback"]
    assert full["counts"] == {"read": 2800, "upserted": 2800, "deleted": 0, "matched": 612, "scored": 830,
                              "written": 402, "skipped": 428, "failed": 0}
    assert full["api_calls"] == {"salesforce": 26, "hubspot": 36}
    assert full["seconds"] == pytest.approx(92.0, abs=0.01)
    failed = next(r for r in body["runs"] if r["id"] == seeded.runs["failed"])
    assert failed["state"] == "failed" and "caused by ServiceUnavailable" in failed["error"]
    assert failed["stages"]["pull:hubspot"]["state"] == "failed"

    for params, message in (({"limit": 0}, "between 1 and 200"), ({"limit": "ten"}, "whole number"),
                            ({"before": -3}, "between")):
        bad = client.get("/api/runs", params=params, headers=AUTH)
        assert bad.status_code == 400 and message in bad.json()["error"]


def test_run_detail_lists_the_records_that_failed_to_write(client: httpx.Client, seeded: Seeded) -> None:
    run = client.get(f"/api/runs/{seeded.runs['partial']}", headers=AUTH).json()
    assert run["counts"]["failed"] == 2 and run["errors_total"] == 2
    by_code = {e["code"]: e for e in run["errors"]}
    assert set(by_code) == {"FIELD_CUSTOM_VALIDATION_EXCEPTION", "UNABLE_TO_LOCK_ROW"}
    lock = by_code["UNABLE_TO_LOCK_ROW"]
    assert lock["crm"] == "salesforce" and lock["object"] == "Account" and lock["fields"] == ["ABM_Reasons__c",
                                                                                                 "ABM_Trend__c"]
    assert lock["account_id"] == seeded.account_ids[lock["crm_id"]]  # links to the account page
    assert client.get(f"/api/runs/{seeded.runs['full']}", headers=AUTH).json()["errors"] == []
    missing = client.get("/api/runs/999", headers=AUTH)
    assert missing.status_code == 404 and "no run 999" in missing.json()["error"]


def test_a_run_executed_by_the_worker_reads_back_as_it_happened(engine: Engine, client: httpx.Client) -> None:
    def pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        assert options == RunOptions(crms=("salesforce",), full=True, resync=True)
        record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 120, "upserted": 118},
                                                 api_calls={"salesforce": 3}, seconds=0.5))
        record_stage(engine, run_id, StageReport("writeback", counts={"written": 40, "failed": 1},
                                                 api_calls={"salesforce": 1}, seconds=0.25))
        return "succeeded"

    executor = Executor(engine, pipeline, LeaseLock(engine, holder="api-test"), threading.Event())
    run_id = client.post("/api/runs", json={"crms": ["salesforce"], "full": True, "resync": True},
                         headers=AUTH).json()["run_id"]
    assert executor.drain() == [(run_id, "succeeded")]
    run = get_run_via_auth(client, run_id)
    assert run["state"] == "succeeded" and run["trigger"] == "api" and run["kind"] == "full_resync"
    assert run["counts"]["read"] == 120 and run["counts"]["upserted"] == 118 and run["counts"]["written"] == 40
    assert run["api_calls"] == {"salesforce": 4}
    assert list(run["stages"]) == ["pull:salesforce", "writeback"]
    assert run["stages"]["writeback"]["seconds"] == 0.25
    assert run["started_at"] and run["finished_at"] and run["error"] is None


# -- accounts --------------------------------------------------------------------------------
def test_account_shows_scores_reasons_history_and_matched_people(client: httpx.Client, seeded: Seeded) -> None:
    company, canonical = seeded.linked
    body = client.get(f"/api/accounts/{company}", headers=AUTH).json()
    assert body["account"]["crm"] == "hubspot" and body["account"]["crm_id"] == "9001"
    assert body["canonical_account_id"] == canonical
    assert [a["id"] for a in body["linked_accounts"]] == [canonical]
    expected = seeded.scores[canonical]  # a linked company shows the canonical account's scores
    score = body["score"]
    assert score["scored_entity_id"] == canonical
    for key in ("engagement", "sales_activity", "marketing", "fit", "grade", "trend", "alignment", "reasons_text"):
        assert score[key] == expected[key], key
    assert score["breakdown"]["engagement"]["parts"] == expected["breakdown"]["engagement"]["parts"]
    days = [h["day"] for h in body["history"]]
    assert len(days) == seeded.history_days and days == sorted(days)
    assert body["history"][-1]["engagement"] == expected["engagement"]

    people = body["people"]
    assert body["people_total"] == len(people) == len(seeded.people[canonical]) + len(seeded.people[company])
    assert {p["crm"] for p in people} == {"salesforce", "hubspot"}
    for person in people:
        assert 0 < person["confidence"] <= 1 and person["reason"] and person["decision"] in ("crm", "auto")
        assert person["email"].endswith("@acme.example.com")

    missing = client.get("/api/accounts/424242", headers=AUTH)
    assert missing.status_code == 404


def test_account_search(client: httpx.Client, seeded: Seeded) -> None:
    found = client.get("/api/accounts", params={"q": "globex"}, headers=AUTH).json()["accounts"]
    assert [a["name"] for a in found] == ["Globex Logistics"]
    assert client.get("/api/accounts", params={"q": "%"}, headers=AUTH).json()["accounts"] == []
    everyone = client.get("/api/accounts", params={"limit": 200}, headers=AUTH).json()["accounts"]
    grades = [a["grade"] for a in everyone]
    assert grades == sorted(grades, reverse=True) and len(everyone) == len(seeded.scores)


# -- metrics ---------------------------------------------------------------------------------
def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_are_computed_from_the_store(engine: Engine, app, client: httpx.Client, seeded: Seeded,
                                             admin_env: None) -> None:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    m = samples(response.text)
    assert m[("abm_runs", (("state", "succeeded"),))] == 2
    assert m[("abm_runs", (("state", "failed"),))] == 1
    assert m[("abm_runs", (("state", "running"),))] == 0
    assert m[("abm_run_records_total", (("counter", "read"),))] == 2800 + 12 + 37
    assert m[("abm_run_records_total", (("counter", "failed"),))] == 2
    assert m[("abm_api_calls_total", (("crm", "salesforce"),))] == 26 + 2 + 3
    assert m[("abm_api_calls_total", (("crm", "hubspot"),))] == 36 + 4
    assert m[("abm_writeback_errors", (("crm", "salesforce"),))] == 2
    assert m[("abm_run_duration_seconds_count", (("kind", "incremental"),))] == 2
    assert m[("abm_run_duration_seconds_bucket", (("kind", "full"), ("le", "60.0")))] == 0
    assert m[("abm_run_duration_seconds_bucket", (("kind", "full"), ("le", "120.0")))] == 1
    assert m[("abm_run_duration_seconds_sum", (("kind", "full"),))] == pytest.approx(92.0, abs=0.01)
    assert m[("abm_last_run_stage_seconds", (("stage", "writeback"),))] == 2.2
    with engine.connect() as conn:
        last_success = conn.execute(select(func.max(Run.finished_at)).where(Run.state == "succeeded")).scalar_one()
    assert m[("abm_last_success_timestamp_seconds", ())] == pytest.approx(last_success.timestamp(), abs=0.001)
    grades = {dict(k[1])["grade"]: v for k, v in m.items() if k[0] == "abm_accounts_by_grade"}
    expected = {}
    for score in seeded.scores.values():
        expected[str(score["grade"])] = expected.get(str(score["grade"]), 0) + 1
    assert {g: n for g, n in grades.items() if n} == expected

    # A run recorded by another process (here: straight into the store) shows up at the next scrape,
    # and a freshly started server reports the same totals: nothing lives in process memory.
    def pipeline(run_id: int, options: RunOptions, stop: StopToken) -> str:
        record_stage(engine, run_id, StageReport("pull:hubspot", counts={"read": 7}, api_calls={"hubspot": 2}))
        return "succeeded"

    client.post("/api/runs", json={}, headers=AUTH)
    Executor(engine, pipeline, LeaseLock(engine, holder="other-process"), threading.Event()).drain()
    with serve(create_admin_app(engine, AbmConfig(), None)) as restarted:
        again = samples(httpx.get(f"{restarted}/metrics", headers=AUTH).text)
    assert again[("abm_runs", (("state", "succeeded"),))] == 3
    assert again[("abm_run_records_total", (("counter", "read"),))] == 2849 + 7
    assert again[("abm_api_calls_total", (("crm", "hubspot"),))] == 40 + 2
    assert samples(client.get("/metrics", headers=AUTH).text) == again


def test_an_empty_store(client: httpx.Client) -> None:
    for path in ("/", "/runs", "/accounts"):
        page = client.get(path, headers=AUTH)
        assert page.status_code == 200, path
    assert client.get("/", headers=AUTH).text.count("No account has been scored yet.") == 2
    assert client.get("/api/runs", headers=AUTH).json() == {"runs": [], "next_before": None}
    m = samples(client.get("/metrics", headers=AUTH).text)
    assert m[("abm_runs", (("state", "succeeded"),))] == 0
    assert ("abm_last_success_timestamp_seconds", ()) not in m
    assert m[("abm_api_calls_total", (("crm", "hubspot"),))] == 0


# -- secrets and escaping --------------------------------------------------------------------
def test_secrets_never_leave_the_server(engine: Engine, monkeypatch: pytest.MonkeyPatch, admin_env: None,
                                        caplog: pytest.LogCaptureFixture) -> None:
    crm_secret = "sf-client-secret-8c1f2a"
    monkeypatch.setenv("ABM_SALESFORCE_CLIENT_SECRET", crm_secret)
    monkeypatch.setenv("ABM_HUBSPOT_ACCESS_TOKEN", "pat-na1-3f0c9e77-secret")
    run_id = seed_store(engine).runs["failed"]
    with engine.begin() as conn:
        conn.execute(Run.__table__.update().where(Run.id == run_id).values(
            error=f"AuthError: invalid_client (client_secret={crm_secret}) Authorization: Bearer {TOKEN}",
            stages={"pull:hubspot": {"state": "failed", "seconds": 1.0, "counts": {}, "seq": 0,
                                     "error": "401 for token pat-na1-3f0c9e77-secret"}}))
    caplog.set_level(logging.DEBUG)
    with serve(create_admin_app(engine, AbmConfig(), None)) as url, httpx.Client(base_url=url) as c:
        texts = [
            c.get(f"/api/runs/{run_id}", headers=AUTH).text,
            c.get("/api/runs", headers=AUTH).text,
            c.get(f"/runs/{run_id}", headers=AUTH).text,
            c.get("/", headers=AUTH).text,
            c.post("/login", data={"token": "not-" + TOKEN}).text,
            c.get("/metrics", headers=AUTH).text,
        ]
    assert "[redacted]" in texts[0] and "[redacted]" in texts[2]
    for text in [*texts, caplog.text]:
        assert crm_secret not in text and "pat-na1-3f0c9e77-secret" not in text and TOKEN not in text


def test_pages_escape_crm_text(client: httpx.Client, seeded: Seeded) -> None:
    for path in ("/", f"/accounts/{seeded.hostile_account_id}", "/accounts"):
        page = client.get(path, headers=AUTH)
        assert page.status_code == 200
        assert HOSTILE_NAME not in page.text and "<script>alert" not in page.text, path
        assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; Holdings &amp; Sons" in page.text, path


def test_dashboard_shows_triggers_runs_grades_alignment_and_surging(client: httpx.Client, seeded: Seeded) -> None:
    page = client.get("/", headers=AUTH).text
    triggers = [json.loads(html.unescape(raw)) for raw in re.findall(r'data-run="([^"]*)"', page)]
    assert triggers == [{}, {"full": True, "resync": True}, {"full": True, "resync": True}, {"resync": True},
                        {"rewrite": True, "resync": True}]
    assert '<select name="crms">' in page and 'name="accounts"' in page
    for run_id in seeded.runs.values():
        assert f'data-run-id="{run_id}"' in page
    accounts = list(seeded.scores.values())
    for grade in (4, 3, 2, 1):
        count = sum(1 for s in accounts if s["grade"] == grade)
        assert f"Grade {grade}: {count} accounts" in page
    disagreeing = sum(1 for s in accounts if s["alignment"] in ("marketing_high_sales_low", "sales_high_marketing_low"))
    dots = re.findall(r'class="dot align-[a-z_]+( flagged)?"', page)
    assert len(dots) == len(accounts) and dots.count(" flagged") == disagreeing
    surging = sorted((s for s in accounts if s["trend"] == "surging"), key=lambda s: -s["velocity"])[:10]
    listed = re.findall(r'<ol class="ranked">(.*?)</ol>', page, re.S)[0]
    assert re.findall(r'href="/accounts/(\d+)"', listed) == [str(s["entity_id"]) for s in surging]

    # While following a run the page asks for the run regions only; the portfolio is not recomputed.
    light = client.get("/", headers={**AUTH, "X-ABM-Refresh": "runs"}).text
    assert 'id="live-runs"' in light and 'id="live-active"' in light and 'id="live-grades"' not in light


def test_run_and_account_pages(client: httpx.Client, seeded: Seeded) -> None:
    run_page = client.get(f"/runs/{seeded.runs['partial']}", headers=AUTH).text
    assert "UNABLE_TO_LOCK_ROW" in run_page and "Grade cannot change while the account is on hold" in run_page
    failed_page = client.get(f"/runs/{seeded.runs['failed']}", headers=AUTH).text
    assert "caused by ServiceUnavailable: retry budget spent" in failed_page and 'data-state="failed"' in failed_page
    company, canonical = seeded.linked
    account_page = client.get(f"/accounts/{company}", headers=AUTH).text
    assert account_page.count("<polyline") == 4
    assert html.escape(seeded.scores[canonical]["reasons_text"]) in account_page
    assert "Ana Novak" in account_page and f'href="/accounts/{canonical}"' in account_page
    assert client.get("/accounts/424242", headers=AUTH).status_code == 404
    assert client.get("/runs/424242", headers=AUTH).status_code == 404
