"""Schema migrations, driven by Alembic from inside the product (``abm db ...``).

Every command other than ``abm db upgrade`` checks :func:`require_current` first, so an
upgraded binary never writes into a database whose schema it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one this version of abm-sync expects."""


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "store:migrations")
    cfg.attributes["engine"] = engine
    return cfg


@cache
def head_revision() -> str:
    """The revision this code's schema is at. Read once per process (25 ms: Alembic reads every migration
    script): every command checks it, and so does every read and write of a kept copy (store.kept_copies)."""
    script = ScriptDirectory.from_config(_bare_config())
    head = script.get_current_head()
    assert head is not None, "the migration scripts have no head"
    return head


def _bare_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "store:migrations")
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def status(engine: Engine) -> SchemaStatus:
    return SchemaStatus(current=current_revision(engine), head=head_revision())


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def require_current(engine: Engine) -> None:
    """Refuse to go on with a schema that is missing or older/newer than this code's."""
    state = status(engine)
    if state.current is None:
        raise SchemaOutOfDate("the database has no abm-sync schema yet: run `abm db upgrade` to create it")
    if not state.up_to_date:
        raise SchemaOutOfDate(
            f"the database schema is at revision {state.current}, this version of abm-sync needs "
            f"{state.head}: run `abm db upgrade`"
        )
