"""The root of ``abm.yaml``. Each section lives in its own module; this one assembles them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from config.activities import ActivityMappingConfig
from config.admin import AdminConfig
from config.connections import DatabaseConfig, HubSpotConfig, SalesforceConfig
from config.matching import MatchingConfig
from config.scoring import ScoringConfig
from config.worker import WorkerConfig
from config.writeback import WritebackConfig


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
