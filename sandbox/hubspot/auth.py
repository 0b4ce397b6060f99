"""Authentication for the emulated portal: a private-app token and OAuth 2.0 refresh.

A private app's token never expires. OAuth access tokens live ``access_token_ttl`` seconds
(HubSpot: 30 minutes) and are renewed at ``/oauth/v1/token`` with the app's client id/secret
and a refresh token; an expired token answers 401 ``EXPIRED_AUTHENTICATION`` as HubSpot does,
so connectors exercise their refresh path. All credentials are sandbox-only random values.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.errors import expired_token, invalid_token, missing_credentials
from sandbox.hubspot.values import iso_ms

DEFAULT_ACCESS_TOKEN_TTL = 1800
SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.companies.read",
          "crm.objects.companies.write", "crm.objects.deals.read", "crm.objects.deals.write",
          "crm.schemas.contacts.read", "crm.schemas.companies.read", "crm.schemas.deals.read", "content",
          "analytics.behavioral_events.send", "oauth")


@dataclass(frozen=True)
class HubSpotCredentials:
    """Sandbox-only credentials: the private app's token and the OAuth app's client and refresh token."""

    private_app_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    portal_id: int


class OAuthTokenError(Exception):
    """``/oauth/v1/token`` errors: ``{"status": "BAD_REFRESH_TOKEN", "message": ...}`` with a 400."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"status": self.status, "message": self.message, "correlationId": str(uuid.uuid4()),
                "requestId": secrets.token_hex(16)}


@dataclass
class _Token:
    expires_at: float | None  # epoch seconds; None never expires


class HubSpotAuth:
    def __init__(self, portal_id: int, access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL) -> None:
        self.credentials = HubSpotCredentials(
            private_app_token=f"pat-na1-{uuid.uuid4()}",
            client_id=str(uuid.uuid4()),
            client_secret=str(uuid.uuid4()),
            refresh_token=f"na1-{secrets.token_hex(2)}-{uuid.uuid4()}",
            portal_id=portal_id,
        )
        self.access_token_ttl = access_token_ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {self.credentials.private_app_token: _Token(None)}

    def issue_access_token(self, ttl: float | None = None) -> tuple[str, int]:
        """A fresh OAuth access token and its lifetime in seconds."""
        lifetime = self.access_token_ttl if ttl is None else ttl
        token = f"CJ{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = _Token(time.time() + lifetime)
        return token, math.ceil(lifetime)

    def check(self, authorization: str | None) -> str:
        """The caller's token, or a HubSpotError 401 (missing, unknown or expired)."""
        if not authorization:
            raise missing_credentials()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise missing_credentials()
        with self._lock:
            known = self._tokens.get(token)
        if known is None:
            raise invalid_token()
        now = time.time()
        if known.expires_at is not None and now >= known.expires_at:
            minutes = int((now - known.expires_at) // 60)
            raise expired_token(minutes, iso_ms(int(known.expires_at * 1000)))
        return token

    def expire_all(self) -> None:
        """Expire every OAuth access token now (the private-app token and refresh token stay valid)."""
        now = time.time()
        with self._lock:
            for token in self._tokens.values():
                if token.expires_at is not None:
                    token.expires_at = min(token.expires_at, now)

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The ``/oauth/v1/token`` refresh-token grant."""
        creds = self.credentials
        grant = form.get("grant_type", "")
        if grant != "refresh_token":
            raise OAuthTokenError("BAD_GRANT_TYPE", "The sandbox supports grant_type=refresh_token only"
                                  if grant else "missing grant_type")
        if not hmac.compare_digest(form.get("client_id", ""), creds.client_id):
            raise OAuthTokenError("BAD_CLIENT_ID", "missing or unknown client id")
        if not hmac.compare_digest(form.get("client_secret", ""), creds.client_secret):
            raise OAuthTokenError("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if not hmac.compare_digest(form.get("refresh_token", ""), creds.refresh_token):
            raise OAuthTokenError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        access_token, expires_in = self.issue_access_token()
        return {"token_type": "bearer", "refresh_token": creds.refresh_token, "access_token": access_token,
                "expires_in": expires_in}

    def token_info(self, token: str) -> dict[str, Any] | None:
        """``GET /oauth/v1/access-tokens/{token}``: what HubSpot says about a live OAuth token."""
        with self._lock:
            known = self._tokens.get(token)
        if known is None or known.expires_at is None or time.time() >= known.expires_at:
            return None
        return {"token": token, "user": "integration@abm-sync.sandbox", "hub_domain": "abm-sync-sandbox.com",
                "scopes": list(SCOPES), "hub_id": self.credentials.portal_id, "app_id": 1000001,
                "expires_in": max(0, int(known.expires_at - time.time())), "user_id": 1, "token_type": "access"}
