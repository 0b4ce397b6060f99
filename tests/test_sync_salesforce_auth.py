"""Signing in to the sandbox with each OAuth flow, and clear errors when it cannot be done."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_sync_salesforce_support import sf_config

from config.model import AbmConfig
from connectors.budget import ApiBudget
from connectors.salesforce.auth import SalesforceAuthError, fetch_token, jwt_audience
from connectors.salesforce.client import SalesforceClient
from sandbox.runner import SandboxHandle


def _config(handle: SandboxHandle, tmp_path: Path, **salesforce: object) -> AbmConfig:
    return sf_config(handle, tmp_path, **salesforce)


def _signed_in(config: AbmConfig) -> SalesforceClient:
    client = SalesforceClient(config.salesforce, ApiBudget("salesforce", 0.8))
    assert client.sf.query("SELECT Id FROM User")["totalSize"] >= 1
    return client


def test_client_credentials_jwt_and_refresh_token_flows(clean_sandbox: SandboxHandle, tmp_path: Path) -> None:
    creds = clean_sandbox.salesforce_credentials
    _signed_in(_config(clean_sandbox, tmp_path))
    _signed_in(_config(clean_sandbox, tmp_path, auth="jwt", username=creds.username,
                       private_key_file=str(creds.jwt_private_key_path), client_secret_file=None))
    token_file = tmp_path / "refresh-token"
    token_file.write_text(creds.refresh_token)
    _signed_in(_config(clean_sandbox, tmp_path, auth="refresh_token", refresh_token_file=str(token_file)))


def test_expired_session_signs_in_again_once(clean_sandbox: SandboxHandle, tmp_path: Path) -> None:
    client = _signed_in(_config(clean_sandbox, tmp_path))
    clean_sandbox.expire_sessions()
    assert client.query("SELECT Id FROM User", 200, "query")["totalSize"] >= 1
    assert clean_sandbox.request_log.count(path="/oauth2/token") == 2


def test_bad_credentials_give_an_actionable_error_without_the_secret(
    clean_sandbox: SandboxHandle, tmp_path: Path
) -> None:
    config = _config(clean_sandbox, tmp_path)
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret-0123456789")
    bad = config.salesforce.model_copy(update={"client_secret_file": wrong})
    with pytest.raises(SalesforceAuthError) as error:
        fetch_token(bad)
    message = str(error.value)
    assert "invalid_client" in message and "ABM_SALESFORCE_CLIENT_SECRET" in message
    assert "not-the-secret-0123456789" not in message


def test_password_flow_refused_by_the_org_is_explained(clean_sandbox: SandboxHandle, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("hunter2-token")
    config = _config(clean_sandbox, tmp_path, auth="password", username="integration@abm-sync.sandbox",
                     password_file=str(password))
    with pytest.raises(SalesforceAuthError, match="does not allow the password flow") as error:
        fetch_token(config.salesforce)
    assert "hunter2" not in str(error.value)


def test_missing_secret_and_missing_settings(clean_sandbox: SandboxHandle, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ABM_SALESFORCE_REFRESH_TOKEN", raising=False)
    config = _config(clean_sandbox, tmp_path, auth="refresh_token")
    with pytest.raises(SalesforceAuthError, match="ABM_SALESFORCE_REFRESH_TOKEN"):
        fetch_token(config.salesforce)
    with pytest.raises(SalesforceAuthError, match="set salesforce.username"):
        fetch_token(_config(clean_sandbox, tmp_path, auth="jwt").salesforce)


def test_an_untrusted_certificate_fails_at_once_with_a_hint(clean_sandbox: SandboxHandle, tmp_path: Path) -> None:
    config = _config(clean_sandbox, tmp_path, ca_file=None)
    with pytest.raises(SalesforceAuthError, match="set salesforce.ca_file"):
        fetch_token(config.salesforce)
    assert clean_sandbox.request_log.count(path="/oauth2/token") == 0  # the handshake failed; nothing retried


@pytest.mark.parametrize(("login_url", "audience"), [
    ("https://login.salesforce.com", "https://login.salesforce.com"),
    ("https://test.salesforce.com", "https://test.salesforce.com"),
    ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
    ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
])
def test_jwt_audience(login_url: str, audience: str) -> None:
    assert jwt_audience(login_url) == audience


def test_the_metadata_api_is_built_when_used_and_trusts_the_configured_ca_after_a_new_sign_in(
    clean_sandbox: SandboxHandle, tmp_path: Path
) -> None:
    client = _signed_in(_config(clean_sandbox, tmp_path))
    assert client.sf._mdapi is None  # pulls and writebacks never parse its WSDL (0.7 s)
    first = client.sf
    clean_sandbox.expire_sessions()
    assert client.query("SELECT Id FROM User", 200, "query")["totalSize"] >= 1
    assert client.sf is not first  # signed in again: a new simple-salesforce client, which must trust the CA too
    assert client.sf.mdapi.CustomField.read("Account.ABM_Nothing__c").fullName is None
