"""Opening the store for a command: engine plus the schema check every command relies on."""

from __future__ import annotations

from sqlalchemy import Engine

from store.db import make_engine
from store.migrate import require_current


def open_store(url: str, *, check_schema: bool = True) -> Engine:
    """An engine on ``url``; refuses an out-of-date schema unless ``check_schema`` is False."""
    engine = make_engine(url)
    if check_schema:
        require_current(engine)
    return engine
