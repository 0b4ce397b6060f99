"""The HubSpot pull under faults: 429 storms, 5xx, dropped connections, expired and revoked tokens,
a spent daily budget. Each run must end with the same store as an undisturbed run of the same portal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from test_sync_hubspot import (
    assert_store_matches_portal,
    full_then_incremental,
    hubspot_config,
    make_store,
    quick_pull,
    seed_portal,
    store_snapshot,
)

from config.connections import SyncOptions
from config.model import AbmConfig
from connectors.hubspot import HubSpotSyncTuning, pull_hubspot
from sandbox.runner import SandboxHandle, run_sandbox


@pytest.fixture
def hs() -> Iterator[SandboxHandle]:
    with run_sandbox() as handle:
        handle.hubspot_limits.configure(per_ten_seconds=1000, search_per_second=10)
        yield handle


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_store(tmp_path / "abm.db")
    yield engine
    engine.dispose()


def _undisturbed(hs: SandboxHandle, tmp_path: Path, config: AbmConfig) -> tuple[dict[str, list[tuple]], int]:
    """The store a run without faults ends with, and how many calls it took."""
    engine = make_store(tmp_path / "undisturbed.db")
    try:
        calls = 0
        for result in full_then_incremental(engine, config):
            assert not result.paused
            calls += result.api_calls
        return store_snapshot(engine), calls
    finally:
        engine.dispose()
        hs.request_log.clear()


FAULTS = {
    "429 storm": lambda h: [h.faults.fail(429, path=r"/crm/v3/objects/contacts$", times=6, retry_after=0.05)],
    "429 without Retry-After": lambda h: [h.faults.fail(429, path=r"/crm/v3/objects/deals$", times=2)],
    "search 429s": lambda h: [h.faults.fail(429, method="POST", path=r"/search$", times=3, retry_after=0.05)],
    "5xx": lambda h: [h.faults.fail(503, path=r"/crm/v3/objects/calls$", times=2),
                      h.faults.fail(500, path=r"/crm/v3/properties/", times=2),
                      h.faults.fail(502, path=r"/email/public/v1/events", times=1)],
    "dropped connections": lambda h: [h.faults.drop(path=r"/crm/v3/objects/companies$", times=2),
                                      h.faults.drop(path=r"/events/v3/events", times=1)],
    "timeouts": lambda h: [h.faults.hang(3.0, path=r"/crm/v3/objects/deals$", times=1),
                           h.faults.hang(3.0, method="POST", path=r"/search$", times=1)],
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_faults_end_with_the_same_store_as_an_undisturbed_run(hs: SandboxHandle, store: Engine, tmp_path: Path,
                                                              fault: str) -> None:
    seed_portal(hs, contacts=120, engagements=30, events=60)
    config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=50))
    expected, _ = _undisturbed(hs, tmp_path, config)
    rules = FAULTS[fault](hs)
    wanted = [rule.times for rule in rules]
    assert not any(result.paused for result in full_then_incremental(store, config))
    assert [rule.fired for rule in rules] == wanted  # every injected fault was met, and survived
    assert store_snapshot(store) == expected


def test_an_expired_oauth_token_is_refreshed(hs: SandboxHandle, store: Engine, tmp_path: Path) -> None:
    seed_portal(hs, contacts=60, engagements=10, events=20)
    creds = hs.hubspot_credentials
    for name, value in (("secret", creds.client_secret), ("refresh", creds.refresh_token)):
        (tmp_path / name).write_text(value)
    config = hubspot_config(hs, tmp_path, auth="oauth", client_id=creds.client_id,
                            client_secret_file=tmp_path / "secret", refresh_token_file=tmp_path / "refresh",
                            access_token_file=None, sync=SyncOptions(page_size=20))
    expected, _ = _undisturbed(hs, tmp_path, config)
    rules = [hs.faults.fail(401, path=r"/crm/v3/objects/contacts$", times=1),  # "token expired" mid-listing
             hs.faults.fail(401, method="POST", path=r"/search$", times=1)]
    assert not any(result.paused for result in full_then_incremental(store, config))
    assert [rule.fired for rule in rules] == [1, 1] and store_snapshot(store) == expected
    hs.expire_sessions()  # every token issued so far is dead
    assert not quick_pull(store, config).paused
    assert store_snapshot(store) == expected


def test_a_revoked_private_app_token_fails_with_an_actionable_error(hs: SandboxHandle, store: Engine,
                                                                     tmp_path: Path) -> None:
    config = hubspot_config(hs, tmp_path)
    (tmp_path / "hubspot-token").write_text("pat-na1-revoked")
    with pytest.raises(Exception, match="private app access token") as error:
        pull_hubspot(store, config)
    assert "pat-na1" not in str(error.value)


@pytest.mark.parametrize("how", ["budget guard", "portal daily limit"])
def test_daily_budget_pauses_the_run_and_the_next_one_finishes(hs: SandboxHandle, store: Engine, tmp_path: Path,
                                                                how: str) -> None:
    seed_portal(hs, contacts=200, engagements=30, events=100)
    config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=25))
    expected, calls = _undisturbed(hs, tmp_path, config)
    hs.hubspot_limits.reset()
    if how == "budget guard":  # our guard stops halfway through the day's budget, before HubSpot refuses
        hs.hubspot_limits.configure(daily=calls)
        config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=25, max_api_share=0.5))
    else:  # HubSpot itself answers 429 DAILY halfway through the run
        hs.hubspot_limits.configure(daily=calls // 2)
        config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=25, max_api_share=1.0))
    paused = quick_pull(store, config)
    assert paused.paused and "next one continues" in (paused.pause_reason or "")
    assert not all(c.done for c in paused.objects.values())
    partial = store_snapshot(store)
    assert 0 < sum(map(len, partial.values())) < sum(map(len, expected.values()))
    hs.hubspot_limits.configure(daily=1_000_000)
    hs.hubspot_limits.reset()
    resumed = quick_pull(store, config)
    assert not resumed.paused
    assert store_snapshot(store) == expected


def test_an_object_the_app_may_not_read_is_reported_and_the_rest_pulled(hs: SandboxHandle, store: Engine,
                                                                      tmp_path: Path) -> None:
    seed_portal(hs, contacts=20, engagements=5, events=30)
    hs.faults.fail(403, path=r"/email/public/v1/events", times=None)  # no ``content`` scope
    result = pull_hubspot(store, hubspot_config(hs, tmp_path))
    assert not result.paused and not result.objects["email_events"].done
    assert result.objects["web_events"].done and result.objects["contacts"].read == 20
    refused = [w for w in result.warnings if w.startswith("hubspot email_events: not pulled")]
    assert len(refused) == 1 and "MISSING_SCOPES" in refused[0]


def test_an_incremental_paused_mid_search_resumes_where_it_stopped(hs: SandboxHandle, store: Engine,
                                                                    tmp_path: Path) -> None:
    seed_portal(hs, contacts=400, engagements=10, events=0)
    config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=100, max_api_share=1.0))
    # One object at a time: the daily limit of 6 below must fall at a known call of the contacts' search
    # (searched, though half of them changed: listing would be faster at this test's rates).
    tuning = HubSpotSyncTuning(search_page_size=40, association_batch_size=80, concurrent_objects=1,
                               list_when_faster=False)
    undisturbed = make_store(tmp_path / "undisturbed.db")
    for engine in (undisturbed, store):
        assert not quick_pull(engine, config, tuning=tuning).paused
    portal = hs.hubspot_portal
    contacts = portal.object_type("contacts")
    rows, _ = portal.page(contacts, 0, 400, False)
    for n, row in enumerate(rows[::2]):  # 200 contacts change: five search pages of 40
        portal.update(contacts, int(row["hs_object_id"]), {"jobtitle": f"Director {n}"})
    hs.request_log.clear()
    assert not quick_pull(undisturbed, config, tuning=tuning).paused
    whole = hs.request_log.count("POST", r"/crm/v3/objects/contacts/search$")
    expected = store_snapshot(undisturbed)
    undisturbed.dispose()

    hs.hubspot_limits.reset()
    hs.request_log.clear()
    # companies (search, archived listing), then contacts: two search pages, their associations, a third page
    hs.hubspot_limits.configure(daily=6)
    paused = quick_pull(store, config, tuning=tuning)
    assert paused.paused and not paused.objects["contacts"].done and paused.objects["contacts"].read == 80
    hs.hubspot_limits.configure(daily=1_000_000)
    hs.hubspot_limits.reset()
    hs.request_log.clear()
    resumed = quick_pull(store, config, tuning=tuning)
    assert not resumed.paused and store_snapshot(store) == expected
    # the resumed search starts after the two committed pages instead of at the window's start
    assert hs.request_log.count("POST", r"/crm/v3/objects/contacts/search$") == whole - 2


def test_searches_go_on_while_a_batchs_associations_are_read(hs: SandboxHandle, store: Engine,
                                                              tmp_path: Path) -> None:
    """Search is paced by its own limit: the association read, mapping and store writes of one batch
    of search pages happen while the next pages are searched, and land in search order."""
    seed_portal(hs, contacts=400, engagements=10, events=0)
    config = hubspot_config(hs, tmp_path, sync=SyncOptions(page_size=100))
    tuning = HubSpotSyncTuning(search_page_size=40, association_batch_size=80, concurrent_objects=1,
                               list_when_faster=False)  # searched, as the test is about search
    assert not quick_pull(store, config, tuning=tuning).paused
    portal = hs.hubspot_portal
    contacts = portal.object_type("contacts")
    rows, _ = portal.page(contacts, 0, 400, False)
    for n, row in enumerate(rows[::2]):  # 200 contacts change: five search pages of 40, three batches
        portal.update(contacts, int(row["hs_object_id"]), {"jobtitle": f"Head of {n}"})
    hs.request_log.clear()
    hs.faults.delay(2.0, method="POST", path="^/crm/v4/associations/contacts/", times=1)
    try:
        result = quick_pull(store, config, tuning=tuning)
    finally:
        hs.faults.clear()
    assert not result.paused and result.objects["contacts"].done and result.objects["contacts"].read >= 200
    assert_store_matches_portal(hs, store)
    [held] = [e for e in hs.request_log.entries("POST", "^/crm/v4/associations/contacts/") if e.fault]
    searches = hs.request_log.entries("POST", "/crm/v3/objects/contacts/search$")
    assert len(searches) >= 5 and min(e.seq for e in searches[2:]) < held.seq


def test_web_events_read_ahead_of_their_write_are_read_again_after_a_pause(hs: SandboxHandle, store: Engine,
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Web event pages are written a few at a time with the cursor past them: a run paused between two writes
    keeps what it wrote, and the next one reads the pages after it again and loses nothing."""
    from connectors.hubspot import event_pull

    seed_portal(hs, contacts=40, engagements=0, events=120)
    config = hubspot_config(hs, tmp_path, sync=SyncOptions(max_api_share=1.0))
    tuning = HubSpotSyncTuning(web_events_page_size=10)
    monkeypatch.setattr(event_pull, "WEB_EVENTS_PER_WRITE", 25)  # a write every third page
    undisturbed = make_store(tmp_path / "undisturbed.db")
    assert not quick_pull(undisturbed, config, objects=["web_events"], tuning=tuning).paused
    expected = store_snapshot(undisturbed)
    pages = hs.request_log.count("GET", r"/events/v3/events")
    undisturbed.dispose()
    assert pages >= 5 and len(expected["activities"]) >= 40

    hs.hubspot_limits.reset()
    hs.request_log.clear()
    hs.hubspot_limits.configure(daily=5)  # five pages: three written, two read ahead and lost with the pause
    paused = quick_pull(store, config, objects=["web_events"], tuning=tuning)
    assert paused.paused and not paused.objects["web_events"].done
    assert len(store_snapshot(store)["activities"]) == 30
    hs.hubspot_limits.configure(daily=1_000_000)
    hs.hubspot_limits.reset()
    hs.request_log.clear()
    resumed = quick_pull(store, config, objects=["web_events"], tuning=tuning)
    assert not resumed.paused and store_snapshot(store) == expected
    # from the last page written on: the pages read ahead are read again, none of those written before
    assert hs.request_log.count("GET", r"/events/v3/events") == pages - 3
