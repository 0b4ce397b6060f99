"""OAuth 2.0 for the emulated org: client credentials, JWT bearer and refresh token grants.

The connected app's credentials are sandbox-only values generated at start-up (printed by
``abm sandbox serve``). The JWT bearer flow verifies RS256 assertions against the app's
certificate exactly as Salesforce does, so the connector's real signing code is exercised;
the sandbox hands out the matching private key because it is a throwaway test key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ORG_ID = "00D5b000000SBX1EAG"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class SalesforceCredentials:
    """Sandbox-only credentials of the emulated connected app and integration user."""

    client_id: str
    client_secret: str
    username: str
    refresh_token: str
    jwt_private_key_path: Path
    jwt_certificate_path: Path


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _make_jwt_keypair(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "abm-sync sandbox connected app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "jwt-private-key.pem", directory / "jwt-certificate.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class SalesforceAuth:
    def __init__(self, directory: Path, username: str, user_id: str) -> None:
        key_path, cert_path = _make_jwt_keypair(directory)
        self.credentials = SalesforceCredentials(
            client_id="3MVG9SANDBOX." + secrets.token_urlsafe(24),
            client_secret=secrets.token_hex(32).upper(),
            username=username,
            refresh_token="5Aep861SANDBOX." + secrets.token_urlsafe(32),
            jwt_private_key_path=key_path,
            jwt_certificate_path=cert_path,
        )
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        self._public_key = cert.public_key()
        self.user_id = user_id
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}

    # -- sessions --------------------------------------------------------------------------
    def issue_session(self) -> str:
        token = f"{ORG_ID[:15]}!SBX.{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = self.user_id
        return token

    def user_for(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            return None
        with self._lock:
            return self._sessions.get(token.strip())

    def user_for_token(self, token: str) -> str | None:
        with self._lock:
            return self._sessions.get(token)

    def expire_all(self) -> None:
        """Invalidate every access token (refresh tokens and app credentials stay valid)."""
        with self._lock:
            self._sessions.clear()

    # -- token endpoint --------------------------------------------------------------------
    def token(self, form: dict[str, str], instance_url: str) -> dict[str, str]:
        grant = form.get("grant_type", "")
        creds = self.credentials
        if grant == "client_credentials":
            self._check_client(form, require_secret=True)
        elif grant == "refresh_token":
            self._check_client(form, require_secret=False)
            if not hmac.compare_digest(form.get("refresh_token", ""), creds.refresh_token):
                raise OAuthError("invalid_grant", "expired access/refresh token")
        elif grant == JWT_GRANT:
            self._check_assertion(form.get("assertion", ""), instance_url)
        elif not grant:
            raise OAuthError("invalid_request", "missing grant type")
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        access_token = self.issue_session()
        issued_at = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{ORG_ID}/{self.user_id}"
        signature = base64.b64encode(
            hmac.new(creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        return {
            "access_token": access_token,
            "signature": signature,
            "scope": "api",
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }

    def _check_client(self, form: dict[str, str], require_secret: bool) -> None:
        creds = self.credentials
        if not hmac.compare_digest(form.get("client_id", ""), creds.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = form.get("client_secret")
        if (require_secret or secret is not None) and not hmac.compare_digest(secret or "", creds.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_assertion(self, assertion: str, instance_url: str) -> None:
        if not assertion:
            raise OAuthError("invalid_request", "missing assertion")
        try:
            claims = jwt.decode(
                assertion,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=[*LOGIN_AUDIENCES, instance_url],
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if not hmac.compare_digest(str(claims["iss"]), self.credentials.client_id):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if claims["sub"] != self.credentials.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
