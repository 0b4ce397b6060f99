"""Shared fixtures. Database fixtures run each test on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``ABM_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway cluster);
without it PostgreSQL cases are skipped, unless ``ABM_REQUIRE_POSTGRES=1`` makes that a
failure so CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

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


Build = Callable[[Engine], None]


def _build_key(build: Build | None) -> str:
    return "migrated" if build is None else f"{build.__module__}.{build.__qualname__}"


class _Templates:
    """Stores built once per backend and test process, copied for each test that asks for ``engine``: migrated to
    head, then filled by the test's ``store_from`` mark's function if it has one. A PostgreSQL ``CREATE DATABASE
    ... TEMPLATE`` takes about 0.1 s where creating and migrating takes 0.45 s, and the suite does it some 300
    times per backend; a store seeded, matched and scored with trained models takes seconds more."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: dict[str, Path] = {}
        self._postgres: dict[str, str] = {}
        self._created: list[str] = []  # every PostgreSQL template, built or not: dropped at the end

    def sqlite_file(self, build: Build | None) -> Path:
        key = _build_key(build)
        if key not in self._sqlite:  # a build that failed left its file aside: the next test builds afresh
            path = self.directory / f"template-{uuid.uuid4().hex[:12]}.db"
            eng = make_engine(f"sqlite:///{path}")
            migrate.upgrade(eng)
            if build is not None:
                build(eng)
            with eng.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file copied
            eng.dispose()
            self._sqlite[key] = path
        return self._sqlite[key]

    def postgres_name(self, admin: Engine, admin_url: str, build: Build | None) -> str:
        key = _build_key(build)
        if key not in self._postgres:  # as for SQLite: only a template whose build ended is copied
            name = f"abm_tmpl_{uuid.uuid4().hex[:12]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self._created.append(name)
            eng = make_engine(make_url(admin_url).set(database=name).render_as_string(hide_password=False))
            migrate.upgrade(eng)
            if build is not None:
                build(eng)
            eng.dispose()  # a template is copied only while no one is connected to it
            self._postgres[key] = name
        return self._postgres[key]

    def drop(self) -> None:
        if not self._created:
            return
        admin = create_engine(make_url(postgres_admin_url()).set(drivername="postgresql+psycopg"),
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self._created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("templates"))
    yield templates
    templates.drop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path, _templates: _Templates) -> Iterator[str]:
    """A URL to a database of the requested backend (``backend`` param, default sqlite): empty, or, when the
    test also asks for ``engine``, migrated to head and filled by its ``store_from`` mark's function."""
    backend = getattr(request, "param", "sqlite")
    migrated = "engine" in request.fixturenames
    marker = request.node.get_closest_marker("store_from")
    build = marker.kwargs["build"] if marker else None  # a keyword: a lone callable would be decorated
    if backend == "sqlite":
        path = tmp_path / "abm.db"
        if migrated:
            shutil.copyfile(_templates.sqlite_file(build), path)
        yield f"sqlite:///{path}"
        return
    admin_url = postgres_admin_url()
    name = f"abm_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    template = f' TEMPLATE "{_templates.postgres_name(admin, admin_url, build)}"' if migrated else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head, empty unless the test's ``store_from`` mark fills it (a copy
    of the test process's template, see ``_Templates``)."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Any test using the database runs once per backend, or on those its ``backends`` mark names.
    if "database_url" in metafunc.fixturenames and "backend" not in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        metafunc.parametrize("database_url", list(marker.args) if marker else BACKENDS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With several test processes, each begins with its share of the ``slow`` tests.

    pytest-xdist's ``worksteal`` hands each process a contiguous part of the collection, then moves the tail of
    the longest queue to a process that runs out; a test already started is never moved. A slow test late in a
    part therefore ended the suite: the Salesforce M-org pull started at 654 s of a local run and ended at 809
    s, the other processes done by 705-751 s. Dealt in turn to the start of each process's part, the slow tests
    run first while the others' tails balance the rest. The order of what runs is all this changes.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    slow = [item for item in items if item.get_closest_marker("slow")]
    if workers < 2 or not slow:
        return
    rest = iter([item for item in items if not item.get_closest_marker("slow")])
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        part = left // (workers - worker)  # the part worksteal sends this process first
        dealt = slow[worker::workers]
        ordered += dealt
        ordered += [item for _, item in zip(range(part - len(dealt)), rest, strict=False)]
        left -= part
    ordered += rest
    items[:] = ordered


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
