"""Alembic: empty -> head -> empty -> head, and the models never drift from the migrations."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from store import migrate
from store.db import make_engine
from store.migrate import SchemaOutOfDate
from store.schema import Base


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_then_downgrade_then_upgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    assert migrate.status(engine).current is None
    migrate.upgrade(engine)
    assert migrate.status(engine).up_to_date
    assert tables(engine) == set(Base.metadata.tables)
    migrate.downgrade(engine, "base")
    assert tables(engine) == set()
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert tables(engine) == set(Base.metadata.tables)
    engine.dispose()


def test_models_match_migrations(database_url: str) -> None:
    """A model change without a migration would fail here, not in a user's upgrade."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    engine.dispose()


def test_out_of_date_schema_is_refused_with_the_fixing_command(database_url: str) -> None:
    engine = make_engine(database_url)
    with pytest.raises(SchemaOutOfDate, match="abm db upgrade"):
        migrate.require_current(engine)
    migrate.upgrade(engine)
    migrate.require_current(engine)
    migrate.downgrade(engine, "base")
    with pytest.raises(SchemaOutOfDate, match="abm db upgrade"):
        migrate.require_current(engine)
    engine.dispose()


def test_a_migration_that_fails_midway_leaves_the_schema_as_it_was(database_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An upgrade is one transaction on SQLite too (whose driver runs DDL outside any by default): a step that
    fails after some of its DDL keeps none of it, nor any earlier step's, and upgrading again works."""
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0011")
    before = inspect(engine).get_indexes("accounts")
    create_index = Operations.create_index

    def created_then_failed(self: Operations, index_name: str, *args: Any, **kwargs: Any) -> Any:
        create_index(self, index_name, *args, **kwargs)
        if index_name == "ix_accounts_changed_at":  # 0013's first index
            raise RuntimeError("disk full")

    monkeypatch.setattr(Operations, "create_index", created_then_failed)
    with pytest.raises(RuntimeError, match="disk full"):
        migrate.upgrade(engine)
    engine.dispose()
    assert migrate.current_revision(engine) == "0011"
    assert inspect(engine).get_indexes("accounts") == before
    assert "ix_matches_decision" not in {i["name"] for i in inspect(engine).get_indexes("matches")}  # 0012's
    monkeypatch.undo()
    migrate.upgrade(engine)
    assert migrate.status(engine).up_to_date
    engine.dispose()
