"""Scrubbing secrets out of text that came from elsewhere before the admin server shows it.

Run errors and CRM error messages are written by other code (connectors, libraries, the CRMs
themselves) and may quote a request that carried a credential. The admin server shows them to
whoever holds the admin token, which is not the same as whoever may see the CRM credentials, so
every configured secret value is replaced before such text leaves the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config import AbmConfig

MASK = "[redacted]"
MIN_SECRET_CHARS = 6  # shorter values would mask ordinary words; no real credential is that short


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)

    @classmethod
    def from_config(cls, config: AbmConfig, extra: Iterable[str] = ()) -> Redactor:
        """Every secret the configuration can read right now (unset ones are skipped)."""
        values = [*extra, *config.secret_values()]
        return cls(values)

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return value

    def deep(self, value: Any) -> Any:
        """The same structure with every string scrubbed (for JSON like a run's stages)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value
