"""The ``admin:`` section: where the admin API and page listen and the token that guards them.

The admin server can queue resyncs that rewrite CRM fields for every account, so it is never
open: it binds to the loopback interface unless told otherwise, and every call needs a token
that lives outside the YAML like every other secret (``ABM_ADMIN_TOKEN`` or ``token_file``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr

from config.secrets import MissingSecret, SecretsSection

MIN_TOKEN_CHARS = 16
TOKEN_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class WeakSecret(MissingSecret):
    """A secret is set but too short to resist guessing."""


class AdminConfig(SecretsSection):
    SECRETS: ClassVar[dict[str, str]] = {"token": "ABM_ADMIN_TOKEN"}

    host: str = Field("127.0.0.1", min_length=1, description="interface to bind; 0.0.0.0 exposes it to the network")
    port: int = Field(8765, ge=1, le=65535)
    session_hours: int = Field(12, ge=1, le=24 * 30, description="how long a browser login lasts")
    token_env: str | None = None
    token_file: Path | None = None

    def token(self) -> SecretStr:
        """The admin token; raises :class:`MissingSecret` when unset and :class:`WeakSecret` when short."""
        value = self.secret("token")
        assert value is not None
        if len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise WeakSecret(f"the admin token must be at least {MIN_TOKEN_CHARS} characters; {TOKEN_HINT}")
        return value
