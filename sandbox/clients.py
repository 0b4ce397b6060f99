"""Client helpers for code that talks to a running sandbox (tests, benchmarks, demos).

simple-salesforce honours a custom ``requests.Session`` for REST and Bulk 2.0, but its
Metadata API client (zeep) builds its own session; trusting the sandbox CA there must not
mean ``verify=False`` nor a process-wide ``REQUESTS_CA_BUNDLE``, so the CA is set on zeep's
transport session only. Sessions here ignore the environment (``trust_env = False``): requests
lets ``REQUESTS_CA_BUNDLE`` override ``session.verify``, which would reject the sandbox CA.
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
from simple_salesforce.metadata import SfdcMetadataApi

from sandbox.runner import SandboxHandle

DEFAULT_VERSION = "59.0"
# The server closes a keep-alive connection after 5 idle seconds (uvicorn's default, as real
# servers do too). A request sent as it closes finds no one to answer: browsers and urllib3's
# own default send an idempotent request again on a new connection, requests does not. Only
# that: no status is retried (tests must see every 429 and 5xx), nor any write.
STALE_CONNECTION_RETRY = urllib3.Retry(total=1, connect=1, read=1, status=0, other=0, redirect=0,
                                       allowed_methods=urllib3.Retry.DEFAULT_ALLOWED_METHODS,
                                       respect_retry_after_header=False, raise_on_status=False)


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


def trust_ca_for_mdapi(mdapi: SfdcMetadataApi, ca_path: Path | str) -> None:
    """Make a Metadata API client verify TLS against ``ca_path`` (zeep ignores ``sf.session``)."""
    zeep_session = mdapi._client.transport.session
    zeep_session.verify = str(ca_path)
    zeep_session.trust_env = False


class SandboxSalesforce(Salesforce):
    """simple-salesforce whose ``mdapi`` trusts the sandbox CA too.

    The Metadata API client parses a 1.5 MB WSDL, so it is still built lazily on first use.
    """

    def __init__(self, *args: Any, ca_path: Path | str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sandbox_ca_path = str(ca_path)

    @property
    def mdapi(self) -> SfdcMetadataApi:
        fresh = self._mdapi is None
        api = super().mdapi
        if fresh:
            trust_ca_for_mdapi(api, self._sandbox_ca_path)
        return api


def simple_salesforce(
    handle: SandboxHandle, session_id: str | None = None, version: str = DEFAULT_VERSION
) -> Salesforce:
    """A simple-salesforce client on the sandbox: REST, bulk2 and mdapi all verify its CA."""
    session = sandbox_requests_session(handle.ca_path)
    return SandboxSalesforce(
        instance_url=handle.base_url,
        session_id=session_id or handle.salesforce_session(),
        session=session,
        version=version,
        ca_path=handle.ca_path,
    )


def httpx_client(handle: SandboxHandle, **kwargs: object) -> httpx.Client:
    """An httpx client on ``handle.base_url`` verifying the sandbox CA."""
    context = ssl.create_default_context(cafile=str(handle.ca_path))
    return httpx.Client(base_url=handle.base_url, verify=context, trust_env=False, **kwargs)  # type: ignore[arg-type]


def hubspot_client(handle: SandboxHandle, access_token: str | None = None, **kwargs: Any) -> HubSpot:
    """hubspot-api-client on the sandbox: ``host`` and ``ssl_ca_cert`` are set on every API's
    Configuration (it uses urllib3, which verifies against the sandbox CA this way)."""
    return HubSpot(
        access_token=access_token or handle.hubspot_access_token,
        host=handle.base_url,
        ssl_ca_cert=str(handle.ca_path),
        **kwargs,
    )
