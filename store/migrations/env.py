"""Alembic environment: runs against the engine abm-sync hands it (see store.migrate).

An upgrade is one transaction, on SQLite too. Python's sqlite3 driver opens a transaction only before an
``INSERT``, ``UPDATE`` or ``DELETE`` and runs DDL outside any: a step that failed after some of its DDL
kept it, and so did the steps before it until the first version stamp, with the version left older than
the schema (the next ``abm db upgrade`` then failed on an index that already existed). On SQLite the
driver is told to leave transactions alone while migrating, and the upgrade is wrapped in one it begins
itself (``BEGIN IMMEDIATE``: no other writer gets in between).
"""

from __future__ import annotations

from alembic import context

from store.schema import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    driver = connection.connection.driver_connection if sqlite else None
    if driver is not None:
        default_isolation = driver.isolation_level
        driver.isolation_level = None  # no transaction is open yet: setting it commits nothing
    try:
        with connection.begin():
            if driver is not None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,  # SQLite alters tables by copying them
                transactional_ddl=True,
                compare_type=True,
            )
            context.run_migrations()
    finally:
        if driver is not None:
            driver.isolation_level = default_isolation  # for the pool's next user
