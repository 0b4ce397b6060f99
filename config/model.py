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
from config.secrets import MissingSecret, SecretsSection
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

    def secret_values(self) -> list[str]:
        """Every secret this configuration can read right now (unset or unreadable ones skipped):
        what logs, pages and error messages must never show."""
        values: list[str] = []
        for name in type(self).model_fields:
            section = getattr(self, name)
            if isinstance(section, SecretsSection):
                for secret in section.SECRETS:
                    try:
                        value = section.secret(secret, required=False)
                    except MissingSecret:  # an unreadable file: reported when the secret is used
                        continue
                    if value is not None:
                        values.append(value.get_secret_value())
        return values
