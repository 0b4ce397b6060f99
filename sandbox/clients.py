"""Client helpers for code that talks to a running sandbox (tests, benchmarks, demos).

Every client verifies TLS against the sandbox's CA, simple-salesforce's Metadata API client included
(:mod:`connectors.salesforce.ca_trust`). Sessions here ignore the environment (``trust_env = False``):
requests lets ``REQUESTS_CA_BUNDLE`` override ``session.verify``, which would reject the sandbox CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
import requests
import urllib3
from hubspot import HubSpot
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from connectors.salesforce.ca_trust import CaTrustingSalesforce
from sandbox.runner import SandboxHandle

DEFAULT_VERSION = "59.0"
# The server closes a keep-alive connection after 5 idle seconds (uvicorn's default, as real
# servers do too). A request sent as it closes finds no one to answer: browsers and urllib3's
# own default send an idempotent request again on a new connection, requests does not. Only
# that: no status is retried (tests must see every 429 and 5xx), nor any write.
STALE_CONNECTION_RETRY = urllib3.Retry(total=1, connect=1, read=1, status=0, other=0, redirect=0,
                                       allowed_methods=urllib3.Retry.DEFAULT_ALLOWED_METHODS,
                                       respect_retry_after_header=False, raise_on_status=False)
READS = frozenset(urllib3.Retry.DEFAULT_ALLOWED_METHODS)


class ReadAgainTransport(httpx.HTTPTransport):
    """httpx's transport, sending a read once more on a new connection when the one it went out on closed
    without an answer, as ``STALE_CONNECTION_RETRY`` does for requests (httpx retries only connections that
    fail to open)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            if request.method not in READS:
                raise
            return super().handle_request(request)


def sandbox_requests_session(ca_path: Path | str) -> requests.Session:
    """A requests session that verifies against the sandbox CA.

    ``trust_env`` is off because requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    override ``session.verify``; a session for a local server needs no proxy settings either.
    A read (GET, HEAD, ...) cut off before any answer is sent once more (``STALE_CONNECTION_RETRY``).
    """
    session = requests.Session()
    session.verify = str(ca_path)
    session.trust_env = False
    session.mount("https://", HTTPAdapter(max_retries=STALE_CONNECTION_RETRY))
    return session


def simple_salesforce(
    handle: SandboxHandle, session_id: str | None = None, version: str = DEFAULT_VERSION
) -> Salesforce:
    """A simple-salesforce client on the sandbox: REST, bulk2 and mdapi all verify its CA."""
    session = sandbox_requests_session(handle.ca_path)
    return CaTrustingSalesforce(
        instance_url=handle.base_url,
        session_id=session_id or handle.salesforce_session(),
        session=session,
        version=version,
        ca_path=handle.ca_path,
    )


def httpx_client(handle: SandboxHandle, **kwargs: object) -> httpx.Client:
    """An httpx client on ``handle.base_url`` verifying the sandbox CA (reads cut off are sent again)."""
    context = ssl.create_default_context(cafile=str(handle.ca_path))
    return httpx.Client(base_url=handle.base_url, transport=ReadAgainTransport(verify=context), trust_env=False,
                        **kwargs)  # type: ignore[arg-type]


def hubspot_client(handle: SandboxHandle, access_token: str | None = None, **kwargs: Any) -> HubSpot:
    """hubspot-api-client on the sandbox: ``host`` and ``ssl_ca_cert`` are set on every API's
    Configuration (it uses urllib3, which verifies against the sandbox CA this way)."""
    return HubSpot(
        access_token=access_token or handle.hubspot_access_token,
        host=handle.base_url,
        ssl_ca_cert=str(handle.ca_path),
        **kwargs,
    )
