"""Asking for a run: the one entry point shared by the CLI, the scheduler and the admin API.

Whoever asks, a run starts life as a ``queued`` row with its options; an executor claims it,
takes the pipeline lock and runs it. Asking while another run is queued or running either
queues behind it (the scheduler, ``queue=True``) or is refused with the id of the run in the way
(the API answers 409 with it), so an impatient admin clicking twice never starts two runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from config.model import CRM_NAMES as CRMS
from store.runs import create_run, fail_abandoned
from store.schema import Run
from worker.lock import pipeline_lock_alive

TRIGGERS = ("schedule", "cli", "api", "page")
log = logging.getLogger(__name__)


class RunConflict(RuntimeError):
    """A run is already queued or running, and the caller did not ask to queue behind it."""

    def __init__(self, run_id: int, state: str) -> None:
        super().__init__(f"run {run_id} is already {state}")
        self.run_id = run_id
        self.state = state


class InvalidRunOptions(ValueError):
    """Options an admin typed that cannot be run (unknown CRM, rewrite without scope...)."""


@dataclass(frozen=True)
class RunOptions:
    """What a run does. The defaults are the scheduled incremental run of every enabled CRM."""

    full: bool = False  # re-read everything from the CRMs instead of changes since the cursors
    crms: tuple[str, ...] = ()  # limit the pull to these CRMs; empty = every enabled CRM
    accounts: tuple[str, ...] = ()  # resync only these accounts (CRM ids), their people and fields
    rewrite: bool = False  # drop the writeback baseline so every owned field is written again
    resync: bool = False  # asked for as a resync (by an admin), not a routine run
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        unknown = [c for c in self.crms if c not in CRMS]
        if unknown:
            raise InvalidRunOptions(f"unknown CRM {', '.join(unknown)}; expected one of {', '.join(CRMS)}")
        if any(not a.strip() for a in self.accounts):
            raise InvalidRunOptions("account ids must not be blank")

    @property
    def kind(self) -> str:
        if self.accounts:
            return "account_resync"
        if self.resync:
            return "full_resync" if self.full else "resync"
        return "full" if self.full else "incremental"

    def to_json(self) -> dict[str, Any]:
        return {"full": self.full, "crms": list(self.crms), "accounts": list(self.accounts),
                "rewrite": self.rewrite, "resync": self.resync}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RunOptions:
        data = dict(data or {})
        known = {"full", "crms", "accounts", "rewrite", "resync"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRunOptions(f"unknown run option(s) {unknown}; expected some of {sorted(known)}")

        def strings(name: str) -> tuple[str, ...]:
            value = data.get(name) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
                raise InvalidRunOptions(f"{name} must be a list of strings")
            return tuple(value)

        flags = {}
        for name in ("full", "rewrite", "resync"):
            value = data.get(name, False)
            if not isinstance(value, bool):
                raise InvalidRunOptions(f"{name} must be true or false, got {value!r}")
            flags[name] = value
        return cls(crms=strings("crms"), accounts=strings("accounts"), **flags)


# Check-then-create must not interleave within one process (two API requests at once).
_request_lock = threading.Lock()


def active_run(engine: Engine) -> tuple[int, str] | None:
    """The oldest queued or running run, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            select(Run.id, Run.state).where(Run.state.in_(("queued", "running"))).order_by(Run.id).limit(1)
        ).first()
    return (int(row[0]), str(row[1])) if row else None


def request_run(engine: Engine, options: RunOptions, trigger: str, *, queue: bool = False) -> int:
    """Queue a run and return its id; raises :class:`RunConflict` if one is active and not ``queue``."""
    if trigger not in TRIGGERS:
        raise InvalidRunOptions(f"unknown trigger {trigger!r}; expected one of {', '.join(TRIGGERS)}")
    with _request_lock:
        active = active_run(engine)
        if active is not None and active[1] == "running" and not pipeline_lock_alive(engine):
            # A running run's worker holds the pipeline lock and renews it: with the lock gone or run
            # out, that worker died (killed, out of memory, the machine restarted). Left as it was, the run
            # would refuse every trigger until the next scheduled run got to close it.
            for dead in fail_abandoned(engine, stale_after=timedelta(0)):
                log.warning("run %s was left running by a stopped worker; recorded as failed", dead)
            active = active_run(engine)
        if active is not None and not queue:
            raise RunConflict(*active)
        return create_run(engine, options.kind, trigger, options.to_json())
