"""Signing in to Salesforce: the OAuth 2.0 token request, done with httpx against the configured login URL.

simple-salesforce's login helpers post to ``https://{domain}.salesforce.com``, so they cannot
reach a My Domain login host chosen by URL, a proxy, or the sandbox; the exchange is done
here and simple-salesforce is then given the access token and instance URL.

Flows: client credentials (connected app with a run-as user), JWT bearer (certificate-based,
no stored user secret), refresh token, and username-password (only where the org still
allows it; Salesforce is retiring it). Secrets are read from the environment or files
(:mod:`config.secrets`) and never appear in errors or logs.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import SecretStr

from config.connections import SalesforceConfig
from config.secrets import MissingSecret
from connectors.retry import RetrySettings, parse_retry_after, retrying

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_S = 180


class SalesforceAuthError(RuntimeError):
    """Signing in failed for a reason retrying will not fix (credentials, app settings, user)."""


@dataclass(frozen=True)
class AccessToken:
    token: SecretStr
    instance_url: str


def tls_verify(config: SalesforceConfig) -> ssl.SSLContext | bool:
    """Verification against the configured CA bundle, else the system's trust store. Never off."""
    if config.ca_file is not None:
        return ssl.create_default_context(cafile=str(config.ca_file))
    return True


def jwt_audience(login_url: str) -> str:
    """The ``aud`` claim: Salesforce wants its login server (test.salesforce.com for sandboxes) even
    when the token request goes to a My Domain host; any other host (a proxy, the local sandbox)
    is its own audience."""
    host = urlsplit(login_url).hostname or ""
    if host == "salesforce.com" or host.endswith(".salesforce.com"):
        sandbox = host.startswith("test.") or ".sandbox." in host
        return "https://test.salesforce.com" if sandbox else "https://login.salesforce.com"
    return login_url


def _secret(config: SalesforceConfig, name: str, flow: str) -> str:
    try:
        value = config.secret(name)
    except MissingSecret as exc:
        raise SalesforceAuthError(f"salesforce.auth is {flow}: {exc}") from None
    assert value is not None
    return value.get_secret_value()


def _require(config: SalesforceConfig, attribute: str, flow: str) -> str:
    value = getattr(config, attribute)
    if not value:
        raise SalesforceAuthError(f"salesforce.auth is {flow}: set salesforce.{attribute} in the config")
    return str(value)


def token_form(config: SalesforceConfig) -> dict[str, str]:
    """The token request's form for the configured flow (holds secrets: never log it)."""
    flow = config.auth
    client_id = _require(config, "client_id", flow)
    if flow == "client_credentials":
        return {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": _secret(config, "client_secret", flow)}
    if flow == "refresh_token":
        form = {"grant_type": "refresh_token", "client_id": client_id,
                "refresh_token": _secret(config, "refresh_token", flow)}
        secret = config.secret("client_secret", required=False)
        if secret is not None:
            form["client_secret"] = secret.get_secret_value()
        return form
    if flow == "jwt":
        username = _require(config, "username", flow)
        claims = {"iss": client_id, "sub": username, "aud": jwt_audience(config.login_url),
                  "exp": int(time.time()) + JWT_LIFETIME_S}
        try:
            assertion = jwt.encode(claims, _secret(config, "private_key", flow), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise SalesforceAuthError(
                f"salesforce.auth is jwt: the private key is not a usable RSA key in PEM form ({type(exc).__name__})"
            ) from None
        return {"grant_type": JWT_GRANT, "assertion": assertion}
    username = _require(config, "username", flow)
    return {"grant_type": "password", "client_id": client_id,
            "client_secret": _secret(config, "client_secret", flow), "username": username,
            "password": _secret(config, "password", flow)}


def tls_failure(error: BaseException) -> bool:
    """A certificate or handshake failure somewhere in the error's chain (retrying will not fix it)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ssl.SSLError):
            return True
        nested = [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        current = current.__cause__ or (nested[0] if nested else None)
    return False


def _transient(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code == 429 or error.response.status_code >= 500
    return isinstance(error, httpx.TransportError) and not tls_failure(error)


def _retry_after(error: BaseException) -> float | None:
    if isinstance(error, httpx.HTTPStatusError):
        return parse_retry_after(error.response.headers.get("retry-after"))
    return None


def fetch_token(config: SalesforceConfig, *, timeout: float = 60.0,
                retry: RetrySettings = RetrySettings()) -> AccessToken:
    """Exchange the configured credentials for an access token (retrying network trouble and 5xx)."""
    form = token_form(config)
    url = config.login_url + TOKEN_PATH
    with httpx.Client(verify=tls_verify(config), timeout=timeout, trust_env=config.ca_file is None) as http:
        try:
            for attempt in retrying(_transient, _retry_after, retry, what="Salesforce sign-in"):
                with attempt:
                    response = http.post(url, data=form, headers={"Accept": "application/json"})
                    if response.status_code == 429 or response.status_code >= 500:
                        response.raise_for_status()
        except httpx.TransportError as exc:
            if tls_failure(exc):
                raise SalesforceAuthError(
                    f"cannot verify the TLS certificate of {config.login_url}: set salesforce.ca_file to the CA "
                    "bundle that signed it (verification is never turned off)"
                ) from exc
            raise SalesforceAuthError(f"cannot reach {config.login_url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise SalesforceAuthError(_describe_failure(config, response))
    body = response.json()
    token, instance_url = body.get("access_token"), body.get("instance_url")
    if not token or not instance_url:
        raise SalesforceAuthError(f"Salesforce sign-in at {config.login_url} answered without an access token "
                                  "or instance URL")
    return AccessToken(SecretStr(token), instance_url)


def _describe_failure(config: SalesforceConfig, response: httpx.Response) -> str:
    try:
        body = response.json()
        error, description = body.get("error", "unknown_error"), body.get("error_description", "")
    except ValueError:
        error, description = f"HTTP {response.status_code}", response.text[:200]
    hint = {
        "invalid_client_id": "check salesforce.client_id (the connected app's consumer key)",
        "invalid_client": "check the client secret (ABM_SALESFORCE_CLIENT_SECRET or client_secret_file)",
        "invalid_grant": "check the user, the refresh token or the JWT certificate, and that the user is "
                         "pre-authorized for the connected app",
        "unsupported_grant_type": f"the org or connected app does not allow the {config.auth} flow",
    }.get(error, "see Salesforce's message")
    return (f"Salesforce sign-in ({config.auth}) at {config.login_url} failed: {error}: {description} "
            f"({hint})")
