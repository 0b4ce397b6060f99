"""Salesforce pull against the sandbox over HTTPS: full then incremental equals the org, field by field;
an idle incremental costs one query per object; lookback re-reads; our own writes; missing fields;
activity types; the ``abm sync`` command."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine
from test_sync_salesforce_support import OBJECTS, assert_store_equals_org, build_org, client, sf_config, store_rows
from typer.testing import CliRunner

from connectors.salesforce import pull_salesforce
from sandbox.runner import SandboxHandle, run_sandbox
from sandbox.salesforce.schema import SfField
from store.runs import get_run
from worker.cli import app


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxHandle]:
    """A sandbox of its own: a pull reads whole objects, so tests cannot share an org."""
    with run_sandbox() as handle:
        yield handle


def test_full_then_incremental_sync_equals_the_org(fresh_sandbox: SandboxHandle, engine: Engine, tmp_path) -> None:
    ids = build_org(fresh_sandbox.sandbox.salesforce.org)
    config = sf_config(fresh_sandbox, tmp_path)
    full_start = datetime.now(UTC)
    full = pull_salesforce(engine, config, full=True)
    assert not full.paused and full.warnings == []
    assert {name: c.method for name, c in full.objects.items()} == dict.fromkeys(OBJECTS, "bulk")
    assert_store_equals_org(engine, fresh_sandbox, full_start)
    run = get_run(engine, full.run_id)
    assert run["state"] == "succeeded" and run["kind"] == "full" and run["api_calls"] == {"salesforce": full.api_calls}

    # Changes of every kind, then an incremental run.
    sf = client(fresh_sandbox)
    sf.Account.update(ids["Account"][3], {"Name": "Renamed GmbH", "Website": "https://renamed.de"})
    sf.Contact.update(ids["Contact"][5], {"Email": "new@acme.com", "AccountId": ids["Account"][4]})
    sf.Opportunity.update(ids["Opportunity"][0], {"StageName": "Closed Won"})
    sf.Task.delete(ids["Task"][0])
    sf.Lead.create({"LastName": "Newcomer", "Company": "New Co", "Email": "n@newco.io"})
    sf.Task.create({"Subject": "Call", "TaskSubtype": "Call", "Status": "Completed", "CallDurationInSeconds": 400,
                    "WhoId": ids["Contact"][1], "WhatId": ids["Account"][1], "ActivityDate": "2024-06-01"})
    incremental_start = datetime.now(UTC)
    incremental = pull_salesforce(engine, config)
    assert not incremental.paused
    assert {name: c.method for name, c in incremental.objects.items()} == dict.fromkeys(OBJECTS, "rest")
    assert incremental.objects["Lead"].upserted == 1 and incremental.objects["Task"].deleted >= 1
    assert_store_equals_org(engine, fresh_sandbox, incremental_start)


def test_idle_incremental_costs_one_query_per_object_and_one_limits_call(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    build_org(fresh_sandbox.sandbox.salesforce.org, accounts=10)
    config = sf_config(fresh_sandbox, tmp_path)
    pull_salesforce(engine, config)
    fresh_sandbox.request_log.clear()
    result = pull_salesforce(engine, config)
    log = fresh_sandbox.request_log
    api = [e for e in log.entries() if not e.path.endswith("/oauth2/token")]
    queries = [e for e in api if "/query" in e.path]
    assert len(queries) == len(OBJECTS) and {e.endpoint.rsplit("/", 1)[1] for e in queries} == {"queryAll"}
    assert len([e for e in api if e.endpoint.endswith("/limits")]) == 1
    assert len(api) == len(OBJECTS) + 1 == result.api_calls
    # Only records inside the lookback (the sandbox's integration user, created at start) are read again.
    assert result.totals()["read"] <= 1 and result.totals()["upserted"] == result.totals()["deleted"] == 0


def test_lookback_reread_produces_no_duplicates_nor_changes(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    sf = client(fresh_sandbox)
    config = sf_config(fresh_sandbox, tmp_path, sync={"lookback_minutes": 30})
    pull_salesforce(engine, config)
    recent = [sf.Account.create({"Name": f"Recent {i}"})["id"] for i in range(5)]
    first = pull_salesforce(engine, config)
    assert first.objects["Account"].upserted == 5
    before = store_rows(engine, "Account")
    again = pull_salesforce(engine, config)  # the same five are inside the lookback window
    assert again.objects["Account"].read >= 5 and again.objects["Account"].upserted == 0
    after = store_rows(engine, "Account")
    assert after == before and set(recent) <= set(after)


def test_changes_only_to_abm_fields_do_not_count_as_changes(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    org = fresh_sandbox.sandbox.salesforce.org
    org.schema.add_field("Account", SfField("ABM_Engagement__c", "double", custom=True, precision=5, scale=1))
    sf = client(fresh_sandbox)
    account = sf.Account.create({"Name": "Scored Inc", "ABM_Engagement__c": 10})["id"]
    other = sf.Account.create({"Name": "Edited Inc"})["id"]
    config = sf_config(fresh_sandbox, tmp_path, pull={"extra_fields": {"Account": ["ABM_Engagement__c"]}})
    first = pull_salesforce(engine, config)
    assert any("ABM_Engagement__c" in w and "abm-sync's own" in w for w in first.warnings)
    before = store_rows(engine, "Account")
    sf.Account.update(account, {"ABM_Engagement__c": 55.5})  # what writeback does
    sf.Account.update(other, {"Industry": "Retail"})  # what a rep does
    fresh_sandbox.request_log.clear()
    pull_salesforce(engine, config)
    after = store_rows(engine, "Account")
    assert after[account]["changed_at"] == before[account]["changed_at"]
    assert after[account]["modified_at"] > before[account]["modified_at"]
    assert after[account]["extra"] is None
    assert after[other]["changed_at"] > before[other]["changed_at"] and after[other]["industry"] == "Retail"
    assert all("ABM_" not in e.query for e in fresh_sandbox.request_log.entries(path="/query"))


def test_configured_field_the_org_lacks_is_reported_once_and_skipped(
    fresh_sandbox: SandboxHandle, engine: Engine, tmp_path
) -> None:
    sf = client(fresh_sandbox)
    sf.Account.create({"Name": "Tiered", "AccountSource": "Partner"})
    config = sf_config(fresh_sandbox, tmp_path, pull={"extra_fields": {"Account": ["Tier__c", "AccountSource"]}})
    first = pull_salesforce(engine, config)
    assert [w for w in first.warnings if "Tier__c" in w] == [
        "Salesforce Account: the org lacks (or hides from the integration user) Tier__c; skipped"
    ]
    rows = store_rows(engine, "Account")
    assert [r["extra"] for r in rows.values() if r["name"] == "Tiered"] == [{"AccountSource": "Partner"}]
    fresh_sandbox.request_log.clear()
    second = pull_salesforce(engine, config)
    assert second.warnings == [] and fresh_sandbox.request_log.count(path="/describe") == 0
    redescribed = pull_salesforce(engine, sf_config(
        fresh_sandbox, tmp_path, pull={"extra_fields": {"Account": ["Tier__c", "AccountSource"]},
                                       "describe_refresh_hours": 0}))
    assert redescribed.warnings == [] and fresh_sandbox.request_log.count(path="/describe") == len(OBJECTS)


def test_activity_types_from_the_default_rules(fresh_sandbox: SandboxHandle, engine: Engine, tmp_path) -> None:
    sf = client(fresh_sandbox)
    contact = sf.Contact.create({"LastName": "Buyer"})["id"]
    webinar = sf.Campaign.create({"Name": "Launch webinar", "Type": "Webinar"})["id"]
    now = datetime.now(UTC)
    made = {
        "call": sf.Task.create({"TaskSubtype": "Call", "Status": "Completed", "CallDurationInSeconds": 10,
                                "WhoId": contact, "Subject": "Call"}),
        "call_connected": sf.Task.create({"TaskSubtype": "Call", "Status": "Completed", "WhoId": contact,
                                          "CallDurationInSeconds": 60, "Subject": "Call"}),
        "meaningful_conversation": sf.Task.create({"TaskSubtype": "Call", "Status": "Completed", "WhoId": contact,
                                                   "CallDurationInSeconds": 1200, "Subject": "Call"}),
        "email_reply": sf.Task.create({"TaskSubtype": "Email", "Status": "Completed", "Subject": "Re: your question",
                                       "WhoId": contact}),
        "email_sent": sf.Task.create({"TaskSubtype": "Email", "Status": "Completed", "Subject": "Hello",
                                      "WhoId": contact}),
        "demo": sf.Event.create({"Subject": "Product Demo", "WhoId": contact,
                                 "StartDateTime": (now - timedelta(days=1)).isoformat()}),
        "meeting_completed": sf.Event.create({"Subject": "Intro", "WhoId": contact, "DurationInMinutes": 30,
                                              "StartDateTime": (now - timedelta(days=1)).isoformat()}),
        "meeting_scheduled": sf.Event.create({"Subject": "Intro", "WhoId": contact, "DurationInMinutes": 30,
                                              "StartDateTime": (now + timedelta(days=1)).isoformat()}),
    }
    open_task = sf.Task.create({"Subject": "Call back", "TaskSubtype": "Call", "Status": "Not Started"})["id"]
    org = fresh_sandbox.sandbox.salesforce.org
    member = org.new_id(org.object("CampaignMember"))
    org.load("CampaignMember", [{"Id": member, "CampaignId": webinar, "ContactId": contact, "Status": "Attended",
                                 "HasResponded": True}])
    pull_salesforce(engine, sf_config(fresh_sandbox, tmp_path))
    rows = {**store_rows(engine, "Task"), **store_rows(engine, "Event"), **store_rows(engine, "CampaignMember")}
    assert {kind: rows[r["id"]]["activity_type"] for kind, r in made.items()} == {k: k for k in made}
    assert rows[made["meaningful_conversation"]["id"]]["duration_seconds"] == 1200
    assert rows[member]["activity_type"] == "webinar_attended" and rows[member]["campaign_type"] == "Webinar"
    assert rows[member]["team"] == "marketing" and rows[made["call"]["id"]]["team"] == "sales"
    assert open_task not in rows


def test_a_scheduled_meeting_is_held_once_its_end_passes(fresh_sandbox: SandboxHandle, engine: Engine,
                                                           tmp_path) -> None:
    """Nobody edits a meeting for having taken place, so no incremental pull reads it again: the pull after
    its end completes it all the same, and stamps it changed for the score stage."""
    org = fresh_sandbox.sandbox.salesforce.org
    stamped = datetime.now(UTC) - timedelta(days=2)  # before any lookback window
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    soon, later = org.new_id(org.object("Event")), org.new_id(org.object("Event"))
    org.load("Event", [{"Id": event, "Subject": "Intro", "Type": "Meeting", "DurationInMinutes": 30,
                        "StartDateTime": end - timedelta(minutes=30), "EndDateTime": end, "ActivityDate": end.date(),
                        "CreatedDate": stamped, "LastModifiedDate": stamped, "SystemModstamp": stamped}
                       for event, end in ((soon, ends), (later, ends + timedelta(days=1)))])
    config = sf_config(fresh_sandbox, tmp_path)
    first = pull_salesforce(engine, config, objects=["Event"])
    rows = store_rows(engine, "Event")
    assert rows[soon]["activity_type"] == "meeting_scheduled" and rows[soon]["ends_at"] == ends
    assert first.meetings_held == 0
    time.sleep(max((ends - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    again = pull_salesforce(engine, config, objects=["Event"])
    rows = store_rows(engine, "Event")
    assert again.objects["Event"].read == 0 and again.meetings_held == 1
    assert again.stage_report().detail["meetings_held"] == 1
    assert (rows[soon]["activity_type"], rows[soon]["team"]) == ("meeting_completed", "sales")
    assert rows[soon]["changed_at"] > ends
    assert rows[later]["activity_type"] == "meeting_scheduled"


def test_abm_sync_command(fresh_sandbox: SandboxHandle, tmp_path: Path, monkeypatch) -> None:
    build_org(fresh_sandbox.sandbox.salesforce.org, accounts=5)
    config = sf_config(fresh_sandbox, tmp_path).model_dump(mode="json", exclude_defaults=True)
    config_file = tmp_path / "abm.yaml"
    config_file.write_text(yaml.safe_dump({"salesforce": config["salesforce"]}))
    monkeypatch.setenv("ABM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(config_file), "db", "upgrade"]).exit_code == 0
    full = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "salesforce", "--full",
                               "--objects", "Account", "--objects", "Contact"])
    assert full.exit_code == 0, full.output
    assert "Account" in full.output and "Contact" in full.output and "Lead" not in full.output
    assert "API calls" in full.output and "remaining" in full.output
    again = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "salesforce"])
    assert again.exit_code == 0 and "succeeded" in again.output
    unknown = runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "salesforce", "--objects", "Foo"])
    assert unknown.exit_code == 2 and "unknown Salesforce object" in unknown.output
    assert runner.invoke(app, ["--config", str(config_file), "sync", "--crm", "pipedrive"]).exit_code == 2

