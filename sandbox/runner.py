"""Run a sandbox over HTTPS in a background thread (tests, benchmarks, the CLI, demos).

``run_sandbox()`` makes TLS files, optionally seeds an org from the generator, binds a free
port on 127.0.0.1 and serves with uvicorn until the ``with`` block ends. The handle it
yields is the Python API other code uses: URLs, CA file, sandbox-only credentials, fault
injection, the request log and counters, daily limits.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from sandbox.app import Sandbox
from sandbox.faults import FaultInjector
from sandbox.hubspot.auth import HubSpotCredentials
from sandbox.hubspot.events import EventStore
from sandbox.hubspot.limits import HubSpotLimits
from sandbox.hubspot.portal import HubSpotPortal
from sandbox.limits import DailyLimits
from sandbox.org_loader import is_large, load_generated_org
from sandbox.requestlog import RequestLog
from sandbox.salesforce.auth import SalesforceCredentials
from sandbox.salesforce.context import API_LIMIT
from sandbox.tls import make_tls_files

if TYPE_CHECKING:  # the generator loads only when an org is seeded
    from sandbox.seed_plan import OrgSize

HOST = "127.0.0.1"


class _QuietShutdown(logging.Filter):
    """uvicorn reports idle keep-alive connections at shutdown as an error; they are not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "timeout graceful shutdown exceeded" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietShutdown())


class _IdleDroppedAtStop(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, except that stopping drops idle keep-alive connections at once.

    uvicorn closes an idle connection at shutdown gracefully, which over TLS means waiting for the client's
    ``close_notify``; a client's pooled idle connection never sends one, so every stop of a sandbox a client had
    used waited out ``timeout_graceful_shutdown`` (1.15 s a stop, once per test that starts a sandbox of its
    own). A connection still answering a request is left to finish, as uvicorn does.
    """

    def shutdown(self) -> None:
        super().shutdown()
        if self.transport.is_closing():  # it was idle: uvicorn began a graceful close
            self.transport.abort()


START_TIMEOUT_S = 30.0


@dataclass
class SandboxHandle:
    """A running sandbox. ``base_url`` is also Salesforce's ``instance_url`` and login URL."""

    base_url: str
    port: int
    ca_path: Path
    sandbox: Sandbox
    seeded: dict[str, int]

    @property
    def faults(self) -> FaultInjector:
        return self.sandbox.faults

    @property
    def request_log(self) -> RequestLog:
        return self.sandbox.request_log

    @property
    def limits(self) -> DailyLimits:
        return self.sandbox.limits

    @property
    def salesforce_credentials(self) -> SalesforceCredentials:
        return self.sandbox.salesforce.credentials

    @property
    def salesforce_token_url(self) -> str:
        return f"{self.base_url}/services/oauth2/token"

    def salesforce_session(self) -> str:
        """A fresh access token, as if the client-credentials flow had just run."""
        return self.sandbox.salesforce.issue_session()

    @property
    def hubspot_credentials(self) -> HubSpotCredentials:
        """Private-app token, OAuth client id/secret and refresh token (sandbox-only values)."""
        return self.sandbox.hubspot.credentials

    @property
    def hubspot_access_token(self) -> str:
        """The private app's access token (never expires); hubspot-api-client takes ``host=base_url``."""
        return self.sandbox.hubspot.credentials.private_app_token

    @property
    def hubspot_token(self) -> str:
        """Same as ``hubspot_access_token`` (the private app's token)."""
        return self.hubspot_access_token

    @property
    def hubspot_token_url(self) -> str:
        return f"{self.base_url}/oauth/v1/token"

    @property
    def hubspot_portal(self) -> HubSpotPortal:
        """The HubSpot data (Python API: load, restore archived records, associations...)."""
        return self.sandbox.hubspot.portal

    @property
    def hubspot_events(self) -> EventStore:
        """HubSpot's email and web analytics events (Python API: ``load_email_events``, ``load_web_events``)."""
        return self.sandbox.hubspot.events

    @property
    def hubspot_limits(self) -> HubSpotLimits:
        """HubSpot's rate limits; ``configure(per_ten_seconds=100)`` picks a tier on a running sandbox."""
        return self.sandbox.hubspot.limits

    def issue_hubspot_oauth_token(self, ttl: float | None = None) -> str:
        """A fresh OAuth access token (``ttl`` seconds, default 30 minutes), as if the refresh flow had just run."""
        return self.sandbox.hubspot.issue_access_token(ttl)

    def exhaust_hubspot_daily_limit(self) -> None:
        """Spend today's HubSpot budget: the next API call answers 429 with policyName DAILY."""
        self.sandbox.hubspot.exhaust_daily_limit()

    def expire_sessions(self) -> None:
        self.sandbox.expire_sessions()

    def exhaust_daily_limit(self) -> None:
        """Spend today's Salesforce API budget: the next API call answers 403 REQUEST_LIMIT_EXCEEDED."""
        self.sandbox.limits.exhaust(API_LIMIT)

    def reset(self) -> None:
        self.sandbox.reset()


def _free_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {HOST}:{port}: {exc.strerror}; choose another --port or 0 for any") from exc
    sock.listen(128)
    return sock


@contextmanager
def run_sandbox(
    seed: int | None = None,
    size: str | OrgSize = "S",
    state_path: Path | None = None,
    port: int = 0,
    directory: Path | None = None,
    as_of: datetime | None = None,
    daily_api_requests: int | None = None,
    hubspot_requests_per_ten_seconds: int | None = None,
    crms: tuple[str, ...] = ("salesforce", "hubspot"),
) -> Iterator[SandboxHandle]:
    """Serve a sandbox until the block exits. ``seed`` loads the generator's org of ``size``
    (S, M or L) unless ``state_path`` already holds an org, into the ``crms`` named (the others
    start empty: a test of one CRM's connector need not wait for the other's); ``directory``
    keeps the TLS and JWT files (a temporary directory by default), and a large org's scratch
    file when there is no ``state_path`` (see ``org_loader.is_large``)."""
    if set(crms) - {"salesforce", "hubspot"} or not crms:
        raise ValueError(f"crms: salesforce, hubspot or both, not {crms!r}")
    if state_path is not None and len(set(crms)) < 2:
        raise ValueError("a sandbox kept in a state file is seeded in both CRMs (the file tells seeded from not by its "
                         "Salesforce org)")
    with tempfile.TemporaryDirectory(prefix="abm-sandbox-") as tmp:
        workdir = directory or Path(tmp)
        tls = make_tls_files(workdir)
        hubspot_options = ({"requests_per_ten_seconds": hubspot_requests_per_ten_seconds}
                           if hubspot_requests_per_ten_seconds is not None else None)
        sandbox = Sandbox(workdir, state_path, daily_api_requests=daily_api_requests, hubspot_options=hubspot_options,
                          scratch=seed is not None and is_large(size))
        try:
            seeded: dict[str, int] = {}
            if seed is not None:
                seeded = load_generated_org(sandbox.salesforce.org, seed, size, as_of,
                                            hubspot=sandbox.hubspot if "hubspot" in crms else None,
                                            work_dir=workdir, salesforce="salesforce" in crms)
            sock = _free_socket(port)
            bound_port = sock.getsockname()[1]
            config = uvicorn.Config(
                sandbox.asgi_app(),
                ssl_certfile=str(tls.cert_path),
                ssl_keyfile=str(tls.key_path),
                http=_IdleDroppedAtStop,
                loop="asyncio",
                lifespan="off",
                log_level="warning",
                access_log=False,
                proxy_headers=False,
                timeout_graceful_shutdown=1,
            )
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="abm-sandbox",
                                      daemon=True)
            thread.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    server.should_exit = True
                    raise RuntimeError("the sandbox server did not start (see the log above)")
                time.sleep(0.01)
            try:
                yield SandboxHandle(f"https://{HOST}:{bound_port}", bound_port, tls.ca_path, sandbox, seeded)
            finally:
                server.should_exit = True
                thread.join(timeout=10)
                sock.close()
        finally:
            sandbox.close()
