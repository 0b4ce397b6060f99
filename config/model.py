"""The root of ``abm.yaml``. Each section lives in its own module; this one assembles them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from config.activities import ActivityMappingConfig
from config.admin import AdminConfig
from config.connections import DatabaseConfig, HubSpotConfig, SalesforceConfig
from config.matching import MatchingConfig
from config.scoring import ScoringConfig
from config.worker import WorkerConfig
from config.writeback import WritebackConfig

CRM_NAMES = ("salesforce", "hubspot")  # also the order runs pull them in


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class AbmConfig(BaseModel):
    """Everything abm-sync can be told. Unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    database: DatabaseConfig = DatabaseConfig()
    salesforce: SalesforceConfig = SalesforceConfig()
    hubspot: HubSpotConfig = HubSpotConfig()
    logging: LoggingConfig = LoggingConfig()
    scoring: ScoringConfig = ScoringConfig()
    matching: MatchingConfig = MatchingConfig()
    activities: ActivityMappingConfig = ActivityMappingConfig()
    worker: WorkerConfig = WorkerConfig()
    admin: AdminConfig = AdminConfig()
    writeback: WritebackConfig = WritebackConfig()

    def chosen_crms(self, requested: Sequence[str] = ()) -> list[str]:
        """The CRMs to work on, in pull order: those requested (each must be enabled), else every
        enabled one. Asking for a CRM that is not enabled is an error worth saying, not a no-op."""
        enabled = [crm for crm in CRM_NAMES if getattr(self, crm).enabled]
        unknown = [c for c in requested if c not in CRM_NAMES]
        if unknown:
            raise ValueError(f"unknown CRM {unknown[0]!r}; expected {' or '.join(CRM_NAMES)}")
        off = [c for c in requested if c not in enabled]
        if off:
            raise ValueError(f"{off[0]} is not enabled in the configuration (set {off[0]}.enabled: true)")
        return [c for c in enabled if not requested or c in requested]
