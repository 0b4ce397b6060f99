"""The admin page end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A real uvicorn serves the admin app on 127.0.0.1 and a real :class:`Executor` runs what the page
queues. The pipeline is a fixture (``pipeline``) so the same test can drive the full pipeline
against the sandbox: override it to return the real one. Without Chromium the test is skipped,
unless ``ABM_REQUIRE_BROWSER`` is set (CI), which makes a missing browser a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from admin_support import Seeded, seed_store, serve
from crm_support import config_for, provisioned_crm
from sqlalchemy import Engine, func, select

from config import AbmConfig
from sandbox.runner import SandboxHandle
from store.runs import StageReport, get_run, record_stage
from store.schema import Account, AccountLink, Match
from worker.admin import create_admin_app
from worker.executor import Executor, PipelineFn, StopToken
from worker.lock import LeaseLock
from worker.pipeline import Pipeline
from worker.stages import build_plan
from worker.triggers import RunOptions

TOKEN = "browser-test-token-5f2c7d1e9a"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
FINISH_TIMEOUT_MS = 60_000
REAL_RUN_TIMEOUT_MS = 300_000  # a whole pipeline on a small org, on a busy CI machine


def _unavailable(reason: str) -> None:
    if os.environ.get("ABM_REQUIRE_BROWSER"):
        pytest.fail(f"ABM_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(f"{reason}; set ABM_REQUIRE_BROWSER=1 to make this a failure")


def chromium_executable() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture
def pipeline(engine: Engine) -> PipelineFn:
    """What the worker runs for each queued run: a stand-in that records a stage and succeeds.

    It takes a moment, like a real run, so the page has a run in progress to follow.
    """

    def record_a_pull(run_id: int, options: RunOptions, stop: StopToken) -> str:
        time.sleep(1.0)
        record_stage(engine, run_id, StageReport("pull:salesforce", counts={"read": 42, "upserted": 41},
                                                 api_calls={"salesforce": 3}, seconds=1.0))
        return "succeeded"

    return record_a_pull


@dataclass(frozen=True)
class AdminServer:
    url: str
    token: str


@contextmanager
def _admin_with_executor(engine: Engine, config: AbmConfig, pipeline: PipelineFn) -> Iterator[AdminServer]:
    """The admin app on a real uvicorn, with an executor thread running queued runs through ``pipeline``."""
    stop = threading.Event()
    executor = Executor(engine, pipeline, LeaseLock(engine, holder="browser-test", lease=timedelta(seconds=10)), stop)
    worker = threading.Thread(target=executor.serve, kwargs={"poll_seconds": 1.0}, name="executor", daemon=True)
    worker.start()
    try:
        with serve(create_admin_app(engine, config, executor.notify)) as url:
            yield AdminServer(url, TOKEN)
    finally:
        stop.set()
        executor.notify()
        worker.join(timeout=60)


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    """The store seeded before the server starts: its executor, once serving, would take the seeded runs (queued
    for an instant before they are marked running) as its own, or fail them as abandoned."""
    return seed_store(engine)


@pytest.fixture
def admin_server(engine: Engine, seeded: Seeded, pipeline: PipelineFn,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminServer]:
    monkeypatch.setenv("ABM_ADMIN_TOKEN", TOKEN)
    with _admin_with_executor(engine, AbmConfig(), pipeline) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[object]:
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _sign_in(page, server: AdminServer, problems: list[str]) -> None:
    """Signed out, the page is the sign-in form; the token opens the dashboard."""
    response = page.goto(f"{server.url}/")
    assert response is not None and response.status == 401
    page.fill("#token", server.token)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Dashboard')")
    assert problems == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
    problems.clear()  # that was the sign-in form's 401; from here on, nothing may fail


def _watch_for_problems(page) -> list[str]:
    """Script errors and failed loads the page reports, as they happen."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def test_page_signs_in_triggers_a_resync_and_shows_it_finish(engine: Engine, seeded: Seeded,
                                                             admin_server: AdminServer, browser) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    problems = _watch_for_problems(page)

    _sign_in(page, admin_server, problems)
    assert page.locator(f"#live-runs tr[data-run-id='{seeded.runs['full']}'] [data-state='succeeded']").count() == 1
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["abm_admin_session"]["httpOnly"] and cookies["abm_admin_session"]["sameSite"] == "Strict"

    # The page updates in place: a marker set now survives only if the page is never reloaded.
    page.evaluate("window.__sameDocument = true")

    # Full resync: confirm the dialog, see the run queued, followed, and finished.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("form.action:has(h3:text('Full resync')) button[type=submit]")
    toast = page.locator("#toast")
    toast.wait_for(state="visible")
    assert "queued" in toast.inner_text()
    run_id = int(toast.inner_text().split("#", 1)[1].split(" ", 1)[0])
    row_state = page.locator(f"#live-runs tr[data-run-id='{run_id}'] [data-state]")
    row_state.wait_for()
    page.wait_for_selector(f"#live-runs tr[data-run-id='{run_id}'] [data-state='succeeded']",
                           timeout=FINISH_TIMEOUT_MS)
    page.wait_for_selector("#live-active .banner", state="detached", timeout=FINISH_TIMEOUT_MS)
    page.wait_for_selector(f"#toast:has-text('Run #{run_id} succeeded.')", timeout=FINISH_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True
    run = get_run(engine, run_id)
    assert run is not None and run["state"] == "succeeded" and run["trigger"] == "page"
    assert RunOptions.from_json(run["options"]) == RunOptions(full=True, resync=True)
    row = page.locator(f"#live-runs tr[data-run-id='{run_id}']").inner_text()
    assert "full resync" in row and "42" in row

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin.png"), full_page=True)

    # The run's own page shows its stage and counts.
    page.click(f"#live-runs tr[data-run-id='{run_id}'] a")
    page.wait_for_selector(f"h1:has-text('#{run_id}')")
    assert "pull:salesforce" in page.locator("table").first.inner_text()
    assert page.locator(".stat:has(.stat-label:text('read')) .stat-value").inner_text() == "42"

    # Resync one account from its page: the run is scoped to that account.
    canonical = seeded.linked[1]
    page.goto(f"{admin_server.url}/accounts/{canonical}")
    assert page.locator("svg.lines polyline").count() == 4
    page.click("form.inline-action button[type=submit]")
    toast.wait_for(state="visible")
    account_run = int(toast.inner_text().split("#", 1)[1].split(" ", 1)[0])
    deadline = time.monotonic() + FINISH_TIMEOUT_MS / 1000
    while (get_run(engine, account_run) or {}).get("state") != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.2)
    resync = get_run(engine, account_run)
    assert resync is not None and resync["state"] == "succeeded" and resync["kind"] == "account_resync"
    canonical_crm_id = next(crm_id for crm_id, account_id in seeded.account_ids.items() if account_id == canonical)
    assert resync["options"]["accounts"] == [canonical_crm_id]

    assert problems == []  # no script errors, no blocked resources (CSP), no failed loads
    context.close()


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxHandle, Path]]:
    with provisioned_crm(tmp_path_factory.mktemp("browser-crm")) as crm:
        yield crm


def test_run_buttons_wait_for_the_script_that_sends_them(engine: Engine, admin_server: AdminServer,
                                                        browser) -> None:
    """Submitted natively, a run form would reload the page and queue nothing; so until the script has taken
    the forms over, their buttons cannot be pressed, and the page says what works without it."""
    for scripted in (False, True):
        context = browser.new_context(java_script_enabled=scripted)
        page = context.new_page()
        page.goto(f"{admin_server.url}/")
        page.fill("#token", admin_server.token)
        page.click("button[type=submit]")
        page.wait_for_selector("h1:text('Dashboard')")
        page.wait_for_load_state("load")
        buttons = page.locator("form[data-run] button[type=submit]")
        assert buttons.count() == 5
        assert [buttons.nth(i).is_enabled() for i in range(5)] == [scripted] * 5
        notice = page.locator("noscript p")  # Playwright's text selectors skip <noscript>
        assert notice.is_visible() is not scripted
        if not scripted:
            assert "The run buttons need JavaScript" in notice.text_content()
        context.close()


def test_a_full_resync_from_the_page_runs_the_whole_pipeline_against_both_crms(
    crm, engine: Engine, browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No stand-in: the button queues a run that pulls both sandbox CRMs, matches, scores and writes back,
    and the page then shows what the run produced."""
    monkeypatch.setenv("ABM_ADMIN_TOKEN", TOKEN)
    config = config_for(crm[1], engine.url.render_as_string(hide_password=False))
    with _admin_with_executor(engine, config, Pipeline(engine, config, build_plan)) as server:
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        problems = _watch_for_problems(page)
        _sign_in(page, server, problems)
        assert page.locator("#live-runs tr[data-run-id]").count() == 0

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("form.action:has(h3:text('Full resync')) button[type=submit]")
        page.locator("#toast").wait_for(state="visible")
        run_id = int(page.locator("#toast").inner_text().split("#", 1)[1].split(" ", 1)[0])
        page.wait_for_selector(f"#live-runs tr[data-run-id='{run_id}'] [data-state='succeeded']",
                               timeout=REAL_RUN_TIMEOUT_MS)

        run = get_run(engine, run_id)
        assert run is not None and run["state"] == "succeeded"
        stages = run["stages"]
        assert sorted(stages) == sorted(["pull:salesforce", "pull:hubspot", "match", "score",
                                         "writeback:salesforce", "writeback:hubspot"])
        assert all(stage["state"] == "succeeded" for stage in stages.values())
        assert run["api_calls"]["salesforce"] > 0 and run["api_calls"]["hubspot"] > 0

        # The dashboard updates in place with what the run scored: every business once (a company linked
        # to an account of the other CRM is scored as that account).
        with engine.connect() as conn:
            accounts = conn.execute(select(func.count()).select_from(Account).where(
                Account.is_deleted.is_(False), Account.id.not_in(select(AccountLink.account_id)))).scalar_one()
        grade_total = page.locator("#live-grade-total")
        # polled from Python: a string predicate (wait_for_function) is an eval the page's CSP refuses
        from playwright.sync_api import expect
        expect(grade_total).not_to_have_text(re.compile(r"^\s*0 "), timeout=REAL_RUN_TIMEOUT_MS)
        assert grade_total.inner_text() == f"{accounts} scored accounts"
        assert page.locator("#live-grades svg.chart g.bar").count() >= 2

        # An account page: its reasons and the people the matcher tied to it, from this run.
        with engine.connect() as conn:
            busiest = conn.execute(
                select(Match.account_id, func.count()).where(Match.decision != "none", Match.account_id.is_not(None))
                .group_by(Match.account_id).order_by(func.count().desc(), Match.account_id).limit(1)
            ).one()
        page.goto(f"{server.url}/accounts/{busiest[0]}")
        page.wait_for_selector("#people-title")
        people_rows = page.locator("section:has(#people-title) tbody tr")
        assert people_rows.count() >= busiest[1]  # its own, plus those of a linked company in the other CRM
        assert page.locator("section:has(#reasons-title)").inner_text().strip() != "Why"

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "admin-account-after-real-run.png"), full_page=True)
        assert problems == []
        context.close()
