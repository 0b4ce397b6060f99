"""Which function pulls which CRM: one entry per CRM, shared by `abm sync` and the pipeline.

Every pull has the same shape, ``pull(engine, config, run_id=None, full=False, objects=None,
progress=None) -> SyncResult``, so adding a CRM is adding one entry here. Each CRM's module is
imported only when it is used: their client libraries are heavy to load.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Protocol

from sqlalchemy import Engine

from config import AbmConfig
from connectors.result import ProgressCallback, SyncResult

_PULLS = {"salesforce": ("connectors.salesforce", "pull_salesforce"), "hubspot": ("connectors.hubspot", "pull_hubspot")}
CRMS = tuple(_PULLS)


class Pull(Protocol):
    def __call__(self, engine: Engine, config: AbmConfig, run_id: int | None = None, full: bool = False,
                 objects: Sequence[str] | None = None, progress: ProgressCallback | None = None) -> SyncResult: ...


def pull_for(crm: str) -> Pull:
    try:
        module, name = _PULLS[crm]
    except KeyError:
        raise ValueError(f"unknown CRM {crm!r}; expected one of {', '.join(CRMS)}") from None
    return getattr(import_module(module), name)
