"""Where the data lives: the database and the two CRMs."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.salesforce_pull import SalesforcePullOptions
from config.secrets import SecretsSection


def https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"must be an https URL, got {value!r}")
    return value.rstrip("/")


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field("sqlite:///abm.db", description="SQLAlchemy URL; ABM_DATABASE_URL overrides it")

    @field_validator("url")
    @classmethod
    def _supported(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"must be a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")
        parts = urlsplit(value)
        if parts.password:
            raise ValueError(
                "contains a password; put the whole URL in the ABM_DATABASE_URL environment variable instead"
            )
        return value


class SyncOptions(BaseModel):
    """How a connector pulls: shared by both CRMs."""

    model_config = ConfigDict(extra="forbid")

    lookback_minutes: int = Field(10, ge=0, le=24 * 60)
    max_api_share: float = Field(0.8, gt=0, le=1)
    bulk_threshold_rows: int = Field(10_000, ge=0)
    page_size: int = Field(2000, ge=1, le=2000)


class SalesforceConfig(SecretsSection):
    SECRETS: ClassVar[dict[str, str]] = {
        "client_secret": "ABM_SALESFORCE_CLIENT_SECRET",
        "private_key": "ABM_SALESFORCE_PRIVATE_KEY",
        "refresh_token": "ABM_SALESFORCE_REFRESH_TOKEN",
        "password": "ABM_SALESFORCE_PASSWORD",
    }

    enabled: bool = False
    login_url: str = "https://login.salesforce.com"
    auth: Literal["client_credentials", "jwt", "refresh_token", "password"] = "client_credentials"
    client_id: str | None = None
    username: str | None = None
    api_version: str = Field("59.0", pattern=r"^\d{2,3}\.0$", description="like 59.0")
    ca_file: Path | None = None
    sync: SyncOptions = SyncOptions()
    pull: SalesforcePullOptions = SalesforcePullOptions()
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    private_key_env: str | None = None
    private_key_file: Path | None = None
    refresh_token_env: str | None = None
    refresh_token_file: Path | None = None
    password_env: str | None = None
    password_file: Path | None = None

    _login = field_validator("login_url")(classmethod(lambda cls, v: https_url(v)))

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value


class HubSpotConfig(SecretsSection):
    SECRETS: ClassVar[dict[str, str]] = {
        "access_token": "ABM_HUBSPOT_ACCESS_TOKEN",
        "client_secret": "ABM_HUBSPOT_CLIENT_SECRET",
        "refresh_token": "ABM_HUBSPOT_REFRESH_TOKEN",
    }

    enabled: bool = False
    base_url: str = "https://api.hubapi.com"
    auth: Literal["private_app", "oauth"] = "private_app"
    client_id: str | None = None
    ca_file: Path | None = None
    requests_per_10s: int = Field(100, ge=1, le=1000)
    search_requests_per_second: float = Field(4.0, gt=0, le=10)
    sync: SyncOptions = SyncOptions(page_size=100)
    access_token_env: str | None = None
    access_token_file: Path | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    refresh_token_env: str | None = None
    refresh_token_file: Path | None = None

    _base = field_validator("base_url")(classmethod(lambda cls, v: https_url(v)))
    _ca_exists = SalesforceConfig._ca_exists
