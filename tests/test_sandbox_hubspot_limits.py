"""HubSpot auth, rate limits and injected faults on the sandbox, observed through hubspot-api-client."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInput, SimplePublicObjectInputForCreate

from sandbox.clients import httpx_client, hubspot_client
from sandbox.hubspot.limits import DEFAULT_PER_TEN_SECONDS, DEFAULT_SEARCH_PER_SECOND
from sandbox.runner import SandboxHandle, run_sandbox

# urllib3 (under hubspot-api-client) sleeps and retries GETs answered 429 with Retry-After by itself;
# these tests look at the 429 the sandbox sends, so that is switched off.
NO_RETRY = urllib3.Retry(total=0, respect_retry_after_header=False)


@pytest.fixture
def handle(clean_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    yield clean_sandbox
    clean_sandbox.hubspot_limits.configure(per_ten_seconds=DEFAULT_PER_TEN_SECONDS,
                                           search_per_second=DEFAULT_SEARCH_PER_SECOND)


def error(exc: BaseException) -> dict:
    return json.loads(exc.body)  # type: ignore[attr-defined]


def list_contacts(hs: HubSpot) -> None:
    hs.crm.contacts.basic_api.get_page(limit=1)


def test_rate_limit_headers_on_every_call(handle: SandboxHandle) -> None:
    hs = hubspot_client(handle)
    _, status, headers = hs.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    assert status == 200
    assert headers["X-HubSpot-RateLimit-Max"] == "190" and headers["X-HubSpot-RateLimit-Remaining"] == "189"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(headers["X-HubSpot-RateLimit-Daily"]) - int(headers["X-HubSpot-RateLimit-Daily-Remaining"]) == 1


def test_ten_second_window_answers_429_with_hubspot_body(handle: SandboxHandle) -> None:
    handle.hubspot_limits.configure(per_ten_seconds=3)
    hs = hubspot_client(handle, retry=NO_RETRY)
    for _ in range(3):
        list_contacts(hs)
    with pytest.raises(Exception) as err:  # noqa: B017
        list_contacts(hs)
    assert err.value.status == 429
    body = error(err.value)
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit." and body["correlationId"]
    assert err.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert err.value.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    assert 1 <= int(err.value.headers["Retry-After"]) <= 10
    assert handle.request_log.count("GET", "/crm/v3/objects/contacts") == 4
    assert [e.status for e in handle.request_log.entries()] == [200, 200, 200, 429]


def test_search_per_second_limit(handle: SandboxHandle) -> None:
    handle.hubspot_limits.configure(search_per_second=2)
    hs = hubspot_client(handle)
    request = PublicObjectSearchRequest(limit=1)
    statuses = []
    for _ in range(3):
        try:
            hs.crm.contacts.search_api.do_search(request)
            statuses.append(200)
        except Exception as exc:
            statuses.append(exc.status)  # type: ignore[attr-defined]
            assert error(exc)["policyName"] == "SECONDLY"
    assert statuses == [200, 200, 429]  # three searches well inside one second
    time.sleep(1.05)
    hs.crm.contacts.search_api.do_search(request)


def test_sandbox_built_with_a_lower_tier() -> None:
    with run_sandbox(hubspot_requests_per_ten_seconds=2) as small:
        hs = hubspot_client(small, retry=NO_RETRY)
        list_contacts(hs)
        list_contacts(hs)
        with pytest.raises(Exception) as err:  # noqa: B017
            list_contacts(hs)
        assert err.value.status == 429


def test_daily_budget_exhausted_then_reset(handle: SandboxHandle) -> None:
    hs = hubspot_client(handle)
    handle.exhaust_hubspot_daily_limit()
    with pytest.raises(Exception) as err:  # noqa: B017
        list_contacts(hs)
    assert err.value.status == 429 and error(err.value)["policyName"] == "DAILY"
    assert err.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    handle.reset()
    list_contacts(hs)


def test_missing_and_unknown_tokens(handle: SandboxHandle) -> None:
    with httpx_client(handle) as http:
        missing = http.get("/crm/v3/objects/contacts")
        unknown = http.get("/crm/v3/objects/contacts", headers={"Authorization": "Bearer pat-na1-nope"})
    assert missing.status_code == 401 and missing.json()["category"] == "INVALID_AUTHENTICATION"
    assert unknown.status_code == 401 and unknown.json()["category"] == "INVALID_AUTHENTICATION"


def test_oauth_refresh_expiry_and_refresh_again(handle: SandboxHandle) -> None:
    creds = handle.hubspot_credentials
    bootstrap = hubspot_client(handle)
    token = bootstrap.oauth.tokens_api.create(grant_type="refresh_token", client_id=creds.client_id,
                                              client_secret=creds.client_secret, refresh_token=creds.refresh_token)
    assert token.token_type == "bearer" and token.expires_in == 1800 and token.refresh_token == creds.refresh_token
    hs = hubspot_client(handle, access_token=token.access_token)
    list_contacts(hs)
    handle.expire_sessions()
    with pytest.raises(Exception) as err:  # noqa: B017
        list_contacts(hs)
    assert err.value.status == 401 and error(err.value)["category"] == "EXPIRED_AUTHENTICATION"
    assert "expired" in error(err.value)["message"]
    list_contacts(bootstrap)  # private-app tokens do not expire
    fresh = bootstrap.oauth.tokens_api.create(grant_type="refresh_token", client_id=creds.client_id,
                                              client_secret=creds.client_secret, refresh_token=creds.refresh_token)
    list_contacts(hubspot_client(handle, access_token=fresh.access_token))


def test_access_token_expires_after_its_lifetime(handle: SandboxHandle) -> None:
    hs = hubspot_client(handle, access_token=handle.issue_hubspot_oauth_token(ttl=0.2))
    list_contacts(hs)
    time.sleep(0.3)
    with pytest.raises(Exception) as err:  # noqa: B017
        list_contacts(hs)
    assert err.value.status == 401 and error(err.value)["category"] == "EXPIRED_AUTHENTICATION"


@pytest.mark.parametrize(("form", "status"), [
    ({"refresh_token": "nope"}, "BAD_REFRESH_TOKEN"),
    ({"client_id": "nope"}, "BAD_CLIENT_ID"),
    ({"client_secret": "nope"}, "BAD_CLIENT_SECRET"),
    ({"grant_type": "password"}, "BAD_GRANT_TYPE"),
])
def test_token_endpoint_errors(handle: SandboxHandle, form: dict, status: str) -> None:
    creds = handle.hubspot_credentials
    body = {"grant_type": "refresh_token", "client_id": creds.client_id, "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token, **form}
    with httpx_client(handle) as http:
        answer = http.post("/oauth/v1/token", data=body)
    assert answer.status_code == 400 and answer.json()["status"] == status
    assert creds.client_secret not in answer.text


def test_token_info(handle: SandboxHandle) -> None:
    token = handle.issue_hubspot_oauth_token()
    with httpx_client(handle) as http:
        info = http.get(f"/oauth/v1/access-tokens/{token}").json()
    assert info["hub_id"] == handle.hubspot_credentials.portal_id and info["expires_in"] > 1700


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_injected_server_errors(handle: SandboxHandle, status: int) -> None:
    handle.faults.fail(status, path=r"^/crm/v3/objects/contacts$", times=1)
    hs = hubspot_client(handle)
    with pytest.raises(Exception) as err:  # noqa: B017
        list_contacts(hs)
    assert err.value.status == status and error(err.value)["status"] == "error"
    assert err.value.headers["X-HubSpot-Correlation-Id"] == error(err.value)["correlationId"]
    list_contacts(hs)
    assert [e.fault for e in handle.request_log.entries()] == ["status", None]


def test_injected_429_has_hubspot_body_and_retry_after(handle: SandboxHandle) -> None:
    handle.faults.fail(429, method="POST", path="/search$", retry_after=2)
    hs = hubspot_client(handle)
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=1))
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "2"
    assert error(err.value)["policyName"] == "TEN_SECONDLY_ROLLING"


def test_injected_expired_session_and_dropped_connection(handle: SandboxHandle) -> None:
    handle.faults.fail(401, path="/crm/v3/objects/companies")
    hs = hubspot_client(handle, retry=NO_RETRY)
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.companies.basic_api.get_page(limit=1)
    assert err.value.status == 401 and error(err.value)["category"] == "EXPIRED_AUTHENTICATION"
    handle.faults.drop(path="/crm/v3/objects/companies")
    with pytest.raises(urllib3.exceptions.HTTPError):
        hs.crm.companies.basic_api.get_page(limit=1)
    hs.crm.companies.basic_api.get_page(limit=1)


def test_injected_write_rejection_on_single_update(handle: SandboxHandle) -> None:
    hs = hubspot_client(handle)
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": f"r{uuid.uuid4().hex[:10]}@example.com"})).id
    handle.faults.reject_writes([contact], message="Locked by a workflow", fields=["jobtitle"],
                                error_code="INVALID_INPUT")
    with pytest.raises(Exception) as err:  # noqa: B017
        hs.crm.contacts.basic_api.update(contact, SimplePublicObjectInput(properties={"jobtitle": "CEO"}))
    assert err.value.status == 400 and "Locked by a workflow" in error(err.value)["message"]


def test_admin_endpoint_expires_hubspot_sessions(handle: SandboxHandle) -> None:
    token = handle.issue_hubspot_oauth_token()
    with httpx_client(handle) as http:
        assert http.post("/__sandbox__/sessions/expire").status_code == 204
        answer = http.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_admin_endpoint_reads_and_sets_hubspot_limits(handle: SandboxHandle) -> None:
    with httpx_client(handle) as http:
        assert http.get("/__sandbox__/hubspot/limits").json()["perTenSeconds"] == DEFAULT_PER_TEN_SECONDS
        changed = http.post("/__sandbox__/hubspot/limits", json={"per_ten_seconds": 100, "search_per_second": 4})
        assert changed.json()["perTenSeconds"] == 100 and changed.json()["searchPerSecond"] == 4
        assert http.post("/__sandbox__/hubspot/limits", json={"bogus": 1}).status_code == 400
        assert http.post("/__sandbox__/hubspot/limits/exhaust").json()["dailyRemaining"] == 0
        auth = {"Authorization": f"Bearer {handle.hubspot_access_token}"}
        answer = http.get("/crm/v3/objects/contacts", headers=auth)
        assert answer.status_code == 429 and answer.json()["policyName"] == "DAILY"
        assert http.post("/__sandbox__/hubspot/limits/reset").json()["dailyRemaining"] > 0
    assert handle.request_log.count() == 1  # admin calls are never logged
