"""When runs happen and how workers share the store (the ``worker:`` section of abm.yaml)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator


class ScheduleConfig(BaseModel):
    """The scheduler of `abm serve`: frequent incremental runs plus an occasional full run."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="run on a schedule under `abm serve` (runs can always be triggered)")
    incremental_every_minutes: int = Field(
        15, ge=1, le=24 * 60, description="minutes between incremental runs (pull changes, rescore, write back)"
    )
    full_cron: str | None = Field(
        "0 3 * * sun",
        description="crontab (minute hour day month weekday) of the full run that re-reads everything; null = never",
    )
    timezone: str = Field("UTC", description="time zone of full_cron, e.g. Europe/Berlin")
    rescore_everyone_hours: int | None = Field(
        24, ge=1, le=24 * 31,
        description="an incremental run rescores every account and person (not only what new data touched) "
                    "when the last such rescore is older than this, so time decay and grades stay current "
                    "between full runs; null = only full runs and resyncs of everything do",
    )

    @field_validator("full_cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"must be a crontab expression like '0 3 * * sun' ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as UTC or Europe/Berlin") from None
        return value


class WorkerConfig(BaseModel):
    """How worker processes coordinate through the store's lock."""

    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleConfig = ScheduleConfig()
    lease_seconds: int = Field(
        60, ge=5, le=3600, description="a crashed worker's lock expires this long after its last heartbeat"
    )
    poll_seconds: float = Field(5.0, gt=0, le=300, description="how often `abm serve` looks for queued runs")
    shutdown_grace_seconds: int = Field(
        600, ge=0, description="on SIGTERM, how long the current run may take to finish its batch and record itself"
    )
    stage_processes: bool = Field(
        True, description="pull from and write back to the two CRMs in processes of their own (started by a fork "
                          "server), so each has a core rather than a share of one interpreter, read what an "
                          "incremental score stage reads of everyone in one beside the match stage (started with the "
                          "pulls, to decode the kept copies meanwhile), and what the "
                          "match stage reads of every account and contact while the pulls run; false keeps the "
                          "pulls and writebacks on threads of the worker's process and leaves those reads to their "
                          "stages, as where no fork server is available (Windows, macOS) and on an in-memory "
                          "SQLite database",
    )
    numpy_huge_pages: bool = Field(
        False, description="let numpy back its large arrays with transparent huge pages during a run (numpy's own "
                           "default); off because faulting them in made the L org's scoring twice as slow on a "
                           "2-core virtual machine (see worker/huge_pages.py)",
    )
