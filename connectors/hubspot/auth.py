"""Access tokens for HubSpot: a private app's token, or OAuth 2.0 access tokens from a refresh token.

A private app's token does not expire; when HubSpot rejects it, the token was revoked and only
a person can fix that. OAuth access tokens live 30 minutes: they are renewed shortly before
they expire and again whenever HubSpot answers 401, with the refresh-token grant at
``/oauth/v1/token``. That endpoint is not in hubspot-api-client's CRM clients, so it is called
with httpx. Secrets stay in ``SecretStr`` and never reach a message.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from config.connections import HubSpotConfig

REFRESH_MARGIN_S = 60.0  # renew this long before HubSpot says the token expires


class HubSpotAuthError(RuntimeError):
    """HubSpot refused our credentials; retrying will not help, a person must fix the configuration."""


def ssl_context(config: HubSpotConfig) -> ssl.SSLContext:
    """Verification against the configured CA bundle, or the system's trust store. Never off."""
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return ssl.create_default_context()


class TokenSource:
    """Hands out a valid access token and renews it when HubSpot says it is no longer valid."""

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._expires_at: float | None = None
        self.refreshes = 0
        self._timeout_s = timeout_s
        if config.auth == "private_app":
            self._token = config.secret("access_token")
        else:
            if not config.client_id:
                raise HubSpotAuthError("hubspot.auth is oauth but hubspot.client_id is not set")
            self._client_secret = config.secret("client_secret")
            self._refresh_token = config.secret("refresh_token")

    @property
    def can_refresh(self) -> bool:
        return self.config.auth == "oauth"

    def token(self) -> str:
        """A token to send now (renewed first if it is about to expire)."""
        with self._lock:
            if self._token is None or (
                self._expires_at is not None and self._clock() >= self._expires_at - REFRESH_MARGIN_S
            ):
                self._refresh_locked()
            assert self._token is not None
            return self._token.get_secret_value()

    def rejected(self, token: str) -> None:
        """HubSpot answered 401 to ``token``: renew it, or explain why that is impossible."""
        with self._lock:
            if self._token is not None and self._token.get_secret_value() != token:
                return  # another thread renewed it already
            if not self.can_refresh:
                raise HubSpotAuthError(
                    "HubSpot rejected the private app access token (401): it was revoked or is wrong; "
                    "create a new token in the private app's settings and update ABM_HUBSPOT_ACCESS_TOKEN"
                )
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        url = f"{self.config.base_url}/oauth/v1/token"
        form = {
            "grant_type": "refresh_token",
            "client_id": self.config.client_id or "",
            "client_secret": self._client_secret.get_secret_value(),
            "refresh_token": self._refresh_token.get_secret_value(),
        }
        try:
            with httpx.Client(verify=ssl_context(self.config), trust_env=False, timeout=self._timeout_s) as http:
                response = http.post(url, data=form)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"HubSpot token refresh at {url} failed: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ConnectionError(f"HubSpot token refresh at {url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            status = body.get("status") or response.status_code
            message = body.get("message") or "no access token in the answer"
            raise HubSpotAuthError(
                f"HubSpot refused the OAuth refresh ({status}: {message}); check hubspot.client_id, "
                "ABM_HUBSPOT_CLIENT_SECRET and ABM_HUBSPOT_REFRESH_TOKEN"
            )
        self._token = SecretStr(str(body["access_token"]))
        expires_in = body.get("expires_in")
        self._expires_at = self._clock() + float(expires_in) if expires_in else None
        if body.get("refresh_token"):
            self._refresh_token = SecretStr(str(body["refresh_token"]))
        self.refreshes += 1
