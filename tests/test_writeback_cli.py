"""`abm init` and `abm writeback` end to end: abm.yaml pointing at the sandbox, sign-in through the
connectors (Salesforce OAuth client credentials, HubSpot private app), both CRMs, a run record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select
from test_writeback_support import seed_hubspot, seed_salesforce, write_requests
from typer.testing import CliRunner

from sandbox.runner import SandboxHandle, run_sandbox
from store import migrate
from store.db import make_engine
from store.schema import Run
from worker.cli import app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[SandboxHandle, Path, Engine]]:
    """A fresh sandbox, an abm.yaml for it (secrets in files) and a migrated SQLite store."""
    with run_sandbox() as handle:
        secret = tmp_path / "sf-secret"
        secret.write_text(handle.salesforce_credentials.client_secret)
        token = tmp_path / "hs-token"
        token.write_text(handle.hubspot_token)
        url = f"sqlite:///{tmp_path / 'abm.db'}"
        config: dict[str, Any] = {
            "database": {"url": url},
            "salesforce": {"enabled": True, "login_url": handle.base_url, "auth": "client_credentials",
                           "client_id": handle.salesforce_credentials.client_id, "client_secret_file": str(secret),
                           "ca_file": str(handle.ca_path)},
            "hubspot": {"enabled": True, "base_url": handle.base_url, "auth": "private_app",
                        "access_token_file": str(token), "ca_file": str(handle.ca_path)},
            # the sandbox's Metadata API has no Lookup fields (see the issue 8 report)
            "writeback": {"fields": {"matched_account": {"type": "text", "length": 18}}},
        }
        path = tmp_path / "abm.yaml"
        path.write_text(yaml.safe_dump(config))
        engine = make_engine(url)
        migrate.upgrade(engine)
        yield handle, path, engine
        engine.dispose()


def crm_writes(handle: SandboxHandle) -> list[Any]:
    """Requests that could change CRM data or metadata (signing in aside)."""
    return [e for e in write_requests(handle) if "oauth" not in e.path]


def abm(path: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--config", str(path), *args], catch_exceptions=False)
    return result


def test_init_then_writeback_through_the_cli(world: tuple[SandboxHandle, Path, Engine]) -> None:
    handle, path, engine = world
    preview = abm(path, "init", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "would create" in preview.output and crm_writes(handle) == []

    created = abm(path, "init")
    assert created.exit_code == 0, created.output
    assert "59 created" in created.output  # Salesforce 10 + 13 + 13 fields, HubSpot 10 + 13 properties
    assert "permission set" in created.output and "Field-level permissions" in created.output
    again = abm(path, "init")
    assert again.exit_code == 0 and "would create" not in again.output and "Still to do" not in again.output

    seed_salesforce(handle, engine, n_accounts=30, n_leads=6)
    seed_hubspot(handle, engine, n_companies=12, n_contacts=4)
    handle.request_log.clear()
    dry = abm(path, "writeback", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "(unset) ->" in dry.output and crm_writes(handle) == []

    written = abm(path, "writeback")
    assert written.exit_code == 0, written.output
    assert "API calls: salesforce 2, hubspot 2" in written.output  # Account, Lead; companies, contacts
    handle.request_log.clear()
    quiet = abm(path, "writeback")
    assert quiet.exit_code == 0 and "API calls: salesforce 0, hubspot 0" in quiet.output
    assert crm_writes(handle) == []
    with engine.connect() as conn:
        runs = conn.execute(select(Run.kind, Run.state, Run.counts, Run.api_calls)).all()
    assert [(r.kind, r.state) for r in runs] == [("writeback", "succeeded")] * 2
    assert runs[0].counts["written"] == 30 + 6 + 12 + 4 and runs[0].api_calls == {"salesforce": 2, "hubspot": 2}


def test_unknown_crm_is_a_clear_error(world: tuple[SandboxHandle, Path, Engine]) -> None:
    _, path, _ = world
    result = abm(path, "writeback", "--crm", "pipedrive")
    assert result.exit_code == 2 and "unknown CRM" in result.output


def test_rejected_credentials_are_a_clear_error(world: tuple[SandboxHandle, Path, Engine]) -> None:
    handle, path, engine = world
    (path.parent / "sf-secret").write_text("not-the-secret")
    for command in ("init", "writeback"):
        result = abm(path, command, "--crm", "salesforce")
        assert result.exit_code == 1, result.output
        assert "error:" in result.output and "not-the-secret" not in result.output
    with engine.connect() as conn:
        assert conn.execute(select(Run.id)).first() is None  # nothing was started
