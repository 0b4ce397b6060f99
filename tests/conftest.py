"""Shared fixtures. Database fixtures run each test on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``ABM_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway cluster);
without it PostgreSQL cases are skipped, unless ``ABM_REQUIRE_POSTGRES=1`` makes that a
failure so CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from sandbox.runner import SandboxHandle, run_sandbox
from store import migrate
from store.db import make_engine

BACKENDS = ["sqlite", "postgresql"]


def postgres_admin_url() -> str | None:
    url = os.environ.get("ABM_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("ABM_REQUIRE_POSTGRES") == "1":
            pytest.fail("ABM_REQUIRE_POSTGRES=1 but ABM_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL not configured (set ABM_TEST_POSTGRES_URL)")
    return url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A URL to an empty database of the requested backend (``backend`` param, default sqlite)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'abm.db'}"
        return
    admin_url = postgres_admin_url()
    name = f"abm_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database migrated to head."""
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Any test using the database runs once per backend.
    if "database_url" in metafunc.fixturenames and "backend" not in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True)


# -- sandbox ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    """One HTTPS sandbox for the whole test session (Salesforce surface on 127.0.0.1).

    Shared for speed: tests isolate themselves by creating their own records (unique names)
    and by ``sandbox.reset()`` (faults, request log, daily limits) — see ``clean_sandbox``.
    Clients: ``sandbox.clients.simple_salesforce(handle)``, or httpx with
    ``verify=str(handle.ca_path)``.
    """
    with run_sandbox() as handle:
        yield handle


@pytest.fixture
def clean_sandbox(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The session sandbox with no faults, an empty request log and fresh daily limits."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()
